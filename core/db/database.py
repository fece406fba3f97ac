"""The database manager: one SQLAlchemy engine per process, sessions and transactions.

Usage (the service calls the first two lines at start-up, before it connects to the hub)::

    from core.database import database

    database.initialize()   # read the settings, build the engine, check the connection
    database.migrate()      # Alembic upgrade to head, serialized across replicas
    with database.transaction() as session:
        session.add(model_instance)   # committed on success, rolled back on error

The settings are the database variables of `core.settings` (``DATABASE_URL``,
``POSTGRES_*``, ``ENVIRONMENT``, ``DB_POOL_SIZE``...; `core.db.urls` says which database
they select). The service hands over the ones it read at start-up; otherwise they are read
from the environment when `Database.initialize()` runs, never at import time. A bad
setting is a `DatabaseConfigError`, an unreachable database a `DatabaseUnavailableError`,
both one line. Passwords never appear in a log line or an error message.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Concatenate, Final, ParamSpec, TypeVar

from sqlalchemy import URL, Engine, MetaData
from sqlalchemy.orm import Session, sessionmaker

from core.db import heads
from core.db.base import Base
from core.db.engine import build_engine, check_connection
from core.db.errors import DatabaseConfigError
from core.db.heads import ALEMBIC_INI
from core.db.urls import DatabaseSettings, parse_database_url, shown_url
from core.settings import DatabaseConfig

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported only to migrate (core.db.migrations): an action that only reads and
# writes rows never loads it.

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


class Database:
    """The process's database manager: engine, session factory, migrations.

    Build one per process (the module-level `database`); tests may build their own with an
    explicit URL, ``Database(url=...)``, or call ``database.initialize(url=...)``.

    `session()`, `transaction()`, `run()`, `migrate()` and the other methods that need the
    engine initialize it on first use, so an action works even if nobody called
    `initialize()`; the service still calls it at start-up so a bad configuration or an
    unreachable database stops it before it accepts requests.
    """

    base: type[Base] = Base

    def __init__(self, url: URL | str | None = None, alembic_ini: Path | str | None = None) -> None:
        self._constructor_url = url
        self._explicit_url = url
        self._alembic_ini = Path(alembic_ini) if alembic_ini is not None else ALEMBIC_INI
        self._lock = threading.RLock()
        self._settings: DatabaseSettings | None = None
        self._engine: Engine | None = None
        self._session_factory: sessionmaker[Session] | None = None

    # -- state -------------------------------------------------------------------------

    @property
    def is_initialized(self) -> bool:
        """Whether `initialize()` has built the engine."""
        return self._engine is not None

    @property
    def settings(self) -> DatabaseSettings:
        """The settings in use (initializing first if needed)."""
        if self._settings is not None:
            return self._settings
        self.initialize()
        assert self._settings is not None  # set by initialize()
        return self._settings

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (initializing first if needed)."""
        if self._engine is not None:
            return self._engine
        self.initialize()
        assert self._engine is not None  # set by initialize()
        return self._engine

    @property
    def url(self) -> str:
        """The database URL with the password hidden, safe for logs.

        Before `initialize()` this is the URL the current settings select (it does not
        connect, and raises `DatabaseConfigError` when the settings are invalid).
        """
        if self._settings is not None:
            return shown_url(self._settings.url)
        return shown_url(DatabaseSettings.from_environment(url=self._explicit_url).url)

    @property
    def backend(self) -> str:
        """The backend name: ``"postgresql"`` or ``"sqlite"`` (initializing if needed)."""
        return self.settings.url.get_backend_name()

    # -- lifecycle ---------------------------------------------------------------------

    def initialize(
        self, url: URL | str | None = None, *, config: DatabaseConfig | None = None
    ) -> None:
        """Read the settings, build the engine and check that the database answers.

        Idempotent: a second call is a no-op. ``url`` points this manager at an explicit URL
        (tests); passing a different URL once initialized is an error (call `dispose()`
        first). ``config`` is the database settings already read (the service passes
        ``Settings.database``); without it they are read from the environment now. Raises
        `DatabaseConfigError` or `DatabaseUnavailableError`, both one line.
        """
        with self._lock:
            if url is not None:
                requested = (
                    url if isinstance(url, URL) else parse_database_url(url, "the database URL")
                )
                if self._settings is not None:
                    if requested != self._settings.url:
                        raise DatabaseConfigError(
                            f"the database is already initialized with {self.url}; "
                            "call dispose() before initialize(url=...)"
                        )
                    return
                self._explicit_url = requested
            if self._engine is not None:
                return
            if config is None:
                settings = DatabaseSettings.from_environment(url=self._explicit_url)
            else:
                settings = DatabaseSettings.from_config(config, self._explicit_url)
            engine = build_engine(settings)
            check_connection(engine, settings)
            self._settings = settings
            self._engine = engine
            self._session_factory = sessionmaker(bind=engine, expire_on_commit=False)
            if settings.source == "embedded SQLite":
                logger.info(
                    "database: using the embedded SQLite file %s (ENVIRONMENT=%s; set "
                    "DATABASE_URL or POSTGRES_* to use PostgreSQL)",
                    settings.url.database,
                    settings.environment,
                )
            else:
                logger.info(
                    "database: connected to %s (from %s, ENVIRONMENT=%s, pool %d+%d)",
                    shown_url(settings.url),
                    settings.source,
                    settings.environment,
                    settings.pool_size,
                    settings.max_overflow,
                )

    def dispose(self) -> None:
        """Close every pooled connection and forget the engine and settings.

        The next use initializes again, re-reading the environment (and keeping an explicit
        URL given to the constructor, but not one given to `initialize()`).
        """
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
            self._engine = None
            self._session_factory = None
            self._settings = None
            self._explicit_url = self._constructor_url

    def __repr__(self) -> str:
        state = self.url if self._settings is not None else "not initialized"
        return f"<Database {state}>"

    # -- sessions ----------------------------------------------------------------------

    def _factory(self) -> sessionmaker[Session]:
        if self._session_factory is not None:
            return self._session_factory
        self.initialize()
        assert self._session_factory is not None  # set by initialize()
        return self._session_factory

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A plain session, closed on exit; commit yourself (anything uncommitted is rolled back).

        Initializes the database on first use.
        """
        with self._factory()() as session:
            yield session

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session inside a transaction: committed on success, rolled back on error.

        The error is re-raised after the rollback. Objects stay readable after the commit
        (``expire_on_commit=False``). Initializes the database on first use.
        """
        with self._factory()() as session, session.begin():
            yield session

    def call_in_transaction(
        self, function: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Call ``function(session, *args, **kwargs)`` inside `transaction()`; return its result."""
        with self.transaction() as session:
            return function(session, *args, **kwargs)

    async def run(
        self, function: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Await ``function(session, *args, **kwargs)`` run in a transaction in a worker thread.

        For async actions: the blocking database work happens in ``asyncio.to_thread``, so
        the event loop keeps serving other requests meanwhile.
        """

        def work() -> T:
            return self.call_in_transaction(function, *args, **kwargs)

        return await asyncio.to_thread(work)

    # -- migrations --------------------------------------------------------------------

    def alembic_config(self) -> Config:
        """The project's Alembic configuration, set up for in-process use (see
        `core.db.migrations.alembic_config`)."""
        from core.db import migrations

        return migrations.alembic_config(self._alembic_ini)

    def head_revision(self) -> str | None:
        """The newest migration revision in ``alembic/versions``."""
        from core.db import migrations

        return migrations.head_revision(self.alembic_config())

    def current_revision(self) -> str | None:
        """The revision the database is at (None before the first migration)."""
        from core.db import migrations

        return migrations.current_revision(self.engine)

    def migrate(self, revision: str = "head") -> None:
        """Upgrade the schema to ``revision`` (Alembic ``upgrade``), safely from many processes.

        Replicas starting together serialize on a lock (a PostgreSQL advisory lock, or a
        lock file beside an SQLite database); the ones that wait then find the schema at
        head and do nothing. Initializes the database on first use. A database already at
        the single head is recognised without loading Alembic (`core.db.heads`).
        """
        engine = self.engine
        if revision == "head" and heads.at_head(engine, self._alembic_ini):
            logger.info("database: %s is at the newest revision; nothing to migrate", self.url)
            return
        from core.db import migrations

        migrations.run_migrations(engine, self.settings, self.alembic_config(), "upgrade", revision)

    def downgrade(self, revision: str = "base") -> None:
        """Downgrade the schema to ``revision`` (default: remove every migration)."""
        engine = self.engine
        from core.db import migrations

        migrations.run_migrations(
            engine, self.settings, self.alembic_config(), "downgrade", revision
        )

    # -- tests -------------------------------------------------------------------------

    def teardown(self, *, allow_production: bool = False) -> None:
        """Drop every table in the database, ``alembic_version`` included (for tests).

        Refuses when ``ENVIRONMENT=production`` unless ``allow_production=True``.
        """
        settings = self.settings
        if settings.environment == "production" and not allow_production:
            raise DatabaseConfigError(
                "teardown() drops every table; refusing with ENVIRONMENT=production"
            )
        with self.engine.begin() as connection:
            metadata = MetaData()
            metadata.reflect(bind=connection)
            metadata.drop_all(bind=connection)
        logger.info("database: dropped every table in %s", self.url)


database: Final = Database()
"""The process's database manager."""


async def run_sync(
    function: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """Await ``function(session, *args, **kwargs)`` in a transaction on a worker thread.

    Shorthand for ``await database.run(function, ...)``, for async actions.
    """
    return await database.run(function, *args, **kwargs)
