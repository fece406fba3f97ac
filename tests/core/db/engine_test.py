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

from sqlalchemy import URL, create_engine, func, select, text
from sqlalchemy.pool import NullPool

from core.database import Database, DatabaseConfigError, DatabaseUnavailableError
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


if __name__ == "__main__":
    unittest.main()
