"""Tracing with OpenTelemetry: one consumer span per request, what the action does under it,
the log lines that name it, and a caller's traceparent that never becomes its parent.

The tests that need the SDK skip, saying so, where requirements-tracing.txt is not installed;
CI installs it for them (.ci/run). The base suite checks the other side: without OTEL_*
variables, or without the SDK, nothing of OpenTelemetry is loaded (tests/entrypoint_test.py).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import unittest
import urllib.request
from typing import Any, ClassVar

from aiohttp import ClientSession, web
from pydantic import Field
from sqlalchemy import Engine, create_engine, text

from core import ActionResponse, ActionRunner, Context
from core.log import JSONFormatter, TextFormatter, secret_filter, set_trace_ids
from core.ops.tracing import requested
from tests.core.log_test import records_kept
from tests.core.ops.health_test import OneAtATime
from tests.fixtures.observed import FOLDER as OBSERVED_FOLDER
from tests.support import ROOT, hub_and_consumer, wait_until

SDK = importlib.util.find_spec("opentelemetry") is not None and (
    importlib.util.find_spec("opentelemetry.sdk") is not None
)
NO_SDK = (
    "the OpenTelemetry SDK is not installed: pip install -r requirements-tracing.txt "
    "(CI runs these tests with it)"
)
SECRET = "tracing-secret-value-1234"
logger = logging.getLogger(__name__)


class Query(ActionRunner):
    """A statement on an engine of the test's, from a worker thread."""

    engine: ClassVar[Engine]

    @classmethod
    def description(cls) -> str:
        return "Queries"

    def run(self, ctx: Context) -> ActionResponse:
        with Query.engine.connect() as connection:
            number = connection.execute(text("SELECT 42")).scalar_one()
        logger.info("queried %d", number)
        return ActionResponse(fields={"number": number})


class Fetch(ActionRunner):
    """An HTTP call with aiohttp's client."""

    url: str = Field(description="Where to")

    @classmethod
    def description(cls) -> str:
        return "Fetches"

    async def run(self, ctx: Context) -> ActionResponse:
        async with ClientSession() as session, session.get(self.url) as response:
            return ActionResponse(fields={"status": response.status})


class Boom(ActionRunner):
    """Raises, with a secret in the message."""

    @classmethod
    def description(cls) -> str:
        return "Raises"

    async def run(self, ctx: Context) -> ActionResponse:
        raise ValueError(f"failed with {SECRET}")


class Slow(ActionRunner):
    """Runs past its time limit."""

    timeout_seconds = 0.05

    @classmethod
    def description(cls) -> str:
        return "Too slow"

    async def run(self, ctx: Context) -> ActionResponse:
        await asyncio.sleep(10)
        return ActionResponse()


class Traced(ActionRunner):
    """Takes a traceparent among its fields, as a caller might send one."""

    traceparent: str = Field(default="", description="The caller's trace context")

    @classmethod
    def description(cls) -> str:
        return "Has a traceparent field"

    async def run(self, ctx: Context) -> ActionResponse:
        logger.info("running")
        return ActionResponse()


ACTIONS: dict[str, type[ActionRunner]] = {
    cls.__name__: cls for cls in (Query, Fetch, Boom, Slow, OneAtATime, Traced)
}


class RequestedTest(unittest.TestCase):
    """Which OTEL_* settings ask for tracing (no SDK needed)."""

    def test_what_asks_for_it(self) -> None:
        cases = {
            (): False,
            (("OTEL_SERVICE_NAME", "notes"),): False,
            (("OTEL_TRACES_EXPORTER", "console"),): True,
            (("OTEL_TRACES_EXPORTER", "none"),): False,
            (("OTEL_TRACES_EXPORTER", " none , "),): False,
            (("OTEL_TRACES_EXPORTER", "none,otlp"),): True,
            (("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),): True,
            (("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/v1/traces"),): True,
            (("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_TRACES_EXPORTER", "none")): (
                False
            ),
            (("OTEL_TRACES_EXPORTER", "console"), ("OTEL_SDK_DISABLED", "TRUE")): False,
            (("OTEL_TRACES_EXPORTER", "console"), ("OTEL_SDK_DISABLED", "false")): True,
        }
        for environ, expected in cases.items():
            with self.subTest(environ=environ):
                self.assertIs(requested(dict(environ)), expected)


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def spans_printed(stdout: str) -> list[dict[str, Any]]:
    """The spans ConsoleSpanExporter printed (JSON objects), among the other output."""
    decoder = json.JSONDecoder()
    spans, index = [], 0
    while (start := stdout.find("{", index)) >= 0:
        span, index = decoder.raw_decode(stdout, start)
        spans.append(span)
    return spans


class LocalServiceTest(unittest.TestCase):
    """``python entrypoint.py --local``, with OTEL_* set, called once through the local hub."""

    def service_environment(self, **extra: str) -> dict[str, str]:
        """The environment of a ``python entrypoint.py --local`` serving the observed
        fixtures on a throw-away SQLite database."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("OTEL_", "POSTGRES_"))
            and key not in ("WEBSOCKET_URL", "TOKEN", "DATABASE_URL", "ACTIONS_PATH", "HEALTH_PORT")
        }
        workdir = tempfile.mkdtemp(prefix="tracing_")
        self.addCleanup(shutil.rmtree, workdir, True)
        env.update(
            DATABASE_URL=f"sqlite:///{workdir}/service.sqlite3",
            ACTIONS_PATH=str(OBSERVED_FOLDER),
            LOG_LEVEL="INFO",
            **extra,
        )
        return env

    def run_service(self, env: dict[str, str], action: str, fields: dict[str, Any]) -> Any:
        """Start it, call `action` once when it has joined, stop it with SIGTERM; the answer,
        its stdout and its stderr."""
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "entrypoint.py", "--local", "--local-port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.addCleanup(lambda: process.poll() is None and process.kill())
        assert process.stdout is not None and process.stderr is not None
        banner = process.stdout.readline()  # printed once the hub listens
        self.assertIn(f"127.0.0.1:{port}", banner)
        early: list[str] = []
        while not early or "joined service" not in early[-1]:
            line = process.stderr.readline()
            self.assertTrue(line, "".join(early))
            early.append(line)
        body = json.dumps({"service_id": 1, "action": action, "fields": fields}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/", body, {"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
        stderr = "".join(early) + stderr
        self.assertEqual(process.returncode, 0, stderr)
        return answer, banner + stdout, stderr

    @unittest.skipUnless(SDK, NO_SDK)
    def test_console_prints_a_consumer_span_with_its_database_statement_under_it(self) -> None:
        env = self.service_environment(OTEL_TRACES_EXPORTER="console", OTEL_SERVICE_NAME="observed")
        answer, stdout, stderr = self.run_service(env, "QueryDatabase", {})
        self.assertEqual(answer["status"], "success", stderr)
        spans = spans_printed(stdout)
        [consumer] = [span for span in spans if span["kind"] == "SpanKind.CONSUMER"]
        self.assertEqual(consumer["name"], "QueryDatabase process")
        self.assertIsNone(consumer["parent_id"])
        attributes = consumer["attributes"]
        self.assertEqual(
            {key: attributes[key] for key in ("messaging.system", "messaging.operation")},
            {"messaging.system": "plugboard", "messaging.operation": "process"},
        )
        self.assertEqual(attributes["plugboard.response.status_code"], 200)
        self.assertEqual(consumer["resource"]["attributes"]["service.name"], "observed")
        statements = [
            span
            for span in spans
            if span["parent_id"] == consumer["context"]["span_id"]
            and "SELECT 42" in span["attributes"].get("db.statement", "")
        ]
        self.assertEqual(len(statements), 1, spans)
        self.assertEqual(statements[0]["context"]["trace_id"], consumer["context"]["trace_id"])
        # The migration and the start-up check ran before any request: none of theirs.
        self.assertEqual(len({span["context"]["trace_id"] for span in spans}), 1, spans)
        # The module logger's line names the request, its trace and its span.
        trace_id = consumer["context"]["trace_id"].removeprefix("0x")
        ref = attributes["messaging.message.id"]
        [line] = [line for line in stderr.splitlines() if "the database said 42" in line]
        self.assertIn(f"[action=QueryDatabase ref={ref} trace_id={trace_id} span_id=", line)

    @unittest.skipUnless(SDK, NO_SDK)
    def test_an_exporter_that_is_not_installed_stops_start_up(self) -> None:
        env = self.service_environment(OTEL_TRACES_EXPORTER="zipkin_json")
        result = subprocess.run(
            [sys.executable, "entrypoint.py", "--local", "--local-port", str(free_port())],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertEqual(result.stderr.count("\n"), 1, result.stderr)
        self.assertIn(
            "OTEL_TRACES_EXPORTER: no installed exporter for 'zipkin_json'", result.stderr
        )

    @unittest.skipIf(SDK, "the OpenTelemetry SDK is installed here")
    def test_asked_for_without_the_sdk_it_warns_once_and_loads_nothing(self) -> None:
        env = self.service_environment(OTEL_TRACES_EXPORTER="console", PYTHONPROFILEIMPORTTIME="1")
        answer, stdout, stderr = self.run_service(env, "Charge", {"customer_id": 3})
        self.assertEqual(answer["status"], "success", stderr)
        self.assertEqual(stderr.count("the OpenTelemetry SDK is not installed"), 1, stderr)
        self.assertIn("pip install -r requirements-tracing.txt", stderr)
        imported = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", stderr, re.MULTILINE)
        self.assertIn("core.ops.tracing", imported)
        self.assertEqual([name for name in imported if name.startswith("opentelemetry")], [])
        self.assertNotIn("{", stdout)


@unittest.skipUnless(SDK, NO_SDK)
class TracingTest(unittest.IsolatedAsyncioTestCase):
    """In process, with an in-memory exporter: the spans and what they carry."""

    async def asyncSetUp(self) -> None:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )

        from core.ops.otel import Tracing, current_ids

        self.exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracing = Tracing(provider)
        set_trace_ids(current_ids)
        self.addCleanup(set_trace_ids, None)
        self.addCleanup(provider.shutdown)

    async def call(self, *requests: tuple[str, dict[str, Any]], **overrides: Any) -> list[Any]:
        """Answer `requests` (concurrently) by a traced consumer; the payloads it sent."""
        async with hub_and_consumer(ACTIONS, **overrides) as (hub, consumer):
            consumer.client.executor.tracer = self.tracing.tracer
            answers = await asyncio.gather(
                *(hub.call(action, fields) for action, fields in requests)
            )
        return [answer.payload for answer in answers]

    def spans(self, name: str) -> list[Any]:
        """The finished spans called `name`."""
        return [span for span in self.exporter.get_finished_spans() if span.name == name]

    async def test_a_request_is_a_root_consumer_span_that_its_statements_and_logs_nest_under(
        self,
    ) -> None:
        from opentelemetry.trace import SpanKind, StatusCode

        Query.engine = create_engine("sqlite://")
        self.addCleanup(Query.engine.dispose)
        self.tracing.instrument_database(Query.engine)
        with records_kept() as kept:
            [answer] = await self.call(("Query", {}))
        self.assertEqual(answer["fields"], {"number": 42})
        [span] = self.spans("Query process")
        self.assertEqual(span.kind, SpanKind.CONSUMER)
        self.assertIsNone(span.parent)
        self.assertEqual(span.status.status_code, StatusCode.UNSET)
        attributes = dict(span.attributes)
        ref = attributes["messaging.message.id"]
        self.assertEqual(
            attributes,
            {
                "messaging.system": "plugboard",
                "messaging.operation": "process",
                "messaging.operation.type": "process",
                "messaging.destination.name": "Query",
                "messaging.message.id": ref,
                "plugboard.response.status_code": 200,
            },
        )
        [statement] = [
            child
            for child in self.exporter.get_finished_spans()
            if child.attributes.get("db.statement") == "SELECT 42"
        ]
        self.assertEqual(statement.parent.span_id, span.context.span_id)
        self.assertEqual(statement.context.trace_id, span.context.trace_id)
        # The line of the action's module logger, in its worker thread, names both.
        [record] = kept.named(__name__)
        trace_id, span_id = (
            format(span.context.trace_id, "032x"),
            format(span.context.span_id, "016x"),
        )
        line = json.loads(JSONFormatter().format(record))
        self.assertEqual(
            {key: line[key] for key in ("action", "ref", "trace_id", "span_id")},
            {"action": "Query", "ref": ref, "trace_id": trace_id, "span_id": span_id},
        )
        self.assertTrue(
            TextFormatter("%(message)s")
            .format(record)
            .endswith(f"[action=Query ref={ref} trace_id={trace_id} span_id={span_id}]")
        )
        # The request line too (it goes through logging while tracing is on).
        [request_line] = kept.named("core.requests")
        self.assertEqual(json.loads(JSONFormatter().format(request_line))["trace_id"], trace_id)

    async def test_an_outgoing_aiohttp_call_nests_under_the_request_and_carries_its_trace(
        self,
    ) -> None:
        from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

        received: list[str | None] = []

        async def downstream(request: web.Request) -> web.Response:
            received.append(request.headers.get("traceparent"))
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_get("/", downstream)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.addAsyncCleanup(runner.cleanup)
        port = runner.addresses[0][1]
        self.tracing.instrument_http_clients()
        self.addCleanup(AioHttpClientInstrumentor().uninstrument)

        [answer] = await self.call(("Fetch", {"url": f"http://127.0.0.1:{port}/"}))
        self.assertEqual(answer["fields"], {"status": 200})
        [span] = self.spans("Fetch process")
        [client] = [s for s in self.exporter.get_finished_spans() if s.kind.name == "CLIENT"]
        self.assertEqual(client.parent.span_id, span.context.span_id)
        [traceparent] = received
        self.assertIsNotNone(traceparent)
        self.assertIn(format(span.context.trace_id, "032x"), traceparent or "")

    async def test_a_traceparent_among_the_fields_is_never_a_parent(self) -> None:
        caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
        fields = {"traceparent": f"00-{caller_trace}-00f067aa0ba902b7-01"}
        # A field the action declares, and one it does not (ignored by the schema).
        await self.call(("Traced", fields), ("Query", {"traceparent": fields["traceparent"]}))
        for span in (*self.spans("Traced process"), *self.spans("Query process")):
            self.assertIsNone(span.parent)
            self.assertNotEqual(format(span.context.trace_id, "032x"), caller_trace)

    async def test_a_500_carries_the_error_id_and_the_exception_without_secrets(self) -> None:
        from opentelemetry.trace import StatusCode

        secret_filter.add(SECRET)
        [answer] = await self.call(("Boom", {}))
        self.assertEqual(answer["status_code"], 500)
        [span] = self.spans("Boom process")
        attributes = span.attributes
        self.assertEqual(attributes["plugboard.response.status_code"], 500)
        self.assertEqual(attributes["error.type"], "ValueError")
        self.assertEqual(attributes["plugboard.error_id"], answer["message"]["error_id"])
        self.assertEqual(span.status.status_code, StatusCode.ERROR)
        [event] = span.events
        self.assertEqual(event.name, "exception")
        self.assertEqual(event.attributes["exception.type"], "ValueError")
        self.assertEqual(event.attributes["exception.message"], "failed with ***")
        self.assertIn("raise ValueError", event.attributes["exception.stacktrace"])
        self.assertNotIn(SECRET, event.attributes["exception.stacktrace"])

    async def test_a_time_out_an_unknown_action_and_a_bad_request(self) -> None:
        from opentelemetry.trace import StatusCode

        slow, unknown, bad = await self.call(("Slow", {}), ("No\nSuch" * 50, {}), ("Query", [1, 2]))
        self.assertEqual((slow["status_code"], unknown["status_code"]), (504, 404))
        [timed_out] = self.spans("Slow process")
        self.assertEqual(timed_out.attributes["error.type"], "504")
        self.assertEqual(timed_out.status.status_code, StatusCode.ERROR)
        # A name the caller chose is not a span name: all unknown actions share one.
        [not_found] = self.spans("(unknown) process")
        self.assertEqual(not_found.attributes["plugboard.response.status_code"], 404)
        self.assertEqual(not_found.status.status_code, StatusCode.UNSET)
        self.assertNotIn("error.type", not_found.attributes)
        # Fields the schema refuses: 400, the caller's doing, not an error of the service.
        self.assertEqual(bad["status_code"], 400)
        [refused] = self.spans("Query process")
        self.assertEqual(refused.attributes["plugboard.response.status_code"], 400)
        self.assertEqual(refused.status.status_code, StatusCode.UNSET)

    async def test_the_wait_for_a_slot_is_on_the_span(self) -> None:
        OneAtATime.gate = asyncio.Event()
        async with hub_and_consumer(ACTIONS) as (hub, consumer):
            consumer.client.executor.tracer = self.tracing.tracer
            first = asyncio.ensure_future(hub.request("OneAtATime", {}))
            second = asyncio.ensure_future(hub.request("OneAtATime", {}))
            stats = consumer.client.executor.stats["OneAtATime"]
            await wait_until(lambda: stats.waiting == 1)
            OneAtATime.gate.set()
            await asyncio.gather(first, second)
        waits = [
            span.attributes.get("plugboard.slot_wait_seconds")
            for span in self.spans("OneAtATime process")
        ]
        self.assertEqual(waits.count(None), 1)
        [waited] = [wait for wait in waits if wait is not None]
        self.assertGreater(waited, 0.0)
        self.assertAlmostEqual(waited, stats.wait_seconds, places=6)

    async def test_a_readiness_check_made_untraced_makes_no_span(self) -> None:
        engine = create_engine("sqlite://")
        self.addCleanup(engine.dispose)
        self.tracing.instrument_database(engine)

        async def check() -> str | None:
            def ping() -> None:
                with engine.connect() as connection:
                    connection.execute(text("SELECT 1"))

            await asyncio.to_thread(ping)
            return None

        self.assertIsNone(await self.tracing.untraced(check)())
        self.assertEqual(self.exporter.get_finished_spans(), ())
        await check()
        self.assertNotEqual(self.exporter.get_finished_spans(), ())


if __name__ == "__main__":
    unittest.main()
