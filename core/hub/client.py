"""`PlugboardClient`: the connection lifecycle between one replica and the hub.

The client owns one WebSocket at a time. It connects (reconnecting forever with back-off),
joins topic ``service``, sends the Phoenix heartbeat and notices a dead connection, rejoins
after a channel error, keeps responses that could not be sent while the socket was down, and
shuts down gracefully. Frames are decoded by `core.phoenix` and handed to the handlers in
`events/`; requests are run by `core.request_executor`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
import time
from collections import deque
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidState, InvalidStatus, InvalidURI
from websockets.frames import CloseCode
from websockets.protocol import State

from core import json_codec
from core.execution.executor import RequestExecutor
from core.execution.responses import internal_error
from core.hub.backoff import RECONNECT_DELAYS, REFUSED_DELAYS, REJOIN_DELAYS, Backoff
from core.hub.connection import HubConnection
from core.hub.event_handler import EventHandler
from core.hub.phoenix import (
    HEARTBEAT,
    PHOENIX_TOPIC,
    PHX_JOIN,
    PHX_LEAVE,
    FrameError,
    Message,
    RefCounter,
    serializer_for,
)
from core.log import RateLimitedLog, redact_url, secret_filter, truncate
from core.model.registry import ActionRegistry
from core.model.runner import ActionRunner
from core.settings import Settings
from schemas.service import Service
from schemas.token import Token

logger = logging.getLogger(__name__)

SERVICE_TOPIC = "service"
URL_SIZE_WARNING = 8000
# phoenix.js waits this long for a phx_leave reply before closing anyway.
LEAVE_TIMEOUT = 1.0


class ConnectionRefused(Exception):
    """The hub refused the WebSocket upgrade with HTTP 403."""


class PlugboardClient:
    """One replica's connection to the hub: connect, join, serve requests, shut down."""

    def __init__(
        self,
        settings: Settings,
        actions: Mapping[str, type[ActionRunner]],
        events: Mapping[str, type[EventHandler]] | None = None,
    ) -> None:
        self.settings = settings
        self.actions = dict(actions)
        if events is None:
            events = ActionRegistry.discover(settings.events_path, EventHandler)
        self._handlers: dict[str, EventHandler] = {name: cls() for name, cls in events.items()}
        self.serializer = serializer_for(settings.phoenix_vsn)
        self.refs = RefCounter()
        self.catalog: dict[str, Any] = {name: a.to_dict() for name, a in self.actions.items()}
        self.catalog_json = json_codec.dumps(self.catalog)
        # Short enough to read in a log line or a pod label; replicas that may serve side by
        # side on one hub have the same hash.
        self.catalog_hash = hashlib.sha256(self.catalog_json.encode()).hexdigest()[:12]
        self.executor = RequestExecutor(
            self.actions,
            self._send_response,
            lambda: (self, self.websocket),
            max_concurrency=settings.max_concurrency,
            default_timeout=settings.action_timeout_seconds,
        )
        self._bad_input = RateLimitedLog(logger)
        # Connections hand each text message to _receive as it arrives.
        self._connection_class = HubConnection.delivering_to(self._receive)
        self._token = settings.token
        self._next_token_id: int | str | None = None
        secret_filter.add(self._token)

        # What the hub told us.
        self.service: Service | None = None
        self.token: Token | None = None
        self.num_consumers: int | None = None

        # Connection and channel state.
        self.websocket: HubConnection | None = None
        self.join_ref: str | None = None
        self._joined = asyncio.Event()
        self.leave_ref: str | None = None
        self._left_event = asyncio.Event()
        self._heartbeat_ref: str | None = None
        self._rejoin = Backoff(REJOIN_DELAYS)
        self._reconnect = Backoff(RECONNECT_DELAYS)  # reset by a successful join
        self._rejoin_task: asyncio.Task[None] | None = None
        self._join_timer: asyncio.TimerHandle | None = None
        self._outbox: deque[tuple[float, str, dict[str, Any]]] = deque()
        self._batch: list[tuple[str, dict[str, Any]]] = []
        self._batch_sent: asyncio.Future[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()

        # Lifecycle.
        self.connections = 0
        self.refused_upgrades = 0  # HTTP 403 answers to the upgrade, since the process began
        self.shutting_down = False
        self.exit_code = 0
        self._stopped = asyncio.Event()

    # ----------------------------------------------------------------- public surface

    def connection_url(self) -> str:
        """The WebSocket URL with token, catalog and serializer version (contains the token)."""
        parts = urlsplit(self.settings.websocket_url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        query += [("token", self._token), ("actions", self.catalog_json)]
        if self.settings.phoenix_vsn != "1.0.0":
            query.append(("vsn", self.settings.phoenix_vsn))
        encoded = urlencode(query, quote_via=lambda value, *_: quote(value, safe=":,"))
        return urlunsplit(parts._replace(query=encoded))

    @property
    def joined(self) -> bool:
        """True while the channel on topic ``service`` is joined."""
        return self._joined.is_set()

    @property
    def kept_responses(self) -> int:
        """Responses waiting for a rejoin to be delivered."""
        return len(self._outbox)

    @property
    def redacted_url(self) -> str:
        """The hub URL as it may appear in logs: no token, no catalog."""
        return redact_url(self.settings.websocket_url)

    async def wait_joined(self, timeout: float | None = None) -> None:
        """Wait until the channel is joined (for tests and readiness checks)."""
        await asyncio.wait_for(self._joined.wait(), timeout)

    async def run(self) -> int:
        """Connect and serve until shut down; returns the process exit code."""
        stopped = self._stopped
        self._warn_on_url_size()
        reconnect = self._reconnect
        refused = Backoff(REFUSED_DELAYS)
        while not stopped.is_set():
            try:
                websocket = await self._connect_unless_stopped()
                if websocket is None:
                    break
            except ConnectionRefused:
                delay = refused.next()
                self.refused_upgrades += 1
                logger.error(
                    "the hub refused the connection (HTTP 403). Either TOKEN is wrong, expired "
                    "or deleted (set a valid service token), or this replica's action catalog "
                    "(hash %s) differs from the one the running replicas announced (finish "
                    "rolling out one version: the hub accepts a new catalog once the old "
                    "replicas are gone). Retrying in %.1f s",
                    self.catalog_hash,
                    delay,
                )
            except (OSError, TimeoutError, InvalidStatus, ConnectionClosed) as error:
                delay = reconnect.next()
                logger.warning(
                    "cannot connect to %s: %s; retrying in %.2f s",
                    self.redacted_url,
                    truncate(redact_url(str(error)) or type(error).__name__),
                    delay,
                )
            else:
                refused.reset()
                await self._serve(websocket)
                if stopped.is_set():
                    break
                delay = reconnect.next()
                logger.info("reconnecting in %.2f s", delay)
            await self._sleep_unless_stopped(delay)
        self.executor.close()
        return self.exit_code

    def request_shutdown(self, signum: int | None = None) -> None:
        """Begin a graceful shutdown (SIGTERM, SIGINT); a second call exits at once."""
        if self.shutting_down:
            logger.warning("second signal: exiting now without waiting for running requests")
            os._exit(128 + (signum or signal.SIGTERM))
        self.shutting_down = True
        self._spawn(self._shutdown())

    def stop(self, exit_code: int = 0) -> None:
        """Leave, close and return from `run()` without reconnecting (service deleted)."""
        self.shutting_down = True
        self.exit_code = exit_code
        self.executor.stop_accepting()
        self._spawn(self._close_for_good())

    # ------------------------------------------------------------ used by event handlers

    def dispatch(self, event: str, message: Message) -> None:
        """Hand `message` to the handler registered for `event`."""
        handler = self._handlers.get(event)
        if handler is None:
            self._bad_input.warning(
                "ignoring event %r on topic %r: no handler", truncate(event, 80), message.topic
            )
            return
        try:
            handler.handle(self, message)
        except Exception:
            logger.exception("the %s handler failed; the connection stays up", event)

    def is_current_join(self, message: Message) -> bool:
        """True when `message` refers to the current join, not an earlier one.

        A message that names no join at all (both refs null) is taken as the current one:
        ignoring a channel error would leave this replica out of the rotation for good.
        """
        if self.join_ref is None:
            return False
        if message.ref is None and message.join_ref is None:
            return True
        return self.join_ref in (message.join_ref, message.ref)

    def heartbeat_acknowledged(self, ref: str | None) -> None:
        """A heartbeat reply arrived."""
        if ref is not None and ref == self._heartbeat_ref:
            self._heartbeat_ref = None

    def joined_ok(
        self, service: Service | None, token: Token | None, consumers: int | None
    ) -> None:
        """The hub accepted the join."""
        self._cancel_join_timer()
        self._rejoin.reset()
        self._reconnect.reset()
        if service is not None:
            self.service = service
        if token is not None:
            self.token = token
        if consumers is not None:
            self.num_consumers = consumers
        self._joined.set()
        logger.info(
            "joined service %s (id %s); %s consumer(s) connected",
            self.service.name if self.service else "?",
            self.service.id if self.service else "?",
            "?" if self.num_consumers is None else self.num_consumers,
        )
        self._flush_outbox()

    def join_failed(self, reason: str) -> None:
        """The hub answered the join with an error."""
        self._cancel_join_timer()
        self._joined.clear()
        logger.error("the hub refused to join topic %r: %s", SERVICE_TOPIC, truncate(reason))
        self._schedule_rejoin()

    def channel_lost(self, event: str) -> None:
        """The hub sent phx_error or phx_close for the current join."""
        self._joined.clear()
        if self.leave_ref is not None:
            self._left_event.set()
            return
        if self._stopped.is_set():
            return
        logger.warning("the hub's channel sent %s; rejoining", event)
        self._schedule_rejoin()

    def use_token(self, token: Token) -> None:
        """Keep a new token (from token_created) for the next connection."""
        if token.value is None:
            return
        value = token.value.get_secret_value()
        secret_filter.add(value)
        self._token = value
        self._next_token_id = token.id
        logger.info("received a new token (id %s); the next connection will use it", token.id)

    def token_deleted(self, token: Token) -> None:
        """A token was deleted on the hub; warn when it is the one in use."""
        in_use = (
            self._next_token_id
            if self._next_token_id is not None
            else (self.token.id if self.token is not None else None)
        )
        if in_use is not None and str(in_use) == str(token.id):
            logger.warning(
                "the token this replica connected with (id %s) was deleted on the hub: the next "
                "reconnect will be refused unless a new token arrives or TOKEN is updated",
                token.id,
            )
        else:
            logger.info("token %s was deleted on the hub (not the one in use)", token.id)

    # --------------------------------------------------------------------- internals

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _warn_on_url_size(self) -> None:
        size = len(self.connection_url().encode())
        if size > URL_SIZE_WARNING:
            logger.warning(
                "the connection URL is %d bytes: hubs cap the request line near 8,000 bytes, "
                "so the hub may reject it. Shorten action descriptions or split the service",
                size,
            )

    async def _connect_unless_stopped(self) -> HubConnection | None:
        """Connect, or return None as soon as the client is stopped (a shutdown must not
        wait for a hub that does not answer the upgrade)."""
        attempt = asyncio.ensure_future(self._connect())
        stopped = asyncio.ensure_future(self._stopped.wait())
        try:
            await asyncio.wait({attempt, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if not attempt.done() or self._stopped.is_set():
            attempt.cancel()
            await asyncio.wait({attempt})
            # It may have finished before the cancellation landed: close what it opened,
            # and consume its error (moot now) so asyncio does not report it.
            if not attempt.cancelled() and attempt.exception() is None:
                await attempt.result().close()
            return None
        return attempt.result()

    async def _connect(self) -> HubConnection:
        try:
            websocket = await connect(
                self.connection_url(),
                max_size=self.settings.max_message_bytes,
                compression=None,
                open_timeout=10,
                ping_interval=20,
                ping_timeout=20,
                close_timeout=5,
                user_agent_header="py-service",
                create_connection=self._connection_class,
            )
        except InvalidStatus as error:
            if error.response.status_code == 403:
                raise ConnectionRefused() from None
            raise
        except InvalidURI:
            raise OSError(f"invalid WEBSOCKET_URL {self.redacted_url!r}") from None
        assert isinstance(websocket, HubConnection)  # made by create_connection above
        return websocket

    async def _serve(self, websocket: HubConnection) -> None:
        self.websocket = websocket
        self.connections += 1
        logger.info("connected to %s", self.redacted_url)
        heartbeat = asyncio.get_running_loop().create_task(self._heartbeat(websocket))
        await self._join()
        # Text messages go to _receive as they arrive (HubConnection.on_message); this loop
        # gets the rest (fragmented or binary messages) and notices the connection closing.
        receive = websocket.recv
        try:
            while True:
                self._receive(await receive())
        except ConnectionClosed:
            pass
        finally:
            heartbeat.cancel()
            self._connection_ended(websocket)

    def _connection_ended(self, websocket: HubConnection) -> None:
        self.websocket = None
        self._joined.clear()
        self.join_ref = None
        self._heartbeat_ref = None
        self._cancel_join_timer()
        if self._rejoin_task is not None:
            self._rejoin_task.cancel()
            self._rejoin_task = None
        code, reason = websocket.close_code, websocket.close_reason
        sent = websocket.protocol.close_sent
        if sent is not None and sent.code == CloseCode.MESSAGE_TOO_BIG:
            logger.error(
                "the hub sent a frame over MAX_MESSAGE_BYTES (%d bytes); the connection was "
                "closed with 1009",
                self.settings.max_message_bytes,
            )
        elif not self.shutting_down:
            logger.warning(
                "connection to the hub closed (code %s%s)",
                code,
                f", reason {truncate(reason, 100)!r}" if reason else "",
                extra={"close_code": code},
            )

    def _receive(self, frame: str | bytes) -> None:
        try:
            message = self.serializer.decode(frame)
        except FrameError as error:
            self._bad_input.warning("ignoring a frame that is not a Phoenix message: %s", error)
            return
        self.dispatch(message.event, message)

    async def _send(self, message: Message) -> None:
        websocket = self.websocket
        if websocket is None:
            raise ConnectionError("not connected")
        await websocket.send(self.serializer.encode(message))

    async def _join(self) -> None:
        if self.websocket is None or self._stopped.is_set():
            return
        self.join_ref = self.refs.next()
        self.leave_ref = None
        self._cancel_join_timer()
        self._join_timer = asyncio.get_running_loop().call_later(
            self.settings.join_timeout_seconds, self._join_timed_out, self.join_ref
        )
        try:
            await self._send(
                Message(SERVICE_TOPIC, PHX_JOIN, {}, ref=self.join_ref, join_ref=self.join_ref)
            )
        except (ConnectionClosed, ConnectionError):
            self._cancel_join_timer()

    def _join_timed_out(self, join_ref: str) -> None:
        self._join_timer = None
        if self.join_ref == join_ref and not self.joined:
            logger.warning("no reply to the join within %.1f s", self.settings.join_timeout_seconds)
            self._schedule_rejoin()

    def _cancel_join_timer(self) -> None:
        if self._join_timer is not None:
            self._join_timer.cancel()
            self._join_timer = None

    def _schedule_rejoin(self) -> None:
        if self._rejoin_task is not None and not self._rejoin_task.done():
            return
        delay = self._rejoin.next()
        logger.info("rejoining in %.1f s", delay)
        self._rejoin_task = asyncio.get_running_loop().create_task(self._rejoin_after(delay))

    async def _rejoin_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._rejoin_task = None
        if self.websocket is not None and not self.joined:
            await self._join()

    async def _heartbeat(self, websocket: HubConnection) -> None:
        interval = self.settings.heartbeat_interval_seconds
        while True:
            await asyncio.sleep(interval)
            if self._heartbeat_ref is not None:
                logger.warning(
                    "no heartbeat reply within %.1f s: the connection is dead; reconnecting",
                    interval,
                )
                websocket.transport.abort()
                return
            self._heartbeat_ref = self.refs.next()
            try:
                await self._send(Message(PHOENIX_TOPIC, HEARTBEAT, {}, ref=self._heartbeat_ref))
            except (ConnectionClosed, ConnectionError):
                return

    def _send_response(self, response_ref: str, payload: dict[str, Any]) -> None:
        """Queue a response; those queued in one loop iteration are written together.

        The first response of a batch schedules `_write_batch` for the end of the current
        loop iteration; the others only join the batch. While not joined, responses are
        kept for the rejoin.
        """
        if not self.joined or self.websocket is None:
            self._keep(response_ref, payload)
            return
        batch = self._batch
        batch.append((response_ref, payload))
        if len(batch) == 1:
            loop = asyncio.get_running_loop()
            self._batch_sent = loop.create_future()
            loop.call_soon(self._write_batch)

    def _write_batch(self) -> None:
        """Write the queued responses, one frame each, in one write to the socket."""
        batch, self._batch = self._batch, []
        websocket = self.websocket
        try:
            if websocket is None or not self.joined or websocket.state is not State.OPEN:
                raise ConnectionError("not joined")
            send_text = websocket.protocol.send_text
            for response_ref, payload in batch:
                send_text(self._response_frame(response_ref, payload))
            # No wait for the socket's buffer to drain, as websockets' send() would: these
            # responses are made already, and waiting would only hold them elsewhere.
            websocket.send_data()
        except (ConnectionError, InvalidState):
            # Keep the whole batch: what may have reached the hub is harmless to resend
            # (the hub ignores a response whose request it no longer waits for).
            for response_ref, payload in batch:
                self._keep(response_ref, payload)
        finally:
            if self._batch_sent is not None and not self._batch_sent.done():
                self._batch_sent.set_result(None)

    def _response_frame(self, response_ref: str, payload: dict[str, Any]) -> bytes:
        """The frame for one response; a payload that cannot be encoded becomes a 500.

        Actions may return any value as fields: one that is not JSON (an arbitrary object)
        must cost its own request a 500, not the other responses of its batch.
        """
        encode, join_ref = self.serializer.encode_bytes, self.join_ref
        try:
            return encode(Message(SERVICE_TOPIC, "response", payload, response_ref, join_ref))
        except Exception:  # anything the encoder or a value's conversion raises
            error_id, fallback = internal_error()
            logger.exception(
                "the response for ref %s cannot be encoded as JSON; answering 500 (error id %s)",
                response_ref,
                error_id,
                extra={"ref": response_ref, "error_id": error_id},
            )
            return encode(
                Message(SERVICE_TOPIC, "response", fallback.to_payload(), response_ref, join_ref)
            )

    async def _responses_sent(self) -> None:
        """Wait until the batch being collected has been written (before leaving)."""
        if self._batch_sent is not None and not self._batch_sent.done():
            await asyncio.shield(self._batch_sent)

    def _keep(self, response_ref: str, payload: dict[str, Any]) -> None:
        if len(self._outbox) >= self.settings.outbox_limit:
            _, dropped_ref, _ = self._outbox.popleft()
            logger.error("outbox full: dropped the response for ref %s", dropped_ref)
        self._outbox.append((time.monotonic(), response_ref, payload))
        logger.info("not joined: keeping the response for ref %s until the rejoin", response_ref)

    def _flush_outbox(self) -> None:
        """Queue the kept responses for writing, dropping those past the request lifetime."""
        max_age = self.settings.response_max_age_seconds
        while self._outbox and self.joined and self.websocket is not None:
            kept_at, response_ref, payload = self._outbox.popleft()
            age = time.monotonic() - kept_at
            if age > max_age:
                logger.warning(
                    "dropped the response for ref %s: %.0f s old, past the hub's %.0f s "
                    "request lifetime",
                    response_ref,
                    age,
                    max_age,
                )
                continue
            self._send_response(response_ref, payload)

    async def _sleep_unless_stopped(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), delay)

    async def _shutdown(self) -> None:
        grace = self.settings.shutdown_grace_seconds
        deadline = time.monotonic() + grace
        self.executor.stop_accepting()
        logger.info(
            "shutting down: new requests get 503; waiting up to %.0f s for %d running",
            grace,
            self.executor.in_flight,
        )
        if not await self.executor.drain(grace):
            logger.warning(
                "%d request(s) still running after %.0f s; cancelling them",
                self.executor.in_flight,
                grace,
            )
            await self.executor.cancel_all()
        if self._outbox and not self.joined:
            remaining = max(0.0, deadline - time.monotonic())
            logger.info(
                "waiting up to %.1f s to deliver %d kept response(s)", remaining, len(self._outbox)
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._joined.wait(), remaining)
        self._flush_outbox()
        if self._outbox:
            logger.error("%d response(s) could not be delivered before exit", len(self._outbox))
        await self._close_for_good()

    async def _close_for_good(self) -> None:
        await self._responses_sent()
        websocket = self.websocket
        if websocket is not None and self.joined and self.join_ref is not None:
            self.leave_ref = self.refs.next()
            try:
                await self._send(
                    Message(
                        SERVICE_TOPIC, PHX_LEAVE, {}, ref=self.leave_ref, join_ref=self.join_ref
                    )
                )
                await asyncio.wait_for(self._left_event.wait(), LEAVE_TIMEOUT)
            except (ConnectionClosed, ConnectionError, TimeoutError):
                pass
        self._stopped.set()
        if websocket is not None:
            await websocket.close()
        logger.info("stopped")
