"""Fault tests: the real client against a local hub that restarts, drops, stalls or lies."""

from __future__ import annotations

import asyncio
import json
import time
import unittest
from typing import Any

from core.dev.local_hub.hub import LocalHub
from core.hub.phoenix import Message
from tests.support import (
    LogCapture,
    consumer_of_a_stopped_hub,
    hub_and_consumer,
    start_consumer,
    wait_until,
)


def responses(hub: LocalHub, response_ref: str) -> list[Message]:
    """The ``response`` frames the hub received for `response_ref`."""
    return [
        message
        for _, message in hub.received
        if message.event == "response" and message.ref == response_ref
    ]


async def raw_request(hub: LocalHub, payload: Any) -> None:
    """Push a hand-made ``request`` frame (v1) to every consumer."""
    frame = {"topic": "service", "event": "request", "payload": payload, "ref": None}
    await hub.send_raw(json.dumps(frame))


class ReconnectTest(unittest.IsolatedAsyncioTestCase):
    async def test_tcp_drop_without_close_reconnects_and_rejoins(self) -> None:
        async with hub_and_consumer() as (hub, consumer):
            await hub.drop_connections()
            await wait_until(lambda: consumer.client.connections == 2 and consumer.client.joined)
            status, _ = await hub.request("Echo", {"message": "back"})
            self.assertEqual(status, 200)

    async def test_hub_restart_on_the_same_port(self) -> None:
        consumer, port, token = await consumer_of_a_stopped_hub()
        await wait_until(lambda: not consumer.client.joined)
        async with LocalHub(port=port, tokens=[token], service_name="restarted") as second:
            await second.wait_for_joined(1, timeout=10)
            status, _ = await second.request("Echo", {"message": "again"})
            self.assertEqual(status, 200)
            service = consumer.client.service
            assert service is not None
            # The record from the new join (the name tells it from the first hub's).
            self.assertEqual((service.id, service.name), (second.service_id, "restarted"))
            await consumer.stop()

    async def test_hub_down_for_ten_seconds_comes_back_within_seconds(self) -> None:
        consumer, port, token = await consumer_of_a_stopped_hub()
        await asyncio.sleep(10)
        restarted = time.monotonic()
        async with LocalHub(port=port, tokens=[token]) as second:
            await second.wait_for_joined(1, timeout=10)
            # The schedule tops out at 5 s (+20 % jitter): back within about 6 s (8 s allows
            # for a loaded CI machine).
            self.assertLess(time.monotonic() - restarted, 8.0)
            await consumer.stop()

    async def test_silent_hub_is_noticed_by_the_heartbeat(self) -> None:
        with LogCapture().installed() as logs:
            async with hub_and_consumer(heartbeat_interval_seconds=0.3) as (hub, consumer):
                hub.answer_heartbeats = False
                await wait_until(lambda: consumer.client.connections >= 2, timeout=5)
                self.assertIn("no heartbeat reply", logs.text())
                hub.answer_heartbeats = True
                await consumer.client.wait_joined(5)
                status, _ = await hub.request("Echo", {"message": "alive"})
                self.assertEqual(status, 200)

    async def test_refused_then_accepted(self) -> None:
        with LogCapture().installed() as logs:
            async with LocalHub(tokens=["real-token"]) as hub:
                consumer = start_consumer(hub, token="new-token")
                await wait_until(lambda: "HTTP 403" in logs.text())
                self.assertEqual(consumer.client.refused_upgrades, 1)
                hub.accept_token("new-token")
                await consumer.joined(timeout=10)
                self.assertEqual((await hub.request("Echo", {"message": "in"}))[0], 200)
                await consumer.stop()
        refusals = [line for line in logs.lines if "HTTP 403" in line]
        self.assertEqual(len(refusals), 1)  # one line per attempt, and the back-off is slow
        self.assertIn(f"catalog (hash {consumer.client.catalog_hash})", refusals[0])
        self.assertNotIn("new-token", logs.text())

    async def test_phx_error_rejoins(self) -> None:
        async with hub_and_consumer() as (hub, consumer):
            join_ref = consumer.client.join_ref
            frame = {"topic": "service", "event": "phx_error", "payload": {}, "ref": join_ref}
            await hub.send_raw(json.dumps(frame))
            await wait_until(
                lambda: consumer.client.join_ref != join_ref and consumer.client.joined
            )
            self.assertEqual((await hub.request("Echo", {"message": "x"}))[0], 200)


class NothingLostTest(unittest.IsolatedAsyncioTestCase):
    async def test_response_computed_while_down_is_delivered_after_rejoin(self) -> None:
        async with hub_and_consumer() as (hub, consumer):
            token = next(iter(hub.tokens))
            call = asyncio.ensure_future(
                hub.request("Sleep", {"seconds": 1.0, "message": "computed while down"})
            )
            await wait_until(lambda: consumer.client.executor.in_flight == 1)
            await hub.delete_token(token)  # reconnects are refused for now
            await hub.drop_connections()
            await wait_until(lambda: consumer.client.executor.in_flight == 0, timeout=5)
            self.assertFalse(consumer.client.joined)
            self.assertEqual(consumer.client.outbox.kept, 1)
            hub.accept_token(token)
            status, body = await asyncio.wait_for(call, 30)
            self.assertEqual((status, body["message"]), (200, {"message": "computed while down"}))

    async def test_kept_responses_expire(self) -> None:
        with LogCapture().installed() as logs:
            async with hub_and_consumer(response_max_age_seconds=0.2) as (hub, consumer):
                token = next(iter(hub.tokens))
                call = asyncio.ensure_future(hub.request("Sleep", {"seconds": 0.5}, timeout=4))
                await wait_until(lambda: consumer.client.executor.in_flight == 1)
                await hub.delete_token(token)
                await hub.drop_connections()
                await wait_until(lambda: consumer.client.executor.in_flight == 0, timeout=5)
                await asyncio.sleep(0.5)
                hub.accept_token(token)
                status, _ = await call
                self.assertEqual(status, 408)
        self.assertIn("past the hub's", logs.text())

    async def test_token_rotation(self) -> None:
        with LogCapture().installed() as logs:
            async with hub_and_consumer() as (hub, consumer):
                old = next(iter(hub.tokens))
                created = await hub.create_token()
                await wait_until(lambda: "received a new token" in logs.text())
                await hub.delete_token(old)
                await hub.drop_connections()
                await wait_until(
                    lambda: consumer.client.connections == 2 and consumer.client.joined
                )
                self.assertIn(created["value"], consumer.client.connection_url())
                self.assertNotIn(old, consumer.client.connection_url())
        self.assertNotIn(created["value"], logs.text())

    async def test_deleting_the_token_in_use_warns(self) -> None:
        with LogCapture().installed() as logs:
            async with hub_and_consumer() as (hub, _consumer):
                await hub.delete_token(next(iter(hub.tokens)))
                await wait_until(lambda: "was deleted on the hub" in logs.text())
        self.assertIn("WARNING", next(line for line in logs.lines if "was deleted" in line))

    async def test_service_deleted_exits_0_without_reconnecting(self) -> None:
        async with hub_and_consumer() as (hub, consumer):
            await hub.push_service_deleted()
            self.assertEqual(await asyncio.wait_for(consumer.task, 5), 0)
            await asyncio.sleep(0.3)
            self.assertEqual(consumer.client.connections, 1)
            self.assertEqual(hub.connection_count(), 0)

    async def test_shutdown_leaves_first_and_still_answers_running_requests(self) -> None:
        async with hub_and_consumer() as (hub, consumer):
            running = asyncio.ensure_future(hub.call("Sleep", {"seconds": 0.5}))
            await wait_until(lambda: consumer.client.executor.in_flight == 1)
            consumer.client.request_shutdown()
            # Out of the rotation at once (a test's stop does not hold the last replica),
            # while the request still runs: the hub has no consumer for a new one.
            await hub.wait_for_joined(0, timeout=2)
            self.assertEqual(consumer.client.executor.in_flight, 1)
            self.assertEqual((await hub.request("Echo", {"message": "late"}))[0], 422)
            # The running request's answer, made after the leave, still reaches its caller.
            answer = await running
            self.assertEqual((answer.status, answer.payload["status_code"]), (200, 200))
            self.assertEqual(await asyncio.wait_for(consumer.task, 5), 0)
            self.assertEqual(hub.connection_count(), 0)


class BadInputTest(unittest.IsolatedAsyncioTestCase):
    async def test_garbage_frames_do_not_break_the_connection(self) -> None:
        frames: list[str | bytes] = [
            "not json",
            b"\x00\x01binary",
            "[1,2,3]",
            "42",
            "null",
            '{"event": 5}',
            '{"topic":"service","event":"request"}',
            '{"topic":"service","event":"request","payload":[1]}',
            '{"topic":"service","event":"surprise","payload":{}}',
            '{"topic":"service","event":"phx_reply","payload":"x","ref":"999"}',
            '{"topic":"phoenix","event":"phx_reply","payload":null,"ref":null}',
            '{"topic":"service","event":"num_consumers","payload":{"num_consumers":"many"}}',
            '{"topic":"service","event":"token_created","payload":{"token":7}}',
            '{"topic":"service","event":"service_updated","payload":{}}',
            "[" * 50_000 + "]" * 50_000,
            '{"a":' * 5000 + "1" + "}" * 5000,
        ]
        with LogCapture().installed() as logs:
            async with hub_and_consumer() as (hub, consumer):
                for frame in frames:
                    await hub.send_raw(frame)
                status, _ = await hub.request("Echo", {"message": "still here"})
                self.assertEqual(status, 200)
                self.assertEqual(consumer.client.connections, 1)
        self.assertTrue(all(len(line) < 600 for line in logs.lines))

    async def test_wrongly_typed_requests_are_answered_400(self) -> None:
        async with hub_and_consumer() as (hub, _):
            cases = {
                "r-action-int": {"action": 5, "fields": {}},
                "r-fields-list": {"action": "Echo", "fields": [1, 2]},
                "r-fields-str": {"action": "Echo", "fields": "message=hi"},
                "r-bad-field": {"action": "Echo", "fields": {"message": {"deep": [1]}}},
            }
            for ref, payload in cases.items():
                await raw_request(hub, {**payload, "response_ref": ref})
            for ref in cases:
                await wait_until(lambda ref=ref: bool(responses(hub, ref)))
                self.assertEqual(responses(hub, ref)[0].payload["status_code"], 400, ref)

    async def test_oversized_frame_closes_with_1009_and_reconnects(self) -> None:
        with LogCapture().installed() as logs:
            async with hub_and_consumer(max_message_bytes=4096) as (hub, consumer):
                await hub.send_raw("x" * 5000)
                await wait_until(
                    lambda: consumer.client.connections == 2 and consumer.client.joined
                )
                self.assertEqual((await hub.request("Echo", {"message": "ok"}))[0], 200)
        self.assertIn("MAX_MESSAGE_BYTES", logs.text())

    async def test_bad_input_logging_is_rate_limited(self) -> None:
        with LogCapture().installed() as logs:
            async with hub_and_consumer() as (hub, _):
                for _ in range(100):
                    await hub.send_raw("garbage")
                await hub.request("Echo", {"message": "x"})
        garbage_lines = [line for line in logs.lines if "not a Phoenix message" in line]
        self.assertLessEqual(len(garbage_lines), 10)
        self.assertGreater(len(garbage_lines), 0)


if __name__ == "__main__":
    unittest.main()
