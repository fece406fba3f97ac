"""Tests of core/db/migrations.py: Alembic in-process and on the command line, and the lock
that serializes migrations across processes, on SQLite and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import unittest
from contextlib import AbstractContextManager
from pathlib import Path
from typing import ClassVar

from sqlalchemy import URL, make_url, text

from core.db.database import Database
from core.db.migrations import sqlite_migration_lock_path
from core.settings import PROJECT_ROOT
from tests.databases import (
    ALEMBIC_INI,
    HEAD,
    TABLE,
    BackendCase,
    LineReader,
    PostgresBackend,
    SqliteBackend,
    child_environment,
    fresh_postgres_url,
    start_migrate_children,
    stop_child,
    table_names,
)


class CommandLineTest(unittest.TestCase):
    """``alembic`` at the project root, without a reachable database."""

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


class LockPathTest(unittest.TestCase):
    """Where the lock file of an SQLite database lives."""

    def test_lock_file_sits_beside_an_sqlite_file_only(self) -> None:
        folder = Path(tempfile.gettempdir()).resolve()
        url = URL.create("sqlite+pysqlite", database=str(folder / "service.sqlite3"))
        self.assertEqual(sqlite_migration_lock_path(url), folder / "service.sqlite3.migrate.lock")
        self.assertIsNone(sqlite_migration_lock_path(make_url("sqlite://")))
        self.assertIsNone(sqlite_migration_lock_path(make_url("postgresql://u@h/d")))


class Behaviours:
    """Holds the shared test case, so unittest does not collect it on its own."""

    class MigrationCase(BackendCase):
        """Migrations, the same on every backend."""

        def test_migrate_creates_the_schema_at_head(self) -> None:
            self.assertIsNone(self.manager.current_revision())
            self.manager.migrate()
            self.assertIn(TABLE, table_names(self.url))
            self.assertEqual(self.manager.current_revision(), HEAD)
            self.assertEqual(self.manager.head_revision(), HEAD)
            self.manager.migrate()  # already at head: nothing to do
            self.assertEqual(self.manager.current_revision(), HEAD)

        def test_downgrade_removes_the_schema(self) -> None:
            self.manager.migrate()
            self.manager.downgrade()
            self.assertNotIn(TABLE, table_names(self.url))
            self.assertIsNone(self.manager.current_revision())

        def test_alembic_command_line_upgrades_and_downgrades(self) -> None:
            env = child_environment(self.url)
            for arguments, present in ((["upgrade", "head"], True), (["downgrade", "base"], False)):
                completed = subprocess.run(
                    [sys.executable, "-m", "alembic", "-c", str(ALEMBIC_INI), *arguments],
                    cwd=PROJECT_ROOT,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                self.assertEqual(completed.returncode, 0, completed.stderr)
                if present:
                    self.assertIn(f"Running upgrade  -> {HEAD}", completed.stderr)
                    self.assertIn(TABLE, table_names(self.url))
                else:
                    self.assertNotIn(TABLE, table_names(self.url))

        def test_concurrent_migrations_from_three_processes(self) -> None:
            with tempfile.TemporaryDirectory() as barrier:
                children = start_migrate_children(self.race_url(), 3, Path(barrier))
                for child in children:
                    self.addCleanup(stop_child, child)
                outputs = [child.communicate(timeout=60) for child in children]
            for child, (_, stderr) in zip(children, outputs, strict=True):
                self.assertEqual(child.returncode, 0, stderr)
            upgrades = sum(stderr.count(f"Running upgrade  -> {HEAD}") for _, stderr in outputs)
            self.assertEqual(upgrades, 1, "exactly one process must run the migration")
            race = Database(url=self.race_url())
            self.addCleanup(race.dispose)
            with race.session() as session:
                versions = session.execute(text("SELECT version_num FROM alembic_version")).all()
            self.assertEqual([row[0] for row in versions], [HEAD])
            self.assertIn(TABLE, table_names(self.race_url()))

        def race_url(self) -> URL:
            """The fresh database the three migrating processes share."""
            return self.url

        def test_a_held_migration_lock_makes_migrate_wait(self) -> None:
            with self.hold_migration_lock(), tempfile.TemporaryDirectory() as barrier:
                (child,) = start_migrate_children(self.url, 1, Path(barrier))
                self.addCleanup(stop_child, child)
                reader = LineReader(child)
                if not reader.wait_for("waiting for", timeout=30):
                    self.fail(f"migrate() did not wait for the lock: {reader.text()}")
                time.sleep(0.2)
                self.assertIsNone(child.poll())
                self.assertNotIn(TABLE, table_names(self.url))
            self.assertEqual(child.wait(timeout=60), 0, reader.text())
            self.assertEqual(self.manager.current_revision(), HEAD)

        def hold_migration_lock(self) -> AbstractContextManager[None]:
            """Hold the backend's migration lock from this process."""
            raise NotImplementedError


class SqliteMigrationTest(SqliteBackend, Behaviours.MigrationCase):
    """Migrations of an SQLite file, serialized by a lock file."""


class PostgresMigrationTest(PostgresBackend, Behaviours.MigrationCase):
    """Migrations of a fresh PostgreSQL database, serialized by an advisory lock."""

    race_database: ClassVar[URL]

    @classmethod
    def database_url(cls) -> URL:
        cls.race_database = fresh_postgres_url(cls)
        return super().database_url()

    def race_url(self) -> URL:
        return self.race_database


if __name__ == "__main__":
    unittest.main()
