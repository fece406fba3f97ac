"""Leaving under load, against a hub scripted frame by frame.

On shutdown the replica leaves first, so the hub stops routing to it. The hub may still push
a request after the ``phx_leave`` and before it handles it, and requests may be running: the
replica serves them (200), joins again only to deliver those answers (the hub drops a
response sent after the leave), and leaves again at once: the hub's reply to the leave is
what confirms the answers, so no heartbeat reply is waited for. The service's last joined
replica, asked to hold, stays joined and serves until another joins or its grace ends.
"""

from __future__ import annotations

import secrets
import signal
import time
import unittest
from typing import Any

from websockets.frames import Opcode

from core.hub.client import PlugboardClient
from core.hub.phoenix import Message, V1Serializer
from tests.faults import ScriptedConnection, ScriptedHub
from tests.support import (
    EVENTS,
    FIXTURE_ACTIONS,
    Consumer,
    LogCapture,
    fast_settings,
    wait_until,
)

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


def push(connection: ScriptedConnection, join: Message, event: str, payload: Any) -> None:
    connection.send_text(SERIALIZER.encode(Message("service", event, payload, None, join.join_ref)))


def request(connection: ScriptedConnection, join: Message, ref: str, **fields: Any) -> None:
    action = "Sleep" if "seconds" in fields else "Echo"
    push(connection, join, "request", {"action": action, "fields": fields, "response_ref": ref})


class LeaveTest(unittest.IsolatedAsyncioTestCase):
    async def start(self, consumers: int, **settings: Any) -> tuple[ScriptedConnection, Message]:
        """A consumer joined to the scripted hub, which says `consumers` are joined."""
        hub = await self.enterAsyncContext(ScriptedHub())
        # A random token: the client masks its token in every log line of the process.
        token = secrets.token_urlsafe(12)
        config = fast_settings(**settings).with_hub(hub.url(), token)
        self.consumer = Consumer(PlugboardClient(config, FIXTURE_ACTIONS, EVENTS))
        self.addAsyncCleanup(self.consumer.stop)
        connection = await hub.accept()
        await connection.handshake()
        join = await next_message(connection)
        self.assertEqual(join.event, "phx_join")
        reply(connection, join, {"num_consumers": consumers})
        await self.consumer.joined()
        return connection, join

    async def answers(self, connection: ScriptedConnection, count: int) -> dict[str, Any]:
        """The next `count` messages, all responses: status code by ref."""
        found: dict[str, Any] = {}
        for _ in range(count):
            message = await next_message(connection)
            self.assertEqual(message.event, "response", message)
            found[str(message.ref)] = message.payload["status_code"]
        return found

    async def closes(self, connection: ScriptedConnection, leave: Message) -> int:
        """Answer the final leave; the replica closes the connection and exits (its code)."""
        self.assertEqual(leave.event, "phx_leave")
        reply(connection, leave)
        # The hub answers the close frame and, as a server does, closes the TCP connection.
        while (await connection.frames(1, timeout=3.0))[0].opcode is not Opcode.CLOSE:
            pass
        connection.writer.close()
        return await self.consumer.stop(timeout=3.0)

    async def test_it_leaves_first_then_serves_what_still_arrives_and_delivers_after_a_rejoin(
        self,
    ) -> None:
        connection, join = await self.start(consumers=2, shutdown_grace_seconds=30.0)
        request(connection, join, "running-1", message="running", seconds=0.3)
        client = self.consumer.client
        await wait_until(lambda: client.executor.in_flight == 1)

        with LogCapture().installed() as logs:
            client.request_shutdown(signal.SIGTERM, hold_if_last=True)
            # Out of the rotation first, while the request still runs.
            leave = await next_message(connection)
            self.assertEqual(leave.event, "phx_leave")
            self.assertEqual(client.executor.in_flight, 1)
            # A request the hub routed to the replica before it handled the leave: served.
            request(connection, join, "late-1", message="late")
            reply(connection, leave)

            # Once the running request is done, a join only to write both answers.
            rejoin = await next_message(connection)
            self.assertEqual(rejoin.event, "phx_join")
            self.assertEqual(client.executor.in_flight, 0)
            reply(connection, rejoin, {"num_consumers": 2})
            self.assertEqual(await self.answers(connection, 2), {"late-1": 200, "running-1": 200})
            # No heartbeat is ever answered here: the leave must not wait for one.
            self.assertEqual(await self.closes(connection, await next_message(connection)), 0)
        text = logs.text()
        self.assertNotIn("could not be confirmed delivered", text)
        self.assertIn("leaving the hub's rotation", text)
        self.assertIn("joined again 1 time(s)", text)
        self.assertNotIn("422", text)

    async def test_the_last_replica_serves_until_another_joins(self) -> None:
        connection, join = await self.start(consumers=1, shutdown_grace_seconds=30.0)
        began = time.monotonic()
        with LogCapture().installed() as logs:
            self.consumer.client.request_shutdown(signal.SIGTERM, hold_if_last=True)
            # Still joined: a request is served and answered at once, no leave comes first.
            request(connection, join, "held-1", message="still here")
            self.assertEqual(await self.answers(connection, 1), {"held-1": 200})
            push(connection, join, "num_consumers", {"num_consumers": 2})
            self.assertEqual(await self.closes(connection, await next_message(connection)), 0)
        self.assertLess(time.monotonic() - began, 10)  # long before the grace ends
        warnings = [line for line in logs.lines if "only joined replica" in line]
        self.assertEqual(len(warnings), 1, logs.text())
        self.assertIn("callers get 422", warnings[0])
        self.assertIn("another replica joined (2 consumers)", logs.text())

    async def test_the_last_replica_leaves_when_its_grace_ends(self) -> None:
        connection, join = await self.start(consumers=1, shutdown_grace_seconds=0.5)
        request(connection, join, "long-1", message="long", seconds=10)
        client = self.consumer.client
        await wait_until(lambda: client.executor.in_flight == 1)
        began = time.monotonic()
        client.request_shutdown(signal.SIGTERM, hold_if_last=True)
        # At the grace's end it leaves first, still serving what the hub sends until it has
        # processed the leave...
        leave = await next_message(connection)
        self.assertEqual(leave.event, "phx_leave")
        self.assertGreaterEqual(time.monotonic() - began, 0.45)
        request(connection, join, "late-1", message="late")
        reply(connection, leave)
        # ...then cancels what still runs (503), and joins again to deliver both answers.
        rejoin = await next_message(connection)
        self.assertEqual(rejoin.event, "phx_join")
        reply(connection, rejoin, {"num_consumers": 1})
        self.assertEqual(await self.answers(connection, 2), {"late-1": 200, "long-1": 503})
        self.assertEqual(await self.closes(connection, await next_message(connection)), 0)

    async def test_without_holding_the_last_replica_leaves_at_once(self) -> None:
        # SIGINT, a reload, a test's stop: nobody is coming to take over.
        connection, _join = await self.start(consumers=1, shutdown_grace_seconds=30.0)
        self.consumer.client.request_shutdown(signal.SIGINT)
        self.assertEqual(await self.closes(connection, await next_message(connection)), 0)


if __name__ == "__main__":
    unittest.main()
