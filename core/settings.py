"""Service settings: every environment variable, read and validated once, at start-up.

The database variables are here too (`DatabaseConfig`, as plain strings and numbers);
`core.db` turns them into SQLAlchemy URLs and engines. This module imports neither
SQLAlchemy nor the logging set-up, so importing it stays cheap.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent

ENVIRONMENTS: Final = ("development", "test", "production")
DEFAULT_ENVIRONMENT: Final = "test"

# The shape SQLAlchemy needs before anything else: a scheme of word characters and "+".
_DATABASE_URL_SCHEME = re.compile(r"[\w+]+://")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message is one line naming the variable."""


def number_setting(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    """The number in ``env[name]`` (`default` when unset); `SettingsError` names the variable."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum:g}, got {raw!r}")
    return value


def integer_setting(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    """The whole number in ``env[name]`` (`default` when unset); `SettingsError` names it."""
    value = number_setting(env, name, default, minimum)
    if value != int(value):
        raise SettingsError(f"{name} must be a whole number, got {env.get(name)!r}")
    return int(value)


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    """The database variables, parsed (the README's database table says what each means).

    Which database they select (``DATABASE_URL``, else ``POSTGRES_*``, else an SQLite file
    outside production) is decided by `core.db.urls.DatabaseSettings`; the rules that need
    no database library (a known ENVIRONMENT, PostgreSQL configured completely or not at
    all, PostgreSQL in production) are checked here.
    """

    environment: str = DEFAULT_ENVIRONMENT
    url: str = field(default="", repr=False)  # DATABASE_URL: may hold a password
    postgres_host: str = ""
    postgres_port: int | None = None  # None: unset (PostgreSQL's 5432)
    postgres_user: str = ""
    postgres_password: str = field(default="", repr=False)
    postgres_db_development: str = ""
    postgres_db_test: str = ""
    postgres_db_production: str = ""
    pool_size: int = 10
    max_overflow: int = 10
    connect_timeout: int = 10

    @property
    def postgres_database(self) -> str:
        """The database named for the current ENVIRONMENT (``POSTGRES_DB_<ENVIRONMENT>``)."""
        return {
            "development": self.postgres_db_development,
            "test": self.postgres_db_test,
            "production": self.postgres_db_production,
        }.get(self.environment, "")

    @property
    def configured(self) -> bool:
        """Whether a database was asked for: ``DATABASE_URL`` or any ``POSTGRES_*`` is set."""
        return bool(
            self.url
            or self.postgres_host
            or self.postgres_port is not None
            or self.postgres_user
            or self.postgres_password
            or self.postgres_db_development
            or self.postgres_db_test
            or self.postgres_db_production
        )

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, own_url: bool = False
    ) -> DatabaseConfig:
        """Read the database variables from `env` (default: `os.environ`).

        ``own_url``: the caller brings its own URL (``Database(url=...)``), so
        ``DATABASE_URL`` and ``POSTGRES_*`` are neither read nor checked.
        """
        source = os.environ if env is None else env
        environment = source.get("ENVIRONMENT", "").strip().lower() or DEFAULT_ENVIRONMENT
        if environment not in ENVIRONMENTS:
            raise SettingsError(
                f"ENVIRONMENT must be one of {', '.join(ENVIRONMENTS)}, not {environment!r}"
            )
        pools = cls(
            environment=environment,
            pool_size=integer_setting(source, "DB_POOL_SIZE", 10, 1),
            max_overflow=integer_setting(source, "DB_MAX_OVERFLOW", 10, 0),
            connect_timeout=integer_setting(source, "DB_CONNECT_TIMEOUT", 10, 1),
        )
        if own_url:
            return pools
        url = source.get("DATABASE_URL", "").strip()
        if url and not _DATABASE_URL_SCHEME.match(url):
            raise SettingsError("DATABASE_URL is not a valid database URL")
        names = {
            name: source.get(f"POSTGRES_DB_{name.upper()}", "").strip() for name in ENVIRONMENTS
        }
        config = replace(
            pools,
            url=url,
            postgres_host=source.get("POSTGRES_HOST", "").strip(),
            postgres_user=source.get("POSTGRES_USER", "").strip(),
            postgres_password=source.get("POSTGRES_PASSWORD", ""),
            postgres_db_development=names["development"],
            postgres_db_test=names["test"],
            postgres_db_production=names["production"],
        )
        if url:
            return config  # DATABASE_URL wins: POSTGRES_* are not used
        _check_postgres_complete(source, environment)
        if not source.get("POSTGRES_HOST", "").strip():
            return config
        port = integer_setting(source, "POSTGRES_PORT", 5432, 1)
        if port > 65535:
            raise SettingsError(f"POSTGRES_PORT must be a TCP port, not {port}")
        has_port = bool(source.get("POSTGRES_PORT", "").strip())
        return replace(config, postgres_port=port if has_port else None)


def _check_postgres_complete(env: Mapping[str, str], environment: str) -> None:
    """PostgreSQL is configured completely or not at all, and always in production."""
    database_variable = f"POSTGRES_DB_{environment.upper()}"
    connection = ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER", "POSTGRES_PASSWORD")
    present = [name for name in (*connection, database_variable) if env.get(name, "").strip()]
    if not present and environment != "production":
        return
    missing = [
        name
        for name in ("POSTGRES_HOST", "POSTGRES_USER", database_variable)
        if not env.get(name, "").strip()
    ]
    if missing:
        reason = (
            "ENVIRONMENT=production needs PostgreSQL"
            if environment == "production" and not present
            else "PostgreSQL is partly configured"
        )
        raise SettingsError(
            f"{reason}: set DATABASE_URL or the missing variables {', '.join(missing)}"
        )


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the consumer reads from the environment (see the README's tables)."""

    websocket_url: str = ""
    token: str = field(default="", repr=False)
    phoenix_vsn: str = "1.0.0"
    actions_path: Path = PROJECT_ROOT / "actions"
    events_path: Path = PROJECT_ROOT / "events"
    max_concurrency: int = 100
    action_timeout_seconds: float = 25.0
    heartbeat_interval_seconds: float = 30.0
    join_timeout_seconds: float = 10.0
    shutdown_grace_seconds: float = 25.0
    max_message_bytes: int = 1024 * 1024
    outbox_limit: int = 1000
    response_max_age_seconds: float = 30.0
    health_port: int | None = None
    log_level: str = "INFO"
    log_format: str = "text"
    database: DatabaseConfig = field(default_factory=DatabaseConfig)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from `env` (default: `os.environ`), validating each value."""
        source = os.environ if env is None else env
        vsn = source.get("PHOENIX_VSN", "1.0.0").strip() or "1.0.0"
        if vsn not in ("1.0.0", "2.0.0"):
            raise SettingsError(f"PHOENIX_VSN must be 1.0.0 or 2.0.0, got {vsn!r}")
        log_format = source.get("LOG_FORMAT", "text").strip().lower() or "text"
        if log_format not in ("text", "json"):
            raise SettingsError(f"LOG_FORMAT must be text or json, got {log_format!r}")
        health = source.get("HEALTH_PORT", "").strip()
        return cls(
            websocket_url=source.get("WEBSOCKET_URL", "").strip(),
            token=source.get("TOKEN", "").strip(),
            phoenix_vsn=vsn,
            actions_path=Path(source.get("ACTIONS_PATH", "") or PROJECT_ROOT / "actions"),
            max_concurrency=integer_setting(source, "MAX_CONCURRENCY", 100, 1),
            action_timeout_seconds=number_setting(source, "ACTION_TIMEOUT_SECONDS", 25.0, 0.001),
            heartbeat_interval_seconds=number_setting(
                source, "HEARTBEAT_INTERVAL_SECONDS", 30.0, 0.01
            ),
            join_timeout_seconds=number_setting(source, "JOIN_TIMEOUT_SECONDS", 10.0, 0.01),
            shutdown_grace_seconds=number_setting(source, "SHUTDOWN_GRACE_SECONDS", 25.0, 0.0),
            max_message_bytes=integer_setting(source, "MAX_MESSAGE_BYTES", 1024 * 1024, 1024),
            outbox_limit=integer_setting(source, "OUTBOX_LIMIT", 1000, 1),
            response_max_age_seconds=number_setting(source, "RESPONSE_MAX_AGE_SECONDS", 30.0, 0.0),
            health_port=integer_setting(source, "HEALTH_PORT", 0, 0) if health else None,
            log_level=(source.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"),
            log_format=log_format,
            database=DatabaseConfig.from_env(source),
        )

    @property
    def database_configured(self) -> bool:
        """Whether a database was asked for: ``DATABASE_URL`` or any ``POSTGRES_*`` is set."""
        return self.database.configured

    def with_hub(self, websocket_url: str, token: str) -> Settings:
        """A copy pointing at another hub (used by ``--local``)."""
        return replace(self, websocket_url=websocket_url, token=token)

    def missing_connection_settings(self) -> list[str]:
        """The names of the connection variables that are not set."""
        return [
            name
            for name, value in (("WEBSOCKET_URL", self.websocket_url), ("TOKEN", self.token))
            if not value
        ]


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Every setting from `env` (default: `os.environ`); `SettingsError` for a bad one."""
    return Settings.from_env(env)
