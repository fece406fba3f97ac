"""Tests of core/db/engine.py: pools, SQLite set-up and the start-up connection check."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import tempfile
import time
import unittest
from pathlib import Path
from typing import Any, ClassVar
from unittest import mock
from urllib.parse import quote

from sqlalchemy import URL, create_engine, func, select, text
from sqlalchemy.pool import NullPool

from core.database import Database, DatabaseConfigError, DatabaseUnavailableError
from core.db.errors import DatabaseStartupError, one_line_reason
from core.redaction import redact_url
from tests.databases import ALEMBIC_INI, fresh_postgres_url, isolate_environment
from tests.fixtures.db.models import Item


class StartupCheckTest(unittest.TestCase):
    """A database that cannot be reached fails start-up in one line, without the password."""

    def setUp(self) -> None:
        isolate_environment(self)
        folder = tempfile.TemporaryDirectory(prefix="py_service_test_")
        self.addCleanup(folder.cleanup)
        self.folder = Path(folder.name)

    def test_unreachable_postgres_is_a_one_line_error_without_password(self) -> None:
        urls = [
            "postgresql+psycopg2://service:s3cret@127.0.0.1:1/app",
            "postgresql+psycopg2://service:s3cret@no-such-host.invalid:5432/app",
        ]
        for url in urls:
            with self.subTest(url=redact_url(url)):
                os.environ["DATABASE_URL"] = url
                manager = Database()
                started = time.monotonic()
                with self.assertRaises(DatabaseUnavailableError) as caught:
                    manager.initialize()
                self.assertLess(time.monotonic() - started, 10)
                error = caught.exception
                message = str(error)
                self.assertTrue(message.startswith("cannot connect to the database at "))
                self.assertIn("service:***@", message)
                self.assertNotIn("s3cret", message)
                self.assertNotIn("\n", message)
                self.assertNotIn("Traceback", message)
                self.assertIsNone(error.__cause__)
                self.assertTrue(error.__suppress_context__)
                self.assertFalse(manager.is_initialized)

    def test_unopenable_sqlite_file_is_unavailable(self) -> None:
        manager = Database(url=f"sqlite:///{self.folder}/missing/folder/db.sqlite3")
        with self.assertRaises(DatabaseUnavailableError) as caught:
            manager.initialize()
        self.assertIn("unable to open database file", str(caught.exception))

    def test_a_driver_that_is_not_installed_is_a_configuration_error(self) -> None:
        if importlib.util.find_spec("pymysql") is not None:
            self.skipTest("pymysql is installed here")
        manager = Database(url="mysql+pymysql://service:s3cret@db.internal/app")
        with self.assertRaises(DatabaseConfigError) as caught:
            manager.initialize()
        self.assertEqual(
            str(caught.exception),
            "cannot use the database URL mysql+pymysql://service:***@db.internal/app "
            "(from explicit): No module named 'pymysql'",
        )


class SqliteEngineTest(unittest.TestCase):
    """Engines on SQLite."""

    def test_in_memory_database_is_shared_across_threads(self) -> None:
        manager = Database(url="sqlite://", alembic_ini=ALEMBIC_INI)
        self.addCleanup(manager.dispose)
        manager.migrate()

        def add(session: Any) -> None:
            session.add(Item(title="from a thread", body=""))

        asyncio.run(manager.run(add))
        with manager.session() as session:
            self.assertEqual(session.scalar(select(func.count()).select_from(Item)), 1)


class PostgresEngineTest(unittest.TestCase):
    """Engines on a fresh PostgreSQL database."""

    url: ClassVar[URL]

    @classmethod
    def setUpClass(cls) -> None:
        cls.url = fresh_postgres_url(cls)

    def test_pool_size_comes_from_the_environment(self) -> None:
        with mock.patch.dict(os.environ, {"DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "2"}):
            manager = Database(url=self.url)
            self.addCleanup(manager.dispose)
            manager.initialize()
        self.assertEqual(manager.engine.pool.size(), 4)  # type: ignore[attr-defined]  # QueuePool

    def test_pre_ping_replaces_connections_the_server_closed(self) -> None:
        manager = Database(url=self.url)
        self.addCleanup(manager.dispose)
        with manager.session() as session:
            self.assertEqual(session.scalar(text("SELECT 1")), 1)  # leaves a pooled connection
        killer = create_engine(self.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self.addCleanup(killer.dispose)
        with killer.connect() as connection:
            killed = connection.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
        self.assertGreaterEqual(killed, 1)
        with manager.session() as session:  # would raise OperationalError without pre-ping
            self.assertEqual(session.scalar(text("SELECT 1")), 1)


# Passwords of every awkward shape; each holds "Zq7" and "Xk" so a fragment is recognisable.
AWKWARD_PASSWORDS = (
    "Zq7@Xk9w",
    "Zq7@@Xk9w",
    "Zq7@Xk:9w",
    "Zq7@Xk#9w",
    "Zq7/Xk@9w",
    "Zq7@Xk/9w",
    "Zq7@Xk?9w",
    "Zq7%40Xk9w",
    "Zq7 'Xk\\9w\"",
    "Zq7\u00e9Xk9w\u2603",
    " Zq7Xk9w ",
)


def fragments(password: str) -> set[str]:
    """Every piece of `password` three characters long or longer."""
    return {
        password[start:end]
        for start in range(len(password))
        for end in range(start + 3, len(password) + 1)
    }


class OneLineReasonTest(unittest.TestCase):
    def test_a_message_holding_the_password_is_not_shown_at_all(self) -> None:
        error = OSError('could not translate host name "Xk9w@db" to address\nmore')
        self.assertEqual(
            one_line_reason(error, None, "Zq7"),
            'could not translate host name "Xk9w@db" to address',
        )
        # Masking the match would spell a short password out ("tr***nsl***te" for "a").
        for secret in ("a", "Xk9w", "Xk9w@db"):
            with self.subTest(secret=secret):
                self.assertEqual(
                    one_line_reason(error, secret),
                    "OSError (its message is not shown: it holds the password)",
                )
        encoded = OSError("bad URL postgresql://u:Zq7%40Xk9w@h/d")
        self.assertIn("not shown", one_line_reason(encoded, "Zq7@Xk9w"))


class PasswordNeverShownTest(unittest.TestCase):
    """Against the real PostgreSQL (which trusts its local users, so any password connects):
    however the password is written, the right host is reached, and no error shows any
    piece of the password."""

    url: ClassVar[URL]

    @classmethod
    def setUpClass(cls) -> None:
        cls.url = fresh_postgres_url(cls)

    def setUp(self) -> None:
        isolate_environment(self)

    def ways_of_writing(self, password: str, database: str, port: int) -> dict[str, dict[str, str]]:
        """The environments that give `password` for `database` on `port`."""
        host, user = self.url.host or "127.0.0.1", self.url.username or "postgres"
        place = f"{host}:{port}/{database}"
        return {
            "as it is": {"DATABASE_URL": f"postgresql://{user}:{password}@{place}"},
            "percent-encoded": {
                "DATABASE_URL": f"postgresql://{user}:{quote(password, safe='')}@{place}"
            },
            "POSTGRES_*": {
                "POSTGRES_HOST": host,
                "POSTGRES_PORT": str(port),
                "POSTGRES_USER": user,
                "POSTGRES_PASSWORD": password,
                "POSTGRES_DB_TEST": database,
            },
        }

    def outcome(self, env: dict[str, str]) -> str:
        """ "connected", or the error the start-up would print."""
        with mock.patch.dict(os.environ, env):
            manager = Database()
            try:
                manager.initialize()
            except DatabaseStartupError as error:
                return str(error)
            manager.dispose()
            return "connected"

    def test_every_way_of_writing_reaches_the_server_or_says_why_without_the_password(
        self,
    ) -> None:
        port = self.url.port or 5432
        connected = 0
        for password in AWKWARD_PASSWORDS:
            targets = {
                "the database": (str(self.url.database), port),
                "a missing database": ("py_service_no_such_database", port),
                "a closed port": (str(self.url.database), 1),
            }
            for target, (database, target_port) in targets.items():
                for way, env in self.ways_of_writing(password, database, target_port).items():
                    with self.subTest(password=password, target=target, way=way):
                        outcome = self.outcome(env)
                        shown = sorted(piece for piece in fragments(password) if piece in outcome)
                        self.assertEqual(shown, [], outcome)
                        self.assertNotIn("\n", outcome)
                        if target == "the database" and way != "as it is":
                            self.assertEqual(outcome, "connected")
                        if outcome == "connected":
                            connected += 1
                        elif target == "a missing database" and "after its host" not in outcome:
                            self.assertIn("py_service_no_such_database", outcome)
        # As written: all but the two whose "@" comes after a "/" or "?" (refused) connect.
        self.assertEqual(connected, 2 * len(AWKWARD_PASSWORDS) + len(AWKWARD_PASSWORDS) - 2)


if __name__ == "__main__":
    unittest.main()
