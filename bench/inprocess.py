"""The framework's Python cost per request next to the bare loop's, in one process, no sockets.

``python -m bench.inprocess [--batches N] [--log-format text|json] [--log-level LEVEL]``

`bench.run` measures whole processes over loopback, system calls included, and on a shared
machine its figures move by several per cent between runs. This script is the finer tool
used while optimising: the framework's client (`PlugboardClient` with the benchmark's Echo)
and the bare loop (`bench.bare_consumer.answer`) each get a websockets connection over an
in-memory transport, and batches of 64 request frames are fed to them in turn, the order
alternating every batch. The CPU time (``time.process_time``) spent until each side has
queued all 64 responses is added to that side. Both run in the same process at the same
moments, so the machine's load and clock speed cancel out of the ratio.

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
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.client import ClientProtocol
from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from bench import bare_consumer
from bench.common import BENCH_ACTIONS, ECHO_FIELDS, IN_FLIGHT

URI = "ws://bench.invalid/socket/websocket"


class MemoryTransport(asyncio.Transport):
    """A transport that accepts every write and sends it nowhere."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes += 1

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
    """One consumer under comparison: its connection, and the responses it has queued."""

    def __init__(self, name: str, connection_class: type[ClientConnection]) -> None:
        self.name = name
        protocol = ClientProtocol(parse_uri(URI), state=State.OPEN)
        self.connection = connection_class(
            protocol, ping_interval=None, ping_timeout=None, close_timeout=1
        )
        self.transport = MemoryTransport()
        self.connection.connection_made(self.transport)
        # The handshake is over: frames are data from the first byte on.
        self.connection.response = Response(101, "Switching Protocols", Headers())
        self.responses = 0
        self.seconds = 0.0
        send_text: Callable[..., Any] = protocol.send_text

        def counting_send_text(data: bytes | bytearray | memoryview, fin: bool = True) -> None:
            self.responses += 1
            send_text(data, fin)

        protocol.send_text = counting_send_text  # type: ignore[method-assign]

    async def serve(self, frames: bytes, expected: int) -> None:
        """Feed one batch of frames; return once `expected` responses in all are queued."""
        started = time.process_time()
        self.connection.data_received(frames)
        while self.responses < expected:
            await asyncio.sleep(0)
        self.seconds += time.process_time() - started


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


def framework_side() -> Side:
    """The service's client, joined, serving the benchmark's actions."""
    from core.hub.client import PlugboardClient
    from core.model.registry import ActionRegistry
    from core.model.runner import ActionRunner
    from core.settings import Settings

    actions = ActionRegistry.discover(BENCH_ACTIONS, ActionRunner)
    settings = Settings.from_env(
        {"WEBSOCKET_URL": URI, "TOKEN": "bench-token", "MAX_CONCURRENCY": "256"}
    )
    client = PlugboardClient(settings, actions)
    side = Side("framework", client._connection_class)
    client.websocket = side.connection  # type: ignore[assignment]
    client.join_ref = "1"
    client.joined_ok(None, None, None)
    return side


async def compare(batches: int) -> tuple[Side, Side]:
    """Feed `batches` batches to each side, alternating; returns both sides."""
    framework = framework_side()
    bare = Side("bare", ClientConnection)
    answering = asyncio.get_running_loop().create_task(bare_consumer.answer(bare.connection))
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
        f"writes: framework {framework.transport.writes}, bare loop {bare.transport.writes}\n"
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
