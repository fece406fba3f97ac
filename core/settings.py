"""Service settings, read from the environment once at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


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
class Settings:
    """Everything the consumer reads from the environment (see the README's table)."""

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
        )

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
