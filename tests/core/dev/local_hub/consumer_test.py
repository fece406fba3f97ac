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
            '{"topic": "service"}',
            '[null, "1", "phoenix", "heartbeat", {}]',
        ):
            with self.subTest(frame=frame):
                websocket = await self.connect()
                await websocket.send(frame)
                await self.assert_closed_with(websocket, 1011)
        websocket = await self.connect()
        await websocket.send(b"\x00\x01")
        await self.assert_closed_with(websocket, 1011)
        websocket = await self.connect(vsn="2.0.0")
        await self.send(
            websocket, {"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "1"}
        )
        await self.assert_closed_with(websocket, 1011)

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
