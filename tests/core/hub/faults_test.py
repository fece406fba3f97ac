"""The replica against a misbehaving front: it survives every fault and joins once it can."""

from __future__ import annotations

import asyncio
import unittest

from core.dev.local_hub.hub import LocalHub
from core.hub.client import PlugboardClient
from tests.faults import Mode, TcpFront
from tests.support import (
    EVENTS,
    FIXTURE_ACTIONS,
    Consumer,
    LogCapture,
    fast_settings,
    wait_until,
)


class FrontFaultTest(unittest.IsolatedAsyncioTestCase):
    async def test_each_fault_is_retried_and_the_replica_joins_once_the_front_proxies(self) -> None:
        for mode in (Mode.CLOSE, Mode.GARBAGE, Mode.HTTP_502, Mode.HANG):
            with self.subTest(mode=mode.value), LogCapture().installed() as logs:
                async with LocalHub() as hub, TcpFront((hub.host, hub.port), mode) as front:
                    settings = fast_settings(hub, websocket_url=front.websocket_url)
                    client = PlugboardClient(settings, FIXTURE_ACTIONS, EVENTS, open_timeout=0.3)
                    consumer = Consumer(client)
                    await front.wait_accepted(2)  # failed, backed off, tried again
                    self.assertFalse(consumer.task.done(), "the replica must not exit")
                    self.assertFalse(client.joined)
                    front.mode = Mode.PROXY
                    await consumer.joined(timeout=10)
                    status, body = await hub.request("Echo", {"message": mode.value})
                    self.assertEqual((status, body["message"]), (200, {"message": mode.value}))
                    self.assertEqual(await consumer.stop(), 0)
                failures = [line for line in logs.lines if "cannot connect" in line]
                self.assertGreaterEqual(len(failures), 1)
                self.assertTrue(all(line.startswith("WARNING") for line in failures), failures)
                self.assertNotIn("Traceback", logs.text())
                self.assertNotIn(next(iter(hub.tokens)), logs.text())

    async def test_a_cut_connection_reconnects_and_rejoins(self) -> None:
        async with LocalHub() as hub, TcpFront((hub.host, hub.port)) as front:
            settings = fast_settings(hub, websocket_url=front.websocket_url)
            consumer = await Consumer(PlugboardClient(settings, FIXTURE_ACTIONS, EVENTS)).joined()
            for round_ in range(3):
                self.assertEqual(front.cut(), 1)
                await hub.wait_for_joined(0)
                await consumer.joined()
                await hub.wait_for_joined(1)
                status, _ = await hub.request("Echo", {"message": str(round_)})
                self.assertEqual(status, 200)
            self.assertEqual(consumer.client.connections, 4)
            self.assertEqual(await consumer.stop(), 0)

    async def test_an_answer_written_into_a_dying_link_is_sent_again(self) -> None:
        async with LocalHub() as hub, TcpFront((hub.host, hub.port)) as front:
            settings = fast_settings(hub, websocket_url=front.websocket_url)
            client = PlugboardClient(settings, FIXTURE_ACTIONS, EVENTS)
            consumer = await Consumer(client).joined()
            front.hold_upstream = True  # the response and its heartbeat never leave
            call = asyncio.ensure_future(hub.request("Echo", {"message": "held"}))
            await wait_until(lambda: client.outbox.unconfirmed == 1)
            front.cut()
            front.hold_upstream = False
            status, body = await asyncio.wait_for(call, 10)
            self.assertEqual((status, body["message"]), (200, {"message": "held"}))
            self.assertEqual(client.outbox.resent, 1)
            self.assertEqual(await consumer.stop(), 0)

    async def test_the_same_failure_is_logged_once_per_interval(self) -> None:
        with LogCapture().installed() as logs:
            async with LocalHub() as hub, TcpFront((hub.host, hub.port), Mode.CLOSE) as front:
                settings = fast_settings(hub, websocket_url=front.websocket_url)
                consumer = Consumer(PlugboardClient(settings, FIXTURE_ACTIONS, EVENTS))
                await front.wait_accepted(6)  # 10, 50, 100, 150, 200 ms apart: under a second
                front.mode = Mode.PROXY
                await consumer.joined(timeout=10)
                await consumer.stop()
        failures = [line for line in logs.lines if "cannot connect" in line]
        self.assertLessEqual(len(failures), 2, failures)


if __name__ == "__main__":
    unittest.main()
