"""Health, readiness and metrics over HTTP (``HEALTH_PORT``), for orchestrators and Prometheus.

- ``GET /healthz``: the process and its event loop are responsive (200), or the loop has been
  stalled for longer than `max_loop_lag` seconds (503).
- ``GET /readyz``: joined to the hub and every extra check passes (the database, when one is
  used): 200, else 503 with the reasons.
- ``GET /metrics``: Prometheus text format: the service's families, the process, platform and
  garbage-collector collectors, and whatever else is on prometheus_client's default registry
  (see `core.ops.metrics`, loaded at the first scrape).

Three GET routes on a private port, asked by kubelets and Prometheus, need no web framework:
this is asyncio's stream server with a strict, small request parser (one request per
connection, headers read within `REQUEST_TIMEOUT` and under `REQUEST_LIMIT`, then
``Connection: close``), which keeps a web framework out of every replica's memory and start.

The port is bound on every interface, IPv4 and IPv6, unless ``HEALTH_HOST`` names one, and
it holds at most `MAX_CONNECTIONS` connections: whoever can reach the port could otherwise
hold any number open, each with its buffer. At the cap a new connection takes the place of
the one that has waited longest for its request (a slow or idle client, never a probe being
answered), so slow clients cannot starve the kubelet's probes; if every connection is being
answered, the new one is closed at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING

from core import json_codec

if TYPE_CHECKING:
    from core.hub.client import PlugboardClient
    from core.ops.metrics import Exposition

logger = logging.getLogger(__name__)

# A readiness check returns None when fine, or a short reason when not.
ReadinessCheck = Callable[[], Awaitable[str | None]]

TICK_SECONDS = 0.5
CHECK_TIMEOUT = 2.0
# A request must arrive whole within this many seconds and bytes.
REQUEST_TIMEOUT = 5.0
REQUEST_LIMIT = 16 * 1024
# Connections held at once. Probes, a scraper and Docker's check need a handful; the bound
# keeps the buffers to MAX_CONNECTIONS x REQUEST_LIMIT whoever connects.
MAX_CONNECTIONS = 64
JSON = "application/json"

Answer = tuple[int, str, bytes]


class HealthServer:
    """Serves the three endpoints for one client on `host`:`port` (`host` None: every
    interface, IPv4 and IPv6), holding at most `max_connections` connections."""

    def __init__(
        self,
        client: PlugboardClient,
        port: int,
        host: str | None = None,
        checks: Sequence[tuple[str, ReadinessCheck]] = (),
        max_loop_lag: float = 5.0,
        request_timeout: float = REQUEST_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self._client = client
        self._request_timeout = request_timeout
        self._host = host
        self._max_connections = max_connections
        self.port = port
        self._checks = list(checks)
        self._max_loop_lag = max_loop_lag
        self._last_tick = time.monotonic()
        self._ticker: asyncio.Task[None] | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        # The connections still waiting for their request, oldest first (dicts keep order).
        self._reading: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._exposition: Exposition | None = None

    @property
    def open_connections(self) -> int:
        """How many connections the server holds now (at most `max_connections`)."""
        return len(self._connections)

    async def start(self) -> None:
        """Bind the port (0 picks a free one, readable from `port` afterwards); OSError when
        it cannot be bound."""
        if self._host is None:
            self._server = await asyncio.start_server(
                self._serve, sock=_every_interface(self.port), limit=REQUEST_LIMIT
            )
        else:
            self._server = await asyncio.start_server(
                self._serve, self._host, self.port, limit=REQUEST_LIMIT
            )
        if self.port == 0:
            self.port = int(self._server.sockets[0].getsockname()[1])
        self._ticker = asyncio.get_running_loop().create_task(self._tick())
        where = "every interface" if self._host is None else self._host
        logger.info("health endpoints on %s, port %d: /healthz /readyz /metrics", where, self.port)

    async def stop(self) -> None:
        """Release the port and end the connections being served."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            if self._connections:
                await asyncio.wait(set(self._connections), timeout=2)
            await self._server.wait_closed()

    async def _tick(self) -> None:
        while True:
            self._last_tick = time.monotonic()
            await asyncio.sleep(TICK_SECONDS)

    # ------------------------------------------------------------------ HTTP

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # start_server runs each connection as a task
        if len(self._connections) >= self._max_connections and not self._make_room():
            writer.transport.abort()  # every connection held is being answered
            return
        self._connections.add(task)
        self._reading[task] = writer
        try:
            request = await self._read_head(reader)
            if self._reading.pop(task, None) is None:
                return  # it made room for a newer connection: its transport is closed
            answer = request if isinstance(request, tuple) else await self._answer(request)
            status, content_type, body = answer
            reason = HTTPStatus(status).phrase
            head = (
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._reading.pop(task, None)
            self._connections.discard(task)
            writer.close()

    def _make_room(self) -> bool:
        """Close the connection that has waited longest for its request; False if none is
        waiting (every connection held is being answered)."""
        oldest = next(iter(self._reading.items()), None)
        if oldest is None:
            return False
        task, writer = oldest
        del self._reading[task]
        self._connections.discard(task)
        writer.transport.abort()
        return True

    async def _read_head(self, reader: asyncio.StreamReader) -> bytes | Answer:
        """The request line and headers, or the error answer when they do not come whole."""
        try:
            return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self._request_timeout)
        except asyncio.LimitOverrunError:
            return _plain(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
        except (TimeoutError, asyncio.IncompleteReadError):
            return _plain(HTTPStatus.REQUEST_TIMEOUT)

    async def _answer(self, head: bytes) -> Answer:
        parts = head.split(b"\r\n", 1)[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            return _plain(HTTPStatus.BAD_REQUEST)
        method, target = parts[0], parts[1].split(b"?", 1)[0]
        routes = {b"/healthz": self._healthz, b"/readyz": self._readyz, b"/metrics": self._metrics}
        route = routes.get(target)
        if route is None:
            return _plain(HTTPStatus.NOT_FOUND)
        if method != b"GET":
            return _plain(HTTPStatus.METHOD_NOT_ALLOWED)
        return await route()

    # ------------------------------------------------------------------ the endpoints

    async def _healthz(self) -> Answer:
        lag = max(0.0, time.monotonic() - self._last_tick - TICK_SECONDS)
        healthy = lag <= self._max_loop_lag
        body = {"status": "ok" if healthy else "stalled", "loop_lag_seconds": round(lag, 3)}
        return (200 if healthy else 503), JSON, json_codec.dumps_bytes(body)

    async def _readyz(self) -> Answer:
        problems: list[str] = []
        if self._client.shutting_down:
            problems.append("shutting down")
        elif not self._client.joined:
            problems.append("not joined to the hub")
        for name, check in self._checks:
            try:
                reason = await asyncio.wait_for(check(), CHECK_TIMEOUT)
            except TimeoutError:
                reason = f"no answer within {CHECK_TIMEOUT:g} s"
            except Exception as error:  # a failing check means "not ready", never a crash
                reason = type(error).__name__
            if reason is not None:
                problems.append(f"{name}: {reason}")
        if problems:
            body = {"status": "not ready", "problems": problems}
            return 503, JSON, json_codec.dumps_bytes(body)
        return 200, JSON, json_codec.dumps_bytes({"status": "ready"})

    async def _metrics(self) -> Answer:
        from core.ops import metrics  # prometheus_client: loaded at the first scrape

        if self._exposition is None:
            self._exposition = metrics.Exposition(self._client)
        return 200, metrics.CONTENT_TYPE, self._exposition.render()


def _every_interface(port: int) -> socket.socket:
    """A listening socket on every interface: one IPv6 socket that takes IPv4 too (``[::]``
    without IPV6_V6ONLY), or IPv4 alone where the kernel offers no IPv6."""
    if socket.has_dualstack_ipv6():
        try:
            return socket.create_server(("::", port), family=socket.AF_INET6, dualstack_ipv6=True)
        except OSError as error:
            if error.errno not in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                raise
    return socket.create_server(("0.0.0.0", port))


def _plain(status: HTTPStatus) -> Answer:
    return int(status), "text/plain; charset=utf-8", f"{status.phrase}\n".encode()
