"""The hub link against the real Phoenix hub (``../shared/phoenix-hub``), in both serializers.

What the re-send and the rejoin rest on is checked here on the real hub, not on our stand-in:
a response sent on a new connection reaches a caller who waited through the drop, a crashed
channel is rejoined, and a leaving replica's last answers arrive.
"""

from __future__ import annotations

import asyncio
import unittest

from core.hub.client import PlugboardClient
from tests.faults import TcpFront
from tests.support import EVENTS, FIXTURE_ACTIONS, Consumer, LogCapture, fast_settings, wait_until
from tests.support_phoenix import FrontCaller, PhoenixHub, skip_without_phoenix_hub

SERIALIZERS = ("1.0.0", "2.0.0")


@skip_without_phoenix_hub
class RealHubTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        self.hub = await self.enterAsyncContext(PhoenixHub())
        self.front = await self.enterAsyncContext(
            FrontCaller(self.hub.http_url, self.hub.service_id)
        )

    def consumer(self, vsn: str) -> Consumer:
        settings = fast_settings(
            None,
            websocket_url=self.hub.websocket_url,
            token=self.hub.tokens[0],
            phoenix_vsn=vsn,
        )
        return Consumer(PlugboardClient(settings, FIXTURE_ACTIONS, EVENTS))

    async def joined(self, vsn: str) -> Consumer:
        consumer = await self.consumer(vsn).joined()
        self.addAsyncCleanup(consumer.stop)
        return consumer

    async def test_join_and_answer(self) -> None:
        for vsn in SERIALIZERS:
            with self.subTest(vsn=vsn):
                consumer = await self.joined(vsn)
                client = consumer.client
                assert client.service is not None and client.token is not None
                self.assertEqual(client.service.id, self.hub.service_id)
                self.assertIsInstance(client.token.id, int)
                self.assertEqual(client.num_consumers, 1)
                status, body = await self.front.call("Echo", {"message": vsn})
                self.assertEqual((status, body["message"]), (200, {"message": vsn}))
                self.assertEqual(await consumer.stop(), 0)
                await self.until_joined_count(0)

    async def test_a_crashed_channel_is_rejoined(self) -> None:
        for vsn in SERIALIZERS:
            with self.subTest(vsn=vsn), LogCapture().installed() as logs:
                consumer = await self.joined(vsn)
                join_ref = consumer.client.join_ref
                self.assertEqual((await asyncio.to_thread(self.hub.crash))["crashed"], 1)
                await wait_until(lambda c=consumer, j=join_ref: c.client.join_ref != j)
                await consumer.joined()
                status, _ = await self.front.call("Echo", {"message": "back"})
                self.assertEqual(status, 200)
                self.assertIn("the hub sent phx_error; rejoining in", logs.text())
                await consumer.stop()

    async def test_an_answer_made_across_a_forced_disconnect_reaches_its_caller(self) -> None:
        for vsn in SERIALIZERS:
            with self.subTest(vsn=vsn):
                consumer = await self.joined(vsn)
                call = asyncio.ensure_future(
                    self.front.call("Sleep", {"message": "patient", "seconds": 1.0})
                )
                await wait_until(lambda c=consumer: c.client.executor.in_flight == 1)
                connections = consumer.client.connections
                await asyncio.to_thread(self.hub.disconnect)
                await wait_until(lambda c=consumer, n=connections: c.client.connections > n)
                status, body = await asyncio.wait_for(call, 35)
                self.assertEqual((status, body["message"]), (200, {"message": "patient"}))
                await consumer.stop()

    async def test_an_answer_written_into_a_dying_link_is_sent_again(self) -> None:
        # The front holds back what the replica writes, so neither its response nor the
        # heartbeat that would confirm it reaches the hub; then the link is cut. The
        # response must reach the caller through the next connection.
        for vsn in SERIALIZERS:
            with self.subTest(vsn=vsn):
                async with TcpFront(("127.0.0.1", self.hub.port)) as front:
                    settings = fast_settings(
                        None,
                        websocket_url=front.websocket_url,
                        token=self.hub.tokens[0],
                        phoenix_vsn=vsn,
                    )
                    client = PlugboardClient(settings, FIXTURE_ACTIONS, EVENTS)
                    consumer = await Consumer(client).joined()
                    front.hold_upstream = True
                    call = asyncio.ensure_future(self.front.call("Echo", {"message": vsn}))
                    await wait_until(lambda c=client: c.outbox.unconfirmed == 1)
                    front.cut()
                    front.hold_upstream = False
                    status, body = await asyncio.wait_for(call, 35)
                    self.assertEqual((status, body["message"]), (200, {"message": vsn}))
                    self.assertEqual(client.outbox.resent, 1)
                    self.assertEqual(await consumer.stop(), 0)

    async def test_token_rotation_and_service_deletion(self) -> None:
        consumer = await self.joined("2.0.0")
        with LogCapture().installed() as logs:
            created = await asyncio.to_thread(self.hub.push, "token_created")
            await wait_until(lambda: "received a new token" in logs.text())
            self.assertIn("token_id", created)
            await asyncio.to_thread(self.hub.push, "service_deleted")
            self.assertEqual(await asyncio.wait_for(consumer.task, 10), 0)
        self.assertIn("was deleted on the hub", logs.text())

    async def until_joined_count(self, count: int) -> None:
        """Poll the hub's own count (it is another process) until it is `count`."""
        async with asyncio.timeout(5):
            while await asyncio.to_thread(self.hub.joined_count) != count:
                await asyncio.sleep(0.02)


if __name__ == "__main__":
    unittest.main()
