"""Tests for `core.dev.local_hub.consumer`: framing and close codes of one consumer socket."""

from __future__ import annotations

import asyncio
import json
import unittest

from tests.core.dev.local_hub.harness import LocalHubTestCase


class ConsumerSocketTest(LocalHubTestCase):
    """Through real sockets, as a consumer and an HTTP caller see it."""

    async def test_garbage_frames_close_with_1011(self) -> None:
        for frame in (
            "not json",
            "",
            '"x"',
            '{"topic": "service"}',
            '[null, "1", "phoenix", "heartbeat", {}]',
            # Phoenix's v1 decoder needs all four keys, even when null.
            '{"topic": "phoenix", "event": "heartbeat", "ref": "1"}',
            '{"topic": "phoenix", "event": "heartbeat", "payload": {}}',
        ):
            with self.subTest(frame=frame):
                websocket = await self.connect()
                await websocket.send(frame)
                await self.assert_closed_with(websocket, 1011)
        websocket = await self.connect()
        await websocket.send(b"\x00\x01")
        await self.assert_closed_with(websocket, 1011)
        for v2_frame in (
            {"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "1"},
            [None, "1", "phoenix", "heartbeat"],
        ):
            with self.subTest(frame=v2_frame):
                websocket = await self.connect(vsn="2.0.0")
                await self.send(websocket, v2_frame)
                await self.assert_closed_with(websocket, 1011)

    async def test_refs_and_topics_come_back_as_sent(self) -> None:
        """Phoenix keeps a ref or topic of any JSON type; only its value decides a match."""
        websocket = await self.connect()
        for ref in (5, None):
            with self.subTest(ref=ref):
                await self.send(
                    websocket, {"topic": "phoenix", "event": "heartbeat", "payload": [], "ref": ref}
                )
                reply = await self.recv(websocket)
                self.assertEqual((reply["event"], reply["ref"]), ("phx_reply", ref))
        await self.send(websocket, {"topic": 5, "event": "phx_join", "payload": {}, "ref": "2"})
        reply = await self.recv(websocket)
        self.assertEqual((reply["topic"], reply["payload"]["status"]), (5, "error"))
        # A response whose ref cannot name a request is ignored like any unknown ref.
        await self.join(websocket, ref="3")
        for odd_ref in ([1], {"a": 1}, 7):
            await self.send(
                websocket, {"topic": "service", "event": "response", "payload": {}, "ref": odd_ref}
            )
        self.assertEqual(self.hub.joined_count(), 1)
        self.assertEqual(self.hub.connection_count(), 1)

        v2 = await self.connect(vsn="2.0.0")
        await self.send(v2, [None, 8, "phoenix", "heartbeat", {}, "extra"])  # extra items: ignored
        self.assertEqual(
            await self.recv(v2), [None, 8, "phoenix", "phx_reply", {"status": "ok", "response": {}}]
        )

    async def test_v2_framing(self) -> None:
        websocket = await self.connect(vsn="2.0.0")
        await websocket.send(json.dumps(["9", "9", "service", "phx_join", {}]))
        join_ref, ref, topic, event, payload = await self.recv(websocket)
        self.assertEqual((join_ref, ref, topic, event), ("9", "9", "service", "phx_reply"))
        self.assertEqual(payload["status"], "ok")
        await websocket.send(json.dumps([None, "10", "phoenix", "heartbeat", {}]))
        self.assertEqual(
            await self.recv(websocket),
            [None, "10", "phoenix", "phx_reply", {"status": "ok", "response": {}}],
        )

        call = asyncio.create_task(self.hub.request("Echo", {"text": "hi"}))
        join_ref, ref, topic, event, request = await self.recv(websocket)
        self.assertEqual((join_ref, ref, topic, event), ("9", None, "service", "request"))
        answer = {"status": "success", "status_code": 200, "message": None, "fields": "hi"}
        await websocket.send(
            json.dumps(["9", request["response_ref"], "service", "response", answer])
        )
        self.assertEqual((await call)[0], 200)

    async def test_idle_timeout_closes_with_1002(self) -> None:
        hub = await self.start_hub(idle_timeout=0.3)
        websocket = await self.connect(self.consumer_url(hub))
        await asyncio.sleep(0.2)
        await self.send(
            websocket, {"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "1"}
        )
        await self.recv(websocket)  # the frame reset the timer: still open after 0.3 s total
        await self.assert_closed_with(websocket, 1002)


if __name__ == "__main__":
    unittest.main()
