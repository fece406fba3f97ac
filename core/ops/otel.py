"""Tracing with OpenTelemetry: one consumer span per request, and the instrumentations.

Loaded only when `core.ops.tracing` finds tracing asked for and the SDK installed. Public
OpenTelemetry API only; the SDK is configured by the standard ``OTEL_*`` variables:

- the exporters are named by ``OTEL_TRACES_EXPORTER`` (comma-separated; ``otlp`` by default
  when an OTLP endpoint is set), looked up among the installed ``opentelemetry_traces_exporter``
  entry points; ``otlp`` is OTLP over HTTP (``http/protobuf``, the specification's default
  protocol, from requirements-tracing.txt), or over gRPC with ``OTEL_EXPORTER_OTLP_PROTOCOL=grpc``
  and opentelemetry-exporter-otlp-proto-grpc installed;
- the resource (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``), the sampler
  (``OTEL_TRACES_SAMPLER``, ``OTEL_TRACES_SAMPLER_ARG``), the batching (``OTEL_BSP_*``) and
  each exporter's settings (``OTEL_EXPORTER_OTLP_*``) are read by the SDK.

Each request is a span of kind CONSUMER, per OpenTelemetry's messaging conventions: named
``<action> process``, with ``messaging.system`` (``plugboard``), ``messaging.operation``
(``process``), ``messaging.destination.name`` (the action) and ``messaging.message.id`` (the
request's ``response_ref``). The span is a root: the hub carries no trace context, and a
``traceparent`` a caller put among the fields is the caller's data, which must never decide
where this replica's spans go or whether they are sampled. At the end it carries
``plugboard.response.status_code``; a 5xx answer sets the span's status to ERROR and
``error.type`` (the exception's class when run() raised, else the status code), and a 500 has
``plugboard.error_id`` (the id the caller and the log got) and the exception as an event,
with secrets hidden as in the log. A request that waited for a concurrency slot has
``plugboard.slot_wait_seconds``.

The span is current while the action runs (in its task, and in the worker thread a plain
``def run`` gets, which runs in a copy of its caller's context), so what the action does
through an instrumented library nests under it: SQLAlchemy's statements (switched on for the
service's engine when the database is used) and aiohttp's client requests (switched on when
the actions imported aiohttp), and every log line carries the trace and span ids.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Awaitable, Callable, Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from core.log import secret_filter, set_trace_ids
from core.version import VERSION

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["RequestTracing", "Tracing", "current_ids"]


class ExporterError(ValueError):
    """OTEL_TRACES_EXPORTER names an exporter, or a protocol, that is not installed here."""


logger = logging.getLogger(__name__)

EXPORTER_GROUP = "opentelemetry_traces_exporter"
# ``otlp`` in OTEL_TRACES_EXPORTER, by OTLP protocol: the entry point of its exporter.
OTLP_EXPORTERS = {"http/protobuf": "otlp_proto_http", "grpc": "otlp_proto_grpc"}
DEFAULT_OTLP_PROTOCOL = "http/protobuf"
MESSAGING_SYSTEM = "plugboard"
STATUS_CODE = "plugboard.response.status_code"
ERROR_ID = "plugboard.error_id"
SLOT_WAIT = "plugboard.slot_wait_seconds"
# Where a request's span handle is kept in the OpenTelemetry context, for `waited`/`failed`.
_REQUEST_KEY = otel_context.create_key("plugboard-request")
# The empty context a request's span starts from: it has no parent.
_ROOT = otel_context.Context()


def current_ids() -> tuple[str, str] | None:
    """The current span's trace and span ids in hex, when it is sampled (for log records)."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.trace_flags.sampled:
        return None
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")


def _qualified_name(kind: type[BaseException]) -> str:
    module = kind.__module__
    return kind.__qualname__ if module in ("builtins", "") else f"{module}.{kind.__qualname__}"


class _RequestSpan:
    """One request's span and the context token that made it current (a `RequestSpan`)."""

    __slots__ = ("failed", "span", "token", "waited")

    def __init__(self, span: trace.Span) -> None:
        self.span = span
        self.waited = 0.0
        self.failed = False
        context = otel_context.set_value(_REQUEST_KEY, self, trace.set_span_in_context(span))
        self.token = otel_context.attach(context)

    def end(self, status_code: int) -> None:
        """Record the status sent, end the span and restore the context it was started in."""
        span = self.span
        try:
            if span.is_recording():
                span.set_attribute(STATUS_CODE, status_code)
                if self.waited:
                    span.set_attribute(SLOT_WAIT, self.waited)
                if status_code >= 500:
                    if not self.failed:
                        span.set_attribute("error.type", str(status_code))
                    span.set_status(Status(StatusCode.ERROR, f"answered {status_code}"))
            span.end()
        finally:
            otel_context.detach(self.token)


class RequestTracing:
    """The executor's tracer (`core.execution.tracing.RequestTracer`)."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def start(self, action: str, ref: str) -> _RequestSpan:
        """Start the request's consumer span, with no parent, and make it current."""
        span = self._tracer.start_span(
            f"{action} process",
            context=_ROOT,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": MESSAGING_SYSTEM,
                "messaging.operation": "process",
                "messaging.operation.type": "process",
                "messaging.destination.name": action,
                "messaging.message.id": ref,
            },
        )
        return _RequestSpan(span)

    def waited(self, seconds: float) -> None:
        """Add a wait for a concurrency slot to the current request's span."""
        request = otel_context.get_value(_REQUEST_KEY)
        if isinstance(request, _RequestSpan):
            request.waited += seconds

    def failed(self, error_id: str) -> None:
        """Put the 500's error id, and the exception being handled if any, on the span."""
        request = otel_context.get_value(_REQUEST_KEY)
        if not isinstance(request, _RequestSpan) or not request.span.is_recording():
            return
        span = request.span
        span.set_attribute(ERROR_ID, error_id)
        error = sys.exc_info()[1]
        if error is None:
            return
        request.failed = True
        span.set_attribute("error.type", _qualified_name(type(error)))
        # What record_exception records, with the secrets hidden as the log hides them.
        span.add_event(
            "exception",
            {
                "exception.type": _qualified_name(type(error)),
                "exception.message": secret_filter.hide(str(error)),
                "exception.stacktrace": secret_filter.hide(
                    "".join(traceback.format_exception(error))
                ),
            },
        )


def _exporters(environ: Mapping[str, str]) -> list[SpanExporter]:
    """The exporters OTEL_TRACES_EXPORTER names (``otlp`` when only an endpoint is set)."""
    names = [
        name.strip()
        for name in environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")
        if name.strip() not in ("", "none")
    ]
    installed = {entry.name: entry for entry in entry_points(group=EXPORTER_GROUP)}
    exporters: list[SpanExporter] = []
    for name in names:
        entry_name = name
        if name == "otlp":
            protocol = (
                environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or DEFAULT_OTLP_PROTOCOL
            ).strip()
            if protocol not in OTLP_EXPORTERS:
                raise ExporterError(
                    f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol!r} is not supported here; "
                    f"use one of {', '.join(OTLP_EXPORTERS)}"
                )
            entry_name = OTLP_EXPORTERS[protocol]
        entry = installed.get(entry_name)
        if entry is None:
            raise ExporterError(
                f"OTEL_TRACES_EXPORTER: no installed exporter for {name!r} (entry point "
                f"{entry_name!r}; installed: {', '.join(sorted(installed)) or 'none'})"
            )
        exporters.append(entry.load()())
    return exporters


class Tracing:
    """The process's tracing: its tracer provider, the executor's tracer, instrumentations."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = RequestTracing(provider.get_tracer("core.execution", VERSION))

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Tracing:
        """Build the SDK's provider from the OTEL_* variables and make it the global one, so
        that instrumentations an action switches on itself report to it too."""
        exporters = _exporters(environ)
        # The resource, sampler and span limits come from the environment (the SDK reads it).
        provider = TracerProvider(resource=Resource.create())
        for exporter in exporters:
            provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        tracing = cls(provider)
        set_trace_ids(current_ids)
        logger.info(
            "tracing on: exporting to %s",
            ", ".join(type(exporter).__name__ for exporter in exporters),
        )
        return tracing

    def instrument_database(self, engine: Engine) -> None:
        """Trace the statements (and connections) of the service's engine, when SQLAlchemy's
        instrumentation is installed."""
        try:
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        except ImportError:
            logger.info(
                "opentelemetry-instrumentation-sqlalchemy is not installed: database "
                "statements are not traced"
            )
            return
        instrumentor = SQLAlchemyInstrumentor()
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()  # an earlier engine's (tests start several)
        # The instrumentation declares SQLAlchemy below 2.1 and would refuse 2.1 with an
        # error line; it hooks SQLAlchemy's event API, which 2.1 keeps, and
        # tests/core/ops/tracing_test.py checks the statement spans against the pinned version.
        instrumentor.instrument(engine=engine, tracer_provider=self.provider, skip_dep_check=True)

    def instrument_http_clients(self) -> None:
        """Trace aiohttp's client requests (and send their ``traceparent`` downstream) when
        the actions imported aiohttp and its instrumentation is installed."""
        if "aiohttp" not in sys.modules:
            return
        try:
            from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
        except ImportError:
            return
        AioHttpClientInstrumentor().instrument(tracer_provider=self.provider)

    def untraced(
        self, check: Callable[[], Awaitable[str | None]]
    ) -> Callable[[], Awaitable[str | None]]:
        """`check` run with the instrumentations silent: a readiness probe's ``SELECT 1``
        every few seconds is no request, and its spans would bury the requests' ones."""
        try:
            from opentelemetry.instrumentation.utils import suppress_instrumentation
        except ImportError:
            return check

        async def quiet() -> str | None:
            with suppress_instrumentation():
                return await check()

        return quiet

    def shutdown(self) -> None:
        """Export what is left and stop (also done at exit)."""
        set_trace_ids(None)
        self.provider.shutdown()
