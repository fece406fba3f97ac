"""Fault injection for the hub link: a misbehaving TCP front, and a hub scripted by hand.

`TcpFront` listens on loopback and, depending on its `mode`, passes connections through to
an upstream hub or does to them what production fronts do on a bad day: closes them at
accept, answers something that is not HTTP, answers HTTP 502, or never answers. `cut()`
aborts every connection it is passing through, in both directions, without a close frame.

`ScriptedHub` is a WebSocket server whose test writes every byte: fragmented, binary or
invalid frames, a close frame or none, a write side that stops reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol


class Mode(enum.Enum):
    """What the front does with a new connection."""

    PROXY = "proxy"  # pass bytes through to the upstream, both ways
    CLOSE = "close"  # accept, then close at once
    GARBAGE = "garbage"  # read the request, answer bytes that are not HTTP, close
    HTTP_502 = "502"  # read the request, answer HTTP 502 Bad Gateway, close
    HANG = "hang"  # accept and read, never answer


GARBAGE = b"\x16\x03\x01\x02\x00 this is not an HTTP response \xff\xfe\r\n\r\n"
BAD_GATEWAY = (
    b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n"
    b"Connection: close\r\n\r\nBad Gateway"
)


class TcpFront:
    """A TCP front on 127.0.0.1 before `upstream` (host, port); see the module docstring."""

    def __init__(self, upstream: tuple[str, int], mode: Mode = Mode.PROXY) -> None:
        self.upstream = upstream
        self.mode = mode
        self.port = 0
        self.accepted = 0
        self.cuts = 0
        # While True, bytes from the consumer to the hub are held back (and lost at a cut):
        # what the consumer wrote then never reaches the hub.
        self.hold_upstream = False
        self._server: asyncio.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._accepted_writers: set[asyncio.StreamWriter] = set()
        self._accepted = asyncio.Event()

    @property
    def websocket_url(self) -> str:
        """The consumer socket URL through this front."""
        return f"ws://127.0.0.1:{self.port}/websocket"

    async def start(self) -> None:
        """Listen on a free port."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
        self.cut()
        # Dropping the connections ends their handlers (cancelling them instead trips an
        # asyncio bug in Python 3.12.1's streams, which logs the cancellation as an error).
        for writer in list(self._accepted_writers):
            writer.transport.abort()
        if self._handlers:
            _, pending = await asyncio.wait(set(self._handlers), timeout=2)
            for task in pending:
                task.cancel()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def wait_accepted(self, count: int, timeout: float = 10.0) -> None:
        """Wait until `count` connections in all have been accepted."""
        async with asyncio.timeout(timeout):
            while self.accepted < count:
                self._accepted.clear()
                await self._accepted.wait()

    def cut(self) -> int:
        """Abort every connection being passed through (no close frame, no FIN); returns
        how many were cut."""
        links = list(self._links)
        for downstream, upstream in links:
            for writer in (downstream, upstream):
                transport = writer.transport
                if not transport.is_closing():
                    transport.abort()
        self._links.clear()
        self.cuts += len(links)
        return len(links)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._accepted_writers.add(writer)
        self.accepted += 1
        self._accepted.set()
        try:
            await self._serve(self.mode, reader, writer)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._handlers.discard(task)
            self._accepted_writers.discard(writer)
            if not writer.transport.is_closing():
                writer.transport.abort()

    async def _serve(
        self, mode: Mode, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if mode is Mode.CLOSE:
            writer.close()
            return
        if mode is Mode.HANG:
            await reader.read()  # until the consumer gives up
            return
        if mode in (Mode.GARBAGE, Mode.HTTP_502):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(GARBAGE if mode is Mode.GARBAGE else BAD_GATEWAY)
            await writer.drain()
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        link = (writer, up_writer)
        self._links.add(link)
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, lambda: self.hold_upstream),
                self._pump(up_reader, writer, lambda: False),
            )
        finally:
            self._links.discard(link)
            if not up_writer.transport.is_closing():
                up_writer.transport.abort()

    @staticmethod
    async def _pump(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hold: Callable[[], bool]
    ) -> None:
        held: list[bytes] = []
        try:
            while data := await reader.read(65536):
                if hold():
                    held.append(data)
                    continue
                writer.write(b"".join([*held, data]))
                held.clear()
                await writer.drain()
        finally:
            if not writer.transport.is_closing():
                with contextlib.suppress(OSError):
                    writer.write_eof()


class ScriptedConnection:
    """One consumer connection to a `ScriptedHub`: the test sends exactly what it wants."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol = ServerProtocol(max_size=None)
        self.request: Request | None = None
        self._frames: list[Frame] = []

    async def handshake(self, status: int = 101) -> None:
        """Read the upgrade request and accept it (or answer `status`)."""
        while self.request is None:
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionError("the consumer closed during the handshake")
            self.protocol.receive_data(data)
            for event in self.protocol.events_received():
                if isinstance(event, Request):
                    self.request = event
        if status == 101:
            response = self.protocol.accept(self.request)
        else:
            response = self.protocol.reject(status, "refused by the test\n")
        self.protocol.send_response(response)
        self.flush()

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (frames built by the test, garbage...)."""
        self.writer.write(data)

    def send_frame(self, opcode: Opcode, data: bytes, fin: bool = True) -> None:
        """Write one server frame (unmasked), bypassing the protocol's checks."""
        self.writer.write(Frame(opcode, data, fin).serialize(mask=False))

    def send_text(self, text: str) -> None:
        """Send one text message through the protocol."""
        self.protocol.send_text(text.encode())
        self.flush()

    def flush(self) -> None:
        """Write what the protocol has to send."""
        for chunk in self.protocol.data_to_send():
            if chunk:
                self.writer.write(chunk)

    async def frames(self, count: int, timeout: float = 5.0) -> list[Frame]:
        """The next `count` frames from the consumer (pongs and closes answered as they come)."""
        async with asyncio.timeout(timeout):
            while len(self._frames) < count:
                data = await self.reader.read(65536)
                if not data:
                    self.protocol.receive_eof()
                    break
                self.protocol.receive_data(data)
                self._frames.extend(
                    event for event in self.protocol.events_received() if isinstance(event, Frame)
                )
                self.flush()
        taken, self._frames = self._frames[:count], self._frames[count:]
        return taken

    async def closed(self, timeout: float = 5.0) -> None:
        """Wait until the consumer has closed the TCP connection."""
        async with asyncio.timeout(timeout):
            while await self.reader.read(65536):
                pass


class ScriptedHub:
    """A WebSocket server on loopback (websockets' sans-I/O `ServerProtocol`), each of whose
    connections a test drives by hand: `accept()` hands the next one over."""

    def __init__(self, ssl: Any = None) -> None:
        self._ssl = ssl
        self.port = 0
        self._server: asyncio.Server | None = None
        self._queue: asyncio.Queue[ScriptedConnection] = asyncio.Queue()
        self._connections: list[ScriptedConnection] = []

    def url(self, host: str = "127.0.0.1", scheme: str = "ws") -> str:
        """The URL a consumer connects to."""
        return f"{scheme}://{host}:{self.port}/websocket"

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self._ssl)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for connection in self._connections:
            connection.writer.transport.abort()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    async def accept(self, timeout: float = 5.0) -> ScriptedConnection:
        """The next connection (not handshaken yet)."""
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = ScriptedConnection(reader, writer)
        self._connections.append(connection)
        await self._queue.put(connection)
