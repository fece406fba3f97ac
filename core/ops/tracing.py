"""Whether to trace, decided from the standard OpenTelemetry variables without loading it.

Tracing is optional: its packages are in ``requirements-tracing.txt``, not in the image's
requirements. It is on when the OpenTelemetry SDK is installed and the environment asks for
spans to go somewhere: ``OTEL_TRACES_EXPORTER`` names an exporter other than ``none``, or an
OTLP endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``;
the exporter is then ``otlp``, the specification's default). ``OTEL_SDK_DISABLED=true``
turns it off. Everything else (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_TRACES_SAMPLER`` and ``OTEL_TRACES_SAMPLER_ARG``, ``OTEL_BSP_*``, the exporters'
own variables) is read by the SDK itself.

Only this module is imported at start-up: with tracing off, or without the SDK, nothing of
OpenTelemetry is loaded, so a replica's start-up time and memory stay as they are.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.ops.otel import Tracing

__all__ = ["TracingError", "requested", "start_tracing"]

logger = logging.getLogger(__name__)

# Any of these, set, asks for spans to be exported.
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
INSTALL_HINT = "pip install -r requirements-tracing.txt"


class TracingError(Exception):
    """The OTEL_* variables ask for something that cannot be set up (an unknown exporter)."""


def requested(environ: Mapping[str, str]) -> bool:
    """Whether `environ` asks for traces to be exported."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = environ.get("OTEL_TRACES_EXPORTER")
    if exporters is not None:
        return any(name.strip() not in ("", "none") for name in exporters.split(","))
    return any(environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def start_tracing(environ: Mapping[str, str]) -> Tracing | None:
    """The process's tracing, set up from `environ`, or None when it is off.

    Asked for without the SDK installed, tracing stays off with one warning that says how to
    install it. Raises `TracingError` for a setting the SDK cannot honour.
    """
    if not requested(environ):
        return None
    try:
        # Looking for the package imports nothing; importing it without the SDK would load
        # whatever part of OpenTelemetry is there before failing.
        if importlib.util.find_spec("opentelemetry") is None:
            raise ImportError(name="opentelemetry")
        from core.ops import otel
    except ImportError as error:
        if not (error.name or "").startswith("opentelemetry"):
            raise
        logger.warning(
            "the OTEL_* variables ask for tracing, but the OpenTelemetry SDK is not installed "
            "(%s): tracing is off",
            INSTALL_HINT,
        )
        return None
    try:
        return otel.Tracing.from_environment(environ)
    except otel.ExporterError as error:
        raise TracingError(str(error)) from None
