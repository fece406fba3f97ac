"""Logging: set-up, the JSON line format, secret redaction and rate-limited warnings."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

# Extra fields a record may carry (``logger.info(..., extra={...})``); JSON logs include them.
CONTEXT_FIELDS = ("action", "ref", "status", "duration_ms", "error_id", "event", "close_code")

_TOKEN_IN_URL = re.compile(r"([?&]token=)[^&#\s'\"]*")
_MAX_BAD_INPUT_CHARS = 200


def redact_url(url: str) -> str:
    """`url` with the value of any ``token`` query parameter replaced by ``***``."""
    return _TOKEN_IN_URL.sub(r"\1***", url)


def truncate(text: str, limit: int = _MAX_BAD_INPUT_CHARS) -> str:
    """`text` cut to `limit` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


class SecretFilter(logging.Filter):
    """Replaces known secrets (the hub token) in every record that passes through."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()

    def add(self, secret: str) -> None:
        """Start hiding `secret` (too-short values are ignored: they would mangle text)."""
        if len(secret) >= 4:
            self._secrets.add(secret)

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; never drops it."""
        message = redact_url(record.getMessage())
        for secret in self._secrets:
            message = message.replace(secret, "***")
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            exc_text = redact_url(record.exc_text)
            for secret in self._secrets:
                exc_text = exc_text.replace(secret, "***")
            record.exc_text = exc_text
        record.msg, record.args = message, None
        return True


secret_filter = SecretFilter()


class JSONFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, message and request context."""

    def format(self, record: logging.LogRecord) -> str:
        """Render `record` as a JSON line."""
        data: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                data[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exception"] = record.exc_text
        return json.dumps(data, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    """Send logs to stderr in the chosen format, with the secret filter on the handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(secret_filter)
    if log_format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # websockets logs every frame at DEBUG; keep its noise out unless asked for.
    logging.getLogger("websockets").setLevel(max(logging.INFO, root.level))
    # Alembic announces each of its plugins at INFO when it loads.
    logging.getLogger("alembic.runtime.plugins").setLevel(max(logging.WARNING, root.level))


class RateLimitedLog:
    """Logs at most `burst` messages per `interval` seconds, then one summary of the rest."""

    def __init__(self, logger: logging.Logger, burst: int = 10, interval: float = 60.0) -> None:
        self._logger = logger
        self._burst = burst
        self._interval = interval
        self._window_start = 0.0
        self._count = 0
        self._suppressed = 0

    def warning(self, message: str, *args: Any) -> None:
        """Log a warning about bad input (truncated), unless the budget is used up."""
        now = time.monotonic()
        if now - self._window_start >= self._interval:
            if self._suppressed:
                self._logger.warning(
                    "%d more bad-input warnings were suppressed in the last %.0f s",
                    self._suppressed,
                    self._interval,
                )
            self._window_start, self._count, self._suppressed = now, 0, 0
        if self._count >= self._burst:
            self._suppressed += 1
            return
        self._count += 1
        self._logger.warning(truncate(message % args if args else message))
