"""Alembic migrations, serialized across processes.

Replicas starting together each call `Database.migrate()`; they take turns on a lock (a
PostgreSQL advisory lock, or a lock file beside an SQLite database), and the ones that
waited find the schema at head and do nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final, Literal

from alembic.command import downgrade as alembic_downgrade
from alembic.command import upgrade as alembic_upgrade
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from core.db.errors import one_line_reason
from core.db.heads import ALEMBIC_INI
from core.db.urls import DatabaseSettings, is_memory_sqlite, is_sqlite, shown_url, url_secrets

logger = logging.getLogger(__name__)

# The key of the PostgreSQL advisory lock that serializes migrations. Any fixed 64-bit value
# works; this one spells "PySvcMig" in ASCII so it is recognisable in pg_locks.
MIGRATION_LOCK_KEY: Final = 0x5079_5376_634D_6967


def alembic_config(ini: Path = ALEMBIC_INI) -> Config:
    """The project's Alembic configuration, set up for in-process use.

    It leaves the process's logging alone (``configure_logger`` is False), which
    ``alembic/env.py`` honours.
    """
    config = Config(str(ini))
    config.attributes["configure_logger"] = False
    return config


def head_revision(config: Config) -> str | None:
    """The newest migration revision in ``alembic/versions``."""
    return ScriptDirectory.from_config(config).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None before the first migration)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def run_migrations(
    engine: Engine,
    settings: DatabaseSettings,
    config: Config,
    direction: Literal["upgrade", "downgrade"],
    revision: str,
) -> None:
    """Upgrade or downgrade to ``revision`` while holding the migration lock."""
    # The transaction commits before the lock is released (with-items exit in reverse),
    # so a process that gets the lock next always sees the finished schema.
    with migration_lock(settings), engine.begin() as connection:
        config.attributes["connection"] = connection
        if direction == "upgrade":
            alembic_upgrade(config, revision)
        else:
            alembic_downgrade(config, revision)
    logger.info(
        "database: %s to %s done; %s is at revision %s",
        direction,
        revision,
        shown_url(settings.url),
        current_revision(engine),
    )


def sqlite_migration_lock_path(url: URL) -> Path | None:
    """The lock file that serializes migrations of an SQLite file: ``<database>.migrate.lock``.

    None for other backends and for in-memory SQLite databases.
    """
    if not is_sqlite(url) or is_memory_sqlite(url):
        return None
    database_path = Path(str(url.database)).resolve()
    return database_path.with_name(database_path.name + ".migrate.lock")


@contextmanager
def migration_lock(settings: DatabaseSettings) -> Iterator[None]:
    """Hold the lock that serializes migrations of this database across processes."""
    url = settings.url
    if url.get_backend_name() == "postgresql":
        with postgres_migration_lock(settings):
            yield
        return
    lock_path = sqlite_migration_lock_path(url)
    if lock_path is None:
        # Another backend, or an in-memory SQLite database (one process): nothing to lock.
        yield
        return
    with file_lock(lock_path):
        yield


@contextmanager
def postgres_migration_lock(settings: DatabaseSettings) -> Iterator[None]:
    """Hold ``pg_advisory_lock(MIGRATION_LOCK_KEY)`` on a dedicated connection.

    The connection comes from its own unpooled engine, so a small pool can never deadlock
    between the lock and the migration, and the lock dies with the connection if the
    process does.
    """
    lock_engine = create_engine(
        settings.url,
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": settings.connect_timeout}
        if "connect_timeout" not in settings.url.query
        else {},
    )
    key = {"key": MIGRATION_LOCK_KEY}
    try:
        with lock_engine.connect() as connection:
            acquired = connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), key
            ).scalar_one()
            if not acquired:
                logger.info("database: another process is migrating; waiting for the lock")
                connection.execute(text("SELECT pg_advisory_lock(:key)"), key)
            logger.debug("database: migration lock acquired")
            try:
                yield
            finally:
                try:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)
                except SQLAlchemyError as error:
                    # Closing the connection releases the lock anyway.
                    logger.warning(
                        "database: could not release the migration lock (%s); it ends "
                        "with its connection",
                        one_line_reason(error, *url_secrets(settings.url)),
                    )
    finally:
        lock_engine.dispose()


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created if missing) for the duration of the block.

    A separate file, never the database itself: closing any descriptor of the database file
    would drop SQLite's own POSIX locks in this process.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: SQLite replicas on such a system are not supported
        logger.warning("database: no fcntl on this platform; migrations are not serialized")
        yield
        return
    with path.open("a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("database: another process is migrating; waiting for %s", path)
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
