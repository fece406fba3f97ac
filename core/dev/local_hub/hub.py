"""`LocalHub`: the local stand-in for the Plugboard hub, put together and run.

The parts live beside this module: `service` (the hosted service and its tokens),
`admission` (who may open a consumer socket), `consumer` (one consumer socket), `channel`
(the ``service`` channel's conversation), `routing` (requests and responses) and `front`
(``POST /``). This module accepts consumer sockets, wires the parts together, starts and
stops the server, and offers the hooks tests use to make the hub do what the real one does
on its own (push events, revoke tokens, drop connections).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import secrets
import traceback
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, Self

from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware

from core.dev.local_hub.admission import Gate
from core.dev.local_hub.channel import ServiceChannel
from core.dev.local_hub.consumer import (
    CLOSE_CRASH,
    CLOSE_RESTART,
    Consumer,
    WebSocket,
)
from core.dev.local_hub.front import FrontAnswer, HttpFront
from core.dev.local_hub.routing import Router
from core.dev.local_hub.service import HostedService, public_token
from core.hub.phoenix import HEARTBEAT, PHOENIX_TOPIC, Message
from core.settings import is_loopback_host

logger = logging.getLogger("core.local_hub")


class _RedactTokens(logging.Filter):
    """Blank out ``token=...`` query values and bearer tokens in aiohttp's server log lines.

    aiohttp logs a rejected request (a request line over the limit, say) with its URL, and
    the consumer's token travels in that URL.
    """

    _PATTERN = re.compile(r"(token=|Bearer\s+)[^&\s'\"]+", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._PATTERN.sub(r"\1[redacted]", record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = self._PATTERN.sub(r"\1[redacted]", text)
            record.exc_info = None
        return True


server_logger = logging.getLogger("core.local_hub.server")
"""aiohttp's request-handling errors for the hub go here, with tokens redacted."""
server_logger.addFilter(_RedactTokens())

RECEIVED_LIMIT = 10_000
"""How many decoded consumer frames `LocalHub.received` keeps."""

MAX_REQUEST_LINE = 9_998
"""Longest request line accepted, without its CRLF: Bandit's default limit of 10,000 bytes
with it. The catalog travels in the URL, so a big catalog meets this limit first."""

_PARSER_LINE_LIMIT = 1 << 20  # aiohttp answers 400 above this; up to it, 414 as Bandit does

_CLOSE_TIMEOUT = 2.0  # seconds to wait for the consumer's answer to a close frame
_SHUTDOWN_TIMEOUT = 2.0  # seconds aiohttp waits for handlers when the hub stops


# A hub bound to one of these serves every interface: its `host` names none of them.
_EVERY_INTERFACE = frozenset({"", "0.0.0.0", "::"})

MISDIRECTED = "421 Misdirected Request: this hub answers requests for localhost only\n"


def host_header_name(header: str) -> str:
    """The host name of an HTTP ``Host`` header (``name``, ``name:port``, ``[v6]:port``),
    without the port; the header as it is when it has no such shape."""
    if header.startswith("["):
        end = header.find("]")
        rest = header[end + 1 :]
        port = rest[1:]
        if end != -1 and (not rest or (rest[:1] == ":" and port.isascii() and port.isdigit())):
            return header[: end + 1]
        return header
    name, colon, port = header.rpartition(":")
    if colon and name and port.isascii() and port.isdigit():
        return name
    return header


def check_host(allowed: Iterable[str]) -> Middleware:
    """A middleware that answers 421 to a request whose ``Host`` header names neither this
    machine (``localhost`` or a loopback address, any port) nor a host in `allowed`.

    DNS rebinding: a web page on ``attacker.example`` can point that name at 127.0.0.1 and
    then, as the same origin, call whatever listens there, such as a developer's actions
    through ``POST /``. The browser still sends ``Host: attacker.example``, a name no hub a
    developer runs answers to.
    """
    names = frozenset(name.removesuffix(".").casefold() for name in allowed)

    @web.middleware
    async def refuse_other_hosts(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        name = host_header_name(request.headers.get(hdrs.HOST, ""))
        if is_loopback_host(name) or name.removesuffix(".").casefold() in names:
            return await handler(request)
        return web.Response(status=421, text=MISDIRECTED)

    return refuse_other_hosts


@web.middleware
async def _limit_request_line(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Refuse a request line over `MAX_REQUEST_LINE` bytes with 414, as the real hub does."""
    version = f"HTTP/{request.version.major}.{request.version.minor}"
    length = len(request.method) + 1 + len(request.raw_path) + 1 + len(version)
    if length > MAX_REQUEST_LINE:
        # The URL is not logged: the consumer's token is in it.
        logger.warning(
            "request refused (414): its request line is %d bytes, over %d",
            length,
            MAX_REQUEST_LINE,
        )
        return web.Response(status=414)
    return await handler(request)


class LocalHub:
    """A local stand-in for the Plugboard hub (a Phoenix Channels server), hosting one service.

    It serves, on one port, what a consumer and an HTTP caller see of the real hub, and was
    checked against it (``tests/core/dev/local_hub/contract_test.py`` compares the two):

    * ``GET /websocket?token=...&actions=<JSON catalog>[&vsn=2.0.0]``: the consumer socket.
      The upgrade is refused with HTTP 403 and an empty body for a foreign ``Origin``, an
      unknown ``vsn``, a bad token, a missing ``actions``, or a catalog that differs from the
      one the joined consumers registered (see `admission`). Origins: an upgrade without an
      ``Origin`` header is accepted (consumers send none); one with it must name
      ``localhost``, the hub's `host` or a host in `origin_hosts`, with any scheme and port.
      ``actions`` that is not JSON is HTTP 500 while consumers are joined; otherwise the
      upgrade succeeds and the join is answered with ``{"reason": "join crashed"}``.
    * After the upgrade, Phoenix Channels in v1 (JSON objects) or v2 (arrays): heartbeats on
      topic ``phoenix``; on topic ``service`` the join, whose reply carries the service, the
      token's record and ``num_consumers``; ``request`` pushes ``{"action", "fields",
      "response_ref"}`` handed out round robin; ``response`` (``ref`` = the response_ref)
      routed to the waiting caller from any socket; ``phx_leave``; ``phx_error`` for any other
      event on the joined topic; ``unmatched topic`` for a topic not joined (see `channel`).
      The hub also pushes ``num_consumers``, ``service_updated``, ``service_deleted``,
      ``token_created`` and ``token_deleted`` (the test hooks below). A frame it cannot
      decode, or any binary frame, closes the socket with 1011; `idle_timeout` seconds
      without a frame either way close it with 1002; stopping the hub closes it with 1012.
    * Every request, the upgrade included, is answered 421 unless its ``Host`` header names
      ``localhost``, a loopback address, the hub's `host` (unless it binds every interface)
      or a host in `allowed_hosts`, with any port: a web page cannot reach the hub through
      DNS rebinding (see `check_host`).
    * ``POST /`` with ``{"service_id", "action", "fields"}``: calls the action through a
      joined consumer and answers with the real hub's status codes (see `front`): 200 or 400
      from the consumer's ``status`` and ``message``, 400 for a missing parameter, 401 with
      `api_token` set and a wrong or missing bearer token, 408 after `request_timeout`
      seconds, 422 with no consumer or an unknown service, 502 for a payload without
      ``status`` and ``message``.

    Ids are integers, as the real hub's database serials: the service is `service_id` (1 by
    default), tokens 1, 2, ... in the order `tokens` lists them and later ones are created.
    Timestamps are in Phoenix's format (``2025-01-31T12:00:00Z``).

    Use it as an async context manager (or call `start` and `stop`). ``port=0`` picks a free
    port; read `port`, `http_url` and `websocket_url` after `start`. Run it on its own with
    ``python -m core.local_hub`` (``--help`` lists the options).

    `max_in_flight` caps the requests in flight for the service (pushed and not answered
    yet); further requests queue until a slot frees or they time out. The default, None,
    means no cap. `idle_timeout`: any frame from the consumer (WebSocket pings included) or
    any push from the hub restarts it, as on the real hub. `answer_heartbeats` can be set to
    False to make the hub ignore heartbeats (the socket stays open). `received` keeps the
    last `RECEIVED_LIMIT` decoded frames from consumers as ``(connection id, message)``.
    A request line over `MAX_REQUEST_LINE` bytes (a huge catalog) is refused with HTTP 414.

    Where it still differs from the real hub:

    * The real hub's channel is a process of its own: its ``phx_error``, its reply to a
      leave, and the ``phx_close`` after a second join may arrive after the replies to frames
      sent later; the local hub answers in order.
    * It hosts one service; the real hub hosts many and reads services and tokens from a
      database (hashed, expiring tokens; the shared test hub reports tokens valid for 90
      days, the local hub for 30).
    * The production hub allows about 10 requests in flight per service; the local hub
      allows any number unless `max_in_flight` is set.
    * The body of ``POST /`` also carries the consumer's ``status_code`` and ``fields`` (a
      developer extension; production sends ``status`` and ``message`` only). The shared
      test hub has no account token check (the local one checks `api_token` if given), and
      the local hub answers 503 to callers while it stops.
    * A well-formed v2 binary push frame is accepted by the real hub; the local hub closes
      the socket on every binary frame (1011).
    * The test hub accepts the ``Origin`` host ``localhost`` only and production its own
      host; the local hub accepts ``localhost``, its own `host` and `origin_hosts`.
    * The real hub answers any ``Host``; the local hub only the ones above.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tokens: Iterable[str] = ("local-dev-token",),
        service_name: str = "local",
        service_id: int = 1,
        request_timeout: float = 30.0,
        idle_timeout: float = 60.0,
        max_in_flight: int | None = None,
        api_token: str | None = None,
        origin_hosts: Iterable[str] = (),
        allowed_hosts: Iterable[str] = (),
    ) -> None:
        self.host = host
        # Host headers answered besides this machine's: the address it was told to bind
        # (unless that is every interface), and those allowed explicitly.
        self._allowed_hosts = frozenset(
            {*allowed_hosts, *([] if host in _EVERY_INTERFACE else [host])}
        )
        self.port = port
        self.idle_timeout = idle_timeout
        self.answer_heartbeats: bool = True
        self.received: deque[tuple[int, Message]] = deque(maxlen=RECEIVED_LIMIT)

        if isinstance(service_id, bool) or not isinstance(service_id, int) or service_id < 1:
            raise ValueError("service_id must be a positive integer, like a database serial")
        self._service = HostedService(service_name, list(tokens), service_id)
        self._router = Router(max_in_flight, on_pushed=self._notify)
        self._channel = ServiceChannel(self._service, self._router, self._notify)
        self._front = HttpFront(self._service, self._router, request_timeout, api_token)
        self._gate = Gate(self._service, self._channel, {host, *origin_hosts})
        self._connections: dict[int, Consumer] = {}
        self._next_id = itertools.count(1)
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Bind and start serving; with ``port=0`` a free port is picked."""
        if self._runner is not None:
            raise RuntimeError("the hub is already running")
        # Loop-bound primitives are made here, in the loop the hub runs in.
        self._changed = asyncio.Event()
        self._router.start()
        self._front.start()
        app = web.Application(middlewares=[check_host(self._allowed_hosts), _limit_request_line])
        app.router.add_get("/websocket", self._handle_socket)
        app.router.add_post("/", self._front.handle)
        app.router.add_route("*", "/{path:.*}", self._front.not_found)
        runner = web.AppRunner(
            app,
            access_log=None,  # the access log would print the token in the query string
            logger=server_logger,
            shutdown_timeout=_SHUTDOWN_TIMEOUT,
            max_line_size=_PARSER_LINE_LIMIT,
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        address = runner.addresses[0]
        self.port = int(address[1])
        logger.info("local hub listening on %s (service id %s)", self.http_url, self.service_id)

    async def stop(self) -> None:
        """Stop: close consumer sockets with 1012, fail pending requests, release the port."""
        runner = self._runner
        if runner is None:
            return
        self._front.stopping.set()
        await self.close_connections(CLOSE_RESTART)
        await runner.cleanup()
        self._runner = None
        logger.info("local hub stopped")

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

    # ----------------------------------------------------------------- properties

    @property
    def http_url(self) -> str:
        """Base URL of the HTTP front, e.g. ``http://127.0.0.1:4000``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def websocket_url(self) -> str:
        """URL of the consumer socket, e.g. ``ws://127.0.0.1:4000/websocket``."""
        return "ws" + self.http_url.removeprefix("http") + "/websocket"

    @property
    def service(self) -> dict[str, Any]:
        """The hosted service's record, as sent in the join reply (a live dict)."""
        return self._service.record

    @property
    def service_id(self) -> int:
        """The id of the hosted service (the ``service_id`` of HTTP requests)."""
        return self._service.id

    @property
    def catalog(self) -> dict[str, Any] | None:
        """The action catalog the first joined consumer registered (None when none is joined)."""
        return self._channel.catalog

    @property
    def tokens(self) -> frozenset[str]:
        """The token values currently accepted on the consumer socket."""
        return frozenset(self._service.tokens)

    @property
    def request_timeout(self) -> float:
        """Seconds an HTTP caller waits for the consumer's response before 408."""
        return self._front.request_timeout

    @request_timeout.setter
    def request_timeout(self, seconds: float) -> None:
        self._front.request_timeout = seconds

    @property
    def max_in_flight(self) -> int | None:
        """The cap on requests pushed and not answered yet (None: no cap)."""
        return self._router.max_in_flight

    def joined_count(self) -> int:
        """Consumers currently joined to the ``service`` topic."""
        return len(self._router.joined)

    def connection_count(self) -> int:
        """Open consumer sockets (joined or not)."""
        return len(self._connections)

    async def wait_for_joined(self, count: int, timeout: float = 10.0) -> None:
        """Wait until exactly `count` consumers are joined; TimeoutError after `timeout`."""
        await self._wait_until(
            lambda: self.joined_count() == count, timeout, f"{count} consumers joined"
        )

    async def wait_for_connections(self, count: int, timeout: float = 10.0) -> None:
        """Wait until exactly `count` consumer sockets are open; TimeoutError after `timeout`."""
        await self._wait_until(
            lambda: self.connection_count() == count, timeout, f"{count} consumers connected"
        )

    async def wait_for_pushed(self, count: int, timeout: float = 10.0) -> None:
        """Wait until the hub has pushed `count` requests to consumers since it started (a
        test's sign that they reached a replica); TimeoutError after `timeout`."""
        await self._wait_until(
            lambda: self._router.pushed >= count, timeout, f"{count} requests pushed"
        )

    async def _wait_until(
        self, predicate: Callable[[], bool], timeout: float, expected: str
    ) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(
                f"expected {expected} within {timeout} s; have {self.joined_count()} "
                f"consumers joined, {self.connection_count()} connected and "
                f"{self._router.pushed} requests pushed"
            ) from None

    def _notify(self) -> None:
        """Wake everything waiting in `_wait_until`."""
        self._changed.set()
        self._changed = asyncio.Event()

    # ----------------------------------------------------------------- test hooks

    async def push(self, event: str, payload: Any) -> None:
        """Push `event` with `payload` on the service topic to every joined consumer."""
        for consumer in list(self._router.joined):
            await consumer.push(event, payload)

    async def send_raw(self, data: str | bytes) -> None:
        """Send a raw frame to every connected consumer socket, joined or not."""
        for consumer in list(self._connections.values()):
            await consumer.send_raw(data)

    async def push_service_updated(self, **changes: Any) -> None:
        """Update the service (``updated_at`` too, unless given) and push ``service_updated``."""
        self._service.update(changes)
        await self.push("service_updated", {"service": dict(self.service)})

    async def push_service_deleted(self) -> None:
        """Push ``service_deleted``, then revoke every token: reconnects get 403."""
        await self.push("service_deleted", {"service": dict(self.service)})
        self._service.delete()
        logger.info("service %s deleted, all its tokens revoked", self.service_id)

    async def create_token(self) -> dict[str, Any]:
        """Create and accept a new token, push ``token_created`` (with its value), return it."""
        record = self._service.add_token(secrets.token_urlsafe(32))
        logger.info("token %s created", record["id"])
        await self.push("token_created", {"token": dict(record)})
        return dict(record)

    def accept_token(self, value: str) -> dict[str, Any]:
        """Accept `value` as a token from now on, without any push; return its record.

        For tests that revoke a token and later let the consumer back in. Accepting a value
        that is already valid returns the existing record.
        """
        record = self._service.token(value) or self._service.add_token(value)
        return dict(record)

    async def delete_token(self, token_id_or_value: int | str) -> None:
        """Revoke a token (by integer id or by value); push ``token_deleted`` (no value in it).

        Sockets already connected with it stay open, as on the real hub.
        """
        record = self._service.remove_token(token_id_or_value)
        logger.info("token %s deleted", record["id"])
        await self.push("token_deleted", {"token": public_token(record)})

    async def close_connections(self, code: int = CLOSE_CRASH) -> None:
        """Close every consumer socket with `code` (1011 mimics a hub-side forced disconnect)."""
        consumers = list(self._connections.values())
        await asyncio.gather(*(consumer.close(code) for consumer in consumers))
        await self._wait_gone(consumers)

    async def drop_connections(self) -> None:
        """Abort every consumer's TCP connection without a close frame (a network fault)."""
        consumers = list(self._connections.values())
        for consumer in consumers:
            consumer.abort()
        await self._wait_gone(consumers)

    async def _wait_gone(self, consumers: list[Consumer], timeout: float = 2.0) -> None:
        """Give the socket handlers of `consumers` a moment to clean up."""
        try:
            async with asyncio.timeout(timeout):
                for consumer in consumers:
                    await consumer.done.wait()
        except TimeoutError:
            logger.debug("some consumer sockets are still closing")

    # ----------------------------------------------------------------- requests

    async def request(
        self, action: str, fields: Any, timeout: float | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Call an action like ``POST /`` does; return the HTTP status and JSON body."""
        answer = await self._front.call(self.service_id, action, fields, timeout)
        return answer.status, answer.body

    async def call(self, action: str, fields: Any, timeout: float | None = None) -> FrontAnswer:
        """`request`, with the consumer's whole payload beside the caller's answer."""
        return await self._front.call(self.service_id, action, fields, timeout)

    # ----------------------------------------------------------------- consumer socket

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        if self._front.stopping.is_set():
            return web.Response(status=503)
        admitted = self._gate.check(request)
        if isinstance(admitted, web.Response):
            return admitted
        websocket: WebSocket = web.WebSocketResponse(autoping=False, timeout=_CLOSE_TIMEOUT)
        if not websocket.can_prepare(request).ok:
            return web.Response(status=400)
        consumer = Consumer(
            id=next(self._next_id),
            request=request,
            websocket=websocket,
            serializer=admitted.serializer,
            token=admitted.token,
            actions=admitted.actions,
            last_activity=asyncio.get_running_loop().time(),
        )
        self._connections[consumer.id] = consumer
        self._notify()
        try:
            await websocket.prepare(request)
            consumer.ready = True
            consumer.touch()
            logger.info(
                "consumer %d connected (vsn %s, token id %s)",
                consumer.id,
                consumer.serializer.version,
                consumer.token["id"],
            )
            await consumer.serve(lambda: self.idle_timeout, self._on_message)
        finally:
            await self._forget(consumer)
        return websocket

    async def _on_message(self, consumer: Consumer, message: Message) -> None:
        """One decoded frame from a consumer: heartbeats here, the rest to the channel."""
        self.received.append((consumer.id, message))
        if message.topic == PHOENIX_TOPIC and message.event == HEARTBEAT:
            if self.answer_heartbeats:
                await consumer.reply(message, "ok", {})
            return
        await self._channel.handle(consumer, message)

    async def _forget(self, consumer: Consumer) -> None:
        """Remove a finished socket (and take it out of the rotation)."""
        await self._channel.leave(consumer)
        self._connections.pop(consumer.id, None)
        consumer.done.set()
        self._notify()
        if consumer.ready:
            if consumer.closed_with is not None:
                logger.info("consumer %d closed by the hub (%d)", consumer.id, consumer.closed_with)
            else:
                logger.info(
                    "consumer %d disconnected (close code %s)",
                    consumer.id,
                    consumer.websocket.close_code,
                )
