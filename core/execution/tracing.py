"""What the executor asks of a request tracer (`core.ops.otel` is the one with OpenTelemetry).

The executor knows only this interface, so it imports nothing of OpenTelemetry: without the
SDK, or with tracing off, its tracer is None and a request pays one comparison for it.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["RequestSpan", "RequestTracer"]


class RequestSpan(Protocol):
    """One request's span, current in its task (and in the worker thread it may run in)."""

    def end(self, status_code: int) -> None:
        """Record the status code the caller was sent and end the span."""


class RequestTracer(Protocol):
    """Starts a span for each request and records what happens to it."""

    def start(self, action: str, ref: str) -> RequestSpan:
        """Start the request's span and make it current in the calling task's context."""

    def waited(self, seconds: float) -> None:
        """The current request waited `seconds` for a concurrency slot."""

    def failed(self, error_id: str) -> None:
        """The current request is answered 500 with `error_id`; called inside the ``except``
        of the exception run() raised, if it raised."""
