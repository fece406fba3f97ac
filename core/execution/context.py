"""`Context`: what an action's ``run(self, ctx)`` is handed for one request.

One is made per request, so it is small: its fields are set once, and the costlier parts
(the bound logger, the `threading.Event` behind `cancelled`) are built only when an action
first asks for them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, MutableMapping
from types import SimpleNamespace
from typing import Any

from core.log import shown

__all__ = ["Context", "ContextLogger", "State"]

# Guards the lazy creation of a context's cancellation event (rare: only when read).
_event_lock = threading.Lock()


class State(SimpleNamespace):
    """The resources the lifespan functions opened, by attribute: ``ctx.state.http``.

    One `State` per process, shared by every request (so what is put here must be safe to
    use from concurrent requests, as an HTTP client pool or a database engine is).
    """

    def __getattr__(self, name: str) -> Any:
        # Only called for a missing attribute: say where it should have come from.
        raise AttributeError(
            f"the state has no {name!r}: a @lifespan function sets it "
            "(state.NAME = ...) before its yield"
        )


class ContextLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger bound to one request: every line carries its action and ref.

    In the text a line ends with ``[action=NAME ref=REF]`` (the request line's ``ref=REF``
    too, so one search finds every line of a request); JSON logs carry them as the
    ``action`` and ``ref`` fields.
    """

    def __init__(self, logger: logging.Logger, action: str, ref: str) -> None:
        ref = shown(ref)  # the hub chose it: a line shows a bounded part
        self._fields = {"action": action, "ref": ref}
        super().__init__(logger, self._fields)
        self._action = action
        self._ref = ref

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        """Log `msg` with the request's action and ref (in the text and as fields)."""
        if not self.logger.isEnabledFor(level):
            return
        if len(args) == 1 and isinstance(args[0], Mapping) and args[0]:
            # logging's "%(name)s" form: format it here, so the suffix can follow.
            msg, args = str(msg) % args[0], ()
        # The suffix is one more argument, so a % in the action's text or in the ref is never
        # read as a format.
        if args:
            msg, args = f"{msg} [action=%s ref=%s]", (*args, self._action, self._ref)
        else:
            msg, args = "%s [action=%s ref=%s]", (msg, self._action, self._ref)
        extra = kwargs.get("extra")
        kwargs["extra"] = {**extra, **self._fields} if extra else self._fields
        # Report the caller's line, not this method's.
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
        self.logger.log(level, msg, *args, **kwargs)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        """Unused: `log` does the work (kept for LoggerAdapter's interface)."""
        return msg, kwargs


class Context:
    """One request, as its action sees it: ``async def run(self, ctx)`` or ``def run(self, ctx)``.

    - `ref`: the request's ``response_ref`` (unique per request on the hub);
    - `action`: the action's name on the hub;
    - `deadline`: when its time limit passes, on the `time.monotonic()` clock, and
      `remaining()`: the seconds left until then (0 once passed);
    - `logger`: a logger whose every line carries the action and the ref;
    - `state`: what the ``@lifespan`` functions opened at start-up;
    - `cancelled` / `is_cancelled()`: set once the service gave up on the request (its time
      limit passed and it was answered 504, or the service shut down and answered 503). An
      ``async def run`` is cancelled as well (`asyncio.CancelledError` at its next await); a
      plain ``def run`` keeps its worker thread until it returns, so a long one should check
      `is_cancelled()` between steps, or wait on ``ctx.cancelled.wait(seconds)`` instead of
      `time.sleep`, and stop early.
    """

    __slots__ = (
        "_cancelled",
        "_event",
        "_logger",
        "_logger_name",
        "action",
        "deadline",
        "ref",
        "state",
    )

    ref: str
    action: str
    deadline: float
    state: State
    _logger: ContextLogger
    _event: threading.Event

    def __init__(
        self, ref: str, action: str, deadline: float, state: State, logger_name: str
    ) -> None:
        self.ref = ref
        self.action = action
        self.deadline = deadline
        self.state = state
        self._logger_name = logger_name
        self._cancelled = False

    def __repr__(self) -> str:
        return f"Context(action={self.action!r}, ref={self.ref!r})"

    def remaining(self) -> float:
        """Seconds left before the time limit (0.0 once it has passed)."""
        left = self.deadline - time.monotonic()
        return left if left > 0.0 else 0.0

    @property
    def logger(self) -> ContextLogger:
        """A logger bound to this request (built on first use)."""
        try:
            return self._logger
        except AttributeError:
            self._logger = ContextLogger(
                logging.getLogger(self._logger_name), self.action, self.ref
            )
            return self._logger

    def is_cancelled(self) -> bool:
        """True once the service gave up on this request (504 or shutdown 503)."""
        return self._cancelled

    @property
    def cancelled(self) -> threading.Event:
        """A `threading.Event` set when the service gives up on this request (made on first
        use): a worker thread can ``wait(seconds)`` on it instead of sleeping."""
        try:
            return self._event
        except AttributeError:
            pass
        with _event_lock:
            try:
                return self._event
            except AttributeError:
                event = threading.Event()
                self._event = event
        # Published before the flag is read: either cancel() sees the event and sets it, or
        # this reads the flag it set first.
        if self._cancelled:
            event.set()
        return event

    def cancel(self) -> None:
        """Mark the request given up (the executor calls this when it answers 504 or 503)."""
        self._cancelled = True
        try:
            event = self._event
        except AttributeError:
            return
        event.set()
