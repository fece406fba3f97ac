"""Service settings: every environment variable, read and validated once, at start-up.

`load_settings` returns `Settings` or raises `SettingsError`, whose message is one line
naming the variable, its value (secrets hidden) and what the variable accepts; the
entrypoint prints it and exits with code 2 before anything starts.

The database variables are here too (`DatabaseConfig`, as plain strings and numbers);
`core.db` turns them into SQLAlchemy URLs and engines. This module imports neither
SQLAlchemy nor the logging set-up, so importing it stays cheap.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final
from urllib.parse import unquote, urlsplit

from core.redaction import redact_url, truncate

PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent

ENVIRONMENTS: Final = ("development", "test", "production")
DEFAULT_ENVIRONMENT: Final = "test"
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS: Final = ("text", "json")
PHOENIX_VERSIONS: Final = ("1.0.0", "2.0.0")
# How the framework's own error answers carry their message (core.execution.responses).
ERROR_FORMATS: Final = ("object", "text")
MAX_PORT: Final = 65535
# libpq reads connect_timeout into a C int; beyond it PostgreSQL refuses the connection.
MAX_CONNECT_TIMEOUT: Final = 2**31 - 1

# Every environment variable the service reads, in the order of the README's tables (a test
# checks the code reads exactly these, and the README documents exactly these). Tools that
# start a replica with settings of their own leave all of these out of what they inherit.
VARIABLES: Final = (
    "WEBSOCKET_URL",
    "TOKEN",
    "ALLOW_INSECURE_WEBSOCKET",
    "PHOENIX_VSN",
    "MAX_CONCURRENCY",
    "MAX_WAITING_REQUESTS",
    "ACTION_TIMEOUT_SECONDS",
    "HEARTBEAT_INTERVAL_SECONDS",
    "JOIN_TIMEOUT_SECONDS",
    "SHUTDOWN_GRACE_SECONDS",
    "MAX_MESSAGE_BYTES",
    "OUTBOX_LIMIT",
    "OUTBOX_MAX_BYTES",
    "RESPONSE_MAX_AGE_SECONDS",
    "RESPONSE_MIN_DELAY_SECONDS",
    "ERROR_FORMAT",
    "ACTIONS_PATH",
    "HEALTH_PORT",
    "HEALTH_HOST",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "ENVIRONMENT",
    "DATABASE_URL",
    "POSTGRES_HOST",
    "POSTGRES_PORT",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_DB_DEVELOPMENT",
    "POSTGRES_DB_TEST",
    "POSTGRES_DB_PRODUCTION",
    "DB_POOL_SIZE",
    "DB_MAX_OVERFLOW",
    "DB_CONNECT_TIMEOUT",
)
SECRET_VARIABLES: Final = frozenset({"TOKEN", "POSTGRES_PASSWORD"})
WEBSOCKET_URL_FORM: Final = (
    "a ws:// or wss:// URL with a host, like wss://hub.example.com/websocket"
)
DATABASE_URL_FORM: Final = (
    "a database URL, like postgresql://user:password@host:5432/name or sqlite:///file.sqlite3"
)
_SHOWN_CHARS: Final = 100
# How a yes/no variable may be written (any case); unset or empty is no.
_YES: Final = ("true", "yes", "1", "on")
_NO: Final = ("false", "no", "0", "off")
# One label of a host name (RFC 1123): letters, digits and inner hyphens, 63 at most.
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
# The shape SQLAlchemy needs before anything else: a scheme of word characters and "+".
_DATABASE_URL_SCHEME = re.compile(r"[\w+]+://")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message is one line naming the variable."""


def shown_value(name: str, raw: str, secrets: Iterable[str] = ()) -> str:
    """How an error may show the value `raw` of variable `name`: quoted, on one line, cut
    to a readable length, with secrets hidden (a secret variable's value entirely, the
    password and ``token=`` inside WEBSOCKET_URL, all but the scheme of a DATABASE_URL,
    and any of `secrets` wherever it appears)."""
    if name in SECRET_VARIABLES:
        return "*** (hidden)"
    text = raw
    for secret in secrets:
        text = text.replace(secret, "***")
    if name == "DATABASE_URL":
        # Only a malformed URL is ever shown, and there is no telling where its password is.
        scheme = _DATABASE_URL_SCHEME.match(text)
        if scheme is None:
            return "a value that is not shown (it may hold a password)"
        return f"{scheme.group()!r}... (the rest is not shown: it may hold a password)"
    if name == "WEBSOCKET_URL":
        text = redact_url(text, single=True)
    return repr(truncate(text, _SHOWN_CHARS))  # repr escapes what would break the line


def _number_text(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def _range_text(minimum: float, maximum: float | None) -> str:
    if maximum is None:
        return f"at least {_number_text(minimum)}"
    return f"from {_number_text(minimum)} to {_number_text(maximum)}"


class _Reader:
    """Reads variables from one mapping; every error names the variable, its value (secrets
    hidden) and what it accepts."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        # Values too short to hide without mangling the rest of a message are left alone.
        self._secrets = sorted(
            {
                value
                for name in SECRET_VARIABLES
                for value in (env.get(name, ""), env.get(name, "").strip())
                if len(value) >= 4
            },
            key=len,
            reverse=True,
        )

    def invalid(self, name: str, raw: str, allowed: str, reason: str = "") -> SettingsError:
        """The error for variable `name` holding `raw`, which must be `allowed`."""
        because = f" ({reason})" if reason else ""
        return SettingsError(
            f"{name} must be {allowed}; got {shown_value(name, raw, self._secrets)}{because}"
        )

    def text(self, name: str, *, strip: bool = True) -> str:
        """The variable's value ("" when unset), which must be UTF-8 text without NUL."""
        raw = self._env.get(name, "")
        try:
            raw.encode("utf-8")  # lone surrogates: bytes of the environment that are not UTF-8
        except UnicodeEncodeError:
            raise self.invalid(name, raw, "UTF-8 text") from None
        if "\0" in raw:
            raise self.invalid(name, raw, "text without NUL characters")
        return raw.strip() if strip else raw

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        """One of `choices`, matched regardless of case; `default` when unset."""
        raw = self.text(name)
        if not raw:
            return default
        for choice in choices:
            if raw.casefold() == choice.casefold():
                return choice
        raise self.invalid(name, raw, f"one of {', '.join(choices)}")

    def number(
        self, name: str, default: float, minimum: float, maximum: float | None = None
    ) -> float:
        """A finite number of seconds within bounds; `default` when unset."""
        raw = self.text(name)
        if not raw:
            return default
        allowed = f"a number of seconds, {_range_text(minimum, maximum)}"
        try:
            value = float(raw)
        except ValueError:
            raise self.invalid(name, raw, allowed) from None
        if not math.isfinite(value) or value < minimum or (maximum is not None and value > maximum):
            raise self.invalid(name, raw, allowed)
        return value

    def integer(self, name: str, default: int, minimum: int, maximum: int | None = None) -> int:
        """A whole number within bounds ("1e3" and "100.0" count); `default` when unset."""
        value = self.optional_integer(name, minimum, maximum)
        return default if value is None else value

    def optional_integer(self, name: str, minimum: int, maximum: int | None = None) -> int | None:
        """A whole number within bounds, or None when unset."""
        raw = self.text(name)
        if not raw:
            return None
        allowed = f"a whole number, {_range_text(minimum, maximum)}"
        try:
            value = int(raw)
        except ValueError:
            try:
                as_float = float(raw)
            except ValueError:
                raise self.invalid(name, raw, allowed) from None
            if not math.isfinite(as_float) or not as_float.is_integer():
                raise self.invalid(name, raw, allowed) from None
            value = int(as_float)
        if value < minimum or (maximum is not None and value > maximum):
            raise self.invalid(name, raw, allowed)
        return value

    def flag(self, name: str) -> bool:
        """Yes or no (true/false, yes/no, 1/0, on/off, any case); no when unset."""
        raw = self.text(name)
        if not raw or raw.casefold() in _NO:
            return False
        if raw.casefold() in _YES:
            return True
        raise self.invalid(name, raw, "true or false (also yes/no, 1/0, on/off)")

    def host(self, name: str) -> str:
        """An IP address or a host name to bind ("" when unset)."""
        raw = self.text(name)
        if raw and not is_host(raw):
            raise self.invalid(name, raw, "an IP address or a host name, like 127.0.0.1 or ::")
        return raw

    def websocket_url(self, name: str) -> str:
        """A ws:// or wss:// URL that the WebSocket client will accept ("" when unset)."""
        raw = self.text(name)
        if raw:
            problem = websocket_url_problem(raw)
            if problem is not None:
                raise self.invalid(name, raw, WEBSOCKET_URL_FORM, problem)
        return raw

    def database_url(self, name: str) -> str:
        """Something shaped like an SQLAlchemy URL ("" when unset); `core.db` parses it."""
        raw = self.text(name)
        if raw and not _DATABASE_URL_SCHEME.match(raw):
            raise self.invalid(name, raw, DATABASE_URL_FORM)
        return raw


def websocket_url_problem(url: str) -> str | None:
    """What stops `url` from being the hub's socket URL, or None.

    The rules the WebSocket client applies when it connects, checked at start-up instead:
    ws or wss, a host, no fragment, a password with any user name, an encodable host.
    """
    if not url.isprintable() or any(char.isspace() for char in url):
        return "it holds spaces or control characters"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "it is not a valid URL"
    try:
        parts.port  # noqa: B018 (raises ValueError for a port that is not 0 to 65535)
    except ValueError:
        return "its port is not a number from 0 to 65535"
    if parts.scheme not in ("ws", "wss"):
        return f"its scheme is {parts.scheme}" if parts.scheme else "it has no scheme"
    if not parts.hostname:
        return "it has no host"
    if parts.fragment:
        return "it has a #fragment"
    if parts.username is not None:
        if parts.password is None:
            return "it has a user name without a password"
        try:
            unquote(parts.username, errors="strict")
            unquote(parts.password, errors="strict")
        except UnicodeDecodeError:
            return "its user name or password is not percent-encoded UTF-8"
    if not url.isascii():
        try:
            parts.hostname.encode("idna")
        except UnicodeError:
            return "its host is not a valid domain name"
    return None


def is_host(text: str) -> bool:
    """Whether `text` is an IP address (v4 or v6, no brackets) or a host name."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        labels = text.removesuffix(".").split(".")
        return len(text) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels)
    return True


def is_loopback_host(host: str) -> bool:
    """Whether `host` (a URL's host, an HTTP ``Host`` header's name) is this machine itself:
    ``localhost`` or a loopback address (127.0.0.0/8, ``::1``, also IPv4-mapped), brackets
    allowed. Other names are not, whatever they resolve to: DNS is not trusted here."""
    name = host.removeprefix("[").removesuffix("]").removesuffix(".").casefold()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def sends_token_in_clear(url: str) -> bool:
    """Whether the hub URL `url` is plain ``ws://`` to a host other than this machine.

    The token travels in the URL's query string (the hub reads it from there), so over
    plain ``ws://`` anyone on the path between the replica and the hub reads it.
    """
    parts = urlsplit(url)
    return parts.scheme.casefold() == "ws" and not is_loopback_host(parts.hostname or "")


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
        read = _Reader(os.environ if env is None else env)
        common = cls(
            environment=read.choice("ENVIRONMENT", ENVIRONMENTS, DEFAULT_ENVIRONMENT),
            pool_size=read.integer("DB_POOL_SIZE", 10, 1),
            max_overflow=read.integer("DB_MAX_OVERFLOW", 10, 0),
            connect_timeout=read.integer("DB_CONNECT_TIMEOUT", 10, 1, MAX_CONNECT_TIMEOUT),
        )
        if own_url:
            return common
        config = replace(
            common,
            url=read.database_url("DATABASE_URL"),
            postgres_host=read.text("POSTGRES_HOST"),
            postgres_port=read.optional_integer("POSTGRES_PORT", 1, MAX_PORT),
            postgres_user=read.text("POSTGRES_USER"),
            postgres_password=read.text("POSTGRES_PASSWORD", strip=False),
            postgres_db_development=read.text("POSTGRES_DB_DEVELOPMENT"),
            postgres_db_test=read.text("POSTGRES_DB_TEST"),
            postgres_db_production=read.text("POSTGRES_DB_PRODUCTION"),
        )
        if not config.url:  # DATABASE_URL wins: POSTGRES_* are not used
            _check_postgres_complete(config)
        return config


def _check_postgres_complete(config: DatabaseConfig) -> None:
    """PostgreSQL is configured completely or not at all, and always in production."""
    database_variable = f"POSTGRES_DB_{config.environment.upper()}"
    given = {
        "POSTGRES_HOST": bool(config.postgres_host),
        "POSTGRES_PORT": config.postgres_port is not None,
        "POSTGRES_USER": bool(config.postgres_user),
        "POSTGRES_PASSWORD": bool(config.postgres_password.strip()),
        database_variable: bool(config.postgres_database),
    }
    present = [name for name, value in given.items() if value]
    if not present and config.environment != "production":
        return
    missing = [
        name for name in ("POSTGRES_HOST", "POSTGRES_USER", database_variable) if not given[name]
    ]
    if missing:
        reason = (
            "ENVIRONMENT=production needs PostgreSQL"
            if config.environment == "production" and not present
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
    allow_insecure_websocket: bool = False
    phoenix_vsn: str = "1.0.0"
    actions_path: Path = PROJECT_ROOT / "actions"
    events_path: Path = PROJECT_ROOT / "events"
    max_concurrency: int = 100
    max_waiting_requests: int = 1000
    action_timeout_seconds: float = 25.0
    heartbeat_interval_seconds: float = 30.0
    join_timeout_seconds: float = 10.0
    shutdown_grace_seconds: float = 25.0
    max_message_bytes: int = 1024 * 1024
    outbox_limit: int = 1000
    outbox_max_bytes: int = 32 * 1024 * 1024
    response_max_age_seconds: float = 30.0
    response_min_delay_seconds: float = 0.002
    error_format: str = "object"
    health_port: int | None = None
    health_host: str = ""  # "": every interface, IPv4 and IPv6
    log_level: str = "INFO"
    log_format: str = "text"
    database: DatabaseConfig = field(default_factory=DatabaseConfig)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from `env` (default: `os.environ`), validating each value."""
        read = _Reader(os.environ if env is None else env)
        actions_path = read.text("ACTIONS_PATH")
        settings = cls(
            websocket_url=read.websocket_url("WEBSOCKET_URL"),
            token=read.text("TOKEN"),
            allow_insecure_websocket=read.flag("ALLOW_INSECURE_WEBSOCKET"),
            phoenix_vsn=read.choice("PHOENIX_VSN", PHOENIX_VERSIONS, "1.0.0"),
            actions_path=Path(actions_path) if actions_path else PROJECT_ROOT / "actions",
            max_concurrency=read.integer("MAX_CONCURRENCY", 100, 1),
            max_waiting_requests=read.integer("MAX_WAITING_REQUESTS", 1000, 0),
            action_timeout_seconds=read.number("ACTION_TIMEOUT_SECONDS", 25.0, 0.001),
            heartbeat_interval_seconds=read.number("HEARTBEAT_INTERVAL_SECONDS", 30.0, 0.01),
            join_timeout_seconds=read.number("JOIN_TIMEOUT_SECONDS", 10.0, 0.01),
            shutdown_grace_seconds=read.number("SHUTDOWN_GRACE_SECONDS", 25.0, 0.0),
            max_message_bytes=read.integer("MAX_MESSAGE_BYTES", 1024 * 1024, 1024),
            outbox_limit=read.integer("OUTBOX_LIMIT", 1000, 1),
            outbox_max_bytes=read.integer("OUTBOX_MAX_BYTES", 32 * 1024 * 1024, 1024),
            response_max_age_seconds=read.number("RESPONSE_MAX_AGE_SECONDS", 30.0, 0.0),
            response_min_delay_seconds=read.number("RESPONSE_MIN_DELAY_SECONDS", 0.002, 0.0, 1.0),
            error_format=read.choice("ERROR_FORMAT", ERROR_FORMATS, "object"),
            health_port=read.optional_integer("HEALTH_PORT", 0, MAX_PORT),
            health_host=read.host("HEALTH_HOST"),
            log_level=read.choice("LOG_LEVEL", LOG_LEVELS, "INFO"),
            log_format=read.choice("LOG_FORMAT", LOG_FORMATS, "text"),
            database=DatabaseConfig.from_env(env),
        )
        if (
            settings.database.environment == "production"
            and not settings.allow_insecure_websocket
            and settings.websocket_url
            and sends_token_in_clear(settings.websocket_url)
        ):
            raise read.invalid(
                "WEBSOCKET_URL",
                settings.websocket_url,
                "a wss:// URL when ENVIRONMENT=production",
                "ws:// would send TOKEN unencrypted to a host that is not this machine; "
                "ALLOW_INSECURE_WEBSOCKET=true allows it",
            )
        return settings

    @property
    def database_configured(self) -> bool:
        """Whether a database was asked for: ``DATABASE_URL`` or any ``POSTGRES_*`` is set."""
        return self.database.configured

    def hide_secrets(self, text: str) -> str:
        """`text` with the values of TOKEN and POSTGRES_PASSWORD replaced by ``***`` (values
        under four characters are left: hiding them would mangle the rest)."""
        for secret in sorted((self.token, self.database.postgres_password), key=len)[::-1]:
            if len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

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
