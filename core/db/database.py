"""The database component: one SQLAlchemy engine per process, sessions, and Alembic migrations.

Usage (the service calls the first two lines at start-up, before it connects to the hub)::

    from core.db.database import database

    database.initialize()   # read the settings, build the engine, check the connection
    database.migrate()      # Alembic upgrade to head, serialized across replicas
    with database.transaction() as session:
        session.add(model_instance)   # committed on success, rolled back on error

Configuration comes from the environment and is read when `Database.initialize()` runs,
never at import time:

* ``DATABASE_URL`` overrides everything (any SQLAlchemy URL; ``postgres://`` is accepted).
* Otherwise PostgreSQL from ``POSTGRES_HOST``, ``POSTGRES_PORT`` (default 5432),
  ``POSTGRES_USER``, ``POSTGRES_PASSWORD`` (optional: trust auth, ``PGPASSWORD`` or a
  ``.pgpass`` file also work) and the database named by ``POSTGRES_DB_DEVELOPMENT``,
  ``POSTGRES_DB_TEST`` or ``POSTGRES_DB_PRODUCTION`` according to ``ENVIRONMENT``
  (``development``, ``test`` or ``production``; default ``test``).
* With none of those set and ``ENVIRONMENT`` not ``production``: the embedded SQLite file
  ``py_service_<environment>.sqlite3`` in the current directory, named in the start-up log.
* In production, or whenever PostgreSQL is only partly configured, a missing setting is a
  `DatabaseConfigError`; there is never a silent fallback to SQLite.

Pool settings: ``DB_POOL_SIZE`` (default 10), ``DB_MAX_OVERFLOW`` (default 10) and
``DB_CONNECT_TIMEOUT`` (seconds, default 10, PostgreSQL only).

Passwords never appear in a log line or an error message: URLs are always rendered with the
password hidden (see `redact_url`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, Final, ParamSpec, TypeVar

from alembic.command import downgrade as alembic_downgrade
from alembic.command import upgrade as alembic_upgrade
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Engine, MetaData, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import NullPool, StaticPool

from core.settings import PROJECT_ROOT, SettingsError, integer_setting

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

ENVIRONMENTS: Final = ("development", "test", "production")
DEFAULT_ENVIRONMENT: Final = "test"
DEFAULT_POSTGRES_PORT: Final = 5432
DEFAULT_POOL_SIZE: Final = 10
DEFAULT_MAX_OVERFLOW: Final = 10
DEFAULT_CONNECT_TIMEOUT: Final = 10
POSTGRES_DRIVER: Final = "postgresql+psycopg2"

# The key of the PostgreSQL advisory lock that serializes migrations. Any fixed 64-bit value
# works; this one spells "PySvcMig" in ASCII so it is recognisable in pg_locks.
MIGRATION_LOCK_KEY: Final = 0x5079_5376_634D_6967

ALEMBIC_INI: Final = PROJECT_ROOT / "alembic.ini"

_POSTGRES_CONNECTION_VARIABLES: Final = (
    "POSTGRES_HOST",
    "POSTGRES_PORT",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
)


class DatabaseStartupError(RuntimeError):
    """The database could not be set up; the message is one line, safe to log and show."""


class DatabaseConfigError(DatabaseStartupError):
    """The database settings are missing or invalid."""


class DatabaseUnavailableError(DatabaseStartupError):
    """The configured database could not be reached."""


class Base(DeclarativeBase):
    """The declarative base of every model (also `database.base` and `base`).

    Constraint names follow a fixed convention, so migrations name them the same way on
    PostgreSQL and SQLite.
    """

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


# The seed README calls the declarative base `base`; keep that name importable.
base = Base


def redact_url(url: URL | str) -> str:
    """Render a database URL with its password hidden (``***``), for logs and messages."""
    if isinstance(url, str):
        try:
            url = make_url(url)
        except ArgumentError:
            return "<unparseable database URL>"
    return url.render_as_string(hide_password=True)


def default_sqlite_path(environment: str) -> Path:
    """Where the embedded SQLite database lives: ``py_service_<environment>.sqlite3`` in cwd."""
    return Path.cwd() / f"py_service_{environment}.sqlite3"


def _read_environment(environ: Mapping[str, str]) -> str:
    value = environ.get("ENVIRONMENT", "").strip().lower() or DEFAULT_ENVIRONMENT
    if value not in ENVIRONMENTS:
        raise DatabaseConfigError(
            f"ENVIRONMENT must be one of {', '.join(ENVIRONMENTS)}, not {value!r}"
        )
    return value


def _read_int(environ: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    try:
        return integer_setting(environ, name, default, minimum)
    except SettingsError as error:
        raise DatabaseConfigError(str(error)) from None


def _parse_url(raw: str, origin: str) -> URL:
    """Parse a URL string without ever echoing it (it may hold a password)."""
    if raw.startswith("postgres://"):
        # The scheme Heroku-style providers hand out; SQLAlchemy only knows "postgresql".
        raw = "postgresql://" + raw[len("postgres://") :]
    try:
        url = make_url(raw)
    except ArgumentError:
        raise DatabaseConfigError(f"{origin} is not a valid database URL") from None
    if url.drivername == "postgresql":
        url = url.set(drivername=POSTGRES_DRIVER)
    return url


def _postgres_url(environ: Mapping[str, str], environment: str) -> URL | None:
    """The PostgreSQL URL from ``POSTGRES_*``, or None when none of them is set."""
    database_variable = f"POSTGRES_DB_{environment.upper()}"
    present = [
        name
        for name in (*_POSTGRES_CONNECTION_VARIABLES, database_variable)
        if environ.get(name, "").strip()
    ]
    if not present and environment != "production":
        return None
    missing = [
        name
        for name in ("POSTGRES_HOST", "POSTGRES_USER", database_variable)
        if not environ.get(name, "").strip()
    ]
    if missing:
        reason = (
            "ENVIRONMENT=production needs PostgreSQL"
            if environment == "production" and not present
            else "PostgreSQL is partly configured"
        )
        raise DatabaseConfigError(
            f"{reason}: set DATABASE_URL or the missing variables {', '.join(missing)}"
        )
    port = _read_int(environ, "POSTGRES_PORT", DEFAULT_POSTGRES_PORT, 1)
    if port > 65535:
        raise DatabaseConfigError(f"POSTGRES_PORT must be a TCP port, not {port}")
    return URL.create(
        POSTGRES_DRIVER,
        username=environ["POSTGRES_USER"].strip(),
        password=environ.get("POSTGRES_PASSWORD") or None,
        host=environ["POSTGRES_HOST"].strip(),
        port=port,
        database=environ[database_variable].strip(),
    )


@dataclass(frozen=True)
class DatabaseSettings:
    """Everything `Database.initialize()` reads from the environment.

    ``source`` says where the URL came from: ``"explicit"``, ``"DATABASE_URL"``,
    ``"POSTGRES_*"`` or ``"embedded SQLite"``.
    """

    url: URL
    source: str
    environment: str
    pool_size: int
    max_overflow: int
    connect_timeout: int

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, url: URL | str | None = None
    ) -> DatabaseSettings:
        """Resolve the settings; ``url`` (when given) wins over every variable."""
        env = os.environ if environ is None else environ
        environment = _read_environment(env)
        resolved: URL | None
        if url is not None:
            resolved = url if isinstance(url, URL) else _parse_url(url, "the database URL")
            source = "explicit"
        elif env.get("DATABASE_URL", "").strip():
            resolved = _parse_url(env["DATABASE_URL"].strip(), "DATABASE_URL")
            source = "DATABASE_URL"
        else:
            resolved = _postgres_url(env, environment)
            source = "POSTGRES_*"
            if resolved is None:
                path = default_sqlite_path(environment)
                resolved = URL.create("sqlite+pysqlite", database=str(path))
                source = "embedded SQLite"
        return cls(
            url=resolved,
            source=source,
            environment=environment,
            pool_size=_read_int(env, "DB_POOL_SIZE", DEFAULT_POOL_SIZE, 1),
            max_overflow=_read_int(env, "DB_MAX_OVERFLOW", DEFAULT_MAX_OVERFLOW, 0),
            connect_timeout=_read_int(env, "DB_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT, 1),
        )


def resolve_database_url(environ: Mapping[str, str] | None = None) -> URL:
    """The database URL the environment selects (the rules in this module's docstring).

    Shared with ``alembic/env.py`` so the CLI and the service always agree.
    """
    return DatabaseSettings.from_environment(environ).url


def _is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def _is_memory_sqlite(url: URL) -> bool:
    database_name = url.database or ""
    return (
        database_name in ("", ":memory:")
        or "mode=memory" in database_name
        or (url.query.get("mode") == "memory")
    )


def sqlite_migration_lock_path(url: URL) -> Path | None:
    """The lock file that serializes migrations of an SQLite file: ``<database>.migrate.lock``.

    None for other backends and for in-memory SQLite databases.
    """
    if not _is_sqlite(url) or _is_memory_sqlite(url):
        return None
    database_path = Path(str(url.database)).resolve()
    return database_path.with_name(database_path.name + ".migrate.lock")


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _one_line_reason(error: BaseException, password: str | None) -> str:
    """The first line of a driver error, with the password scrubbed should it appear."""
    original = getattr(error, "orig", None) or error
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    reason = lines[0] if lines else type(original).__name__
    if password:
        reason = reason.replace(password, "***")
    return reason


def _build_engine(settings: DatabaseSettings) -> Engine:
    url = settings.url
    options: dict[str, Any] = {"pool_pre_ping": True}
    connect_args: dict[str, Any] = {}
    if _is_sqlite(url):
        # Sessions are used from worker threads, one at a time per connection.
        connect_args["check_same_thread"] = False
        if _is_memory_sqlite(url):
            # One shared connection, or every thread would see its own empty database.
            options["poolclass"] = StaticPool
        else:
            options["pool_size"] = settings.pool_size
            options["max_overflow"] = settings.max_overflow
    else:
        options["pool_size"] = settings.pool_size
        options["max_overflow"] = settings.max_overflow
        if url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
            connect_args["connect_timeout"] = settings.connect_timeout
    try:
        engine = create_engine(url, connect_args=connect_args, **options)
    except (ArgumentError, ImportError) as error:
        raise DatabaseConfigError(
            f"cannot use the database URL {redact_url(url)}: "
            f"{_one_line_reason(error, url.password)}"
        ) from None
    if _is_sqlite(url):
        event.listen(engine, "connect", _enable_sqlite_foreign_keys)
    return engine


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
            return redact_url(self._settings.url)
        return redact_url(DatabaseSettings.from_environment(url=self._explicit_url).url)

    @property
    def backend(self) -> str:
        """The backend name: ``"postgresql"`` or ``"sqlite"`` (initializing if needed)."""
        return self.settings.url.get_backend_name()

    # -- lifecycle ---------------------------------------------------------------------

    def initialize(self, url: URL | str | None = None) -> None:
        """Read the settings, build the engine and check that the database answers.

        Idempotent: a second call is a no-op. ``url`` points this manager at an explicit URL
        (tests); passing a different URL once initialized is an error (call `dispose()`
        first). Raises `DatabaseConfigError` or `DatabaseUnavailableError`, both one line.
        """
        with self._lock:
            if url is not None:
                requested = url if isinstance(url, URL) else _parse_url(url, "the database URL")
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
            settings = DatabaseSettings.from_environment(url=self._explicit_url)
            engine = _build_engine(settings)
            self._check_connection(engine, settings)
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
                    redact_url(settings.url),
                    settings.source,
                    settings.environment,
                    settings.pool_size,
                    settings.max_overflow,
                )

    @staticmethod
    def _check_connection(engine: Engine, settings: DatabaseSettings) -> None:
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except (DBAPIError, OSError) as error:
            engine.dispose()
            reason = _one_line_reason(error, settings.url.password)
            raise DatabaseUnavailableError(
                f"cannot connect to the database at {redact_url(settings.url)}: {reason}"
            ) from None

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
        """The project's Alembic configuration, set up for in-process use.

        It leaves the process's logging alone (``configure_logger`` is False), which
        ``alembic/env.py`` honours.
        """
        config = Config(str(self._alembic_ini))
        config.attributes["configure_logger"] = False
        return config

    def head_revision(self) -> str | None:
        """The newest migration revision in ``alembic/versions``."""
        return ScriptDirectory.from_config(self.alembic_config()).get_current_head()

    def current_revision(self) -> str | None:
        """The revision the database is at (None before the first migration)."""
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def migrate(self, revision: str = "head") -> None:
        """Upgrade the schema to ``revision`` (Alembic ``upgrade``), safely from many processes.

        Replicas starting together serialize on a lock (a PostgreSQL advisory lock, or a
        lock file beside an SQLite database); the ones that wait then find the schema at
        head and do nothing. Initializes the database on first use.
        """
        self._run_alembic("upgrade", revision)

    def downgrade(self, revision: str = "base") -> None:
        """Downgrade the schema to ``revision`` (default: remove every migration)."""
        self._run_alembic("downgrade", revision)

    def _run_alembic(self, direction: str, revision: str) -> None:
        engine = self.engine
        config = self.alembic_config()
        # The transaction commits before the lock is released (with-items exit in reverse),
        # so a process that gets the lock next always sees the finished schema.
        with self._migration_lock(), engine.begin() as connection:
            config.attributes["connection"] = connection
            if direction == "upgrade":
                alembic_upgrade(config, revision)
            else:
                alembic_downgrade(config, revision)
        logger.info(
            "database: %s to %s done; %s is at revision %s",
            direction,
            revision,
            self.url,
            self.current_revision(),
        )

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        url = self.settings.url
        if url.get_backend_name() == "postgresql":
            with self._postgres_migration_lock():
                yield
            return
        lock_path = sqlite_migration_lock_path(url)
        if lock_path is None:
            # Another backend, or an in-memory SQLite database (one process): nothing to lock.
            yield
            return
        with _file_lock(lock_path):
            yield

    @contextmanager
    def _postgres_migration_lock(self) -> Iterator[None]:
        """Hold ``pg_advisory_lock(MIGRATION_LOCK_KEY)`` on a dedicated connection.

        The connection comes from its own unpooled engine, so a small pool can never
        deadlock between the lock and the migration, and the lock dies with the connection
        if the process does.
        """
        settings = self.settings
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
                            _one_line_reason(error, settings.url.password),
                        )
        finally:
            lock_engine.dispose()

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


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
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


database: Final = Database()
"""The process's database manager."""


async def run_sync(
    function: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """Await ``function(session, *args, **kwargs)`` in a transaction on a worker thread.

    Shorthand for ``await database.run(function, ...)``, for async actions.
    """
    return await database.run(function, *args, **kwargs)
