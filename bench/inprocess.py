"""The framework's Python cost per request next to the bare loop's, in one process, no sockets.

``python -m bench.inprocess [--batches N] [--log-format text|json] [--log-level LEVEL]``

`bench.run` measures whole processes over loopback, system calls included, and on a shared
machine its figures move by several per cent between runs. This script is the finer tool
used while optimising: the framework's client (`PlugboardClient` with the benchmark's Echo,
on its own `HubTransport`) and the bare loop (`bench.bare_consumer.answer`, on websockets'
asyncio connection) each get a connection over an in-memory transport, whose opening
handshake and join are answered by websockets' sans-I/O server protocol, and batches of 64
request frames are fed to them in turn, the order alternating every batch. The CPU time
(``time.process_time``) spent until each side has queued all 64 responses is added to that
side; the framework's heartbeats are answered as the hub would (its outbox keeps each
response until one is). Both run in the same process at the same moments, so the machine's
load and clock speed cancel out of the ratio.

What it leaves out: system calls (the transport writes nowhere, so the framework's one write
per batch against the bare loop's one per response does not show; `bench.run` measures it)
and the hub. The framework logs at ``--log-level`` into a temporary file, as it does with
stderr redirected to a file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection
from websockets.client import ClientProtocol
from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from bench import bare_consumer
from bench.common import BENCH_ACTIONS, ECHO_FIELDS, IN_FLIGHT

URI = "ws://bench.invalid/socket/websocket"


class MemoryTransport(asyncio.Transport):
    """A transport that accepts every write and keeps it (until `take`)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self._data: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes += 1
        self._data.append(bytes(data))

    def take(self) -> bytes:
        """What was written since the last call (the memory is released)."""
        data, self._data = b"".join(self._data), []
        return data

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


class Side:
    """One consumer under comparison: how to feed it bytes, and how many responses it wrote.

    `answer` sees what the side wrote after each batch (untimed) and returns what the hub
    would send back besides requests (heartbeat replies); it is fed, timed, with the next
    batch.
    """

    def __init__(
        self,
        name: str,
        feed: Callable[[bytes], None],
        written: Callable[[], int],
        transport: MemoryTransport,
        answer: Callable[[bytes], bytes] = lambda _: b"",
    ) -> None:
        self.name = name
        self.feed = feed
        self.written = written
        self.transport = transport
        self.answer = answer
        self.backlog = b""
        self.seconds = 0.0
        # Heartbeats the side wrote (each in a write of its own): their number follows the
        # wall time a run takes, not the requests.
        self.heartbeats = 0

    async def serve(self, frames: bytes, expected: int) -> None:
        """Feed one batch of frames; return once `expected` responses in all are queued."""
        started = time.process_time()
        self.feed(self.backlog + frames)
        while self.written() < expected:
            await asyncio.sleep(0)
        self.seconds += time.process_time() - started
        self.backlog = self.answer(self.transport.take())


def bare_side() -> Side:
    """The bare loop on websockets' asyncio connection, already open."""
    protocol = ClientProtocol(parse_uri(URI), state=State.OPEN)
    connection = ClientConnection(protocol, ping_interval=None, ping_timeout=None, close_timeout=1)
    transport = MemoryTransport()
    connection.connection_made(transport)
    # The handshake is over: frames are data from the first byte on.
    connection.response = Response(101, "Switching Protocols", Headers())
    # The bare loop writes each response on its own: one write per response.
    side = Side("bare", connection.data_received, lambda: transport.writes, transport)
    side.connection = connection  # type: ignore[attr-defined]  # for bare_consumer.answer
    return side


def framework_side() -> Side:
    """The service's client on its own transport, joined, serving the benchmark's actions."""
    from core.hub.client import PlugboardClient
    from core.hub.transport import HubTransport
    from core.model.registry import discover
    from core.model.runner import ActionRunner
    from core.settings import Settings

    actions = discover(BENCH_ACTIONS, ActionRunner)
    # No minimum delay before a response leaves: it adds latency, not CPU, and the harness
    # would spin while waiting for it.
    settings = Settings.from_env(
        {
            "WEBSOCKET_URL": URI,
            "TOKEN": "bench-token",
            "MAX_CONCURRENCY": "256",
            "RESPONSE_MIN_DELAY_SECONDS": "0",
        }
    )
    client = PlugboardClient(settings, actions)
    transport = MemoryTransport()
    link = HubTransport(URI, client, max_size=1 << 20, close_timeout=1.0, user_agent="bench")
    link.connection_made(transport)
    # A sans-I/O server answers the handshake, then the join.
    server = ServerProtocol()
    server.receive_data(transport.take())
    request = server.events_received()[0]
    assert isinstance(request, Request)
    server.send_response(server.accept(request))
    link.data_received(b"".join(server.data_to_send()))
    server.receive_data(transport.take())
    join = json.loads(bytes(next(e for e in server.events_received() if isinstance(e, Frame)).data))
    reply = {"status": "ok", "response": {"num_consumers": 1}}
    frame = {"topic": "service", "event": "phx_reply", "payload": reply, "ref": join["ref"]}
    server.send_text(json.dumps(frame).encode())
    link.data_received(b"".join(server.data_to_send()))
    assert client.joined
    outbox = client.outbox

    def answer_heartbeats(written: bytes) -> bytes:
        # As the hub does: the outbox keeps each response until a heartbeat is answered.
        server.receive_data(written)
        for event in server.events_received():
            if isinstance(event, Frame) and b'"heartbeat"' in event.data:
                side.heartbeats += 1
                ref = json.loads(bytes(event.data))["ref"]
                ok = {"status": "ok", "response": {}}
                reply = {"topic": "phoenix", "event": "phx_reply", "payload": ok, "ref": ref}
                server.send_text(json.dumps(reply).encode())
        return b"".join(server.data_to_send())

    side = Side(
        "framework", link.data_received, lambda: outbox.written, transport, answer_heartbeats
    )
    return side


def request_frames(first: int, count: int) -> bytes:
    """`count` Echo request frames as the hub sends them (unmasked), back to back."""
    frames = []
    for number in range(first, first + count):
        message = {
            "topic": "service",
            "event": "request",
            "payload": {"action": "Echo", "fields": ECHO_FIELDS, "response_ref": f"r{number}"},
            "ref": None,
        }
        text = json.dumps(message, separators=(",", ":")).encode()
        frames.append(Frame(Opcode.TEXT, text).serialize(mask=False))
    return b"".join(frames)


async def compare(batches: int) -> tuple[Side, Side]:
    """Feed `batches` batches to each side, alternating; returns both sides."""
    framework = framework_side()
    bare = bare_side()
    answering = asyncio.get_running_loop().create_task(
        bare_consumer.answer(bare.connection)  # type: ignore[attr-defined]
    )
    blobs = [request_frames(batch * IN_FLIGHT, IN_FLIGHT) for batch in range(batches)]
    await asyncio.sleep(0)
    for batch, frames in enumerate(blobs):
        expected = (batch + 1) * IN_FLIGHT
        order = (framework, bare) if batch % 2 == 0 else (bare, framework)
        for side in order:
            await side.serve(frames, expected)
    answering.cancel()
    return framework, bare


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print the figures; returns 0."""
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    parser.add_argument("--batches", type=int, default=1000, help="batches of 64 (1000)")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)

    from core.log import configure_logging

    stdout = sys.stdout
    with tempfile.TemporaryFile("w+") as log:
        sys.stderr = log  # the handler configure_logging makes writes to sys.stderr
        try:
            configure_logging(args.log_level, args.log_format)
            framework, bare = asyncio.run(compare(args.batches))
            # Heartbeats written after the last batch was answered are counted too.
            framework.answer(framework.transport.take())
        finally:
            sys.stderr = sys.__stderr__
    requests = args.batches * IN_FLIGHT
    per_request = {side.name: side.seconds / requests * 1e6 for side in (framework, bare)}
    ratio = per_request["framework"] / per_request["bare"]
    stdout.write(
        f"{requests} Echo requests each, in batches of {IN_FLIGHT}, {args.log_format} logs "
        f"at {args.log_level}; Python {sys.version.split()[0]}\n"
        f"framework {per_request['framework']:.2f} us, bare loop {per_request['bare']:.2f} us "
        f"per request (no system calls): ratio {ratio:.3f}\n"
        f"writes: framework {framework.transport.writes} ({framework.heartbeats} of them "
        f"heartbeats), bare loop {bare.transport.writes}\n"
    )
    stdout.write(
        json.dumps(
            {
                "framework_us": per_request["framework"],
                "bare_us": per_request["bare"],
                "ratio": ratio,
            }
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
