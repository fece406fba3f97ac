"""Tests of core/db/database.py: the manager's lifecycle, sessions and transactions.

The shared tests run on an SQLite file and on a fresh PostgreSQL database (see
``tests/databases.py`` for where PostgreSQL comes from).
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import threading
import time
import unittest
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from core.database import Base, Database, DatabaseConfigError, base, database, run_sync
from core.settings import DatabaseConfig
from tests.databases import (
    BackendCase,
    PostgresBackend,
    SqliteBackend,
    isolate_environment,
    table_names,
)
from tests.fixtures.db.models import Item


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

    def test_settings_handed_over_are_used_instead_of_the_environment(self) -> None:
        os.environ["DATABASE_URL"] = f"sqlite:///{self.folder}/from-environment.sqlite3"
        config = DatabaseConfig(url=f"sqlite:///{self.folder}/handed-over.sqlite3", pool_size=2)
        manager = Database()
        self.addCleanup(manager.dispose)
        manager.initialize(config=config)
        self.assertEqual(manager.settings.url.database, f"{self.folder}/handed-over.sqlite3")
        self.assertEqual(manager.settings.source, "DATABASE_URL")
        self.assertEqual(manager.engine.pool.size(), 2)  # type: ignore[attr-defined]  # QueuePool

    def test_url_and_repr_hide_the_password(self) -> None:
        manager = Database(url="postgresql+psycopg2://service:s3cret@db.internal:5432/app")
        self.assertEqual(manager.url, "postgresql+psycopg2://service:***@db.internal:5432/app")
        self.assertNotIn("s3cret", repr(manager))

    def test_base_is_shared(self) -> None:
        self.assertIs(database.base, Base)
        self.assertIs(base, Base)
        self.assertIn(Item.__tablename__, Base.metadata.tables)


# -- behaviour on a real database: SQLite and PostgreSQL ------------------------------------


class Behaviours:
    """Holds the shared test case, so unittest does not collect it on its own."""

    class SessionCase(BackendCase):
        """Sessions and transactions, the same on every backend."""

        def setUp(self) -> None:
            super().setUp()
            self.manager.migrate()

        def count_items(self) -> int:
            with self.manager.session() as session:
                return session.scalar(select(func.count()).select_from(Item)) or 0

        def test_teardown_drops_every_table(self) -> None:
            with self.manager.transaction() as session:
                session.execute(text("CREATE TABLE stray (id INTEGER PRIMARY KEY)"))
            self.manager.teardown()
            self.assertEqual(table_names(self.url) - {"sqlite_sequence"}, set())

        def test_transaction_commits_on_success(self) -> None:
            with self.manager.transaction() as session:
                session.add(Item(title="kept", body=""))
            self.assertEqual(self.count_items(), 1)

        def test_transaction_rolls_back_and_reraises_on_error(self) -> None:
            with self.assertRaises(RuntimeError), self.manager.transaction() as session:
                session.add(Item(title="lost", body=""))
                session.flush()  # the row reached the database before the error
                raise RuntimeError("boom")
            self.assertEqual(self.count_items(), 0)

        def test_session_commits_only_when_asked(self) -> None:
            with self.manager.session() as session:
                session.add(Item(title="uncommitted", body=""))
                session.flush()
            self.assertEqual(self.count_items(), 0)
            with self.manager.session() as session:
                session.add(Item(title="committed", body=""))
                session.commit()
            self.assertEqual(self.count_items(), 1)

        def test_run_works_in_a_thread_without_blocking_the_loop(self) -> None:
            loop_thread = threading.get_ident()

            def add_slowly(session: Any, title: str) -> tuple[int, int]:
                time.sleep(0.3)
                item = Item(title=title, body="")
                session.add(item)
                session.flush()
                return item.id, threading.get_ident()

            def fail(session: Any) -> None:
                session.add(Item(title="rolled back", body=""))
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

            (item_id, worker_thread), ticks = asyncio.run(scenario())
            self.assertNotEqual(worker_thread, loop_thread)
            self.assertGreaterEqual(ticks, 10)  # the loop kept running while the thread slept
            self.assertEqual(self.count_items(), 1)
            with self.manager.session() as session:
                item = session.get(Item, item_id)
                self.assertIsNotNone(item)
                self.assertEqual(item.title if item else None, "threaded")


class SqliteSessionTest(SqliteBackend, Behaviours.SessionCase):
    """Sessions on an SQLite file."""


class PostgresSessionTest(PostgresBackend, Behaviours.SessionCase):
    """Sessions on a fresh PostgreSQL database."""

    def test_module_level_run_sync_uses_the_shared_manager(self) -> None:
        database.dispose()
        self.addCleanup(database.dispose)
        database.initialize(url=self.url)

        def count(session: Any) -> int:
            return session.scalar(select(func.count()).select_from(Item)) or 0

        self.assertEqual(asyncio.run(run_sync(count)), 0)


if __name__ == "__main__":
    unittest.main()
