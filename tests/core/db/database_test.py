"""Tests of core/database.py (and the Alembic set-up) on SQLite and on the real PostgreSQL.

PostgreSQL comes from ``TEST_POSTGRES_URL`` (default: the local server, user ``postgres``);
every test class that needs it creates its own uniquely named database and drops it at the
end. When the server cannot be reached the PostgreSQL tests are skipped, except under
``CI=true``, where they fail.

The helpers at the top (`TemporaryDatabases`, `child_environment`, ...) are shared with the
action tests in ``tests/actions``.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, ClassVar
from unittest import mock

from sqlalchemy import URL, Engine, create_engine, func, inspect, make_url, select, text
from sqlalchemy.pool import NullPool

from actions.notes_model import Note
from core.db.database import (
    MIGRATION_LOCK_KEY,
    Base,
    Database,
    DatabaseConfigError,
    DatabaseSettings,
    DatabaseUnavailableError,
    base,
    database,
    default_sqlite_path,
    redact_url,
    resolve_database_url,
    run_sync,
    sqlite_migration_lock_path,
)
from core.settings import PROJECT_ROOT

DEFAULT_TEST_POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
HEAD = "0001"
TEST_DATABASE_PREFIX = "py_service_test_"

DATABASE_VARIABLES = (
    "DATABASE_URL",
    "POSTGRES_HOST",
    "POSTGRES_PORT",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_DB_DEVELOPMENT",
    "POSTGRES_DB_TEST",
    "POSTGRES_DB_PRODUCTION",
    "ENVIRONMENT",
    "DB_POOL_SIZE",
    "DB_MAX_OVERFLOW",
    "DB_CONNECT_TIMEOUT",
)

# A child process that migrates once every sibling is ready, so the calls really race.
MIGRATE_CHILD = """
import logging, os, pathlib, sys, time
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
from core.db.database import database
barrier = pathlib.Path(os.environ["BARRIER_DIR"])
(barrier / str(os.getpid())).touch()
deadline = time.monotonic() + 30
while len(list(barrier.iterdir())) < int(os.environ["BARRIER_SIZE"]):
    if time.monotonic() > deadline:
        sys.exit("barrier timeout")
    time.sleep(0.005)
database.initialize()
database.migrate()
database.dispose()
"""


# -- shared helpers ------------------------------------------------------------------------


def plain_url(url: URL) -> str:
    """The URL as a string with its password, for a child process's environment."""
    return url.render_as_string(hide_password=False)


def child_environment(url: URL, **extra: str) -> dict[str, str]:
    """This process's environment without database settings, plus ``DATABASE_URL=url``."""
    env = {name: value for name, value in os.environ.items() if name not in DATABASE_VARIABLES}
    env.update(DATABASE_URL=plain_url(url), ENVIRONMENT="test", **extra)
    return env


def isolate_environment(test: unittest.TestCase, **values: str) -> None:
    """Clear every database variable for the test's duration, then set ``values``."""
    patcher = mock.patch.dict(os.environ, values)
    patcher.start()
    test.addCleanup(patcher.stop)
    for name in DATABASE_VARIABLES:
        if name not in values:
            os.environ.pop(name, None)


def table_names(url: URL) -> set[str]:
    """The tables in the database at ``url``, read on a fresh connection."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _process_alive(database_name: str) -> bool:
    """Whether the process whose id is in a test database's name still runs."""
    try:
        pid = int(database_name[len(TEST_DATABASE_PREFIX) :].split("_")[0])
    except ValueError:
        return True  # not one of ours: leave it alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PostgresUnavailable(Exception):
    """The test PostgreSQL server does not answer."""


class TemporaryDatabases:
    """Creates uniquely named databases on the test PostgreSQL server and drops them."""

    def __init__(self) -> None:
        self.admin_url = make_url(os.environ.get("TEST_POSTGRES_URL", DEFAULT_TEST_POSTGRES_URL))
        self._admin: Engine | None = None

    def _engine(self) -> Engine:
        if self._admin is None:
            self._admin = create_engine(
                self.admin_url,
                poolclass=NullPool,
                isolation_level="AUTOCOMMIT",
                connect_args={"connect_timeout": 3},
            )
        return self._admin

    def check(self) -> None:
        """Raise `PostgresUnavailable` (with a one-line reason) if the server is down."""
        try:
            with self._engine().connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as error:
            reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
            raise PostgresUnavailable(
                f"PostgreSQL at {redact_url(self.admin_url)} is unreachable ({reason}); "
                "set TEST_POSTGRES_URL"
            ) from None

    def create(self) -> URL:
        """Create a fresh database and return its URL (after sweeping up stale ones)."""
        self._drop_stale()
        name = f"{TEST_DATABASE_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
        with self._engine().connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        return self.admin_url.set(database=name)

    def _drop_stale(self) -> None:
        """Drop test databases left by runs that were killed, when their process is gone.

        Only on a local server, where the process id in a database's name means something.
        """
        if self.admin_url.host not in ("127.0.0.1", "localhost", "::1", None):
            return
        with self._engine().connect() as connection:
            names = connection.execute(
                text("SELECT datname FROM pg_database WHERE datname LIKE :pattern"),
                {"pattern": TEST_DATABASE_PREFIX.replace("_", r"\_") + "%"},
            ).scalars()
            stale = [name for name in names if not _process_alive(name)]
        for name in stale:
            self.drop(self.admin_url.set(database=name))

    def drop(self, url: URL) -> None:
        """Terminate the database's leftover connections and drop it."""
        name = url.database
        with self._engine().connect() as connection:
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))

    def dispose(self) -> None:
        """Close the admin engine."""
        if self._admin is not None:
            self._admin.dispose()
            self._admin = None


def fresh_postgres_url(owner: type[unittest.TestCase]) -> URL:
    """A new PostgreSQL database for a test class, dropped by its class clean-up.

    Skips the class when the server is unreachable, or fails it under ``CI=true``.
    """
    databases = TemporaryDatabases()
    owner.addClassCleanup(databases.dispose)
    try:
        databases.check()
    except PostgresUnavailable as error:
        if os.environ.get("CI", "").lower() == "true":
            raise AssertionError(f"{error} (CI=true: the PostgreSQL tests must run)") from None
        raise unittest.SkipTest(str(error)) from None
    url = databases.create()
    owner.addClassCleanup(databases.drop, url)
    return url


def fresh_sqlite_url(owner: type[unittest.TestCase]) -> URL:
    """A new SQLite file in a temporary folder, removed by the class clean-up."""
    folder = tempfile.TemporaryDirectory(prefix="py_service_test_")
    owner.addClassCleanup(folder.cleanup)
    return URL.create("sqlite+pysqlite", database=str(Path(folder.name) / "test.sqlite3"))


class _LineReader:
    """Collects a child process's stderr lines on a thread, so a test can wait for one."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._process = process
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._process.stderr is not None
        for line in self._process.stderr:
            self.lines.append(line)

    def wait_for(self, fragment: str, timeout: float) -> bool:
        """Whether a line containing ``fragment`` arrives within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(fragment in line for line in self.lines):
                return True
            if self._process.poll() is not None:
                self._thread.join(1)
                return any(fragment in line for line in self.lines)
            time.sleep(0.01)
        return False

    def text(self) -> str:
        """Everything read so far (after the process ended: everything)."""
        self._thread.join(5)
        return "".join(self.lines)


def stop_child(child: subprocess.Popen[str]) -> None:
    """Kill a child process if it still runs, reap it and close its pipes."""
    if child.poll() is None:
        child.kill()
    child.wait(timeout=10)
    for stream in (child.stdout, child.stderr):
        if stream is not None:
            stream.close()


def start_migrate_children(url: URL, count: int, barrier: Path) -> list[subprocess.Popen[str]]:
    """Start ``count`` processes that each call ``database.migrate()`` at the same moment."""
    env = child_environment(url, BARRIER_DIR=str(barrier), BARRIER_SIZE=str(count))
    return [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE_CHILD],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]


# -- configuration, no database needed ------------------------------------------------------


class SettingsTest(unittest.TestCase):
    """How the environment selects the database."""

    def test_default_is_an_sqlite_file_per_environment(self) -> None:
        settings = DatabaseSettings.from_environment({})
        self.assertEqual(settings.environment, "test")
        self.assertEqual(settings.source, "embedded SQLite")
        self.assertEqual(settings.url.get_backend_name(), "sqlite")
        self.assertEqual(settings.url.database, str(Path.cwd() / "py_service_test.sqlite3"))
        development = resolve_database_url({"ENVIRONMENT": "Development"})
        self.assertEqual(development.database, str(default_sqlite_path("development")))

    def test_postgres_variables_pick_the_database_of_the_environment(self) -> None:
        environ = {
            "ENVIRONMENT": "development",
            "POSTGRES_HOST": "db.internal",
            "POSTGRES_USER": "service",
            "POSTGRES_PASSWORD": "p@ss:word",
            "POSTGRES_DB_DEVELOPMENT": "service_development",
            "POSTGRES_DB_TEST": "service_test",
            "POSTGRES_DB_PRODUCTION": "service_production",
        }
        url = resolve_database_url(environ)
        self.assertEqual(url.drivername, "postgresql+psycopg2")
        self.assertEqual((url.host, url.port, url.username), ("db.internal", 5432, "service"))
        self.assertEqual(url.password, "p@ss:word")
        self.assertEqual(url.database, "service_development")
        production = resolve_database_url({**environ, "ENVIRONMENT": "production"})
        self.assertEqual(production.database, "service_production")
        custom_port = resolve_database_url({**environ, "POSTGRES_PORT": "6543"})
        self.assertEqual(custom_port.port, 6543)

    def test_database_url_overrides_everything(self) -> None:
        environ = {
            "DATABASE_URL": "postgres://someone:secret@elsewhere:5433/other",
            "POSTGRES_HOST": "db.internal",
            "ENVIRONMENT": "production",
        }
        settings = DatabaseSettings.from_environment(environ)
        self.assertEqual(settings.source, "DATABASE_URL")
        self.assertEqual(settings.url.drivername, "postgresql+psycopg2")
        self.assertEqual((settings.url.host, settings.url.database), ("elsewhere", "other"))

    def test_production_without_settings_names_the_missing_variables(self) -> None:
        with self.assertRaises(DatabaseConfigError) as caught:
            DatabaseSettings.from_environment({"ENVIRONMENT": "production"})
        message = str(caught.exception)
        self.assertNotIn("\n", message)
        for name in ("POSTGRES_HOST", "POSTGRES_USER", "POSTGRES_DB_PRODUCTION"):
            self.assertIn(name, message)
        self.assertIn("DATABASE_URL", message)

    def test_partial_postgres_settings_are_an_error_not_a_fallback(self) -> None:
        with self.assertRaises(DatabaseConfigError) as caught:
            resolve_database_url({"ENVIRONMENT": "development", "POSTGRES_HOST": "db"})
        self.assertIn("POSTGRES_USER", str(caught.exception))
        self.assertIn("POSTGRES_DB_DEVELOPMENT", str(caught.exception))
        self.assertNotIn("POSTGRES_HOST,", str(caught.exception))

    def test_invalid_values_are_one_line_errors(self) -> None:
        postgres = {"POSTGRES_HOST": "h", "POSTGRES_USER": "u", "POSTGRES_DB_TEST": "d"}
        cases: list[tuple[dict[str, str], str]] = [
            ({"ENVIRONMENT": "staging"}, "ENVIRONMENT"),
            ({**postgres, "POSTGRES_PORT": "five"}, "POSTGRES_PORT"),
            ({**postgres, "POSTGRES_PORT": "70000"}, "POSTGRES_PORT"),
            ({"DB_POOL_SIZE": "0"}, "DB_POOL_SIZE"),
            ({"DB_MAX_OVERFLOW": "-1"}, "DB_MAX_OVERFLOW"),
        ]
        for environ, name in cases:
            with self.subTest(environ=environ), self.assertRaises(DatabaseConfigError) as caught:
                DatabaseSettings.from_environment(environ)
            self.assertIn(name, str(caught.exception))
            self.assertNotIn("\n", str(caught.exception))

    def test_a_malformed_database_url_is_not_echoed(self) -> None:
        with self.assertRaises(DatabaseConfigError) as caught:
            resolve_database_url({"DATABASE_URL": "not a url with s3cret inside"})
        self.assertIn("DATABASE_URL", str(caught.exception))
        self.assertNotIn("s3cret", str(caught.exception))

    def test_url_and_repr_hide_the_password(self) -> None:
        manager = Database(url="postgresql+psycopg2://service:s3cret@db.internal:5432/app")
        self.assertEqual(manager.url, "postgresql+psycopg2://service:***@db.internal:5432/app")
        self.assertNotIn("s3cret", repr(manager))
        self.assertNotIn("s3cret", redact_url("postgresql://u:s3cret@h/d"))
        self.assertNotIn("s3cret", redact_url("garbage s3cret"))

    def test_base_is_shared(self) -> None:
        self.assertIs(database.base, Base)
        self.assertIs(base, Base)
        self.assertIn("notes", Base.metadata.tables)


class StartupTest(unittest.TestCase):
    """`initialize()`: when settings are read, what it logs, and how it fails."""

    def setUp(self) -> None:
        isolate_environment(self)
        folder = tempfile.TemporaryDirectory(prefix="py_service_test_")
        self.addCleanup(folder.cleanup)
        self.folder = Path(folder.name)

    def test_settings_are_read_at_initialize_not_before(self) -> None:
        manager = Database()
        self.addCleanup(manager.dispose)
        path = self.folder / "late.sqlite3"
        os.environ["DATABASE_URL"] = f"sqlite:///{path}"
        os.environ["DB_POOL_SIZE"] = "3"
        manager.initialize()
        self.assertTrue(manager.is_initialized)
        self.assertEqual(manager.settings.url.database, str(path))
        self.assertEqual(manager.engine.pool.size(), 3)  # type: ignore[attr-defined]  # QueuePool
        engine = manager.engine
        manager.initialize()  # idempotent
        self.assertIs(manager.engine, engine)

    def test_first_use_initializes(self) -> None:
        os.environ["DATABASE_URL"] = f"sqlite:///{self.folder}/lazy.sqlite3"
        manager = Database()
        self.addCleanup(manager.dispose)
        self.assertFalse(manager.is_initialized)
        with manager.transaction() as session:
            self.assertEqual(session.scalar(text("SELECT 1")), 1)
        self.assertTrue(manager.is_initialized)

    def test_embedded_sqlite_location_is_logged(self) -> None:
        original = Path.cwd()
        os.chdir(self.folder)
        self.addCleanup(os.chdir, original)
        manager = Database()
        self.addCleanup(manager.dispose)
        with self.assertLogs("core.db.database", logging.INFO) as logs:
            manager.initialize()
        expected = str(self.folder.resolve() / "py_service_test.sqlite3")
        self.assertTrue(any(expected in line for line in logs.output), logs.output)
        self.assertTrue(Path(expected).exists())

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

    def test_alembic_command_line_fails_in_one_line_when_unreachable(self) -> None:
        url = make_url("postgresql+psycopg2://service:s3cret@127.0.0.1:1/app")
        completed = subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"],
            cwd=PROJECT_ROOT,
            env=child_environment(url),
            capture_output=True,
            text=True,
            timeout=60,
        )
        output = completed.stdout + completed.stderr
        self.assertNotEqual(completed.returncode, 0)
        self.assertIn("FAILED: cannot connect to the database at", output)
        self.assertNotIn("Traceback", output)
        self.assertNotIn("s3cret", output)

    def test_unopenable_sqlite_file_is_unavailable(self) -> None:
        manager = Database(url=f"sqlite:///{self.folder}/missing/folder/db.sqlite3")
        with self.assertRaises(DatabaseUnavailableError) as caught:
            manager.initialize()
        self.assertIn("unable to open database file", str(caught.exception))

    def test_production_without_settings_fails_at_initialize(self) -> None:
        os.environ["ENVIRONMENT"] = "production"
        manager = Database()
        with self.assertRaises(DatabaseConfigError) as caught:
            manager.initialize()
        self.assertIn("POSTGRES_HOST", str(caught.exception))
        self.assertFalse(manager.is_initialized)

    def test_initialize_with_another_url_needs_dispose(self) -> None:
        manager = Database()
        self.addCleanup(manager.dispose)
        first = f"sqlite:///{self.folder}/one.sqlite3"
        second = f"sqlite:///{self.folder}/two.sqlite3"
        manager.initialize(url=first)
        manager.initialize(url=first)  # same URL: fine
        with self.assertRaises(DatabaseConfigError):
            manager.initialize(url=second)
        manager.dispose()
        manager.initialize(url=second)
        self.assertEqual(manager.settings.url.database, f"{self.folder}/two.sqlite3")

    def test_teardown_refuses_in_production(self) -> None:
        os.environ["ENVIRONMENT"] = "production"
        manager = Database(url=f"sqlite:///{self.folder}/prod.sqlite3")
        self.addCleanup(manager.dispose)
        with self.assertRaises(DatabaseConfigError):
            manager.teardown()


# -- behaviour on a real database: SQLite and PostgreSQL ------------------------------------


class Behaviours:
    """Holds the abstract test case, so unittest does not collect it on its own."""

    class DatabaseCase(unittest.TestCase):
        """The same tests on every backend; subclasses say where the database is."""

        url: ClassVar[URL]
        manager: ClassVar[Database]

        @classmethod
        def database_url(cls) -> URL:
            """A fresh, empty database for the class."""
            raise NotImplementedError

        @classmethod
        def setUpClass(cls) -> None:
            cls.url = cls.database_url()
            cls.manager = Database(url=cls.url)
            cls.addClassCleanup(cls.manager.dispose)
            cls.manager.initialize()

        def setUp(self) -> None:
            patcher = mock.patch.dict(os.environ, {"ENVIRONMENT": "test"})
            patcher.start()
            self.addCleanup(patcher.stop)
            self.manager.teardown()

        def count_notes(self) -> int:
            with self.manager.session() as session:
                return session.scalar(select(func.count()).select_from(Note)) or 0

        def test_migrate_creates_the_schema_at_head(self) -> None:
            self.assertIsNone(self.manager.current_revision())
            self.manager.migrate()
            self.assertIn("notes", table_names(self.url))
            self.assertEqual(self.manager.current_revision(), HEAD)
            self.assertEqual(self.manager.head_revision(), HEAD)
            self.manager.migrate()  # already at head: nothing to do
            self.assertEqual(self.manager.current_revision(), HEAD)

        def test_downgrade_removes_the_schema(self) -> None:
            self.manager.migrate()
            self.manager.downgrade()
            self.assertNotIn("notes", table_names(self.url))
            self.assertIsNone(self.manager.current_revision())

        def test_teardown_drops_every_table(self) -> None:
            self.manager.migrate()
            with self.manager.transaction() as session:
                session.execute(text("CREATE TABLE stray (id INTEGER PRIMARY KEY)"))
            self.manager.teardown()
            self.assertEqual(table_names(self.url) - {"sqlite_sequence"}, set())

        def test_transaction_commits_on_success(self) -> None:
            self.manager.migrate()
            with self.manager.transaction() as session:
                session.add(Note(title="kept", body=""))
            self.assertEqual(self.count_notes(), 1)

        def test_transaction_rolls_back_and_reraises_on_error(self) -> None:
            self.manager.migrate()
            with self.assertRaises(RuntimeError), self.manager.transaction() as session:
                session.add(Note(title="lost", body=""))
                session.flush()  # the row reached the database before the error
                raise RuntimeError("boom")
            self.assertEqual(self.count_notes(), 0)

        def test_session_commits_only_when_asked(self) -> None:
            self.manager.migrate()
            with self.manager.session() as session:
                session.add(Note(title="uncommitted", body=""))
                session.flush()
            self.assertEqual(self.count_notes(), 0)
            with self.manager.session() as session:
                session.add(Note(title="committed", body=""))
                session.commit()
            self.assertEqual(self.count_notes(), 1)

        def test_run_works_in_a_thread_without_blocking_the_loop(self) -> None:
            self.manager.migrate()
            loop_thread = threading.get_ident()

            def add_slowly(session: Any, title: str) -> tuple[int, int]:
                time.sleep(0.3)
                note = Note(title=title, body="")
                session.add(note)
                session.flush()
                return note.id, threading.get_ident()

            def fail(session: Any) -> None:
                session.add(Note(title="rolled back", body=""))
                session.flush()
                raise ValueError("nope")

            async def scenario() -> tuple[tuple[int, int], int]:
                ticks = 0

                async def tick() -> None:
                    nonlocal ticks
                    while True:
                        await asyncio.sleep(0.01)
                        ticks += 1

                ticker = asyncio.create_task(tick())
                result = await self.manager.run(add_slowly, "threaded")
                with self.assertRaises(ValueError):
                    await self.manager.run(fail)
                ticker.cancel()
                return result, ticks

            (note_id, worker_thread), ticks = asyncio.run(scenario())
            self.assertNotEqual(worker_thread, loop_thread)
            self.assertGreaterEqual(ticks, 10)  # the loop kept running while the thread slept
            self.assertEqual(self.count_notes(), 1)
            with self.manager.session() as session:
                note = session.get(Note, note_id)
                self.assertIsNotNone(note)
                self.assertEqual(note.title if note else None, "threaded")

        def test_alembic_command_line_upgrades_and_downgrades(self) -> None:
            env = child_environment(self.url)
            for arguments, present in ((["upgrade", "head"], True), (["downgrade", "base"], False)):
                completed = subprocess.run(
                    [sys.executable, "-m", "alembic", *arguments],
                    cwd=PROJECT_ROOT,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                self.assertEqual(completed.returncode, 0, completed.stderr)
                if present:
                    self.assertIn("Running upgrade  -> 0001", completed.stderr)
                    self.assertIn("notes", table_names(self.url))
                else:
                    self.assertNotIn("notes", table_names(self.url))

        def test_concurrent_migrations_from_three_processes(self) -> None:
            with tempfile.TemporaryDirectory() as barrier:
                children = start_migrate_children(self.race_url(), 3, Path(barrier))
                for child in children:
                    self.addCleanup(stop_child, child)
                outputs = [child.communicate(timeout=60) for child in children]
            for child, (_, stderr) in zip(children, outputs, strict=True):
                self.assertEqual(child.returncode, 0, stderr)
            upgrades = sum(stderr.count("Running upgrade  -> 0001") for _, stderr in outputs)
            self.assertEqual(upgrades, 1, "exactly one process must run the migration")
            race = Database(url=self.race_url())
            self.addCleanup(race.dispose)
            with race.session() as session:
                versions = session.execute(text("SELECT version_num FROM alembic_version")).all()
            self.assertEqual([row[0] for row in versions], [HEAD])
            self.assertIn("notes", table_names(self.race_url()))

        def race_url(self) -> URL:
            """The fresh database the three migrating processes share."""
            return self.url

        def test_a_held_migration_lock_makes_migrate_wait(self) -> None:
            with self.hold_migration_lock(), tempfile.TemporaryDirectory() as barrier:
                (child,) = start_migrate_children(self.url, 1, Path(barrier))
                self.addCleanup(stop_child, child)
                reader = _LineReader(child)
                if not reader.wait_for("waiting for", timeout=30):
                    self.fail(f"migrate() did not wait for the lock: {reader.text()}")
                time.sleep(0.2)
                self.assertIsNone(child.poll())
                self.assertNotIn("notes", table_names(self.url))
            self.assertEqual(child.wait(timeout=60), 0, reader.text())
            self.assertEqual(self.manager.current_revision(), HEAD)

        def hold_migration_lock(self) -> AbstractContextManager[None]:
            """Hold the backend's migration lock from this process."""
            raise NotImplementedError


class SqliteDatabaseTest(Behaviours.DatabaseCase):
    """`Database` on an SQLite file in a temporary folder."""

    @classmethod
    def database_url(cls) -> URL:
        return fresh_sqlite_url(cls)

    @contextmanager
    def hold_migration_lock(self) -> Iterator[None]:
        lock_path = sqlite_migration_lock_path(self.url)
        assert lock_path is not None
        with lock_path.open("a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def test_in_memory_database_is_shared_across_threads(self) -> None:
        manager = Database(url="sqlite://")
        self.addCleanup(manager.dispose)
        manager.migrate()

        def add(session: Any) -> None:
            session.add(Note(title="from a thread", body=""))

        asyncio.run(manager.run(add))
        with manager.session() as session:
            self.assertEqual(session.scalar(select(func.count()).select_from(Note)), 1)


class PostgresDatabaseTest(Behaviours.DatabaseCase):
    """`Database` on a fresh database of the test PostgreSQL server."""

    @classmethod
    def database_url(cls) -> URL:
        url = fresh_postgres_url(cls)
        cls.race_database = fresh_postgres_url(cls)
        return url

    race_database: ClassVar[URL]

    def race_url(self) -> URL:
        return self.race_database

    @contextmanager
    def hold_migration_lock(self) -> Iterator[None]:
        engine = create_engine(self.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(
                    text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
                yield
        finally:
            engine.dispose()

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

    def test_module_level_run_sync_uses_the_shared_manager(self) -> None:
        self.manager.migrate()
        database.dispose()
        self.addCleanup(database.dispose)
        database.initialize(url=self.url)

        def count(session: Any) -> int:
            return session.scalar(select(func.count()).select_from(Note)) or 0

        self.assertEqual(asyncio.run(run_sync(count)), 0)


if __name__ == "__main__":
    unittest.main()
