"""Log formats and secret redaction."""

from __future__ import annotations

import io
import json
import logging
import unittest

from core.log import JSONFormatter, RateLimitedLog, SecretFilter, redact_url, truncate
from tests.support import LogCapture, hub_and_consumer


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
            import sys

            record.exc_info = sys.exc_info()
        secrets.filter(record)
        self.assertEqual(record.getMessage(), "got ***")
        self.assertNotIn("topsecretvalue", record.exc_text or "")

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


if __name__ == "__main__":
    unittest.main()
