"""Tests for `core.dev.local_hub.routing`: round robin, routing by ref, the in-flight cap."""

from __future__ import annotations

import asyncio
import unittest

from tests.core.dev.local_hub.harness import LocalHubTestCase


class RoutingTest(LocalHubTestCase):
    """Through real sockets, as a consumer and an HTTP caller see it."""

    async def test_round_robin_and_response_from_any_socket(self) -> None:
        first = await self.connect()
        await self.join(first)
        second = await self.connect()
        await self.join(second)
        await self.recv(first)  # num_consumers 2

        calls = [asyncio.create_task(self.hub.request("Echo", {"n": n})) for n in range(4)]
        pushes_first = [await self.recv(first), await self.recv(first)]
        pushes_second = [await self.recv(second), await self.recv(second)]
        self.assertEqual([p["payload"]["fields"]["n"] for p in pushes_first], [0, 2])
        self.assertEqual([p["payload"]["fields"]["n"] for p in pushes_second], [1, 3])

        # Responses are routed by ref, whichever socket sends them.
        for push in pushes_first + pushes_second:
            n = push["payload"]["fields"]["n"]
            await self.send(
                second,
                {
                    "topic": "service",
                    "event": "response",
                    "ref": push["payload"]["response_ref"],
                    "payload": {"status": "success", "message": n},
                },
            )
        results = await asyncio.gather(*calls)
        self.assertEqual([body["message"] for _, body in results], [0, 1, 2, 3])

    async def test_max_in_flight_queues_requests(self) -> None:
        self.hub = await self.start_hub(max_in_flight=1)
        websocket = await self.connect()
        await self.join(websocket)
        calls = [asyncio.create_task(self.hub.request("Echo", {"n": n})) for n in range(2)]
        first = await self.answer_one(websocket, {"status": "success", "message": None})
        second = await self.answer_one(websocket, {"status": "success", "message": None})
        self.assertEqual((first["fields"], second["fields"]), ({"n": 0}, {"n": 1}))
        self.assertEqual([status for status, _ in await asyncio.gather(*calls)], [200, 200])


if __name__ == "__main__":
    unittest.main()
