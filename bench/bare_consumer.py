"""The baseline: the least a Plugboard consumer can do per request.

``python -m bench.bare_consumer URL`` connects to the full consumer URL (token and catalog in
the query string, as `PlugboardClient.connection_url()` builds it), joins topic ``service``,
sends a Phoenix heartbeat every 30 s and answers each ``request`` frame with ``json.loads``,
one dict, ``json.dumps`` and a send: no validation, no task per request, no logging, no
metrics. The framework's CPU per request is compared with this loop's.

The connection options mirror ``PlugboardClient._connect`` so that the websockets library
does the same work in both. SIGTERM or SIGINT closes the socket and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
import sys

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

HEARTBEAT_INTERVAL = 30.0
MAX_MESSAGE_BYTES = 1024 * 1024
JOIN_FRAME = '{"topic":"service","event":"phx_join","payload":{},"ref":"1"}'


async def heartbeat(websocket: ClientConnection) -> None:
    """Send a Phoenix heartbeat every `HEARTBEAT_INTERVAL` seconds (replies are ignored)."""
    for ref in itertools.count(2):
        await asyncio.sleep(HEARTBEAT_INTERVAL)
        frame = {"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": str(ref)}
        await websocket.send(json.dumps(frame, separators=(",", ":")))


async def serve(url: str) -> None:
    """Join, then answer every request frame until the socket closes."""
    async with connect(
        url,
        max_size=MAX_MESSAGE_BYTES,
        compression=None,
        open_timeout=10,
        ping_interval=20,
        ping_timeout=20,
        close_timeout=5,
        user_agent_header="py-service-bare-consumer",
    ) as websocket:
        await websocket.send(JOIN_FRAME)
        beats = asyncio.get_running_loop().create_task(heartbeat(websocket))
        try:
            await answer(websocket)
        except ConnectionClosed:
            pass
        finally:
            beats.cancel()


async def answer(websocket: ClientConnection) -> None:
    """The loop under comparison: answer each request frame until the socket closes."""
    async for frame in websocket:
        message = json.loads(frame)
        if message.get("event") != "request":
            continue
        request = message["payload"]
        response = {
            "topic": "service",
            "event": "response",
            "payload": {
                "status": "success",
                "status_code": 200,
                "message": {"message": request["fields"].get("message")},
                "fields": None,
            },
            "ref": request["response_ref"],
        }
        await websocket.send(json.dumps(response, separators=(",", ":")))


async def main(url: str) -> int:
    """Serve until the socket closes or a stop signal arrives; returns the exit code."""
    task = asyncio.get_running_loop().create_task(serve(url))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.stderr.write("usage: python -m bench.bare_consumer WEBSOCKET_URL_WITH_QUERY\n")
        sys.exit(2)
    sys.exit(asyncio.run(main(sys.argv[1])))
