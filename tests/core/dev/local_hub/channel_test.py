"""Tests for `core.dev.local_hub.channel`: joining, leaving and crashing the service channel."""

from __future__ import annotations

import asyncio
import json
import unittest

from tests.core.dev.local_hub.harness import TOKEN, LocalHubTestCase


class ServiceChannelTest(LocalHubTestCase):
    """Through real sockets, as a consumer and an HTTP caller see it."""

    async def test_join_reply_shape(self) -> None:
        websocket = await self.connect()
        reply = await self.join(websocket)
        self.assertEqual(reply["topic"], "service")
        self.assertNotIn("join_ref", reply)  # v1 never carries join_ref
        self.assertEqual(reply["payload"]["status"], "ok")
        response = reply["payload"]["response"]
        self.assertEqual(set(response), {"service", "token", "num_consumers"})
        self.assertEqual(set(response["service"]), {"id", "name", "inserted_at", "updated_at"})
        # Integer ids, as the real hub's database serials: service 1, token 1.
        self.assertEqual(response["service"]["id"], 1)
        self.assertEqual(self.hub.service_id, 1)
        self.assertEqual((response["token"]["id"], response["token"]["service_id"]), (1, 1))
        self.assertEqual(
            set(response["token"]), {"id", "context", "service_id", "inserted_at", "expires_at"}
        )
        self.assertNotIn(TOKEN, json.dumps(reply))
        self.assertEqual(response["num_consumers"], 1)
        self.assertEqual(self.hub.joined_count(), 1)

    async def test_unmatched_topic(self) -> None:
        websocket = await self.connect()
        await self.send(
            websocket, {"topic": "room:1", "event": "phx_join", "payload": {}, "ref": "1"}
        )
        unmatched = {"status": "error", "response": {"reason": "unmatched topic"}}
        reply = await self.recv(websocket)
        self.assertEqual((reply["topic"], reply["ref"]), ("room:1", "1"))
        self.assertEqual(reply["payload"], unmatched)
        # A message on "service" before joining it is unmatched too.
        await self.send(
            websocket, {"topic": "service", "event": "response", "payload": {}, "ref": "2"}
        )
        reply = await self.recv(websocket)
        self.assertEqual((reply["ref"], reply["payload"]), ("2", unmatched))

    async def test_illegal_event_gets_phx_error_and_leaves_rotation(self) -> None:
        watcher = await self.connect()
        await self.join(watcher, ref="1")
        websocket = await self.connect()
        await self.join(websocket, ref="3")
        self.assertEqual((await self.recv(watcher))["payload"], {"num_consumers": 2})

        await self.send(websocket, {"topic": "service", "event": "ping", "payload": {}, "ref": "4"})
        error = await self.recv(websocket)
        self.assertEqual(
            error, {"topic": "service", "event": "phx_error", "payload": {}, "ref": "3"}
        )
        await self.hub.wait_for_joined(1)
        # The leave is announced twice to the others.
        self.assertEqual((await self.recv(watcher))["payload"], {"num_consumers": 1})
        self.assertEqual((await self.recv(watcher))["payload"], {"num_consumers": 1})
        # The socket stays open and may rejoin.
        reply = await self.join(websocket, ref="5")
        self.assertEqual(reply["payload"]["response"]["num_consumers"], 2)

    async def test_leave_and_duplicate_join(self) -> None:
        websocket = await self.connect()
        await self.join(websocket, ref="1")
        # Joining again closes the first join.
        await self.send(
            websocket, {"topic": "service", "event": "phx_join", "payload": {}, "ref": "2"}
        )
        close = await self.recv(websocket)
        self.assertEqual((close["event"], close["ref"]), ("phx_close", "1"))
        reply = await self.recv(websocket)
        self.assertEqual((reply["event"], reply["ref"]), ("phx_reply", "2"))
        self.assertEqual(reply["payload"]["status"], "ok")

        await self.send(
            websocket, {"topic": "service", "event": "phx_leave", "payload": {}, "ref": "3"}
        )
        reply = await self.recv(websocket)
        self.assertEqual(
            (reply["event"], reply["ref"], reply["payload"]["status"]), ("phx_reply", "3", "ok")
        )
        close = await self.recv(websocket)
        self.assertEqual((close["event"], close["ref"]), ("phx_close", "2"))
        self.assertEqual(self.hub.joined_count(), 0)
        self.assertEqual(self.hub.connection_count(), 1)

    async def test_num_consumers_pushes(self) -> None:
        first = await self.connect()
        await self.join(first)
        second = await self.connect()
        reply = await self.join(second)
        self.assertEqual(reply["payload"]["response"]["num_consumers"], 2)
        push = await self.recv(first)
        self.assertEqual(
            push,
            {
                "topic": "service",
                "event": "num_consumers",
                "payload": {"num_consumers": 2},
                "ref": None,
            },
        )
        # The joining consumer gets no push for its own join.
        with self.assertRaises(TimeoutError):
            await asyncio.wait_for(second.recv(), 0.2)
        await second.close()
        self.assertEqual((await self.recv(first))["payload"], {"num_consumers": 1})
        self.assertEqual((await self.recv(first))["payload"], {"num_consumers": 1})


if __name__ == "__main__":
    unittest.main()
