"""One consumer socket on the local hub: its framing, join state, frames in and out.

A `Consumer` wraps an upgraded aiohttp WebSocket. It sends Phoenix messages in the
serializer the consumer chose at connect time (v1 objects or v2 arrays), and `serve` reads
frames until the socket ends, handing each decoded message to a callback. Like the real hub
it closes the socket with 1011 for a frame it cannot decode (or any binary frame) and with
1002 after `idle_timeout` seconds in which no frame went either way.

Frames are read by Phoenix's rules (`decode_frame`), which differ from a client's: a v1
object needs all of ``topic``, ``event``, ``payload`` and ``ref`` (null is fine); a v2 array
needs at least five items; and a ref, join ref or topic of any JSON type is kept as sent,
so a reply carries back the very value it answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from aiohttp import WSMsgType, web

from core import json_codec
from core.hub.phoenix import PHX_REPLY, FrameError, Message, Serializer

logger = logging.getLogger("core.local_hub")

SERVICE_TOPIC = "service"
"""The only topic a consumer may join."""

CLOSE_IDLE = 1002
"""Close code for a socket silent for `idle_timeout` seconds."""
CLOSE_CRASH = 1011
"""Close code for a frame the hub cannot decode, and for a hub-side forced disconnect."""
CLOSE_RESTART = 1012
"""Close code when the hub stops gracefully."""

WebSocket = web.WebSocketResponse[Literal[True]]

MessageHandler = Callable[["Consumer", Message], Awaitable[None]]

_V1_KEYS = frozenset({"topic", "event", "payload", "ref"})


def decode_frame(version: str, text: str) -> Message:
    """Decode a text frame as Phoenix's serializer `version` does; FrameError if it would crash.

    The message's fields hold the JSON values as sent, whatever their type.
    """
    try:
        data = json_codec.loads(text)
    except json_codec.JSONDecodeFailure as error:
        raise FrameError(f"not JSON: {error}") from None
    if version.startswith("1."):
        if type(data) is not dict or not data.keys() >= _V1_KEYS:
            raise FrameError("a v1 frame is an object with topic, event, payload and ref")
        return Message(
            data["topic"], data["event"], data["payload"], data["ref"], data.get("join_ref")
        )
    if type(data) is not list or len(data) < 5:
        raise FrameError("a v2 frame is an array of at least five items")
    join_ref, ref, topic, event, payload = data[:5]
    return Message(topic, event, payload, ref, join_ref)


@dataclass(eq=False)
class Consumer:
    """One consumer socket: its framing, its token and its join state."""

    id: int
    request: web.Request
    websocket: WebSocket
    serializer: Serializer
    token: dict[str, Any]
    actions: str
    """The ``actions`` query parameter as sent: the catalog, read when the consumer joins."""
    last_activity: float
    ready: bool = False
    joined: bool = False
    join_ref: Any = None
    """The join's ``join_ref`` as sent (None when it had none): ``phx_close`` and ``phx_error``
    carry it, and a ``phx_leave`` must name it."""
    channel_ref: Any = None
    """The channel's own join ref (the join's ``join_ref``, or its ``ref`` without one):
    the channel's pushes and its reply to a leave carry it."""
    closed_with: int | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def touch(self) -> None:
        """Restart the idle timer."""
        self.last_activity = asyncio.get_running_loop().time()

    async def send(self, message: Message) -> bool:
        """Send one message; False when the socket is already gone."""
        if not self.ready or self.websocket.closed:
            return False
        if self.serializer.version.startswith("1."):
            # Phoenix's v1 serializer never writes join_ref.
            message = replace(message, join_ref=None)
        try:
            await self.websocket.send_str(self.serializer.encode(message))
        except (ConnectionError, RuntimeError) as error:
            logger.debug("consumer %d: send failed: %s", self.id, error)
            return False
        self.touch()
        return True

    async def send_raw(self, data: str | bytes) -> None:
        """Send a frame as is (text for str, binary for bytes)."""
        if not self.ready or self.websocket.closed:
            return
        try:
            if isinstance(data, bytes):
                await self.websocket.send_bytes(data)
            else:
                await self.websocket.send_str(data)
        except (ConnectionError, RuntimeError) as error:
            logger.debug("consumer %d: raw send failed: %s", self.id, error)
            return
        self.touch()

    async def push(self, event: str, payload: Any) -> bool:
        """A channel push on the service topic (ref null, the channel's join ref)."""
        return await self.send(Message(SERVICE_TOPIC, event, payload, None, self.channel_ref))

    async def reply(self, to: Message, status: str, response: Any, join_ref: Any = None) -> bool:
        """A ``phx_reply`` to `to`, on its topic, with its ref and the given `join_ref`.

        Which join ref a reply carries depends on who answers on the real hub: none for a
        heartbeat or an unmatched topic, the request's for a join, the channel's for a leave.
        """
        payload = {"status": status, "response": response}
        return await self.send(Message(to.topic, PHX_REPLY, payload, to.ref, join_ref))

    async def close(self, code: int) -> None:
        """Close the socket with `code` (no-op when already closed)."""
        if self.ready and not self.websocket.closed:
            self.closed_with = code
            try:
                await self.websocket.close(code=code)
            except (ConnectionError, RuntimeError) as error:
                logger.debug("consumer %d: close failed: %s", self.id, error)

    def abort(self) -> None:
        """Drop the TCP connection without a close frame (a network fault)."""
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def serve(self, idle_timeout: Callable[[], float], on_message: MessageHandler) -> None:
        """Read frames until the socket closes, the consumer falls silent or sends garbage.

        `idle_timeout` is read before each wait, so a change applies to open sockets too.
        """
        websocket = self.websocket
        loop = asyncio.get_running_loop()
        while True:
            remaining = self.last_activity + idle_timeout() - loop.time()
            if remaining <= 0:
                logger.info("consumer %d idle for %s s: closing (1002)", self.id, idle_timeout())
                await self.close(CLOSE_IDLE)
                return
            try:
                frame = await websocket.receive(timeout=remaining)
            except TimeoutError:
                continue
            if frame.type is WSMsgType.TEXT:
                self.touch()
                try:
                    message = decode_frame(self.serializer.version, frame.data)
                except FrameError as error:
                    logger.warning(
                        "consumer %d sent an undecodable frame (%s): closing (1011)",
                        self.id,
                        error,
                    )
                    await self.close(CLOSE_CRASH)
                    return
                await on_message(self, message)
            elif frame.type is WSMsgType.BINARY:
                self.touch()
                logger.warning("consumer %d sent a binary frame: closing (1011)", self.id)
                await self.close(CLOSE_CRASH)
                return
            elif frame.type is WSMsgType.PING:
                self.touch()
                try:
                    await websocket.pong(frame.data)
                except (ConnectionError, RuntimeError):
                    return
            elif frame.type is WSMsgType.PONG:
                self.touch()
            else:  # CLOSE, CLOSING, CLOSED or ERROR
                return
