"""`HubConnection` against a real websockets server on loopback.

These tests pin down what the subclass changes in websockets' client connection (and would
fail if a websockets upgrade changed the two internal methods it overrides): complete text
messages go to the callback, everything else still reaches ``recv()``, invalid UTF-8 fails
the connection with 1007, and queued frames leave in one write.
"""

from __future__ import annotations

import asyncio
import unittest
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from core.hub.connection import HubConnection

Handler = Callable[[ServerConnection], Awaitable[None]]


class HubConnectionTest(unittest.IsolatedAsyncioTestCase):
    async def open(
        self, handler: Handler, on_message: Callable[[str], None] | None = None
    ) -> tuple[HubConnection, list[str]]:
        """Serve `handler` on a free port and connect a HubConnection delivering messages to
        `on_message` (by default, to the list returned)."""
        server = await serve(handler, "127.0.0.1", 0)
        self.addAsyncCleanup(server.wait_closed)
        self.addCleanup(server.close)
        port = server.sockets[0].getsockname()[1]
        messages: list[str] = []
        websocket = await connect(
            f"ws://127.0.0.1:{port}/",
            create_connection=HubConnection.delivering_to(on_message or messages.append),
            close_timeout=1,
        )
        self.addAsyncCleanup(websocket.close)
        assert isinstance(websocket, HubConnection)
        return websocket, messages

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(5):
            while not condition():
                await asyncio.sleep(0.01)

    async def test_text_messages_go_to_the_callback_in_order(self) -> None:
        async def handler(server: ServerConnection) -> None:
            for number in range(50):
                await server.send(f"message {number}")
            await server.wait_closed()

        _, messages = await self.open(handler)
        await self.wait_for(lambda: len(messages) == 50)
        self.assertEqual(messages, [f"message {number}" for number in range(50)])

    async def test_fragmented_and_binary_messages_still_reach_recv(self) -> None:
        async def handler(server: ServerConnection) -> None:
            await server.send(["frag", "mented"])  # one text message in two frames
            await server.send(b"\x00binary")
            await server.send("whole")
            await server.wait_closed()

        websocket, messages = await self.open(handler)
        async with asyncio.timeout(5):
            self.assertEqual(await websocket.recv(), "fragmented")
            self.assertEqual(await websocket.recv(), b"\x00binary")
        await self.wait_for(lambda: messages == ["whole"])

    async def test_invalid_utf8_fails_the_connection_with_1007(self) -> None:
        async def handler(server: ServerConnection) -> None:
            server.protocol.send_text(b"\xff\xfe not utf-8")
            await server.ping()  # writes the frame queued above
            await server.wait_closed()

        websocket, messages = await self.open(handler)
        async with asyncio.timeout(5):
            await websocket.wait_closed()
        self.assertEqual(messages, [])
        self.assertIsNotNone(websocket.protocol.close_sent)
        assert websocket.protocol.close_sent is not None
        self.assertEqual(websocket.protocol.close_sent.code, CloseCode.INVALID_DATA)

    async def test_a_failing_callback_leaves_the_connection_up(self) -> None:
        received: list[str] = []

        async def handler(server: ServerConnection) -> None:
            await server.send("boom")
            await server.send("after")
            await server.wait_closed()

        def callback(text: str) -> None:
            received.append(text)
            if text == "boom":
                raise RuntimeError("a bug in the callback")

        with self.assertLogs("core.hub.connection", "ERROR"):
            websocket, _ = await self.open(handler, callback)
            await self.wait_for(lambda: received == ["boom", "after"])
        await websocket.ping()  # still open

    async def test_queued_frames_leave_in_one_write(self) -> None:
        echoed: list[str] = []

        async def handler(server: ServerConnection) -> None:
            async for message in server:
                echoed.append(str(message))

        websocket, _ = await self.open(handler)
        writes: list[bytes] = []
        transport: Any = websocket.transport
        original = transport.write

        def counting_write(data: bytes) -> None:
            writes.append(data)
            original(data)

        transport.write = counting_write
        for number in range(9):
            websocket.protocol.send_text(f"response {number}".encode())
        await websocket.send("response 9")
        await self.wait_for(lambda: len(echoed) == 10)
        self.assertEqual(echoed, [f"response {number}" for number in range(10)])
        self.assertEqual(len(writes), 1)

    async def test_the_close_handshake_still_completes(self) -> None:
        async def handler(server: ServerConnection) -> None:
            await server.close(CloseCode.GOING_AWAY, "bye")

        websocket, _ = await self.open(handler)
        with self.assertRaises(ConnectionClosed):
            async with asyncio.timeout(5):
                await websocket.recv()
        self.assertEqual(websocket.close_code, CloseCode.GOING_AWAY)
        self.assertEqual(websocket.close_reason, "bye")


if __name__ == "__main__":
    unittest.main()
