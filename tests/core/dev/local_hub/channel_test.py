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
        # The ref is the channel's join_ref, and a v1 join that sent none has none.
        self.assertEqual(
            error, {"topic": "service", "event": "phx_error", "payload": {}, "ref": None}
        )
        await self.hub.wait_for_joined(1)
        # The leave is announced twice to the others.
        self.assertEqual((await self.recv(watcher))["payload"], {"num_consumers": 1})
        self.assertEqual((await self.recv(watcher))["payload"], {"num_consumers": 1})
        # The socket stays open and may rejoin; with a join_ref, phx_error carries it.
        await self.send(websocket, self.frame("phx_join", "5", join_ref="j5"))
        reply = await self.recv(websocket)
        self.assertEqual(reply["payload"]["response"]["num_consumers"], 2)
        await self.send(websocket, self.frame("ping", "6", join_ref="stale"))
        error = await self.recv(websocket)
        self.assertEqual((error["event"], error["ref"]), ("phx_error", "j5"))

    async def test_leave_and_duplicate_join(self) -> None:
        watcher = await self.connect(vsn="2.0.0")
        await self.send(watcher, ["w", "w", "service", "phx_join", {}])
        await self.recv(watcher)
        websocket = await self.connect()
        await self.send(websocket, self.frame("phx_join", "1", join_ref="1"))
        await self.recv(websocket)
        self.assertEqual((await self.recv(watcher))[4], {"num_consumers": 2})

        # Joining again answers the new join, then closes the first one.
        await self.send(websocket, self.frame("phx_join", "2", join_ref="2"))
        reply = await self.recv(websocket)
        self.assertEqual((reply["event"], reply["ref"]), ("phx_reply", "2"))
        self.assertEqual(reply["payload"]["status"], "ok")
        self.assertEqual(reply["payload"]["response"]["num_consumers"], 2)
        close = await self.recv(websocket)
        self.assertEqual((close["event"], close["ref"]), ("phx_close", "1"))
        # The others see the old join leave once and the new one join.
        self.assertEqual((await self.recv(watcher))[4], {"num_consumers": 1})
        self.assertEqual((await self.recv(watcher))[4], {"num_consumers": 2})

        # A leave naming another join is ignored: no reply, still joined.
        await self.send(websocket, self.frame("phx_leave", "3", join_ref="1"))
        await self.send(websocket, self.frame("phx_leave", "4"))  # no join_ref: not this join
        await self.send(
            websocket, {"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "5"}
        )
        self.assertEqual((await self.recv(websocket))["ref"], "5")
        self.assertEqual(self.hub.joined_count(), 2)

        await self.send(websocket, self.frame("phx_leave", "6", join_ref="2"))
        reply = await self.recv(websocket)
        self.assertEqual(
            (reply["event"], reply["ref"], reply["payload"]["status"]), ("phx_reply", "6", "ok")
        )
        close = await self.recv(websocket)
        self.assertEqual((close["event"], close["ref"]), ("phx_close", "2"))
        await self.hub.wait_for_joined(1)
        self.assertEqual(self.hub.connection_count(), 2)

    async def test_v1_join_without_join_ref_closes_with_a_null_ref(self) -> None:
        websocket = await self.connect()
        await self.join(websocket, ref="1")
        await self.send(websocket, self.frame("phx_join", "2"))
        self.assertEqual((await self.recv(websocket))["ref"], "2")
        close = await self.recv(websocket)
        self.assertEqual((close["event"], close["ref"]), ("phx_close", None))
        await self.send(websocket, self.frame("phx_leave", "3"))  # a v1 join matches any leave
        self.assertEqual((await self.recv(websocket))["ref"], "3")
        close = await self.recv(websocket)
        self.assertEqual((close["event"], close["ref"]), ("phx_close", None))

    async def test_which_join_ref_each_frame_carries_in_v2(self) -> None:
        watcher = await self.connect(vsn="2.0.0")
        await self.send(watcher, [None, "w1", "service", "phx_join", {}])
        self.assertEqual((await self.recv(watcher))[:2], [None, "w1"])  # the join's, echoed
        websocket = await self.connect()
        await self.join(websocket)
        # The channel's pushes carry its join ref: the join's ref when it had no join_ref.
        self.assertEqual(
            await self.recv(watcher), ["w1", None, "service", "num_consumers", {"num_consumers": 2}]
        )
        # Heartbeat and unmatched-topic replies carry none, whatever the message said.
        await self.send(watcher, ["x", "h", "phoenix", "heartbeat", {}])
        self.assertEqual((await self.recv(watcher))[:2], [None, "h"])
        await self.send(watcher, ["x", "u", "room:1", "phx_join", {}])
        self.assertEqual((await self.recv(watcher))[:2], [None, "u"])
        # A leave of a topic without a channel echoes it.
        await self.send(watcher, ["x", "l", "room:1", "phx_leave", {}])
        self.assertEqual((await self.recv(watcher))[:2], ["x", "l"])
        # A leave of the joined topic: the reply has the channel's join ref, the close the
        # join's join_ref (null here).
        await self.send(watcher, [None, "l2", "service", "phx_leave", {}])
        self.assertEqual((await self.recv(watcher))[:4], ["w1", "l2", "service", "phx_reply"])
        self.assertEqual(await self.recv(watcher), [None, None, "service", "phx_close", {}])

    async def test_leave_on_a_topic_not_joined_is_answered_ok(self) -> None:
        websocket = await self.connect()
        for topic in ("service", "room:1"):
            with self.subTest(topic=topic):
                await self.send(
                    websocket, {"topic": topic, "event": "phx_leave", "payload": {}, "ref": "1"}
                )
                self.assertEqual(
                    await self.recv(websocket),
                    {
                        "topic": topic,
                        "event": "phx_reply",
                        "payload": {"status": "ok", "response": {}},
                        "ref": "1",
                    },
                )
        # Nothing else follows (no phx_close): the next frame is the heartbeat's reply.
        await self.send(
            websocket, {"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "2"}
        )
        self.assertEqual((await self.recv(websocket))["ref"], "2")

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
