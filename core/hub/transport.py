"""`HubTransport`: one WebSocket connection to the hub, on websockets' sans-I/O protocol.

websockets documents its sans-I/O layer (``websockets.client.ClientProtocol``) for code
that does its own I/O: it turns bytes into events and events into bytes, and this module
moves the bytes with an ``asyncio.Protocol`` of its own. That gives the hub link what the
library's asyncio client keeps to itself, through documented API only:

- each complete text message goes straight to the handler from ``data_received`` (no queue,
  future or coroutine per message); fragmented messages are assembled here;
- frames queued together leave in one ``transport.write`` (one system call per batch);
- write backpressure: while the hub does not read (asyncio's ``pause_writing``), `writable`
  is False and the handler holds its responses; ``resume_writing`` tells it to go on;
- read pacing: `pause_reading` and `resume_reading` leave the hub's bytes in the kernel for
  a while (asyncio's flow control), so that one wake-up reads what came in meanwhile;
- the opening handshake, under one deadline for DNS, TCP, TLS and HTTP (`open`); ``wss://``
  verifies the hub's certificate against the system's trust store;
- pings are answered by the protocol; the closing handshake waits at most
  `close_timeout` before dropping the TCP connection.

Every way the opening can fail raises from `open`: ``OSError`` (DNS, refused, reset, TLS),
``TimeoutError``, or websockets' ``InvalidHandshake`` family (``InvalidStatus`` for an HTTP
answer other than 101, ``InvalidMessage`` for something that is not HTTP or a connection
closed before the answer).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Sequence
from typing import Protocol

from websockets.client import ClientProtocol
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import Event, State
from websockets.uri import parse_uri

logger = logging.getLogger(__name__)

# Above this many bytes waiting in the kernel's and asyncio's buffers, the hub is taken as
# not reading: writes pause (responses are held by the outbox) until it drains to a quarter.
WRITE_BUFFER_HIGH = 1024 * 1024


class TransportHandler(Protocol):
    """What a `HubTransport` tells its owner (the client's socket)."""

    def connection_open(self, transport: HubTransport) -> None:
        """The handshake succeeded; frames may follow at once."""

    def frame_received(self, frame: str | bytes) -> None:
        """A complete message: str for text, bytes for binary."""

    def writing_resumed(self) -> None:
        """The hub reads again after `writable` was False."""

    def connection_closed(self, transport: HubTransport) -> None:
        """The connection is gone (only called after `connection_open`)."""


class HubTransport(asyncio.Protocol):
    """See the module's docstring. Make one with `HubTransport.open`."""

    def __init__(
        self,
        url: str,
        handler: TransportHandler,
        *,
        max_size: int,
        close_timeout: float,
        user_agent: str,
    ) -> None:
        self._uri = parse_uri(url)
        self._handler = handler
        self._close_timeout = close_timeout
        self._user_agent = user_agent
        self._protocol = ClientProtocol(self._uri, max_size=max_size)
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._opened: asyncio.Future[None] = self._loop.create_future()
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._fragments: list[bytes | bytearray | memoryview] = []
        self._fragment_opcode: Opcode | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._writable = True
        self.abort_reason: str | None = None

    # ------------------------------------------------------------------ opening

    @classmethod
    async def open(
        cls,
        url: str,
        handler: TransportHandler,
        *,
        max_size: int = 1024 * 1024,
        open_timeout: float = 10.0,
        close_timeout: float = 5.0,
        user_agent: str = "py-service",
        ssl_context: ssl.SSLContext | None = None,
    ) -> HubTransport:
        """Connect and complete the WebSocket handshake within `open_timeout` seconds."""
        transport = cls(
            url, handler, max_size=max_size, close_timeout=close_timeout, user_agent=user_agent
        )
        uri = transport._uri
        context = (ssl_context or ssl.create_default_context()) if uri.secure else None
        try:
            async with asyncio.timeout(open_timeout):
                await transport._loop.create_connection(
                    lambda: transport,
                    uri.host,
                    uri.port,
                    ssl=context,
                    server_hostname=uri.host if context is not None else None,
                )
                await asyncio.shield(transport._opened)
        except BaseException:
            transport._drop()
            raise
        return transport

    # ------------------------------------------------------------------ the wire, for the socket

    @property
    def writable(self) -> bool:
        """False while the hub is not reading (the write buffer is over its high mark)."""
        return self._writable

    def send_frames(self, frames: Sequence[bytes]) -> None:
        """Send each item as one text frame, all in one write (dropped once closing)."""
        protocol = self._protocol
        if protocol.state is not State.OPEN:
            return
        send_text = protocol.send_text
        for frame in frames:
            send_text(frame)
        self._write_pending()

    def pause_reading(self) -> None:
        """Leave what the hub sends in the kernel's buffer until `resume_reading` (the
        outbox reads once per hold quantum while it holds answers)."""
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.pause_reading()

    def resume_reading(self) -> None:
        """Read again; nothing happens when reading is not paused or the connection is
        closing."""
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    def abort(self, reason: str) -> None:
        """Drop the TCP connection at once, without a closing handshake."""
        if self.abort_reason is None:
            self.abort_reason = reason
        self._drop()

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Close with the WebSocket closing handshake, dropping the TCP connection if the hub
        does not finish it within the close timeout."""
        protocol = self._protocol
        if protocol.state is State.OPEN:
            protocol.send_close(code, reason)
            self._write_pending()
        self._expect_close()
        await asyncio.shield(self._closed)

    async def wait_closed(self) -> None:
        """Return once the connection is gone."""
        await asyncio.shield(self._closed)

    # ------------------------------------------------------------------ how it ended

    @property
    def close_code(self) -> int | None:
        """The close code the hub sent (1006 when the connection dropped without one)."""
        return self._protocol.close_code

    @property
    def close_reason(self) -> str | None:
        """The close reason the hub sent, if any."""
        return self._protocol.close_reason

    @property
    def close_code_sent(self) -> int | None:
        """The close code this side sent (1009 after an oversized frame), if any."""
        if self._protocol.state is not State.CLOSED:
            return None
        sent = self._protocol.close_exc.sent
        return None if sent is None else sent.code

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """TCP (and TLS) is up: send the handshake request."""
        assert isinstance(transport, asyncio.Transport)  # a stream, from create_connection
        self._transport = transport
        transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
        request = self._protocol.connect()
        request.headers["User-Agent"] = self._user_agent
        self._protocol.send_request(request)
        self._write_pending()

    def data_received(self, data: bytes) -> None:
        """Feed the protocol, answer what it must (pongs, close frames), handle its events."""
        protocol = self._protocol
        protocol.receive_data(data)
        events = protocol.events_received()
        self._write_pending()
        if not self._opened.done():
            events = list(self._handshake(events))
        for event in events:
            if type(event) is Frame:
                self._frame(event)
        if protocol.close_expected():
            self._expect_close()

    def eof_received(self) -> bool | None:
        """The hub half-closed: let the protocol know, then close our side."""
        self._protocol.receive_eof()
        self._write_pending()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone: tell the handler (or fail the opening)."""
        self._protocol.receive_eof()
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        if not self._opened.done():
            error = self._protocol.handshake_exc
            if error is None:
                error = ConnectionError(f"connection closed during the handshake: {exc or 'EOF'}")
            self._opened.set_exception(error)
            self._opened.exception()  # retrieved by open(), or by nobody after a timeout
        elif self._opened.exception() is None:
            self._handler.connection_closed(self)
        if not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:
        """asyncio: the write buffer is over its high mark."""
        self._writable = False

    def resume_writing(self) -> None:
        """asyncio: the write buffer drained below its low mark."""
        self._writable = True
        if self._protocol.state is State.OPEN:
            self._handler.writing_resumed()

    # ------------------------------------------------------------------ internals

    def _handshake(self, events: list[Event]) -> list[Frame]:
        """Settle the opening once the hub's answer is in; returns the frames that followed."""
        error = self._protocol.handshake_exc
        if error is not None:
            # Not 101, or not HTTP at all: websockets has ended the stream (send_eof).
            self._opened.set_exception(error)
            self._opened.exception()
            return []
        if not events or not isinstance(events[0], Response):
            return []  # the answer is not complete yet
        self._opened.set_result(None)
        self._handler.connection_open(self)
        return [event for event in events[1:] if type(event) is Frame]

    def _frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if not frame.fin:
                self._fragment_opcode = opcode
                self._fragments = [frame.data]
                return
            data = frame.data
        elif opcode is Opcode.CONT and self._fragment_opcode is not None:
            self._fragments.append(frame.data)
            if not frame.fin:
                return
            opcode, self._fragment_opcode = self._fragment_opcode, None
            data = b"".join(self._fragments)
            self._fragments = []
        else:
            return  # control frames: the protocol has answered them already
        message: str | bytes
        if opcode is Opcode.TEXT:
            try:
                message = str(data, "utf-8")
            except UnicodeDecodeError as error:
                # RFC 6455 section 8.1: invalid UTF-8 in a text message fails the connection.
                reason = f"{error.reason} at position {error.start}"
                self._protocol.fail(CloseCode.INVALID_DATA, reason)
                self._write_pending()
                self._expect_close()
                return
        else:
            message = bytes(data)
        try:
            self._handler.frame_received(message)
        except Exception:
            # The handler deals with its own errors; this only keeps one message's failure
            # from taking the connection down (asyncio would close the transport).
            logger.exception("handling a message from the hub failed; the connection stays up")

    def _write_pending(self) -> None:
        """Write what the protocol has to send: one write for the data, then the EOF if any."""
        chunks = self._protocol.data_to_send()
        if not chunks:
            return
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        pending: list[bytes] = []
        for chunk in chunks:
            if chunk:
                pending.append(chunk)
                continue
            # An empty chunk marks the end of the stream: what precedes it goes first.
            self._write(transport, pending)
            pending = []
            if transport.can_write_eof():
                transport.write_eof()
            else:
                transport.close()  # TLS cannot half-close
            return
        self._write(transport, pending)

    @staticmethod
    def _write(transport: asyncio.Transport, chunks: list[bytes]) -> None:
        if len(chunks) == 1:
            transport.write(chunks[0])
        elif chunks:
            transport.write(b"".join(chunks))

    def _expect_close(self) -> None:
        """The hub should now close the TCP connection; close it ourselves if it does not."""
        if self._close_timer is None and not self._closed.done():
            self._close_timer = self._loop.call_later(
                self._close_timeout, self.abort, "the hub did not close the connection"
            )

    def _drop(self) -> None:
        if self._transport is not None:
            self._transport.abort()
        elif not self._opened.done():
            self._opened.cancel()
