"""Leaving under load, against a hub scripted frame by frame.

The hub may push a request after the replica's ``phx_leave`` and before it handles it. The
replica answers it (503: it is shutting down), joins again only to deliver that answer, and
leaves again at once: the hub's reply to the leave is what confirms the answer, so no
heartbeat reply is waited for (while the channel waited for one, the hub kept routing new
requests to it, and under steady load the replica could rejoin until its grace ran out).
"""

from __future__ import annotations

import secrets
import unittest
from typing import Any

from websockets.frames import Opcode

from core.hub.client import PlugboardClient
from core.hub.phoenix import Message, V1Serializer
from tests.faults import ScriptedConnection, ScriptedHub
from tests.support import EVENTS, FIXTURE_ACTIONS, Consumer, LogCapture, fast_settings

SERIALIZER = V1Serializer()  # the client's default (PHOENIX_VSN=1.0.0)


async def next_message(connection: ScriptedConnection, skip: str = "heartbeat") -> Message:
    """The consumer's next message, past its heartbeats (which this hub never answers)."""
    while True:
        [frame] = await connection.frames(1, timeout=3.0)
        message = SERIALIZER.decode(frame.data.decode())
        if message.event != skip:
            return message


def reply(connection: ScriptedConnection, to: Message, response: Any = None) -> None:
    payload = {"status": "ok", "response": response or {}}
    connection.send_text(
        SERIALIZER.encode(Message(to.topic, "phx_reply", payload, to.ref, to.join_ref))
    )


class RejoinToDeliverTest(unittest.IsolatedAsyncioTestCase):
    async def test_an_answer_made_after_the_leave_is_delivered_by_a_rejoin_that_leaves_at_once(
        self,
    ) -> None:
        hub = await self.enterAsyncContext(ScriptedHub())
        # A random token: the client masks its token in every log line of the process.
        token = secrets.token_urlsafe(12)
        settings = fast_settings(shutdown_grace_seconds=30.0).with_hub(hub.url(), token)
        consumer = Consumer(PlugboardClient(settings, FIXTURE_ACTIONS, EVENTS))
        self.addAsyncCleanup(consumer.stop)
        connection = await hub.accept()
        await connection.handshake()
        join = await next_message(connection)
        self.assertEqual(join.event, "phx_join")
        reply(connection, join, {"num_consumers": 1})
        await consumer.joined()

        with LogCapture().installed() as logs:
            consumer.client.request_shutdown()
            leave = await next_message(connection)
            self.assertEqual(leave.event, "phx_leave")
            # A request routed to the replica before the hub handled its leave.
            request = {"action": "Echo", "fields": {"text": "late"}, "response_ref": "late-1"}
            connection.send_text(
                SERIALIZER.encode(Message("service", "request", request, None, join.join_ref))
            )
            reply(connection, leave)

            rejoin = await next_message(connection)
            self.assertEqual(rejoin.event, "phx_join")
            reply(connection, rejoin, {"num_consumers": 1})
            answer = await next_message(connection)
            self.assertEqual((answer.event, answer.ref), ("response", "late-1"))
            self.assertEqual(answer.payload["status_code"], 503)
            self.assertEqual(answer.join_ref, rejoin.join_ref)
            # No heartbeat is ever answered here: the leave must not wait for one.
            second_leave = await next_message(connection)
            self.assertEqual(second_leave.event, "phx_leave")
            reply(connection, second_leave)
            # Then the replica closes the connection: the hub answers its close frame and, as
            # a server does, closes the TCP connection.
            while (await connection.frames(1, timeout=3.0))[0].opcode is not Opcode.CLOSE:
                pass
            connection.writer.close()
            self.assertEqual(await consumer.stop(timeout=3.0), 0)
        self.assertNotIn("could not be confirmed delivered", logs.text())
        self.assertIn("shutting down", logs.text())


if __name__ == "__main__":
    unittest.main()
