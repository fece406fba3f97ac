"""Logging: set-up, the JSON line format, secret redaction and rate-limited warnings."""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import math
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from core import json_codec
from core.redaction import MAX_SHOWN_CHARS, printable, redact_url, truncate

# The request lines gathered over this many seconds, or this many lines if sooner, are written
# together (`RequestLog`).
FLUSH_SECONDS = 0.01
FLUSH_LINES = 256
# Batches are written on whole milliseconds: the hub link's held answers leave on the same
# boundaries (core.hub.outbox.HOLD_QUANTUM), so under load both share a wake-up.
FLUSH_QUANTUM = 0.001
# Extra fields the framework's own records carry (``logger.info(..., extra={...})``). JSON logs
# write these and every other key a caller passed in ``extra``.
CONTEXT_FIELDS = ("action", "ref", "status", "duration_ms", "error_id", "event", "close_code")
# The most characters of a value the hub or a caller chose (a ref, an action name, a topic)
# that a log line shows: the hub's own refs are a few dozen characters, and a line that
# carries a megabyte-long one would cost the log store a megabyte.
SHOWN_VALUE_CHARS = 200
# The request being answered, as (action, ref): the executor sets it in each request's task,
# and a worker thread runs with a copy of its caller's context variables, so every record made
# while a request runs, by any logger, can name it (`_with_request`).
request_context: ContextVar[tuple[str, str] | None] = ContextVar("request_context", default=None)
# The attribute under which a record keeps what it was made in: (action, ref, trace id, span id),
# the ids None when no sampled span is current.
RECORD_CONTEXT = "plugboard_context"
# The keys of the JSON line itself; an `extra` key with one of these names is written with
# EXTRA_PREFIX before it instead of replacing it.
JSON_KEYS = frozenset(
    ("timestamp", "level", "logger", "message", "exception", "stack", "trace_id", "span_id")
)
EXTRA_PREFIX = "extra_"

__all__ = [
    "CONTEXT_FIELDS",
    "RECORD_CONTEXT",
    "SHOWN_VALUE_CHARS",
    "JSONFormatter",
    "RateLimitedLog",
    "RequestLog",
    "SecretFilter",
    "TextFormatter",
    "configure_logging",
    "redact_url",
    "request_context",
    "request_log",
    "secret_filter",
    "set_trace_ids",
    "shown",
    "truncate",
]

# Returns the current sampled span's (trace id, span id) in hex, or None; set by
# `core.ops.otel` when tracing is on, so that nothing here imports OpenTelemetry.
TraceIds = Callable[[], tuple[str, str] | None]
_trace_ids: TraceIds | None = None


def set_trace_ids(reader: TraceIds | None) -> None:
    """Give every record made from now on the trace and span ids `reader` returns (None: stop)."""
    global _trace_ids
    _trace_ids = reader


_base_factory = logging.getLogRecordFactory()


def _with_request(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """The log record factory: the record, with the request and span it was made in.

    A factory sees every record of every logger (a module logger in an action, a library),
    in the thread and context that made it, before any handler. The context is kept under one
    attribute of its own (`RECORD_CONTEXT`), not as ``action`` and ``ref``: logging refuses an
    ``extra`` key that the record already has, and the framework's own lines pass those.
    """
    record = _base_factory(*args, **kwargs)
    request = request_context.get()
    ids = None if _trace_ids is None else _trace_ids()
    if request is not None or ids is not None:
        action, ref = request if request is not None else (None, None)
        trace_id, span_id = ids if ids is not None else (None, None)
        record.__dict__[RECORD_CONTEXT] = (action, ref, trace_id, span_id)
    return record


def install_record_factory() -> None:
    """Make `_with_request` logging's record factory (once; whatever factory was set before
    still makes the record)."""
    global _base_factory
    current = logging.getLogRecordFactory()
    if current is not _with_request:
        _base_factory = current
        logging.setLogRecordFactory(_with_request)


install_record_factory()


def shown(value: Any) -> Any:
    """`value` as a log line may carry it: a string cut to `SHOWN_VALUE_CHARS` (saying how
    much was cut); anything else as it is."""
    if type(value) is str and len(value) > SHOWN_VALUE_CHARS:
        return truncate(value, SHOWN_VALUE_CHARS)
    return value


def record_context(record: logging.LogRecord) -> tuple[Any, Any, str | None, str | None]:
    """The (action, ref, trace id, span id) a record belongs to: its own ``action`` and ``ref``
    (``extra``) first, else the request it was made in; each None when unknown. The action
    and the ref are cut to `SHOWN_VALUE_CHARS`: the hub or a caller chose them."""
    fields = record.__dict__
    action, ref, trace_id, span_id = fields.get(RECORD_CONTEXT) or (None, None, None, None)
    return shown(fields.get("action", action)), shown(fields.get("ref", ref)), trace_id, span_id


def context_suffix(record: logging.LogRecord) -> str:
    """What a text line adds for the request it was made in: `` [action=A ref=R]``, as
    `ctx.logger` writes it (so one search for the ref finds every line of a request), and the
    trace and span ids when tracing is on. A record that names its request itself (``extra``
    with ``ref``: ctx.logger, the executor's own lines) says it in its message already."""
    context = record.__dict__.get(RECORD_CONTEXT)
    if context is None:
        return ""
    action, ref, trace_id, span_id = context
    parts = []
    if ref is not None and "ref" not in record.__dict__:
        parts.append(f"action={shown(action)} ref={shown(ref)}")
    if trace_id is not None:
        parts.append(f"trace_id={trace_id} span_id={span_id}")
    return f" [{' '.join(parts)}]" if parts else ""


# What every LogRecord has; anything else on a record came from a logging call's `extra`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)))


class SecretFilter(logging.Filter):
    """Replaces known secrets (the hub token) in every record that passes through."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: tuple[str, ...] = ()

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values being hidden."""
        return self._secrets

    def add(self, secret: str) -> None:
        """Start hiding `secret` (too-short values are ignored: they would mangle text)."""
        if len(secret) >= 4 and secret not in self._secrets:
            self._secrets = (*self._secrets, secret)

    def hide(self, text: str) -> str:
        """`text` with URL secrets and the known secrets replaced (for what leaves the process
        by another way than a log record: a span's exception event)."""
        text = redact_url(text)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

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
        if self._secrets:
            # The values a logging call passed in `extra` (an action name a caller chose, say)
            # are written out by the formatters too.
            for key, value in vars(record).items():
                if key not in _RECORD_ATTRIBUTES and isinstance(value, str):
                    for secret in self._secrets:
                        value = value.replace(secret, "***")
                    setattr(record, key, value)
        return True


secret_filter = SecretFilter()


_LINE_BREAKS_JSON_ALLOWS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def json_line(line: str) -> str:
    """A JSON text safe to write as one line: the line breaks that JSON allows raw inside
    strings but line-splitting tools honour (NEL, U+2028, U+2029) are escaped."""
    if line.isascii():
        return line
    for char, escaped in _LINE_BREAKS_JSON_ALLOWS.items():
        if char in line:
            line = line.replace(char, escaped)
    return line


class TextFormatter(logging.Formatter):
    """The readable format: ``time LEVEL logger: message``, one line per record.

    Much of what is logged was chosen by a caller or the hub (action names, refs, close
    reasons, excerpts of bad frames), so the message is escaped (``\\n``, ``\\x1b``, ...) and
    can never start a line that passes for another record. A traceback follows its record on
    lines that each begin with a tab, for the same reason.
    """

    def format(self, record: logging.LogRecord) -> str:
        """Render `record`: its one escaped line (with the request it was made in), then any
        traceback, indented."""
        record.message = printable(record.getMessage() + context_suffix(record))
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        details: list[str] = []
        if record.exc_text:
            details.append(record.exc_text)
        if record.stack_info:
            details.append(self.formatStack(record.stack_info))
        for text in details:
            line += "".join(f"\n\t{printable(part)}" for part in text.splitlines())
        return line


# What every LogRecord has by itself: anything else in a record's attributes came from ``extra``
# (or from a filter or factory that added it, which JSON logs show too).
_RECORD_ATTRIBUTES = frozenset(
    (
        *logging.LogRecord("", 0, "", 0, "", (), None).__dict__,
        "message",
        "asctime",
        "taskName",
        RECORD_CONTEXT,
    )
)


class JSONFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, message, the request it was made in
    (``action``, ``ref``, and ``trace_id``/``span_id`` when tracing is on) and every ``extra``
    key (one named like a key of the line itself is written as ``extra_<key>``)."""

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
        action, ref, trace_id, span_id = record_context(record)
        if action is not None:
            data["action"] = action
        if ref is not None:
            data["ref"] = ref
        if trace_id is not None:
            data["trace_id"], data["span_id"] = trace_id, span_id
        for name, value in record.__dict__.items():
            if name not in _RECORD_ATTRIBUTES and name not in ("action", "ref"):
                if name in CONTEXT_FIELDS:
                    value = shown(value)  # the framework's own fields may hold the hub's text
                data[EXTRA_PREFIX + name if name in JSON_KEYS else name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exception"] = record.exc_text
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        try:
            text = json.dumps(data, ensure_ascii=False, default=str, separators=(",", ":"))
        except (TypeError, ValueError):
            # An extra value JSON cannot hold (a dict with tuple keys, a cycle): its text.
            text = json.dumps(
                {key: value if key in _PLAIN_KEYS else str(value) for key, value in data.items()},
                ensure_ascii=False,
                separators=(",", ":"),
            )
        return json_line(text)


# The keys of a JSON line whose values are always plain text.
_PLAIN_KEYS = frozenset(("timestamp", "level", "logger", "message", "exception", "stack"))


_fast_handler: logging.StreamHandler[Any] | None = None
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    """Send logs to stderr in the chosen format, with the secret filter on the handler."""
    global _fast_handler
    handler: logging.StreamHandler[Any] = logging.StreamHandler(sys.stderr)
    handler.addFilter(secret_filter)
    if log_format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(TextFormatter(_TEXT_FORMAT))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    _fast_handler = handler
    # websockets logs every frame at DEBUG; keep its noise out unless asked for.
    logging.getLogger("websockets").setLevel(max(logging.INFO, root.level))
    # Alembic announces each of its plugins at INFO when it loads.
    logging.getLogger("alembic.runtime.plugins").setLevel(max(logging.WARNING, root.level))


class RateLimitedLog:
    """One kind of line that the hub or a caller can trigger at will, with a budget: at most
    `burst` lines per `interval` seconds, each cut to `chars` characters.

    The lines past the budget are counted, and the count joins the next line logged: ``(12
    more like it since the last line)``. Give each kind of line its own instance, so that a
    flood of one kind does not hide another.
    """

    def __init__(
        self,
        logger: logging.Logger,
        burst: int = 10,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        chars: int = MAX_SHOWN_CHARS,
    ) -> None:
        self._logger = logger
        self._burst = burst
        self._interval = interval
        self._clock = clock
        self._chars = chars
        self._window_start = -math.inf
        self._count = 0
        self._suppressed = 0

    def log(
        self, level: int, message: str, *args: Any, extra: dict[str, Any] | None = None
    ) -> None:
        """Log ``message % args`` at `level` (cut to length), unless the budget is used up."""
        now = self._clock()
        if now - self._window_start >= self._interval:
            self._window_start, self._count = now, 0
        if self._count >= self._burst:
            self._suppressed += 1
            return
        if not self._logger.isEnabledFor(level):
            return
        self._count += 1
        text = truncate(message % args if args else message, self._chars)
        if self._suppressed:
            text = f"{text} ({self._suppressed} more like it since the last line)"
            self._suppressed = 0
        # The text is the whole message: a % the hub put in it is not read as a format.
        self._logger.log(level, "%s", text, extra=extra)

    def warning(self, message: str, *args: Any, extra: dict[str, Any] | None = None) -> None:
        """`log` at WARNING."""
        self.log(logging.WARNING, message, *args, extra=extra)

    def info(self, message: str, *args: Any, extra: dict[str, Any] | None = None) -> None:
        """`log` at INFO."""
        self.log(logging.INFO, message, *args, extra=extra)

    def error(self, message: str, *args: Any, extra: dict[str, Any] | None = None) -> None:
        """`log` at ERROR."""
        self.log(logging.ERROR, message, *args, extra=extra)


def flush_time(now: float) -> float:
    """When a batch of request lines begun at loop time `now` is written: `FLUSH_SECONDS`
    later, rounded up to a whole `FLUSH_QUANTUM`."""
    return math.ceil((now + FLUSH_SECONDS) / FLUSH_QUANTUM) * FLUSH_QUANTUM


class RequestLog:
    """The one line per request (action, status, duration, ref), on the ``core.requests`` logger.

    This line is written for every request, so its cost is the framework's cost per request.
    When `configure_logging` owns the output (the service's normal set-up, nothing else
    attached), a request only records its four values; the lines gathered over
    `FLUSH_SECONDS` (or `FLUSH_LINES` lines, if sooner) are formatted, in the handler's
    format, and written together, skipping the LogRecord machinery. A replica under load wakes
    for a few requests at a time, so writing once per event-loop iteration would spend a system
    call and a pass through the loop on every two or three lines. The level and the ownership of
    the output are checked for a batch's first line, and the lines of a batch carry the time
    they are written: `FLUSH_SECONDS` after the batch's first answer, rounded up to a whole
    millisecond (`flush_time`), so the output stays in time order with other records.
    Whenever anyone else is listening (another handler, a filter, a test capturing logs),
    each line goes through `logging` as usual, at once. A ref is cut to `SHOWN_VALUE_CHARS`
    (the hub chose it).
    """

    def __init__(self) -> None:
        self._logger = logging.getLogger("core.requests")
        self._pending: list[tuple[str, int, float, str]] = []
        self._second = -1
        self._second_text = ""

    def write(self, action: str, status: int, seconds: float, ref: str) -> None:
        """Log one answered request."""
        pending = self._pending
        if pending:  # the batch's first line passed the checks below: so does this one
            pending.append((action, status, seconds, ref))
            if len(pending) >= FLUSH_LINES:
                self.flush()
            return
        logger = self._logger
        if not logger.isEnabledFor(logging.INFO):
            return
        handler = _fast_handler
        # With tracing on, each line goes through logging to carry its trace and span ids.
        if handler is None or _trace_ids is not None or not _owns_output(handler, logger):
            ref = shown(ref)
            duration_ms = round(seconds * 1000, 1)
            logger.info(
                "action=%s status=%d duration_ms=%.1f ref=%s",
                action,
                status,
                duration_ms,
                ref,
                extra={"action": action, "status": status, "duration_ms": duration_ms, "ref": ref},
            )
            return
        loop = asyncio.get_running_loop()
        loop.call_at(flush_time(loop.time()), self.flush)
        pending.append((action, status, seconds, ref))

    def flush(self) -> None:
        """Format and write the lines gathered so far (also called at exit)."""
        handler = _fast_handler
        if not self._pending or handler is None:
            return
        entries, self._pending = self._pending, []
        now = time.time()
        if handler.formatter.__class__ is JSONFormatter:
            lines = self._json_lines(entries, now)
        else:
            prefix = f"{self._timestamp(now)} INFO core.requests: "
            lines = [
                f"{prefix}action={action} status={status} duration_ms={duration} ref={ref}"
                if len(ref) <= SHOWN_VALUE_CHARS and action.isprintable() and ref.isprintable()
                else f"{prefix}action={printable(action)} status={status} "
                f"duration_ms={duration} ref={printable(shown(ref))}"
                for (action, status, _, ref), duration in zip(
                    entries, self._durations(entries), strict=True
                )
            ]
        text = "\n".join(lines)
        for secret in secret_filter.secrets:
            if secret in text:
                text = text.replace(secret, "***")
        try:
            handler.stream.write(text + "\n")
            handler.stream.flush()
        except (OSError, ValueError):
            pass  # the stream is gone (process exiting): nothing else to do with the lines

    def _json_lines(self, entries: list[tuple[str, int, float, str]], now: float) -> list[str]:
        timestamp = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
        head = f'{{"timestamp":"{timestamp}","level":"INFO","logger":"core.requests",'
        lines = []
        for (action, status, _, ref), duration in zip(
            entries, self._durations(entries), strict=True
        ):
            if len(ref) > SHOWN_VALUE_CHARS:
                ref = shown(ref)
            message = f"action={action} status={status} duration_ms={duration} ref={ref}"
            if (
                action.isprintable()
                and ref.isprintable()
                and '"' not in action
                and '"' not in ref
                and "\\" not in action
                and "\\" not in ref
            ):
                # Nothing to escape (printable excludes control characters and lone
                # surrogates): the line is put together as text, with the keys in the same
                # order as the encoded record below, without building and encoding a dict.
                lines.append(
                    f'{head}"message":"{message}","action":"{action}","ref":"{ref}",'
                    f'"status":{status},"duration_ms":{duration}}}'
                )
                continue
            record = {
                "timestamp": timestamp,
                "level": "INFO",
                "logger": "core.requests",
                "message": message,
                "action": action,
                "ref": ref,
                "status": status,
                "duration_ms": float(duration),
            }
            lines.append(json_line(json_codec.dumps(record)))
        return lines

    @staticmethod
    def _durations(entries: list[tuple[str, int, float, str]]) -> list[str]:
        """Each entry's ``duration_ms`` text, as ``%.1f`` of its rounded milliseconds."""
        return [f"{round(seconds * 1000, 1):.1f}" for _, _, seconds, _ in entries]

    def _timestamp(self, now: float) -> str:
        """``%(asctime)s`` as logging.Formatter renders it, cached for the current second."""
        second = int(now)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        return f"{self._second_text},{int((now - second) * 1000):03d}"


def _owns_output(handler: logging.StreamHandler[Any], logger: logging.Logger) -> bool:
    """True when `handler` on the root logger is the only place a request line can go."""
    handlers = logging.root.handlers
    return (
        len(handlers) == 1
        and handlers[0] is handler
        and not logger.handlers
        and not logger.filters
        and logger.propagate
        and len(handler.filters) == 1
    )


request_log = RequestLog()
atexit.register(request_log.flush)
