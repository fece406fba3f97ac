"""Bounds: whatever a hub or a caller sends, memory, the log and each answer stay in
proportion. Each case is replayed against the service's own client and a hub scripted frame
by frame (`tests.faults.ScriptedHub`), and each test asserts the bound itself: the bytes of
log both formats would write, the bytes the outbox holds, the requests waiting, the size of
an answer, how the reconnect delays grow. The replica's peak memory under the two memory
cases, in a process of its own with the default settings, is `bench.hostile`'s (run here)."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import unittest
from typing import Any

from websockets.frames import Opcode

from bench import hostile
from core.hub.client import PlugboardClient
from core.hub.phoenix import Message
from tests.core.hub.leave_test import SERIALIZER
from tests.faults import ScriptedConnection, ScriptedHub
from tests.support import (
    EVENTS,
    FIXTURE_ACTIONS,
    Consumer,
    LogVolume,
    fast_settings,
    hub_and_consumer,
    wait_until,
)

KIB = 1024
# A flood's whole log, in either format, stays under this: a few lines, each cut to length.
FLOOD_LOG_BYTES = 16 * KIB


def show(case: str, volume: LogVolume) -> None:
    """Print what a flood cost the log (the figures docs/operating.md quotes)."""
    print(f"\n{case}: {volume.text_bytes:,} bytes of text log, {volume.json_bytes:,} of JSON")


def error_reply(join: Message, ref: str) -> str:
    """The hub's error reply to a message of ours with `ref`."""
    payload = {"status": "error", "response": {"reason": "unmatched topic"}}
    return SERIALIZER.encode(Message("service", "phx_reply", payload, ref, join.join_ref))


def request_frame(join: Message, ref: str, action: str = "Echo", **fields: Any) -> str:
    payload = {"action": action, "fields": fields, "response_ref": ref}
    return SERIALIZER.encode(Message("service", "request", payload, None, join.join_ref))


class ScriptedTestCase(unittest.IsolatedAsyncioTestCase):
    async def start(
        self, healthy_after: float = 10.0, **settings: Any
    ) -> tuple[ScriptedConnection, Message]:
        """A consumer joined to a scripted hub; stopped (quickly) after the test."""
        self.hub = await self.enterAsyncContext(ScriptedHub())
        config = fast_settings(shutdown_grace_seconds=0.0, **settings).with_hub(
            self.hub.url(), secrets.token_urlsafe(12)
        )
        self.client = PlugboardClient(config, FIXTURE_ACTIONS, EVENTS, healthy_after=healthy_after)
        self.consumer = Consumer(self.client)
        self.addAsyncCleanup(self.stop)
        return await self.joined()

    async def joined(self) -> tuple[ScriptedConnection, Message]:
        """Accept the consumer's next connection and its join."""
        connection = await self.hub.accept()
        self.connection = connection
        await connection.handshake()
        join = await self.next_message(connection)
        self.assertEqual(join.event, "phx_join")
        payload = {"status": "ok", "response": {"num_consumers": 1}}
        serializer = self.client.serializer
        connection.send_text(
            serializer.encode(Message("service", "phx_reply", payload, join.ref, join.ref))
        )
        await self.consumer.joined()
        return connection, join

    async def next_message(self, connection: ScriptedConnection) -> Message:
        """The consumer's next message, past its heartbeats (which this hub never answers)."""
        while True:
            [frame] = await connection.frames(1, timeout=5.0)
            message = self.client.serializer.decode(frame.data.decode())
            if message.event != "heartbeat":
                return message

    async def oversized(self, connection: ScriptedConnection) -> None:
        """Send a frame over MAX_MESSAGE_BYTES (4096 here); the consumer closes with 1009,
        and the hub finishes the closing handshake."""
        connection.send_text("x" * 5000)
        while True:
            frames = await connection.frames(1, timeout=3.0)
            if not frames or frames[0].opcode is Opcode.CLOSE:
                break
        connection.writer.close()

    async def stop(self) -> None:
        """Stop without delivering anything (as when the service is deleted): nothing here
        waits for the answers these tests leave behind."""
        self.connection.writer.transport.abort()
        self.client.stop()
        await asyncio.wait_for(self.consumer.task, 10.0)

    async def response(self, connection: ScriptedConnection, ref: str) -> Message:
        """Read the consumer's messages until the response for `ref`."""
        while True:
            message = await self.next_message(connection)
            if message.event == "response" and message.ref == ref:
                return message

    async def round_trip(self, connection: ScriptedConnection, join: Message) -> None:
        """One more request, answered: the consumer has handled every frame sent before."""
        connection.send_text(request_frame(join, "after", message="after"))
        message = await self.response(connection, "after")
        self.assertEqual(message.payload["status_code"], 200)

    def assert_log_within(self, volume: LogVolume, limit: int) -> None:
        self.assertLess(volume.text_bytes, limit, volume.lines[-20:])
        self.assertLess(volume.json_bytes, 2 * limit, volume.lines[-20:])


class LogBudgetTest(ScriptedTestCase):
    async def test_ten_thousand_error_replies_to_refs_of_nothing(self) -> None:
        connection, join = await self.start()
        with LogVolume().installed() as volume:
            for index in range(10_000):
                connection.send_text(error_reply(join, f"nothing-{index}"))
            await self.round_trip(connection, join)
        self.assert_log_within(volume, FLOOD_LOG_BYTES)
        answered = volume.matching("the hub answered ref")
        self.assertEqual(len(answered), 10)
        show("10,000 error replies to refs of nothing", volume)

    async def test_error_replies_with_refs_of_a_hundred_kilobytes(self) -> None:
        connection, join = await self.start()
        with LogVolume().installed() as volume:
            for index in range(50):
                connection.send_text(error_reply(join, f"{index}-" + "r" * 100_000))
            await self.round_trip(connection, join)
        self.assert_log_within(volume, FLOOD_LOG_BYTES)
        self.assertTrue(all(len(line) < 500 for line in volume.lines), volume.lines)
        show("50 error replies with 100 KB refs", volume)

    async def test_a_request_with_a_megabyte_response_ref(self) -> None:
        connection, join = await self.start()
        ref = "r" * 1_000_000
        with LogVolume().installed() as volume:
            connection.send_text(request_frame(join, ref, message="hi"))
            message = await self.response(connection, ref)
            await self.round_trip(connection, join)
        self.assertEqual(message.payload["status_code"], 200, "answered with its whole ref")
        self.assert_log_within(volume, 2 * KIB)
        [line] = volume.matching("action=Echo status=200 duration_ms=")[:1]
        self.assertIn("(999800 more characters)", line)
        show("a request with a 1 MB response_ref", volume)

    async def test_phx_error_then_three_thousand_requests_while_not_joined(self) -> None:
        connection, join = await self.start(outbox_limit=1000)
        with LogVolume().installed() as volume:
            ended = Message("service", "phx_error", {}, join.ref, join.join_ref)
            connection.send_text(SERIALIZER.encode(ended))
            await wait_until(lambda: not self.client.joined)
            for index in range(3000):
                connection.send_text(request_frame(join, f"q{index}", message=str(index)))
            await wait_until(lambda: self.client.executor.stats["Echo"].count == 3000)
        outbox = self.client.outbox
        self.assertEqual((outbox.kept, outbox.dropped), (1000, 2000))
        others = [line for line in volume.lines if "core.requests" not in line]
        self.assertLess(sum(len(line) + 1 for line in others), 2 * KIB, others)
        self.assertEqual(len(volume.matching("keeping responses")), 1)
        self.assertEqual(len(volume.matching("outbox full")), 1)
        # One line per request stays (3,000 of them): the log's budget is in proportion.
        self.assert_log_within(volume, 400 * KIB)
        show("phx_error, then 3,000 requests while not joined", volume)

    async def test_a_joined_hub_sending_oversized_frames_is_retried_on_a_growing_schedule(
        self,
    ) -> None:
        connection, _ = await self.start(max_message_bytes=4096)
        with LogVolume().installed() as volume:
            for _ in range(6):
                await self.oversized(connection)
                connection, _ = await self.joined()
        delays = [
            float(match.group(1))
            for line in volume.lines
            if (match := re.search(r"reconnecting in ([\d.]+) s", line))
        ]
        # phoenix.js's schedule (10, 50, 100, 150, 200, 250 ms), each with up to 20 % added:
        # each join lasted far less than `healthy_after`, so none started it over.
        self.assertEqual(len(delays), 6)
        for delay, base in zip(delays, (0.01, 0.05, 0.1, 0.15, 0.2, 0.25), strict=True):
            self.assertGreaterEqual(delay, base - 0.005, delays)
            self.assertLessEqual(delay, base * 1.2 + 0.005, delays)
        self.assertEqual(len(volume.matching("over MAX_MESSAGE_BYTES")), 6)

    async def test_a_connection_joined_long_enough_starts_the_schedule_over(self) -> None:
        connection, _ = await self.start(healthy_after=0.2, max_message_bytes=4096)
        with LogVolume().installed() as volume:
            await self.oversized(connection)  # back off once: the next delay would be 50 ms
            connection, _ = await self.joined()
            await wait_until(lambda: self.client._reconnect.attempts == 0)
            await self.oversized(connection)
            await self.joined()
        self.assertEqual(len(volume.matching("reconnecting in 0.01 s")), 2, volume.lines)


class AnswerTest(ScriptedTestCase):
    async def answered_invalid(self, vsn: str) -> None:
        """A request whose field is an integer of 5,000 digits is answered 400."""
        connection, join = await self.start(phoenix_vsn=vsn)
        fields = '{"message":' + "7" * 5000 + "}"
        request = f'{{"action":"Echo","fields":{fields},"response_ref":"big"}}'
        if vsn == "1.0.0":
            frame = (
                f'{{"topic":"service","event":"request","ref":null,'
                f'"join_ref":"{join.join_ref}","payload":{request}}}'
            )
        else:
            frame = f'["{join.join_ref}",null,"service","request",{request}]'
        with LogVolume().installed() as volume:
            connection.send_text(frame)
            message = await self.response(connection, "big")
        self.assertEqual(message.ref, "big")
        self.assertEqual(message.payload["status_code"], 400)
        error = message.payload["message"]
        self.assertEqual(error["code"], "INVALID_REQUEST")
        self.assertIn("5,000 digits", error["error"])
        self.assertEqual(len(volume.matching("could not be decoded in full")), 1)

    async def test_an_integer_too_long_to_read_is_answered_invalid_v1(self) -> None:
        await self.answered_invalid("1.0.0")

    async def test_an_integer_too_long_to_read_is_answered_invalid_v2(self) -> None:
        await self.answered_invalid("2.0.0")

    async def test_overloaded_past_max_waiting_requests(self) -> None:
        connection, join = await self.start(max_concurrency=2, max_waiting_requests=5)
        for index in range(20):
            connection.send_text(request_frame(join, f"s{index}", "Sleep", seconds=30))
        codes: dict[str, Any] = {}
        while len(codes) < 13:
            message = await self.next_message(connection)
            codes[str(message.ref)] = message.payload["message"]["code"]
        self.assertEqual(set(codes.values()), {"OVERLOADED"})
        executor = self.client.executor
        self.assertEqual((executor.in_flight, executor.waiting, executor.overloaded), (7, 5, 13))


class OutboxMemoryTest(ScriptedTestCase):
    async def test_answers_held_while_the_hub_does_not_read_stay_within_the_budget(self) -> None:
        budget = 1024 * 1024
        connection, join = await self.start(outbox_max_bytes=budget)
        # From now on the hub reads nothing: answers fill the kernel's buffers, then asyncio's
        # (1 MiB), then the outbox.
        message = "m" * 200_000
        outbox = self.client.outbox
        with LogVolume().installed() as volume:
            for index in range(60):
                connection.send_text(request_frame(join, f"b{index}", message=message))
            # Every answer is held (kept or unconfirmed) or was dropped.
            await wait_until(lambda: outbox.kept + outbox.unconfirmed + outbox.dropped == 60)
        self.assertLessEqual(outbox.held_bytes, budget)
        self.assertGreater(outbox.dropped, 0)
        self.assertEqual(len(volume.matching("outbox full")), 1)


class ValidationAnswerTest(unittest.IsolatedAsyncioTestCase):
    async def test_ten_thousand_invalid_items_make_an_answer_under_64_kib(self) -> None:
        async with hub_and_consumer() as (hub, _):
            fields = {"numbers": ["x"] * 10_000}
            answer = await hub.call("BlockingSum", fields)
        size = len(json.dumps(answer.payload))
        self.assertLess(size, 64 * KIB)
        self.assertLess(size, len(json.dumps(fields)))
        error = answer.body["message"]
        self.assertEqual((len(error["errors"]), error["more_errors"]), (20, 9980))
        print(f"\nBlockingSum with 10,000 invalid numbers: a {size}-byte answer")


class PeakMemoryTest(unittest.IsolatedAsyncioTestCase):
    """The issue's two memory cases with the default settings, in a process of their own."""

    async def test_a_hub_that_stops_reading_and_pushes_a_hundred_megabytes(self) -> None:
        result = await hostile.run_case("held", timeout=120.0)
        self.assertEqual(result["answered_by_status"], {200: 100})
        self.assertLess(result["peak_rss_mib"], hostile.PEAK_LIMIT / hostile.MIB, result)
        print(f"\nheld: {result}")

    async def test_twenty_thousand_requests_at_once(self) -> None:
        result = await hostile.run_case("waiting", timeout=120.0)
        self.assertEqual(result["answered_by_status"], {503: 18_900})
        self.assertLess(result["peak_rss_mib"], hostile.PEAK_LIMIT / hostile.MIB, result)
        print(f"\nwaiting: {result}")


if __name__ == "__main__":
    unittest.main()
