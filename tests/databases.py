"""Test databases and child processes, shared by the database tests and the action tests.

PostgreSQL comes from ``TEST_POSTGRES_URL`` (default: the local server, user ``postgres``);
every test class that needs it creates its own uniquely named database and drops it at the
end. When the server cannot be reached the PostgreSQL tests are skipped, except under
``CI=true``, where they fail.

`SqliteBackend` and `PostgresBackend` say where a `BackendCase` finds its fresh database, so
one set of tests runs on both.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar
from unittest import mock

from sqlalchemy import URL, Engine, create_engine, inspect, make_url, text
from sqlalchemy.pool import NullPool

from core.db.database import Database
from core.db.migrations import MIGRATION_LOCK_KEY, sqlite_migration_lock_path
from core.db.urls import shown_url
from core.settings import PROJECT_ROOT
from tests.fixtures.db import ALEMBIC_INI, HEAD, TABLE

__all__ = ["ALEMBIC_INI", "HEAD", "TABLE"]  # the fixture migration, for the database tests

DEFAULT_TEST_POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
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
from core.db.database import Database
database = Database(alembic_ini=os.environ["ALEMBIC_INI"])
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
                f"PostgreSQL at {shown_url(self.admin_url)} is unreachable ({reason}); "
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


class LineReader:
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
    env = child_environment(
        url, BARRIER_DIR=str(barrier), BARRIER_SIZE=str(count), ALEMBIC_INI=str(ALEMBIC_INI)
    )
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


# -- one set of tests, every backend ---------------------------------------------------------


class BackendCase(unittest.TestCase):
    """A fresh database for the class and a `Database` on it (migrated by the fixture
    migration, `ALEMBIC_INI`), emptied before each test.

    Subclasses mix in `SqliteBackend` or `PostgresBackend` (first), which say where the
    database is; a module keeps its shared tests on a class nested in a holder class, so
    unittest does not collect them on their own.
    """

    url: ClassVar[URL]
    manager: ClassVar[Database]

    @classmethod
    def database_url(cls) -> URL:
        """A fresh, empty database for the class."""
        raise NotImplementedError

    @classmethod
    def setUpClass(cls) -> None:
        cls.url = cls.database_url()
        cls.manager = Database(url=cls.url, alembic_ini=ALEMBIC_INI)
        cls.addClassCleanup(cls.manager.dispose)
        cls.manager.initialize()

    def setUp(self) -> None:
        patcher = mock.patch.dict(os.environ, {"ENVIRONMENT": "test"})
        patcher.start()
        self.addCleanup(patcher.stop)
        self.manager.teardown()


class SqliteBackend:
    """An SQLite file in a temporary folder."""

    url: ClassVar[URL]

    @classmethod
    def database_url(cls) -> URL:
        """A new SQLite file, removed with the class."""
        return fresh_sqlite_url(cls)  # type: ignore[arg-type]  # mixed into a TestCase

    @contextmanager
    def hold_migration_lock(self) -> Iterator[None]:
        """Hold the lock file that serializes migrations of the class's database."""
        lock_path = sqlite_migration_lock_path(self.url)
        assert lock_path is not None
        with lock_path.open("a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class PostgresBackend:
    """A fresh database on the test PostgreSQL server."""

    url: ClassVar[URL]

    @classmethod
    def database_url(cls) -> URL:
        """A new PostgreSQL database, dropped with the class."""
        return fresh_postgres_url(cls)  # type: ignore[arg-type]  # mixed into a TestCase

    @contextmanager
    def hold_migration_lock(self) -> Iterator[None]:
        """Hold the advisory lock that serializes migrations, from this process."""
        engine = create_engine(self.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(
                    text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
                yield
        finally:
            engine.dispose()
