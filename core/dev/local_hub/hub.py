"""A local stand-in for the Plugboard hub, for development and tests.

`LocalHub` serves, on one port, what a consumer and an HTTP caller see of the real hub
(see ``plugboard-protocol.md``, sections 1 and 3 to 6):

* ``GET /websocket?token=...&actions=...[&vsn=2.0.0]``: the consumer socket. A bad token,
  missing ``actions`` or a catalog that differs from the one the connected consumers
  registered is refused with HTTP 403 and an empty body; ``actions`` that is not JSON gives
  HTTP 500. After the upgrade the hub speaks Phoenix Channels (v1 or v2 framing) on the
  ``service`` topic: join replies, heartbeats, ``num_consumers`` pushes, ``request`` pushes
  handed out round-robin, ``response`` routing by ``response_ref``, ``phx_error`` for an
  illegal event, close code 1011 for an undecodable frame, 1002 after ``idle_timeout``
  seconds of silence and 1012 on a graceful stop.
* ``POST /`` with ``{"service_id", "action", "fields"}``: the HTTP front. It waits up to
  ``request_timeout`` seconds for the consumer's response and answers like the real hub
  (200, 400, 401, 408, 422, 502). As a local extension for developers, the body also carries
  the consumer's ``status_code`` and ``fields`` when the response had them.

The hub hosts exactly one service. Run it on its own with ``python -m core.local_hub``.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
import re
import secrets
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Literal, Self

from aiohttp import WSMsgType, web

from core import json_codec
from core.hub.phoenix import (
    HEARTBEAT,
    PHOENIX_TOPIC,
    PHX_CLOSE,
    PHX_ERROR,
    PHX_JOIN,
    PHX_LEAVE,
    PHX_REPLY,
    FrameError,
    Message,
    Serializer,
    serializer_for,
)

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

SERVICE_TOPIC = "service"
"""The only topic a consumer may join."""

TOKEN_CONTEXT = "api-token"
"""The ``context`` of service tokens on the real hub."""

TOKEN_VALIDITY = timedelta(days=30)
"""How long a token created here is reported as valid (``expires_at``)."""

RECEIVED_LIMIT = 10_000
"""How many decoded consumer frames `LocalHub.received` keeps."""

MAX_REQUEST_LINE = 10_000
"""Longest request line accepted, like Bandit's default (the catalog travels in the URL)."""

CLOSE_IDLE = 1002
CLOSE_CRASH = 1011
CLOSE_RESTART = 1012

_CLOSE_TIMEOUT = 2.0  # seconds to wait for the consumer's answer to a close frame
_SHUTDOWN_TIMEOUT = 2.0  # seconds aiohttp waits for handlers when the hub stops
_MISSING_PARAMS = "service_id, action and fields parameters are required"

_WebSocket = web.WebSocketResponse[Literal[True]]


def _timestamp(moment: datetime | None = None) -> str:
    """An Ecto ``utc_datetime`` as Phoenix encodes it: ``2025-01-31T12:00:00Z``."""
    moment = moment or datetime.now(UTC)
    return moment.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error_body(message: str) -> dict[str, Any]:
    return {"status": "error", "message": message}


@dataclass(eq=False)
class _Consumer:
    """One consumer socket: its framing, its token and its join state."""

    id: int
    request: web.Request
    websocket: _WebSocket
    serializer: Serializer
    token: dict[str, Any]
    last_activity: float
    ready: bool = False
    joined: bool = False
    join_ref: str | None = None
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
        """A server push on the service topic (ref null, join_ref of this consumer's join)."""
        return await self.send(Message(SERVICE_TOPIC, event, payload, None, self.join_ref))

    async def reply(self, to: Message, status: str, response: Any) -> bool:
        """A ``phx_reply`` to `to`, on its topic, with its ref and join_ref."""
        payload = {"status": status, "response": response}
        return await self.send(Message(to.topic, PHX_REPLY, payload, to.ref, to.join_ref))

    async def close(self, code: int) -> None:
        """Close the socket with `code` (no-op when already closed)."""
        if self.ready and not self.websocket.closed:
            self.closed_with = code
            try:
                await self.websocket.close(code=code)
            except (ConnectionError, RuntimeError) as error:
                logger.debug("consumer %d: close failed: %s", self.id, error)


class LocalHub:
    """A faithful local stand-in for the Plugboard hub, hosting one service.

    Use it as an async context manager (or call `start` and `stop`). ``port=0`` picks a free
    port; read `port`, `http_url` and `websocket_url` after `start`.

    `max_in_flight` caps the requests in flight for the service (pushed and not answered
    yet); further requests queue until a slot frees or they time out. The default, None,
    means no cap. The real hub allows about 10 in flight per service stage.

    `idle_timeout`: a socket is closed with 1002 after that many seconds without a frame in
    either direction (any frame from the consumer, WebSocket pings included, or any push from
    the hub resets it, as on the real hub).

    `answer_heartbeats` can be set to False to make the hub ignore heartbeats (the socket
    stays open; the idle timer is still reset by them). `received` keeps the last
    `RECEIVED_LIMIT` decoded frames from consumers as ``(connection id, message)``.

    A request line over `MAX_REQUEST_LINE` bytes (a huge catalog) is refused with HTTP 400
    by aiohttp; the real hub's web server refuses it too.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tokens: Iterable[str] = ("local-dev-token",),
        service_name: str = "local",
        request_timeout: float = 30.0,
        idle_timeout: float = 60.0,
        max_in_flight: int | None = None,
        api_token: str | None = None,
    ) -> None:
        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1 (or None for no cap)")
        self.host = host
        self.port = port
        self.request_timeout = request_timeout
        self.idle_timeout = idle_timeout
        self.max_in_flight = max_in_flight
        self.answer_heartbeats: bool = True
        self.catalog: Any | None = None
        self.received: deque[tuple[int, Message]] = deque(maxlen=RECEIVED_LIMIT)

        created = _timestamp()
        self.service: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "name": service_name,
            "inserted_at": created,
            "updated_at": created,
        }
        self._api_token = api_token
        self._tokens: dict[str, dict[str, Any]] = {}
        for value in tokens:
            self._add_token(value)
        self._deleted = False

        self._connections: dict[int, _Consumer] = {}
        self._joined: list[_Consumer] = []
        self._next_id = itertools.count(1)
        self._round_robin = 0
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._slots: asyncio.Semaphore | None = None  # made in start(), with the cap
        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Bind and start serving; with ``port=0`` a free port is picked."""
        if self._runner is not None:
            raise RuntimeError("the hub is already running")
        # Loop-bound primitives are made here, in the loop the hub runs in.
        self._stopping = asyncio.Event()
        self._changed = asyncio.Event()
        if self.max_in_flight is not None:
            self._slots = asyncio.Semaphore(self.max_in_flight)
        app = web.Application()
        app.router.add_get("/websocket", self._handle_socket)
        app.router.add_post("/", self._handle_http)
        runner = web.AppRunner(
            app,
            access_log=None,  # the access log would print the token in the query string
            logger=server_logger,
            shutdown_timeout=_SHUTDOWN_TIMEOUT,
            max_line_size=MAX_REQUEST_LINE,
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
        self._stopping.set()
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
    def service_id(self) -> str:
        """The id of the hosted service (the ``service_id`` of HTTP requests)."""
        return str(self.service["id"])

    @property
    def tokens(self) -> frozenset[str]:
        """The token values currently accepted on the consumer socket."""
        return frozenset(self._tokens)

    def joined_count(self) -> int:
        """Consumers currently joined to the ``service`` topic."""
        return len(self._joined)

    def connection_count(self) -> int:
        """Open consumer sockets (joined or not)."""
        return len(self._connections)

    async def wait_for_joined(self, count: int, timeout: float = 10.0) -> None:
        """Wait until exactly `count` consumers are joined; TimeoutError after `timeout`."""
        await self._wait_until(lambda: self.joined_count() == count, timeout, "joined", count)

    async def wait_for_connections(self, count: int, timeout: float = 10.0) -> None:
        """Wait until exactly `count` consumer sockets are open; TimeoutError after `timeout`."""
        await self._wait_until(
            lambda: self.connection_count() == count, timeout, "connected", count
        )

    async def _wait_until(
        self, predicate: Callable[[], bool], timeout: float, what: str, count: int
    ) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(
                f"expected {count} consumers {what} within {timeout} s, "
                f"have {self.joined_count()} joined and {self.connection_count()} connected"
            ) from None

    def _notify(self) -> None:
        """Wake everything waiting in `_wait_until`."""
        self._changed.set()
        self._changed = asyncio.Event()

    # ----------------------------------------------------------------- test hooks

    async def push(self, event: str, payload: Any) -> None:
        """Push `event` with `payload` on the service topic to every joined consumer."""
        for consumer in list(self._joined):
            await consumer.push(event, payload)

    async def send_raw(self, data: str | bytes) -> None:
        """Send a raw frame to every connected consumer socket, joined or not."""
        for consumer in list(self._connections.values()):
            await consumer.send_raw(data)

    async def push_service_updated(self, **changes: Any) -> None:
        """Update the service (``updated_at`` too, unless given) and push ``service_updated``."""
        self.service.update(changes)
        if "updated_at" not in changes:
            self.service["updated_at"] = _timestamp()
        await self.push("service_updated", {"service": dict(self.service)})

    async def push_service_deleted(self) -> None:
        """Push ``service_deleted``, then revoke every token: reconnects get 403."""
        await self.push("service_deleted", {"service": dict(self.service)})
        self._tokens.clear()
        self._deleted = True
        logger.info("service %s deleted, all its tokens revoked", self.service_id)

    async def create_token(self) -> dict[str, Any]:
        """Create and accept a new token, push ``token_created`` (with its value), return it."""
        record = self._add_token(secrets.token_urlsafe(32))
        logger.info("token %s created", record["id"])
        await self.push("token_created", {"token": dict(record)})
        return dict(record)

    def accept_token(self, value: str) -> dict[str, Any]:
        """Accept `value` as a token from now on, without any push; return its record.

        For tests that revoke a token and later let the consumer back in. Accepting a value
        that is already valid returns the existing record.
        """
        record = self._tokens.get(value) or self._add_token(value)
        return dict(record)

    async def delete_token(self, token_id_or_value: str) -> None:
        """Revoke a token (by id or value) and push ``token_deleted`` (without its value).

        Sockets already connected with it stay open, as on the real hub.
        """
        for value, record in list(self._tokens.items()):
            if token_id_or_value in (record["id"], value):
                del self._tokens[value]
                logger.info("token %s deleted", record["id"])
                await self.push("token_deleted", {"token": self._public_token(record)})
                return
        raise KeyError("no such token")

    async def close_connections(self, code: int = CLOSE_CRASH) -> None:
        """Close every consumer socket with `code` (1011 mimics a hub-side forced disconnect)."""
        consumers = list(self._connections.values())
        await asyncio.gather(*(consumer.close(code) for consumer in consumers))
        await self._wait_gone(consumers)

    async def drop_connections(self) -> None:
        """Abort every consumer's TCP connection without a close frame (a network fault)."""
        consumers = list(self._connections.values())
        for consumer in consumers:
            transport = consumer.request.transport
            if transport is not None:
                transport.abort()
        await self._wait_gone(consumers)

    async def _wait_gone(self, consumers: list[_Consumer], timeout: float = 2.0) -> None:
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
        return await self._call(self.service_id, action, fields, timeout)

    async def _call(
        self, service_id: Any, action: Any, fields: Any, timeout: float | None
    ) -> tuple[int, dict[str, Any]]:
        if self._stopping.is_set():
            return 503, _error_body("Hub is shutting down")
        if self._deleted or str(service_id) != self.service_id:
            return 422, _error_body(f"Service {service_id} not found")
        if not self._joined:
            return 422, _error_body(f"No consumers connected for service {service_id}")

        response_ref = str(uuid.uuid4())
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[response_ref] = answer
        request = {"action": action, "fields": fields, "response_ref": response_ref}
        deliver = asyncio.create_task(self._deliver(request, answer))
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            done, _ = await asyncio.wait(
                {deliver, stopping},
                timeout=self.request_timeout if timeout is None else timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            deliver.cancel()
            stopping.cancel()
            self._pending.pop(response_ref, None)

        if deliver in done:
            delivered, payload = deliver.result()
            if not delivered:
                return 422, _error_body(f"No consumers connected for service {service_id}")
            return self._http_result(payload)
        if stopping in done:
            return 503, _error_body("Hub is shutting down")
        logger.info("request %s (%s) timed out", response_ref, action)
        return 408, _error_body("Request timed out")

    async def _deliver(
        self, request: dict[str, Any], answer: asyncio.Future[Any]
    ) -> tuple[bool, Any]:
        """Wait for a slot, push the request to the next consumer and wait for its answer."""
        if self._slots is not None:
            async with self._slots:
                return await self._push_and_wait(request, answer)
        return await self._push_and_wait(request, answer)

    async def _push_and_wait(
        self, request: dict[str, Any], answer: asyncio.Future[Any]
    ) -> tuple[bool, Any]:
        if not self._joined:
            return False, None
        consumer = self._joined[self._round_robin % len(self._joined)]
        self._round_robin += 1
        logger.debug(
            "request %s (%s) to consumer %d",
            request["response_ref"],
            request["action"],
            consumer.id,
        )
        # Like the real hub, a request whose push is lost simply times out.
        await consumer.push("request", request)
        return True, await answer

    @staticmethod
    def _http_result(payload: Any) -> tuple[int, dict[str, Any]]:
        """Turn a consumer's response payload into the HTTP front's answer."""
        if not (isinstance(payload, dict) and "status" in payload and "message" in payload):
            return 502, _error_body("Invalid response format from service process")
        success = payload["status"] == "success"
        body: dict[str, Any] = {
            "status": "success" if success else "error",
            "message": payload["message"],
        }
        # Local-hub extension: the real hub only returns status and message.
        for key in ("status_code", "fields"):
            if key in payload:
                body[key] = payload[key]
        return (200 if success else 400), body

    # ----------------------------------------------------------------- HTTP front

    async def _handle_http(self, request: web.Request) -> web.Response:
        try:
            body = json_codec.loads(await request.text())
        except ValueError:
            return self._json(400, _error_body("Malformed JSON body"))
        if not isinstance(body, dict) or not {"service_id", "action", "fields"} <= body.keys():
            return self._json(400, _error_body(_MISSING_PARAMS))
        if self._api_token is not None:
            header = request.headers.get("Authorization", "")
            scheme, _, supplied = header.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                supplied.strip().encode(), self._api_token.encode()
            ):
                return self._json(401, _error_body("Invalid or missing API token"))
        status, answer = await self._call(body["service_id"], body["action"], body["fields"], None)
        return self._json(status, answer)

    @staticmethod
    def _json(status: int, body: dict[str, Any]) -> web.Response:
        return web.json_response(body, status=status, dumps=json_codec.dumps)

    # ----------------------------------------------------------------- consumer socket

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        if self._stopping.is_set():
            return web.Response(status=503)
        token = self._tokens.get(request.query.get("token", ""))
        if token is None:
            logger.warning("consumer refused (403): unknown or revoked token")
            return web.Response(status=403)
        raw_actions = request.query.get("actions")
        if raw_actions is None:
            logger.warning("consumer refused (403): no actions parameter")
            return web.Response(status=403)
        try:
            catalog = json_codec.loads(raw_actions)
        except json_codec.JSONDecodeFailure:
            logger.warning("consumer refused (500): actions parameter is not JSON")
            return web.Response(status=500)
        try:
            serializer = serializer_for(request.query.get("vsn", "1.0.0"))
        except ValueError:
            logger.warning("consumer refused (403): unsupported vsn")
            return web.Response(status=403)
        if self._connections and catalog != self.catalog:
            logger.warning(
                "consumer refused (403): its action catalog differs from the one registered "
                "by the %d connected consumer(s)",
                len(self._connections),
            )
            return web.Response(status=403)

        websocket: _WebSocket = web.WebSocketResponse(autoping=False, timeout=_CLOSE_TIMEOUT)
        if not websocket.can_prepare(request).ok:
            return web.Response(status=400)
        consumer = _Consumer(
            id=next(self._next_id),
            request=request,
            websocket=websocket,
            serializer=serializer,
            token=token,
            last_activity=asyncio.get_running_loop().time(),
        )
        if not self._connections:
            self.catalog = catalog
        self._connections[consumer.id] = consumer
        self._notify()
        try:
            await websocket.prepare(request)
            consumer.ready = True
            consumer.touch()
            logger.info(
                "consumer %d connected (vsn %s, token id %s)",
                consumer.id,
                serializer.version,
                token["id"],
            )
            await self._serve(consumer)
        finally:
            await self._forget(consumer)
        return websocket

    async def _serve(self, consumer: _Consumer) -> None:
        """Read frames until the socket closes, the consumer falls silent or sends garbage."""
        websocket = consumer.websocket
        loop = asyncio.get_running_loop()
        while True:
            remaining = consumer.last_activity + self.idle_timeout - loop.time()
            if remaining <= 0:
                logger.info(
                    "consumer %d idle for %s s: closing (1002)", consumer.id, self.idle_timeout
                )
                await consumer.close(CLOSE_IDLE)
                return
            try:
                frame = await websocket.receive(timeout=remaining)
            except TimeoutError:
                continue
            if frame.type is WSMsgType.TEXT:
                consumer.touch()
                try:
                    message = consumer.serializer.decode(frame.data)
                except FrameError as error:
                    logger.warning(
                        "consumer %d sent an undecodable frame (%s): closing (1011)",
                        consumer.id,
                        error,
                    )
                    await consumer.close(CLOSE_CRASH)
                    return
                self.received.append((consumer.id, message))
                await self._handle_message(consumer, message)
            elif frame.type is WSMsgType.BINARY:
                consumer.touch()
                logger.warning("consumer %d sent a binary frame: closing (1011)", consumer.id)
                await consumer.close(CLOSE_CRASH)
                return
            elif frame.type is WSMsgType.PING:
                consumer.touch()
                try:
                    await websocket.pong(frame.data)
                except (ConnectionError, RuntimeError):
                    return
            elif frame.type is WSMsgType.PONG:
                consumer.touch()
            else:  # CLOSE, CLOSING, CLOSED or ERROR
                return

    async def _forget(self, consumer: _Consumer) -> None:
        """Remove a finished socket: leave the rotation, drop the catalog after the last one."""
        if consumer.joined:
            await self._leave(consumer)
        self._connections.pop(consumer.id, None)
        if not self._connections:
            self.catalog = None
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

    async def _handle_message(self, consumer: _Consumer, message: Message) -> None:
        if message.topic == PHOENIX_TOPIC and message.event == HEARTBEAT:
            if self.answer_heartbeats:
                await consumer.reply(message, "ok", {})
            return
        if message.topic == SERVICE_TOPIC and message.event == PHX_JOIN:
            await self._join(consumer, message)
            return
        if message.topic != SERVICE_TOPIC or not consumer.joined:
            await consumer.reply(message, "error", {"reason": "unmatched topic"})
            return
        if message.event == "response":
            answer = self._pending.get(message.ref) if message.ref is not None else None
            if answer is not None and not answer.done():
                answer.set_result(message.payload)
            else:
                logger.debug("consumer %d: response for unknown ref ignored", consumer.id)
            return
        join_ref = consumer.join_ref
        if message.event == PHX_LEAVE:
            await consumer.reply(message, "ok", {})
            await consumer.send(Message(SERVICE_TOPIC, PHX_CLOSE, {}, join_ref, join_ref))
            await self._leave(consumer)
            logger.info("consumer %d left", consumer.id)
            return
        # Any other event crashes the hub's channel: phx_error, out of the rotation.
        logger.warning(
            "consumer %d sent illegal event %r on the service topic: phx_error",
            consumer.id,
            message.event,
        )
        await consumer.send(Message(SERVICE_TOPIC, PHX_ERROR, {}, join_ref, join_ref))
        await self._leave(consumer)

    async def _join(self, consumer: _Consumer, message: Message) -> None:
        if consumer.joined:
            # A duplicate join closes the first one.
            old_ref = consumer.join_ref
            await consumer.send(Message(SERVICE_TOPIC, PHX_CLOSE, {}, old_ref, old_ref))
            await self._leave(consumer)
        consumer.joined = True
        consumer.join_ref = message.join_ref if message.join_ref is not None else message.ref
        self._joined.append(consumer)
        count = len(self._joined)
        await consumer.reply(
            message,
            "ok",
            {
                "service": dict(self.service),
                "token": self._public_token(consumer.token),
                "num_consumers": count,
            },
        )
        logger.info("consumer %d joined (%d joined)", consumer.id, count)
        await self._announce(exclude=consumer)
        self._notify()

    async def _leave(self, consumer: _Consumer) -> None:
        """Take a consumer out of the rotation and tell the others (twice, like the hub)."""
        if not consumer.joined:
            return
        consumer.joined = False
        consumer.join_ref = None
        if consumer in self._joined:
            self._joined.remove(consumer)
        self._notify()
        await self._announce(exclude=consumer)
        await self._announce(exclude=consumer)

    async def _announce(self, exclude: _Consumer) -> None:
        """Push ``num_consumers`` to every joined consumer but `exclude`."""
        payload = {"num_consumers": len(self._joined)}
        for other in list(self._joined):
            if other is not exclude:
                await other.push("num_consumers", payload)

    # ----------------------------------------------------------------- tokens

    def _add_token(self, value: str) -> dict[str, Any]:
        now = datetime.now(UTC)
        record = {
            "id": str(uuid.uuid4()),
            "value": value,
            "context": TOKEN_CONTEXT,
            "service_id": self.service_id,
            "inserted_at": _timestamp(now),
            "expires_at": _timestamp(now + TOKEN_VALIDITY),
        }
        self._tokens[value] = record
        return record

    @staticmethod
    def _public_token(record: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in record.items() if key != "value"}
