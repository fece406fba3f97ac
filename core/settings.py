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
from typing import Any, Final, Literal
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


# A variable's kind: how its text is read and checked (`Variable.read`).
Kind = Literal[
    "text",
    "password",
    "path",
    "flag",
    "choice",
    "seconds",
    "integer",
    "optional_integer",
    "host",
    "websocket_url",
    "database_url",
]


@dataclass(frozen=True, slots=True)
class Variable:
    """One environment variable: how it is read, its default and bounds, and what it means.

    The table of them (`SETTINGS`, `DATABASE_SETTINGS`) is the one place a setting is
    declared: `Settings` and `DatabaseConfig` take their defaults from it, `from_env` reads
    through it, and the configuration reference (docs/configuration.md) is written from it.
    """

    name: str
    kind: Kind
    meaning: str
    default: Any = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    # What the reference says it accepts and defaults to, where the kind's own words do not
    # say it all.
    accepts: str = ""
    shown_default: str = ""
    # The attribute it fills (its name in lower case unless given).
    attribute: str = ""

    @property
    def field(self) -> str:
        """The `Settings` or `DatabaseConfig` attribute this variable fills."""
        return self.attribute or self.name.lower()

    def read(self, read: _Reader) -> Any:
        """The variable's value from `read`'s environment (its default when unset)."""
        name, kind = self.name, self.kind
        if kind == "seconds":
            return read.number(name, self.default, self._minimum(), self.maximum)
        if kind == "integer":
            return read.integer(name, self.default, int(self._minimum()), self._int_maximum())
        if kind == "optional_integer":
            return read.optional_integer(name, int(self._minimum()), self._int_maximum())
        if kind == "choice":
            return read.choice(name, self.choices, self.default)
        if kind == "flag":
            return read.flag(name)
        if kind == "host":
            return read.host(name)
        if kind == "websocket_url":
            return read.websocket_url(name)
        if kind == "database_url":
            return read.database_url(name)
        if kind == "password":
            return read.text(name, strip=False)
        text = read.text(name)
        if kind == "path":
            return Path(text) if text else self.default
        return text

    def accepted(self) -> str:
        """What the variable accepts, in the words its error message uses."""
        if self.accepts:
            return self.accepts
        if self.kind == "seconds":
            return f"seconds, {_range_text(self._minimum(), self.maximum)}"
        if self.kind in ("integer", "optional_integer"):
            return f"a whole number, {_range_text(self._minimum(), self.maximum)}"
        if self.kind == "choice":
            return f"one of {', '.join(f'`{choice}`' for choice in self.choices)}, any case"
        if self.kind == "flag":
            return "`true` or `false` (also `yes`/`no`, `1`/`0`, `on`/`off`), any case"
        return "any text"

    def default_text(self) -> str:
        """The default as the reference shows it."""
        if self.shown_default:
            return self.shown_default
        if self.kind == "flag":
            return "`false`"
        if self.default in ("", None):
            return "(unset)"
        if isinstance(self.default, Path):
            return f"`{self.default.relative_to(PROJECT_ROOT)}`"
        return (
            f"`{_number_text(self.default) if isinstance(self.default, float) else self.default}`"
        )

    def _minimum(self) -> float:
        return self.minimum if self.minimum is not None else 0

    def _int_maximum(self) -> int | None:
        return int(self.maximum) if self.maximum is not None else None


SETTINGS: Final = (
    Variable(
        "WEBSOCKET_URL",
        "websocket_url",
        "the hub's socket, e.g. `wss://hub.example.com/websocket`",
        accepts="a `ws://` or `wss://` URL with a host, no `#fragment`, no spaces",
        shown_default="(required without `--local`)",
    ),
    Variable(
        "TOKEN",
        "text",
        "the service's API token; never logged",
        shown_default="(required without `--local`)",
    ),
    Variable(
        "ALLOW_INSECURE_WEBSOCKET",
        "flag",
        "with `ENVIRONMENT=production`, a `ws://` `WEBSOCKET_URL` to a host other than "
        "`localhost` or a loopback address stops start-up (the token travels in the URL's "
        "query string, readable by anyone on the path); `true` allows it, e.g. behind a "
        "TLS-terminating sidecar",
        default=False,
    ),
    Variable(
        "PHOENIX_VSN",
        "choice",
        "Phoenix serializer: `1.0.0` (JSON objects) or `2.0.0` (arrays)",
        default="1.0.0",
        choices=PHOENIX_VERSIONS,
        accepts="`1.0.0` or `2.0.0`",
    ),
    Variable(
        "MAX_CONCURRENCY",
        "integer",
        "requests run at once by one replica; more wait their turn (the hub itself hands out "
        "about 10 at a time per service, so this is rarely reached)",
        default=100,
        minimum=1,
    ),
    Variable(
        "MAX_WAITING_REQUESTS",
        "integer",
        "requests that may wait for a concurrency slot (`MAX_CONCURRENCY` or an action's "
        "`max_concurrency`) at once; past that a request is answered at once with 503 "
        "`OVERLOADED` (retryable), counted in `plugboard_requests_overloaded_total`. A "
        "waiting request holds its fields: lower it where requests are large",
        default=1000,
        minimum=0,
    ),
    Variable(
        "ACTION_TIMEOUT_SECONDS",
        "seconds",
        "time limit per request, answered 504; inside the hub's 30 s wait so callers see 504 "
        "rather than the hub's 408",
        default=25.0,
        minimum=0.001,
    ),
    Variable(
        "HEARTBEAT_INTERVAL_SECONDS",
        "seconds",
        "Phoenix heartbeat; no reply by the next one means the connection is dead",
        default=30.0,
        minimum=0.01,
    ),
    Variable(
        "JOIN_TIMEOUT_SECONDS",
        "seconds",
        "how long to wait for the join reply before rejoining",
        default=10.0,
        minimum=0.01,
    ),
    Variable(
        "SHUTDOWN_GRACE_SECONDS",
        "seconds",
        "on SIGTERM or SIGINT, how long a stopping replica serves what still reaches it (and, "
        "as the service's only joined replica, waits for another to join) before it answers "
        "new requests 503 and cancels running ones; the orchestrator's stop timeout must "
        "exceed it by a few seconds",
        default=25.0,
        minimum=0.0,
    ),
    Variable(
        "MAX_MESSAGE_BYTES",
        "integer",
        "largest frame accepted from the hub; a larger one closes the connection with 1009",
        default=1024 * 1024,
        minimum=1024,
    ),
    Variable(
        "OUTBOX_LIMIT",
        "integer",
        "responses kept while not joined or while the hub does not read (oldest dropped first)",
        default=1000,
        minimum=1,
    ),
    Variable(
        "OUTBOX_MAX_BYTES",
        "integer",
        "bytes of encoded responses held in all: kept, and written but not yet confirmed by a "
        "heartbeat reply. Past it the oldest are dropped first "
        "(`plugboard_responses_dropped_total`), written ones before those never written",
        default=32 * 1024 * 1024,
        minimum=1024,
        shown_default="`33554432` (32 MiB)",
    ),
    Variable(
        "RESPONSE_MAX_AGE_SECONDS",
        "seconds",
        "kept responses older than this are dropped (the hub forgets a request after 30 s)",
        default=30.0,
        minimum=0.0,
    ),
    Variable(
        "RESPONSE_MIN_DELAY_SECONDS",
        "seconds",
        "no response leaves sooner than this after its request arrived: the hub's front "
        "registers the caller only after it hands the request out, and drops an answer that "
        "beats it (0 turns the delay off)",
        default=0.002,
        minimum=0.0,
        maximum=1.0,
    ),
    Variable(
        "ERROR_FORMAT",
        "choice",
        "the framework's error answers: an error object as the message (`code`, `error`, "
        "`retryable`, ...), or the sentence alone as the seed sent it (the object then "
        "travels in `fields`)",
        default="object",
        choices=ERROR_FORMATS,
    ),
    Variable(
        "ACTIONS_PATH",
        "path",
        "where actions are discovered",
        default=PROJECT_ROOT / "actions",
        accepts="a folder path",
    ),
    Variable(
        "HEALTH_PORT",
        "optional_integer",
        "serves `/healthz`, `/readyz` and `/metrics`",
        default=None,
        minimum=0,
        maximum=MAX_PORT,
        accepts="a port, 0 to 65535 (0: any free port)",
        shown_default="(unset: no health server)",
    ),
    Variable(
        "HEALTH_HOST",
        "host",
        "the address the health server binds; one it cannot bind stops start-up with exit code 2",
        accepts="an IP address or a host name, e.g. `127.0.0.1`, `::` (IPv6 only), `0.0.0.0` "
        "(IPv4 only)",
        shown_default="(unset: every interface, IPv4 and IPv6)",
    ),
    Variable(
        "LOG_LEVEL",
        "choice",
        "the least severe level logged",
        default="INFO",
        choices=LOG_LEVELS,
    ),
    Variable(
        "LOG_FORMAT",
        "choice",
        "`json`: one object per line",
        default="text",
        choices=LOG_FORMATS,
    ),
)
# The database's variables (`DatabaseConfig`). `ENVIRONMENT` and the pool's are read even
# for a database whose URL the caller gives (`DatabaseConfig.from_env(own_url=True)`).
DATABASE_COMMON_SETTINGS: Final = (
    Variable(
        "ENVIRONMENT",
        "choice",
        "picks the database name below",
        default=DEFAULT_ENVIRONMENT,
        choices=ENVIRONMENTS,
    ),
    Variable(
        "DB_POOL_SIZE",
        "integer",
        "pooled connections per replica (connections are pre-pinged)",
        default=10,
        minimum=1,
        attribute="pool_size",
    ),
    Variable(
        "DB_MAX_OVERFLOW",
        "integer",
        "extra connections under load; mind the server's `max_connections` times the replicas",
        default=10,
        minimum=0,
        attribute="max_overflow",
    ),
    Variable(
        "DB_CONNECT_TIMEOUT",
        "integer",
        "before an unreachable PostgreSQL fails start-up",
        default=10,
        minimum=1,
        maximum=MAX_CONNECT_TIMEOUT,
        accepts=f"whole seconds, 1 to {MAX_CONNECT_TIMEOUT}",
        attribute="connect_timeout",
    ),
)
DATABASE_URL_SETTINGS: Final = (
    Variable(
        "DATABASE_URL",
        "database_url",
        "overrides everything below",
        accepts="an SQLAlchemy URL, `dialect[+driver]://…` (`postgres://` is accepted); an "
        "`@` in the password may be written as it is or as `%40`, but with a password every "
        "`@` after the host (database name, parameters) must be `%40`",
        attribute="url",
    ),
    Variable(
        "POSTGRES_HOST",
        "text",
        "PostgreSQL host; setting it selects PostgreSQL",
        accepts="a host name or address",
    ),
    Variable(
        "POSTGRES_PORT",
        "optional_integer",
        "PostgreSQL port",
        default=None,
        minimum=1,
        maximum=MAX_PORT,
        accepts="a port, 1 to 65535",
        shown_default="`5432`",
    ),
    Variable("POSTGRES_USER", "text", "user", accepts="a user name"),
    Variable(
        "POSTGRES_PASSWORD",
        "password",
        "password (optional: trust auth, `PGPASSWORD` or `.pgpass` work too); never logged",
        accepts="any text, taken as it is",
    ),
    Variable(
        "POSTGRES_DB_DEVELOPMENT",
        "text",
        "the database when `ENVIRONMENT=development`",
        accepts="a database name",
    ),
    Variable(
        "POSTGRES_DB_TEST",
        "text",
        "the database when `ENVIRONMENT=test`",
        accepts="a database name",
    ),
    Variable(
        "POSTGRES_DB_PRODUCTION",
        "text",
        "the database when `ENVIRONMENT=production`",
        accepts="a database name",
    ),
)
DATABASE_SETTINGS: Final = (
    DATABASE_COMMON_SETTINGS[0],
    *DATABASE_URL_SETTINGS,
    *DATABASE_COMMON_SETTINGS[1:],
)
# Every environment variable the service reads, in the reference's order. Tools that start
# a replica with settings of their own leave all of these out of what they inherit.
VARIABLES: Final = tuple(variable.name for variable in (*SETTINGS, *DATABASE_SETTINGS))
_BY_NAME: Final = {variable.name: variable for variable in (*SETTINGS, *DATABASE_SETTINGS)}


def default(name: str) -> Any:
    """The default of the variable `name` (the table's)."""
    return _BY_NAME[name].default


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    """The database variables, parsed (`DATABASE_SETTINGS` says what each means).

    Which database they select (``DATABASE_URL``, else ``POSTGRES_*``, else an SQLite file
    outside production) is decided by `core.db.urls.DatabaseSettings`; the rules that need
    no database library (a known ENVIRONMENT, PostgreSQL configured completely or not at
    all, PostgreSQL in production) are checked here.
    """

    environment: str = default("ENVIRONMENT")
    url: str = field(default=default("DATABASE_URL"), repr=False)  # may hold a password
    postgres_host: str = default("POSTGRES_HOST")
    postgres_port: int | None = default("POSTGRES_PORT")  # None: unset (PostgreSQL's 5432)
    postgres_user: str = default("POSTGRES_USER")
    postgres_password: str = field(default=default("POSTGRES_PASSWORD"), repr=False)
    postgres_db_development: str = default("POSTGRES_DB_DEVELOPMENT")
    postgres_db_test: str = default("POSTGRES_DB_TEST")
    postgres_db_production: str = default("POSTGRES_DB_PRODUCTION")
    pool_size: int = default("DB_POOL_SIZE")
    max_overflow: int = default("DB_MAX_OVERFLOW")
    connect_timeout: int = default("DB_CONNECT_TIMEOUT")

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
            **{variable.field: variable.read(read) for variable in DATABASE_COMMON_SETTINGS}
        )
        if own_url:
            return common
        config = replace(
            common, **{variable.field: variable.read(read) for variable in DATABASE_URL_SETTINGS}
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
    """Everything the consumer reads from the environment (`SETTINGS`, `DATABASE_SETTINGS`)."""

    websocket_url: str = default("WEBSOCKET_URL")
    token: str = field(default=default("TOKEN"), repr=False)
    allow_insecure_websocket: bool = default("ALLOW_INSECURE_WEBSOCKET")
    phoenix_vsn: str = default("PHOENIX_VSN")
    actions_path: Path = field(default=default("ACTIONS_PATH"))
    events_path: Path = PROJECT_ROOT / "events"  # not a setting: the framework's own folder
    max_concurrency: int = default("MAX_CONCURRENCY")
    max_waiting_requests: int = default("MAX_WAITING_REQUESTS")
    action_timeout_seconds: float = default("ACTION_TIMEOUT_SECONDS")
    heartbeat_interval_seconds: float = default("HEARTBEAT_INTERVAL_SECONDS")
    join_timeout_seconds: float = default("JOIN_TIMEOUT_SECONDS")
    shutdown_grace_seconds: float = default("SHUTDOWN_GRACE_SECONDS")
    max_message_bytes: int = default("MAX_MESSAGE_BYTES")
    outbox_limit: int = default("OUTBOX_LIMIT")
    outbox_max_bytes: int = default("OUTBOX_MAX_BYTES")
    response_max_age_seconds: float = default("RESPONSE_MAX_AGE_SECONDS")
    response_min_delay_seconds: float = default("RESPONSE_MIN_DELAY_SECONDS")
    error_format: str = default("ERROR_FORMAT")
    health_port: int | None = default("HEALTH_PORT")
    health_host: str = default("HEALTH_HOST")  # "": every interface, IPv4 and IPv6
    log_level: str = default("LOG_LEVEL")
    log_format: str = default("LOG_FORMAT")
    database: DatabaseConfig = field(default_factory=DatabaseConfig)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from `env` (default: `os.environ`), validating each value."""
        read = _Reader(os.environ if env is None else env)
        settings = cls(
            **{variable.field: variable.read(read) for variable in SETTINGS},
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
