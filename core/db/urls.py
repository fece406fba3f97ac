"""Which database: SQLAlchemy URLs built from the settings, and shown without passwords.

The variables are read and checked by `core.settings.DatabaseConfig`; here they become a
URL, by these rules:

* ``DATABASE_URL`` overrides everything (any SQLAlchemy URL; ``postgres://`` is accepted).
  An ``@`` in its password may be written as it is or as ``%40``; one after the host (in
  the database name or a parameter) must be ``%40`` when the URL has a password, or there
  would be no telling where the password ends.
* Otherwise PostgreSQL from ``POSTGRES_HOST``, ``POSTGRES_PORT`` (default 5432),
  ``POSTGRES_USER``, ``POSTGRES_PASSWORD`` (optional: trust auth, ``PGPASSWORD`` or a
  ``.pgpass`` file also work) and the database named by ``POSTGRES_DB_DEVELOPMENT``,
  ``POSTGRES_DB_TEST`` or ``POSTGRES_DB_PRODUCTION`` according to ``ENVIRONMENT``.
* With none of those set and ``ENVIRONMENT`` not ``production``: the embedded SQLite file
  ``py_service_<environment>.sqlite3`` in the current directory.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import unquote

from sqlalchemy import URL, make_url
from sqlalchemy.exc import ArgumentError

from core.db.errors import DatabaseConfigError, one_line_reason
from core.redaction import redact_url
from core.settings import DATABASE_URL_FORM, DatabaseConfig, SettingsError, shown_value

POSTGRES_DRIVER: Final = "postgresql+psycopg2"
DEFAULT_POSTGRES_PORT: Final = 5432


def shown_url(url: URL) -> str:
    """The URL as logs and messages may show it: no password, no secret query parameter."""
    # str() of a URL already hides its password; redact_url also hides ?password=...
    return redact_url(str(url))


def parse_database_url(raw: str, origin: str) -> URL:
    """Parse a URL string without ever echoing it (it may hold a password).

    ``origin`` names where it came from in the error (``"DATABASE_URL"``...).
    """
    if raw.startswith("postgres://"):
        # The scheme Heroku-style providers hand out; SQLAlchemy only knows "postgresql".
        raw = "postgresql://" + raw[len("postgres://") :]
    try:
        url = _parse_with_whole_password(raw)
    except (ArgumentError, ValueError) as error:  # ValueError: a port that is not a number
        reason = f" ({error})" if isinstance(error, _AmbiguousPasswordError) else ""
        raise DatabaseConfigError(
            f"{origin} must be {DATABASE_URL_FORM}; got {shown_value('DATABASE_URL', raw)}{reason}"
        ) from None
    if url.drivername == "postgresql":
        url = url.set(drivername=POSTGRES_DRIVER)
    return url


class _AmbiguousPasswordError(ValueError):
    """A URL with a password and an "@" after its host."""


# What SQLAlchemy reads as "scheme://user:password@": the password runs to the first "@".
_USER_AND_PASSWORD = re.compile(r"[\w+]+://[^:/]*:(?P<password>[^@]*)@")
# Where a URL's host and port end (SQLAlchemy's host and port hold neither "/" nor "?").
_HOST_END = re.compile(r"[/?]")


def _parse_with_whole_password(raw: str) -> URL:
    """`raw` parsed, with the password its writer meant when it holds an "@" as it is.

    SQLAlchemy ends the password at its first "@", so in ``user:p@ss@host`` the password
    would be ``p`` and the host ``ss@host``, and a driver naming that host in its error
    would show the rest of the password. No host or port holds "@", so the password runs
    to the last "@" before the host's end. An "@" after that (a database name, a
    parameter) leaves no way to tell where the password ends: refused.
    """
    found = _USER_AND_PASSWORD.match(raw)
    if found is None:
        return make_url(raw)  # no password to keep
    rest_start = found.end()
    host_end = _HOST_END.search(raw, rest_start)
    host_end_at = host_end.start() if host_end else len(raw)
    last_at = raw.rfind("@", rest_start, host_end_at)
    if "@" in raw[max(last_at, host_end_at) :]:
        raise _AmbiguousPasswordError(
            "it has a password and an '@' after its host: write an '@' of the password, "
            "the database name or a parameter as %40"
        )
    if last_at == -1:
        return make_url(raw)
    # The password as written, from after "user:" to the last "@" of the host part.
    password = unquote(raw[found.start("password") : last_at])
    url = make_url(raw[: found.start("password") - 1] + raw[last_at:])
    return url.set(password=password)


def url_secrets(url: URL) -> list[str]:
    """What of `url` is secret: its password and a ``password`` parameter, if any."""
    secrets = [url.password] if url.password else []
    for name, values in url.query.items():
        if name.casefold() == "password":
            secrets += [values] if isinstance(values, str) else list(values)
    return [secret for secret in secrets if secret]


def postgres_url(config: DatabaseConfig) -> URL | None:
    """The PostgreSQL URL from ``POSTGRES_*``, or None when PostgreSQL is not configured."""
    if not config.postgres_host:
        return None
    return URL.create(
        POSTGRES_DRIVER,
        username=config.postgres_user,
        password=config.postgres_password or None,
        host=config.postgres_host,
        port=config.postgres_port or DEFAULT_POSTGRES_PORT,
        database=config.postgres_database,
    )


def default_sqlite_path(environment: str) -> Path:
    """Where the embedded SQLite database lives: ``py_service_<environment>.sqlite3`` in cwd."""
    return Path.cwd() / f"py_service_{environment}.sqlite3"


def is_sqlite(url: URL) -> bool:
    """Whether `url` names an SQLite database."""
    return url.get_backend_name() == "sqlite"


def is_memory_sqlite(url: URL) -> bool:
    """Whether `url` names an in-memory SQLite database (one per connection unless shared)."""
    database_name = url.database or ""
    return (
        database_name in ("", ":memory:")
        or "mode=memory" in database_name
        or (url.query.get("mode") == "memory")
    )


@dataclass(frozen=True)
class DatabaseSettings:
    """The database `Database.initialize()` connects to, and how.

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
    def from_config(cls, config: DatabaseConfig, url: URL | str | None = None) -> DatabaseSettings:
        """Choose the database `config` selects; ``url`` (when given) wins over it."""
        resolved: URL | None
        if url is not None:
            resolved = url if isinstance(url, URL) else parse_database_url(url, "the database URL")
            source = "explicit"
        elif config.url:
            resolved = parse_database_url(config.url, "DATABASE_URL")
            source = "DATABASE_URL"
        else:
            resolved = postgres_url(config)
            source = "POSTGRES_*"
            if resolved is None:
                path = default_sqlite_path(config.environment)
                resolved = URL.create("sqlite+pysqlite", database=str(path))
                source = "embedded SQLite"
        try:
            resolved.get_dialect()  # a dialect SQLAlchemy knows (its driver loads later)
        except ArgumentError as error:
            origin = "the database URL" if source == "explicit" else source
            raise DatabaseConfigError(
                f"{origin} must name a database SQLAlchemy knows; got "
                f"{shown_url(resolved)!r} ({one_line_reason(error, *url_secrets(resolved))})"
            ) from None
        return cls(
            url=resolved,
            source=source,
            environment=config.environment,
            pool_size=config.pool_size,
            max_overflow=config.max_overflow,
            connect_timeout=config.connect_timeout,
        )

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, url: URL | str | None = None
    ) -> DatabaseSettings:
        """Read the database variables from `environ` (default: `os.environ`) and choose.

        ``url`` (when given) wins over every variable. Raises `DatabaseConfigError`.
        """
        try:
            config = DatabaseConfig.from_env(environ, own_url=url is not None)
        except SettingsError as error:
            raise DatabaseConfigError(str(error)) from None
        return cls.from_config(config, url)


def resolve_database_url(environ: Mapping[str, str] | None = None) -> URL:
    """The database URL the environment selects (the rules in this module's docstring).

    Shared with ``alembic/env.py`` so the CLI and the service always agree.
    """
    return DatabaseSettings.from_environment(environ).url
