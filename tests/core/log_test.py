"""Log formats and secret redaction."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import math
import re
import sys
import unittest
from collections.abc import Iterator

from hypothesis import assume, given, settings
from hypothesis import strategies as st

# At module level: the service resolves an action's return annotation in its module.
from core import ActionResponse, Context
from core.log import (
    RECORD_CONTEXT,
    JSONFormatter,
    RateLimitedLog,
    SecretFilter,
    TextFormatter,
    redact_url,
    truncate,
)
from core.model.registry import discover
from core.model.runner import ActionRunner
from tests.fixtures.observed import FOLDER as OBSERVED_FOLDER
from tests.support import LogCapture, hub_and_consumer, on_root_logger


class RedactionTest(unittest.TestCase):
    def test_redact_url(self) -> None:
        self.assertEqual(
            redact_url("wss://hub/websocket?token=s3cr3t&actions=%7B%7D"),
            "wss://hub/websocket?token=***&actions=%7B%7D",
        )
        self.assertEqual(redact_url("ws://h/ws?a=1&token=abc"), "ws://h/ws?a=1&token=***")
        self.assertEqual(redact_url("ws://h/ws"), "ws://h/ws")

    def test_secret_filter_hides_secrets_in_messages_and_tracebacks(self) -> None:
        secrets = SecretFilter()
        secrets.add("topsecretvalue")
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "got %s", ("topsecretvalue",), None
        )
        try:
            raise ValueError("failed with topsecretvalue")
        except ValueError:
            record.exc_info = sys.exc_info()
        secrets.filter(record)
        self.assertEqual(record.getMessage(), "got ***")
        self.assertNotIn("topsecretvalue", record.exc_text or "")

    def test_secret_filter_hides_secrets_in_extra_values(self) -> None:
        # A caller chooses the action name a request line carries in `extra`.
        secrets = SecretFilter()
        secrets.add("topsecretvalue")
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "request", (), None)
        record.action = "steal-topsecretvalue"
        record.count = 3
        secrets.filter(record)
        self.assertEqual((record.action, record.count), ("steal-***", 3))
        self.assertEqual(record.name, "x")
        self.assertNotIn("topsecretvalue", JSONFormatter().format(record))

    def test_truncate(self) -> None:
        self.assertEqual(truncate("abc", 5), "abc")
        self.assertEqual(truncate("abcdefgh", 3), "abc... (5 more characters)")

    def test_rate_limit(self) -> None:
        logger = logging.getLogger("tests.rate")
        capture = LogCapture()
        with capture.installed():
            limited = RateLimitedLog(logger, burst=3, interval=60)
            for index in range(10):
                limited.warning("bad %d", index)
        self.assertEqual(len(capture.lines), 3)

    def test_what_was_not_logged_is_counted_into_the_next_line(self) -> None:
        now = [0.0]
        limited = RateLimitedLog(logging.getLogger("tests.rate"), 2, 60.0, lambda: now[0])
        with LogCapture().installed() as capture:
            for index in range(7):
                limited.info("flood %d", index)
            now[0] = 59.9
            limited.info("still in the window")
            now[0] = 60.0
            limited.error("next window %d", 7)
            limited.error("once more")
        self.assertEqual(
            capture.lines,
            [
                "INFO tests.rate: flood 0",
                "INFO tests.rate: flood 1",
                "ERROR tests.rate: next window 7 (6 more like it since the last line)",
                "ERROR tests.rate: once more",
            ],
        )

    def test_rate_limited_lines_are_cut_and_read_no_format_from_what_they_carry(self) -> None:
        limited = RateLimitedLog(logging.getLogger("tests.rate"))
        with LogCapture().installed() as capture:
            limited.warning("ref %s", "%s%d" + "r" * 100_000)
            limited.warning("r" * 100_000)
        self.assertTrue(capture.lines[0].startswith("WARNING tests.rate: ref %s%drrr"))
        self.assertTrue(all(len(line) < 300 for line in capture.lines), capture.lines)
        self.assertTrue(capture.lines[1].endswith("(99800 more characters)"))

    def test_values_the_hub_chose_are_cut_in_both_formats(self) -> None:
        ref = "r" * 1_000_000
        record = logging.LogRecord("core.x", logging.INFO, "", 0, "answered", None, None)
        record.__dict__.update(ref=ref, action="A" * 5000, event="e" * 5000)
        line = JSONFormatter().format(record)
        self.assertLess(len(line), 1000)
        self.assertTrue(json.loads(line)["ref"].endswith("(999800 more characters)"))
        inside = logging.LogRecord("core.x", logging.INFO, "", 0, "inside", None, None)
        inside.__dict__[RECORD_CONTEXT] = ("Echo", ref, None, None)
        for formatter in (TextFormatter("%(message)s"), JSONFormatter()):
            with self.subTest(formatter=type(formatter).__name__):
                self.assertLess(len(formatter.format(inside)), 1000)


class JSONLogTest(unittest.IsolatedAsyncioTestCase):
    async def test_json_lines_parse_carry_request_fields_and_no_token(self) -> None:
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(JSONFormatter())
        from core.log import secret_filter

        handler.addFilter(secret_filter)
        root = logging.getLogger()
        root.addHandler(handler)
        previous = root.level
        root.setLevel(logging.INFO)
        try:
            async with hub_and_consumer() as (hub, _):
                token = next(iter(hub.tokens))
                await hub.request("Echo", {"message": "json"})
        finally:
            root.removeHandler(handler)
            root.setLevel(previous)
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        self.assertTrue(lines)
        for line in lines:
            self.assertTrue({"timestamp", "level", "logger", "message"} <= set(line))
        requests = [line for line in lines if line["logger"] == "core.requests"]
        self.assertEqual(len(requests), 1)
        self.assertEqual((requests[0]["action"], requests[0]["status"]), ("Echo", 200))
        self.assertIn("duration_ms", requests[0])
        self.assertIn("ref", requests[0])
        self.assertNotIn(token, stream.getvalue())


@contextlib.contextmanager
def logging_restored() -> Iterator[None]:
    """Put back the root logger's handlers and level, stderr and the request log's handler,
    which configure_logging and the tests change."""
    from core import log

    root = logging.getLogger()
    saved = (list(root.handlers), root.level, sys.stderr, log._fast_handler)
    try:
        yield
    finally:
        handlers, level, stderr, fast = saved
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        sys.stderr = stderr
        log._fast_handler = fast


class WatchedStream(io.StringIO):
    """stderr for a test: counts its writes and sets `written` at each."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.written = asyncio.Event()

    def write(self, text: str) -> int:
        self.writes += 1
        self.written.set()
        return super().write(text)

    async def next_write(self) -> str:
        """Wait for a write; return everything written so far."""
        await asyncio.wait_for(self.written.wait(), 10)
        self.written.clear()
        return self.getvalue()


class RequestLogFastPathTest(unittest.IsolatedAsyncioTestCase):
    """With configure_logging owning stderr, request lines skip logging but look the same,
    and the lines of a short window are written together."""

    async def asyncSetUp(self) -> None:
        self.enterContext(logging_restored())
        self.stream = WatchedStream()
        sys.stderr = self.stream

    async def test_text_lines_match_the_logging_format(self) -> None:
        from core.log import configure_logging, request_log

        configure_logging("INFO", "text")
        secret_filter_value = "fast-path-secret-value"
        from core.log import secret_filter

        secret_filter.add(secret_filter_value)
        request_log.write("Echo", 200, 0.00123, "ref-1")
        request_log.write(f"Odd{secret_filter_value}", 404, 0.5, "ref-2")
        self.assertEqual(self.stream.getvalue(), "")  # gathered, then written together
        lines = (await self.stream.next_write()).splitlines()
        self.assertEqual(self.stream.writes, 1)
        self.assertEqual(len(lines), 2)
        pattern = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO core.requests: "
        self.assertRegex(lines[0], pattern + r"action=Echo status=200 duration_ms=1.2 ref=ref-1$")
        self.assertIn("action=Odd*** status=404 duration_ms=500.0 ref=ref-2", lines[1])

    async def test_durations_read_as_the_logging_format_writes_them(self) -> None:
        from core.log import FLUSH_LINES, configure_logging, request_log

        configure_logging("INFO", "text")
        # Durations on both sides of the 100 ms up to which their texts are kept, none within
        # a rounding error of half a tenth of a millisecond (where either rounding is right).
        durations = [
            seconds
            for seconds in (step * 0.000737 for step in range(200))
            if abs((seconds * 10000.0) % 1 - 0.5) > 1e-6
        ] + [0.0, 0.09994, 0.09996, 0.1, 2.5]
        self.assertLess(len(durations), FLUSH_LINES)  # one batch, written by its timer
        for seconds in durations:
            request_log.write("Echo", 200, seconds, "r")
        lines = (await self.stream.next_write()).splitlines()
        self.assertEqual(len(lines), len(durations))
        for seconds, line in zip(durations, lines, strict=True):
            self.assertTrue(
                line.endswith(f" duration_ms={round(seconds * 1000, 1):.1f} ref=r"), (seconds, line)
            )
        self.assertIn(" duration_ms=99.9 ", lines[-4])
        self.assertIn(" duration_ms=100.0 ", lines[-3])
        self.assertIn(" duration_ms=2500.0 ", lines[-1])

    async def test_json_lines(self) -> None:
        from core.log import configure_logging, request_log

        configure_logging("INFO", "json")
        request_log.write("Echo", 504, 0.25, "ref-3")
        line = json.loads(await self.stream.next_write())
        self.assertEqual(
            {key: line[key] for key in ("level", "logger", "action", "status", "ref")},
            {
                "level": "INFO",
                "logger": "core.requests",
                "action": "Echo",
                "status": 504,
                "ref": "ref-3",
            },
        )
        self.assertEqual(line["duration_ms"], 250.0)
        self.assertIn("timestamp", line)

    async def test_json_lines_whatever_the_names_hold(self) -> None:
        from core.log import configure_logging, request_log

        configure_logging("INFO", "json")
        cases = [
            ("Echo", 200, 0.000123, "F6x-PQ_1"),
            ('Odd"name', 404, 0.5, "ref\\x"),
            ("café", 200, 1.25, "r\u2028x"),
            ("tab\there", 500, 12.0, "r"),
            ("\ud800", 400, 0.0, "r"),
            ("Echo", 200, 0.00025, "r"),
        ]
        for action, status, seconds, ref in cases:
            request_log.write(action, status, seconds, ref)
        output = await self.stream.next_write()
        lines = output.rstrip("\n").split("\n")  # not splitlines(): U+2028
        self.assertEqual(len(lines), len(cases))
        for (action, status, seconds, ref), line in zip(cases, lines, strict=True):
            with self.subTest(action=action):
                record = json.loads(line)
                duration_ms = round(seconds * 1000, 1)
                self.assertEqual(
                    list(record),
                    [
                        "timestamp",
                        "level",
                        "logger",
                        "message",
                        "action",
                        "ref",
                        "status",
                        "duration_ms",
                    ],
                )
                self.assertEqual(
                    (record["action"], record["ref"], record["status"], record["duration_ms"]),
                    (action, ref, status, duration_ms),
                )
                self.assertIsInstance(record["duration_ms"], float)
                self.assertEqual(
                    record["message"],
                    f"action={action} status={status} duration_ms={duration_ms:.1f} ref={ref}",
                )

    async def test_a_long_ref_is_cut_in_both_formats(self) -> None:
        from core.log import configure_logging, request_log

        ref = "r" * 1_000_000
        for log_format in ("text", "json"):
            with self.subTest(log_format=log_format):
                self.stream.seek(0)
                self.stream.truncate()
                configure_logging("INFO", log_format)
                request_log.write("Echo", 200, 0.001, ref)
                request_log.write("Echo", 200, 0.001, '"' + ref)
                lines = (await self.stream.next_write()).splitlines()
                self.assertEqual(len(lines), 2)
                for line in lines:
                    self.assertLess(len(line), 1000)
                    self.assertRegex(line, r"\(99980\d more characters\)")

    async def test_another_handler_gets_records_through_logging(self) -> None:
        from core.log import configure_logging, request_log

        configure_logging("INFO", "text")
        with LogCapture().installed() as capture:
            request_log.write("Echo", 200, 0.001, "ref-4")
        self.assertEqual(len(capture.lines), 1)
        self.assertIn("action=Echo status=200", capture.lines[0])

    async def test_below_info_nothing_is_written(self) -> None:
        from core.log import configure_logging, request_log

        configure_logging("WARNING", "text")
        request_log.write("Echo", 200, 0.001, "ref-5")
        request_log.flush()  # writes whatever was gathered: nothing
        self.assertEqual(self.stream.getvalue(), "")

    async def test_lines_wait_for_the_window_then_leave_together(self) -> None:
        import time

        from core.log import FLUSH_SECONDS, configure_logging, request_log

        configure_logging("INFO", "text")
        loop = asyncio.get_running_loop()
        began = loop.time()
        request_log.write("Echo", 200, 0.001, "ref-6")
        request_log.write("Echo", 200, 0.001, "ref-7")
        self.assertEqual(self.stream.writes, 0)
        output = await self.stream.next_write()
        # asyncio runs a timer at most one clock resolution early.
        resolution = time.get_clock_info("monotonic").resolution
        self.assertGreaterEqual(loop.time() - began, FLUSH_SECONDS - resolution)
        self.assertEqual(self.stream.writes, 1)
        refs = [line.rsplit("ref=", 1)[1] for line in output.splitlines()]
        self.assertEqual(refs, ["ref-6", "ref-7"])

    def test_batches_are_written_on_the_hold_quantums_boundaries(self) -> None:
        from core.hub.outbox import HOLD_QUANTUM
        from core.log import FLUSH_QUANTUM, FLUSH_SECONDS, flush_time

        self.assertEqual(FLUSH_QUANTUM, HOLD_QUANTUM)
        for now in (1000.0, 1000.0004, 1234.5678912, 98765.4321):
            at = flush_time(now)
            self.assertGreaterEqual(at, now + FLUSH_SECONDS)
            self.assertLess(at, now + FLUSH_SECONDS + FLUSH_QUANTUM)
            # The very time the outbox computes for a boundary (the same float).
            boundary = math.ceil(at / HOLD_QUANTUM) * HOLD_QUANTUM
            self.assertEqual(at, boundary)

    async def test_a_full_batch_is_written_at_once(self) -> None:
        from core.log import FLUSH_LINES, configure_logging, request_log

        configure_logging("INFO", "text")
        for index in range(FLUSH_LINES - 1):
            request_log.write("Echo", 200, 0.001, f"ref-{index}")
        self.assertEqual(self.stream.writes, 0)
        request_log.write("Echo", 200, 0.001, "last")
        self.assertEqual(self.stream.writes, 1)  # no wait for the window
        lines = self.stream.getvalue().splitlines()
        self.assertEqual(len(lines), FLUSH_LINES)
        self.assertTrue(lines[-1].endswith("ref=last"))


class OneRecordOneLineTest(unittest.TestCase):
    """Whatever a caller or the hub puts in a logged value, one record is one line of text
    (a traceback follows on lines that begin with a tab), or one JSON object on one line."""

    def setUp(self) -> None:
        self.enterContext(logging_restored())
        self.loop = asyncio.new_event_loop()
        self.addCleanup(self.loop.close)

    def emit(self, log_format: str, chosen: str, other: str) -> str:
        """Log what a request, the hub and a crashing action would log; return the output."""
        from core.log import configure_logging, request_log

        stream = io.StringIO()
        sys.stderr = stream
        configure_logging("INFO", log_format)
        logger = logging.getLogger("core.hub.client")
        logger.warning("ignoring event %r on topic %r: no handler", chosen, other)
        logger.info("action %s answered %s", chosen, other, extra={"action": chosen, "ref": other})
        try:
            raise ValueError(f"bad value {chosen}")
        except ValueError:
            logger.exception("action %s raised (error id 1, ref %s)", chosen, other)

        async def requests() -> None:
            request_log.write(chosen, 404, 0.5, other)
            request_log.write("Echo", 200, 0.001, chosen)
            request_log.flush()  # what the window's timer does

        self.loop.run_until_complete(requests())
        return stream.getvalue()

    @settings(max_examples=150, deadline=None)
    @given(st.text(max_size=40), st.text(max_size=20))
    def test_text_records_cannot_forge_a_line(self, chosen: str, other: str) -> None:
        lines = self.emit("text", chosen, other).split("\n")
        self.assertEqual(lines[-1], "")
        records = [line for line in lines[:-1] if not line.startswith("\t")]
        self.assertEqual(len(records), 5, lines)
        stamp = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING|ERROR) ")
        for line in lines[:-1]:
            self.assertEqual(len(line.splitlines()), 1, repr(line))
            self.assertTrue(line.startswith("\t") or stamp.match(line), repr(line))

    @settings(max_examples=150, deadline=None)
    @given(st.text(max_size=40), st.text(max_size=20))
    def test_json_records_are_one_object_per_line(self, chosen: str, other: str) -> None:
        from core.log import secret_filter

        # A secret other tests of the process registered (the local hub's token, which
        # hypothesis may draw from the code's constants) is hidden from the request line.
        assume(not any(secret in chosen + other for secret in secret_filter.secrets))
        output = self.emit("json", chosen, other)
        lines = output.splitlines()
        self.assertEqual(len(lines), 5)
        records = [json.loads(line) for line in lines]
        self.assertEqual(records[1]["action"], chosen)
        self.assertEqual(records[1]["ref"], other)
        self.assertEqual(records[3]["action"], chosen)
        self.assertIn("ValueError", records[2]["exception"])


class RecordKeeper(logging.Handler):
    """Keeps every record that reaches the root logger, for formatting afterwards."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record."""
        self.records.append(record)

    def named(self, logger: str) -> list[logging.LogRecord]:
        """The records of one logger."""
        return [record for record in self.records if record.name == logger]


def records_kept() -> contextlib.AbstractContextManager[RecordKeeper]:
    """Every record at INFO and above reaching the root logger, for the with-block."""
    return on_root_logger(RecordKeeper())


class RequestContextTest(unittest.IsolatedAsyncioTestCase):
    """While a request runs, every record from any logger names it, in both formats."""

    async def test_a_module_logger_inside_an_action_carries_the_request(self) -> None:
        served = discover(OBSERVED_FOLDER, ActionRunner)
        module = served["Charge"].__module__  # its logger's name
        with records_kept() as kept:
            async with hub_and_consumer(served) as (hub, _):
                first = await hub.request("Charge", {"customer_id": 7})
                second = await hub.request("ChargeInThread", {"customer_id": 8})
            logging.getLogger(module).info("outside any request")
        self.assertEqual((first[0], second[0]), (200, 200))
        requests = {record.action: record.ref for record in kept.named("core.requests")}  # type: ignore[attr-defined]
        charged, in_thread, outside = kept.named(module)

        text, as_json = TextFormatter("%(levelname)s %(name)s: %(message)s"), JSONFormatter()
        self.assertEqual(
            text.format(charged),
            f"INFO {module}: charged customer 7 [action=Charge ref={requests['Charge']}]",
        )
        self.assertTrue(
            text.format(in_thread).endswith(
                f"in a thread [action=ChargeInThread ref={requests['ChargeInThread']}]"
            )
        )
        self.assertEqual(text.format(outside), f"INFO {module}: outside any request")
        line = json.loads(as_json.format(charged))
        self.assertEqual(
            {key: line[key] for key in ("message", "action", "ref", "customer_id")},
            {
                "message": "charged customer 7",
                "action": "Charge",
                "ref": requests["Charge"],
                "customer_id": 7,
            },
        )
        # An extra key named like a key of the line is kept beside it, never instead of it.
        self.assertEqual((line["level"], line["extra_level"]), ("INFO", "gold"))
        self.assertEqual(json.loads(as_json.format(in_thread))["ref"], requests["ChargeInThread"])
        self.assertNotIn("ref", json.loads(as_json.format(outside)))
        # The request lines and ctx.logger name their request themselves: not twice.
        for record in kept.named("core.requests"):
            self.assertEqual(text.format(record).count("ref="), 1, text.format(record))

    async def test_ctx_logger_lines_keep_their_one_suffix(self) -> None:
        class Talk(ActionRunner):
            @classmethod
            def description(cls) -> str:
                return "Talks"

            async def run(self, ctx: Context) -> ActionResponse:
                ctx.logger.info("hello", extra={"mood": "fine"})
                return ActionResponse()

        with records_kept() as kept:
            async with hub_and_consumer({"Talk": Talk}) as (hub, _):
                await hub.request("Talk", {})
        [record] = [record for record in kept.records if record.getMessage().startswith("hello")]
        line = TextFormatter("%(message)s").format(record)
        self.assertRegex(line, r"^hello \[action=Talk ref=[^\]\s]+\]$")
        data = json.loads(JSONFormatter().format(record))
        self.assertEqual((data["action"], data["mood"]), ("Talk", "fine"))


class JSONExtraTest(unittest.TestCase):
    """JSON lines keep every extra key, escaped, and never lose their own keys to one."""

    def format(self, **extra: object) -> dict[str, object]:
        logger = logging.getLogger("tests.extra")
        record = logger.makeRecord(
            logger.name, logging.INFO, __file__, 1, "line\u2028two", (), None, extra=extra
        )
        line = JSONFormatter().format(record)
        self.assertNotIn("\n", line)
        self.assertNotIn("\u2028", line)
        parsed: dict[str, object] = json.loads(line)
        return parsed

    def test_every_extra_key_is_kept(self) -> None:
        line = self.format(customer_id=42, note="a\nb\u2029c", nothing=None, amount=1.5)
        self.assertEqual(
            {key: line[key] for key in ("customer_id", "note", "nothing", "amount")},
            {"customer_id": 42, "note": "a\nb\u2029c", "nothing": None, "amount": 1.5},
        )
        self.assertEqual(line["message"], "line\u2028two")

    def test_the_lines_own_keys_win(self) -> None:
        line = self.format(timestamp="forged", logger="forged", exception="forged", trace_id="x")
        self.assertNotEqual(line["timestamp"], "forged")
        self.assertEqual(line["logger"], "tests.extra")
        self.assertNotIn("exception", line)
        self.assertNotIn("trace_id", line)
        self.assertEqual(
            (line["extra_timestamp"], line["extra_logger"], line["extra_exception"]),
            ("forged", "forged", "forged"),
        )
        self.assertEqual(line["extra_trace_id"], "x")

    def test_values_json_cannot_hold_are_written_as_text(self) -> None:
        cyclic: list[object] = []
        cyclic.append(cyclic)
        line = self.format(keys={(1, 2): "tuple key"}, cyclic=cyclic, when=math.pi)
        self.assertEqual(line["keys"], "{(1, 2): 'tuple key'}")
        self.assertEqual(line["cyclic"], "[[...]]")
        self.assertEqual(line["when"], str(math.pi))


if __name__ == "__main__":
    unittest.main()
