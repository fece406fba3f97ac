"""The SQLAlchemy engine: pool options per backend, SQLite pragmas, the start-up check."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import StaticPool

from core.db.errors import DatabaseConfigError, DatabaseUnavailableError, one_line_reason
from core.db.urls import DatabaseSettings, is_memory_sqlite, is_sqlite, shown_url, url_secrets


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def build_engine(settings: DatabaseSettings) -> Engine:
    """An engine for `settings` (no connection yet); `DatabaseConfigError` if it cannot be."""
    url = settings.url
    options: dict[str, Any] = {"pool_pre_ping": True}
    connect_args: dict[str, Any] = {}
    if is_sqlite(url):
        # Sessions are used from worker threads, one at a time per connection.
        connect_args["check_same_thread"] = False
        if is_memory_sqlite(url):
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
            f"cannot use the database URL {shown_url(url)} (from {settings.source}): "
            f"{one_line_reason(error, *url_secrets(url))}"
        ) from None
    if is_sqlite(url):
        event.listen(engine, "connect", _enable_sqlite_foreign_keys)
    return engine


def check_connection(engine: Engine, settings: DatabaseSettings) -> None:
    """``SELECT 1``; disposes of the engine and raises `DatabaseUnavailableError` if it fails."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except (DBAPIError, OSError) as error:
        engine.dispose()
        reason = one_line_reason(error, *url_secrets(settings.url))
        raise DatabaseUnavailableError(
            f"cannot connect to the database at {shown_url(settings.url)}: {reason}"
        ) from None
