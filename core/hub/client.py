"""`PlugboardClient`: one replica's link to the hub, from the first connection to the exit.

The parts (docs/architecture.md draws them):

- `core.hub.transport.HubTransport`: one WebSocket connection (websockets' sans-I/O protocol
  under an ``asyncio.Protocol``);
- `core.hub.socket.PhoenixSocket`: frames, refs, heartbeat and dead-link detection, for
  whichever connection is open;
- `core.hub.channel.Channel`: the ``service`` topic's join, rejoin and leave;
- `core.hub.outbox.ResponseOutbox`: responses kept until a heartbeat proves the hub read
  them, and written again after a reconnect;
- `core.execution.executor.RequestExecutor`: runs each request and answers it.

This module is the asyncio layer that owns them (phoenix.js's ``Socket`` role): it connects
and reconnects forever with back-off (any failure to connect is retried), hands the hub's
domain events to the handlers in ``events/``, and shuts down so that every request that
reached the replica gets an answer its caller receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr
from websockets.exceptions import InvalidStatus

from core import json_codec
from core.execution.executor import RequestExecutor
from core.execution.responses import ErrorAnswers
from core.hub.backoff import (
    HEALTHY_AFTER_SECONDS,
    RECONNECT_DELAYS,
    REFUSED_DELAYS,
    REJOIN_DELAYS,
    Backoff,
)
from core.hub.channel import reply_parts
from core.hub.connection import URL_SIZE_WARNING, connection_url
from core.hub.drain import Drain, Link, Step
from core.hub.event_handler import EventHandler, payload_item
from core.hub.loop_clock import RunningLoopClock
from core.hub.outbox import ResponseOutbox
from core.hub.phoenix import PHX_REPLY, Message, serializer_for
from core.hub.socket import PhoenixSocket
from core.hub.timers import Cancellable
from core.hub.transport import HubTransport
from core.log import RateLimitedLog, redact_url, request_log, secret_filter, truncate
from core.model.registry import catalog_hash, catalog_json, discover
from core.model.runner import ActionRunner
from core.settings import WEBSOCKET_URL_FORM, Settings, load_settings, websocket_url_problem
from schemas.service import Service
from schemas.token import Token

logger = logging.getLogger(__name__)

SERVICE_TOPIC = "service"
# The hub routes a caller's request to a consumer as this event on the service topic.
REQUEST = "request"
# phoenix.js waits this long for a phx_leave reply before closing anyway.
LEAVE_TIMEOUT = 1.0
OPEN_TIMEOUT = 10.0
CLOSE_TIMEOUT = 5.0
# A failed connection attempt logs one line; the same failure again within this many seconds
# is counted instead, and the count joins the next line.
FAILURE_LOG_INTERVAL = 10.0


class _FailureLog:
    """One log line per failed connection attempt, but not the same line over and over."""

    def __init__(self) -> None:
        self._last_text = ""
        self._last_at = float("-inf")
        self._repeats = 0

    def failed(self, level: int, text: str, delay: float) -> None:
        now = time.monotonic()
        if text == self._last_text and now - self._last_at < FAILURE_LOG_INTERVAL:
            self._repeats += 1
            return
        repeats = f" ({self._repeats} more like it since the last line)" if self._repeats else ""
        logger.log(level, "%s%s; retrying in %.2f s", text, repeats, delay)
        self._last_text, self._last_at, self._repeats = text, now, 0

    def succeeded(self) -> None:
        self._last_text, self._repeats = "", 0


class PlugboardClient:
    """One replica's connection to the hub: connect, join, serve requests, shut down.

    `settings` default to the environment's (`load_settings`), `actions` to the classes
    discovered under ``ACTIONS_PATH`` and `events` to the handlers under ``events/``, so
    that ``PlugboardClient()`` followed by ``await client.connect(url, token)`` runs a
    service as the seed's client does. `service`, `token`, `num_consumers` and `connected`
    start as given and then follow what the hub says.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        actions: Mapping[str, type[ActionRunner]] | None = None,
        events: Mapping[str, type[EventHandler]] | None = None,
        *,
        service: Service | None = None,
        token: Token | None = None,
        num_consumers: int = 0,
        connected: bool = False,
        open_timeout: float = OPEN_TIMEOUT,
        healthy_after: float = HEALTHY_AFTER_SECONDS,
    ) -> None:
        if settings is None:
            settings = load_settings()
        self.settings = settings
        self.open_timeout = open_timeout
        # A connection counts as a success (the reconnect back-off starts over) once it has
        # been joined this long: a hub that accepts and then drops every connection is
        # retried on the growing schedule, not every 10 ms.
        self.healthy_after = healthy_after
        if actions is None:
            actions = discover(settings.actions_path, ActionRunner)
        self.actions: dict[str, type[ActionRunner]] = dict(actions)
        if events is None:
            events = discover(settings.events_path, EventHandler)
        self.events: dict[str, type[EventHandler]] = dict(events)
        self._handlers: dict[str, EventHandler] = {name: cls() for name, cls in events.items()}
        self.serializer = serializer_for(settings.phoenix_vsn)
        self.catalog_json = catalog_json(self.actions)
        self.catalog: dict[str, Any] = json_codec.loads(self.catalog_json)
        # Short enough to read in a log line or a pod label.
        self.catalog_hash = catalog_hash(self.catalog_json)
        self._token = settings.token
        self._next_token_id: int | str | None = None
        secret_filter.add(self._token)
        # The lines the hub can bring about at will, each kind with its own budget.
        self._bad_input = RateLimitedLog(logger)
        self._reply_log = RateLimitedLog(logger, chars=400)
        self._refusal_log = RateLimitedLog(logger, chars=400)
        self._oversize_log = RateLimitedLog(logger)
        self._token_log = RateLimitedLog(logger)
        # service_updated and num_consumers: the hub may send them at will.
        self._event_lines = RateLimitedLog(logger)
        errors = ErrorAnswers(settings.error_format)

        # The link: socket, channel, outbox (sans-I/O), and the connection of the moment.
        self._clock = RunningLoopClock()
        self._socket = PhoenixSocket(
            self._clock,
            self.serializer,
            self,
            heartbeat_interval=settings.heartbeat_interval_seconds,
        )
        self._channel = self._socket.channel(
            SERVICE_TOPIC,
            self,
            join_timeout=settings.join_timeout_seconds,
            leave_timeout=LEAVE_TIMEOUT,
            rejoin=Backoff(REJOIN_DELAYS),
        )
        self.outbox = ResponseOutbox(
            self._socket,
            self._channel,
            max_age=settings.response_max_age_seconds,
            limit=settings.outbox_limit,
            max_bytes=settings.outbox_max_bytes,
            min_delay=settings.response_min_delay_seconds,
            errors=errors,
        )
        # TransportHandler: every text message goes straight to the socket.
        self.frame_received = self._socket.frame_received
        self.websocket: HubTransport | None = None

        self.executor = RequestExecutor(
            self.actions,
            self.outbox.send,
            lambda: (self, self.websocket),
            max_concurrency=settings.max_concurrency,
            max_waiting=settings.max_waiting_requests,
            default_timeout=settings.action_timeout_seconds,
            errors=errors,
        )

        # What the hub told us (the token's value is ours: the hub never sends it back).
        self.service = service
        if token is None:
            token = Token(value=SecretStr(settings.token) if settings.token else None)
        self.token = token
        self._num_consumers = num_consumers
        self.connected = connected

        # Waiting points (asyncio.Event needs no running loop to be made).
        self._joined = asyncio.Event()
        self._left = asyncio.Event()
        self._consumers_changed = asyncio.Event()
        self._stopped = asyncio.Event()
        # Started over once a connection has been joined for `healthy_after` seconds.
        self._reconnect = Backoff(RECONNECT_DELAYS)
        self._healthy: Cancellable | None = None
        self._background: set[asyncio.Task[Any]] = set()

        # Lifecycle and counters.
        self.connections = 0
        self.refused_upgrades = 0  # HTTP 403 answers to the upgrade, since the process began
        self.shutting_down = False
        self.exit_code = 0

    # ----------------------------------------------------------------- public surface

    def connection_url(self) -> str:
        """The WebSocket URL with token, catalog and serializer version (contains the token)."""
        return connection_url(
            self.settings.websocket_url, self._token, self.catalog_json, self.settings.phoenix_vsn
        )

    @property
    def joined(self) -> bool:
        """True while the channel on topic ``service`` is joined."""
        return self._channel.joined

    @property
    def join_ref(self) -> str | None:
        """The ref of the current join, if any."""
        return self._channel.join_ref

    @property
    def num_consumers(self) -> int:
        """Consumers joined to the service, this one included, as the hub last said: the join
        reply carries the count, and the ``num_consumers`` push follows every other join and
        leave (0 until the hub says)."""
        return self._num_consumers

    @num_consumers.setter
    def num_consumers(self, count: int) -> None:
        self._num_consumers = count
        self._consumers_changed.set()  # a last replica that holds waits for another to join

    @property
    def redacted_url(self) -> str:
        """The hub URL as it may appear in logs: no token, no catalog."""
        return redact_url(self.settings.websocket_url)

    async def wait_joined(self, timeout: float | None = None) -> None:
        """Wait until the channel is joined (for tests and readiness checks)."""
        await asyncio.wait_for(self._joined.wait(), timeout)

    async def connect(self, websocket_url: str, token: str) -> int:
        """Connect to the hub at `websocket_url` with `token` and serve until stopped (the
        seed's entry point); returns the process exit code, or at once when connected."""
        if self.connected:
            return self.exit_code
        problem = websocket_url_problem(websocket_url)
        if problem is not None:
            raise ValueError(f"websocket_url must be {WEBSOCKET_URL_FORM}: {problem}")
        self.settings = self.settings.with_hub(websocket_url, token)
        self._token = token
        secret_filter.add(token)
        self.token.value = SecretStr(token)
        return await self.run()

    async def run(self) -> int:
        """Connect and serve until stopped; returns the process exit code."""
        self._warn_on_url_size()
        stopped = self._stopped
        refused = Backoff(REFUSED_DELAYS)
        failures = _FailureLog()
        while not stopped.is_set():
            try:
                transport = await self._open_unless_stopped()
            except InvalidStatus as error:
                if error.response.status_code == 403:
                    delay = refused.next()
                    self.refused_upgrades += 1
                    failures.failed(logging.ERROR, self._refused_text(), delay)
                else:
                    delay = self._reconnect.next()
                    failures.failed(logging.WARNING, self._cannot_connect(error), delay)
            except Exception as error:  # every failure to connect is transient: retry
                delay = self._reconnect.next()
                failures.failed(logging.WARNING, self._cannot_connect(error), delay)
            else:
                if transport is None:
                    break
                refused.reset()
                failures.succeeded()
                await transport.wait_closed()
                if stopped.is_set():
                    break
                delay = self._reconnect.next()
                logger.info("reconnecting in %.2f s", delay)
            await self._sleep_unless_stopped(delay)
        self.executor.close()
        self.outbox.close()
        return self.exit_code

    def request_shutdown(self, signum: int | None = None, *, hold_if_last: bool = False) -> None:
        """Begin a graceful shutdown (SIGTERM, SIGINT); a second call exits at once.

        The replica leaves the hub's rotation at once, serves what still reaches it and
        delivers every answer (`core.hub.drain`). With `hold_if_last` (the orchestrator's
        SIGTERM), the service's only joined replica first keeps serving until another joins
        or the grace period ends: with none joined, the hub answers callers 422.
        """
        if self.shutting_down:
            logger.warning("second signal: exiting now without waiting for running requests")
            request_log.flush()  # os._exit skips atexit, which writes the last request lines
            os._exit(128 + (signum or signal.SIGTERM))
        self.shutting_down = True
        self._spawn(self._shutdown(hold_if_last))

    def stop(self, exit_code: int = 0) -> None:
        """Leave, close and return from `run()` without reconnecting (service deleted)."""
        self.shutting_down = True
        self.exit_code = exit_code
        self.executor.stop_accepting()
        self._spawn(self._leave_and_close())

    # ----------------------------------------------------------------- for events/ (Replica)

    def service_updated(self, service: Service) -> None:
        """The hub changed the service's record."""
        self.service = service
        self._event_lines.info(
            "service updated: %s (id %s)", truncate(service.name, 100), service.id
        )

    def consumers_counted(self, count: int) -> None:
        """The hub counted the service's consumers again."""
        if count != self.num_consumers:
            self._event_lines.info("the service now has %d consumer(s)", count)
        self.num_consumers = count

    def use_token(self, token: Token) -> None:
        """Keep a new token (from token_created) for the next connection."""
        if token.value is None:
            return
        value = token.value.get_secret_value()
        secret_filter.add(value)
        self._token = value
        self._next_token_id = token.id
        self._token_log.info(
            "received a new token (id %s); the next connection will use it", token.id
        )

    def token_deleted(self, token: Token) -> None:
        """A token was deleted on the hub; warn when it is the one in use."""
        in_use = (
            self._next_token_id
            if self._next_token_id is not None
            else (self.token.id if self.token is not None else None)
        )
        if in_use is not None and str(in_use) == str(token.id):
            self._token_log.warning(
                "the token this replica connected with (id %s) was deleted on the hub: the next "
                "reconnect will be refused unless a new token arrives or TOKEN is updated",
                token.id,
            )
        else:
            self._token_log.info("token %s was deleted on the hub (not the one in use)", token.id)

    # ----------------------------------------------------------------- the transport's handler

    def connection_open(self, transport: HubTransport) -> None:
        """The handshake succeeded: the socket takes the connection and joins."""
        self.websocket = transport
        self.connected = True
        self.connections += 1
        logger.info("connected to %s", self.redacted_url)
        if not self.shutting_down:
            # Join on every new connection (a shutdown decides for itself: it joins again
            # only to deliver answers).
            self._channel.join()
        self._socket.connection_made(transport)

    def writing_resumed(self) -> None:
        """The hub reads again."""
        self._socket.writing_resumed()

    # LinkListener: what the socket reports of the link is the outbox's to act on.

    def heartbeat_sent(self, ref: str) -> None:
        """A heartbeat left: the outbox's batches written before it await its reply."""
        self.outbox.heartbeat_sent(ref)

    def heartbeat_answered(self, ref: str) -> None:
        """A heartbeat's reply: the outbox's batches written before it are confirmed."""
        self.outbox.heartbeat_answered(ref)

    def link_lost(self) -> None:
        """The connection is gone: the outbox keeps what it may not have delivered."""
        self.outbox.connection_lost()

    def link_writable(self) -> None:
        """The hub reads again: the outbox writes what it held back."""
        self.outbox.writing_resumed()

    def connection_closed(self, transport: HubTransport) -> None:
        """The connection is gone: say why, and let the socket start over."""
        self.websocket = None
        self.connected = False
        self._joined.clear()
        if self._healthy is not None:
            self._healthy.cancel()
            self._healthy = None
        self._socket.connection_lost()
        if transport.close_code_sent == 1009:
            self._oversize_log.error(
                "the hub sent a frame over MAX_MESSAGE_BYTES (%d bytes); the connection was "
                "closed with 1009",
                self.settings.max_message_bytes,
            )
        elif transport.abort_reason is not None and not self._stopped.is_set():
            logger.warning("%s: the connection is dead; reconnecting", transport.abort_reason)
        elif not self.shutting_down:
            code, reason = transport.close_code, transport.close_reason
            logger.warning(
                "connection to the hub closed (code %s%s)",
                code,
                f", reason {truncate(reason, 100)!r}" if reason else "",
                extra={"close_code": code},
            )

    # ----------------------------------------------------------------- the channel's listener

    def channel_joined(self, response: Any) -> None:
        """The hub accepted the join: keep what it told us, then write what was kept."""
        if self._healthy is None:
            self._healthy = self._clock.call_later(self.healthy_after, self._connection_healthy)
        service = payload_item(response, "service", Service, PHX_REPLY)
        token = payload_item(response, "token", Token, PHX_REPLY)
        consumers = response.get("num_consumers") if isinstance(response, dict) else None
        if service is not None:
            self.service = service
        if token is not None:
            if token.value is None:  # the join reply never carries it
                token.value = self.token.value
            self.token = token
        if isinstance(consumers, int) and not isinstance(consumers, bool):
            self.num_consumers = consumers
        self._joined.set()
        logger.info(
            "joined service %s (id %s); %s consumer(s) connected",
            truncate(self.service.name, 100) if self.service else "?",
            truncate(str(self.service.id), 40) if self.service else "?",
            self.num_consumers,
        )
        self.outbox.channel_joined()

    def channel_join_refused(self, reason: str, rejoin_in: float | None) -> None:
        """The hub answered the join with an error."""
        self._joined.clear()
        self.outbox.channel_lost()
        logger.error(
            "the hub refused to join topic %r: %s%s",
            SERVICE_TOPIC,
            truncate(reason),
            "" if rejoin_in is None else f"; rejoining in {rejoin_in:.1f} s",
        )

    def channel_lost(self, why: str, rejoin_in: float | None) -> None:
        """No longer joined, not by our leave."""
        self._joined.clear()
        self.outbox.channel_lost()
        if rejoin_in is not None:
            logger.warning("%s; rejoining in %.1f s", why, rejoin_in)

    def channel_left(self, acknowledged: bool) -> None:
        """Our leave completed."""
        self._joined.clear()
        if acknowledged:
            self.outbox.leave_acknowledged()
        else:
            self.outbox.leave_unacknowledged()
        self._left.set()

    def channel_message(self, message: Message) -> None:
        """A request for the executor, a domain event for ``events/``, or the hub's error
        reply to one of our responses."""
        event = message.event
        if event == REQUEST:
            self.executor.submit(message.payload)
            return
        if event != PHX_REPLY:
            handler = self._handlers.get(event)
            if handler is None:
                self._bad_input.warning(
                    "ignoring event %r on topic %r: no handler",
                    truncate(event, 80),
                    truncate(str(message.topic), 80),
                )
                return
            try:
                handler.handle(self, message)
            except Exception:
                logger.exception("the %s handler failed; the connection stays up", event)
            return
        status, response = reply_parts(message)
        if status == "ok" or message.ref is None:
            return
        if self.outbox.refused(message.ref):
            self._refusal_log.info(
                "the hub refused the response for ref %s (%s): it will be sent again after "
                "the next join",
                truncate(message.ref, 80),
                truncate(str(response), 100),
                extra={"ref": message.ref},
            )
            return
        self._reply_log.warning(
            "the hub answered ref %s on topic %r with %s: %s",
            truncate(message.ref, 80),
            truncate(message.topic, 80),
            truncate(str(status), 40),
            truncate(str(response), 100),
        )

    # --------------------------------------------------------------------- internals

    def _connection_healthy(self) -> None:
        """Joined for `healthy_after` seconds: the next reconnect starts the schedule over."""
        self._healthy = None
        if self._channel.joined:
            self._reconnect.reset()

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

    def _cannot_connect(self, error: BaseException) -> str:
        detail = redact_url(str(error)) or type(error).__name__
        return f"cannot connect to {self.redacted_url}: {truncate(detail)}"

    def _refused_text(self) -> str:
        return (
            "the hub refused the connection (HTTP 403). Either TOKEN is wrong, expired or "
            "deleted (set a valid service token), or this replica's action catalog (hash "
            f"{self.catalog_hash}) differs from the one the running replicas announced (finish "
            "rolling out one version: the hub accepts a new catalog once the old replicas are "
            "gone)"
        )

    async def _open_unless_stopped(self) -> HubTransport | None:
        """Open a connection, or return None as soon as the client is stopped (a shutdown
        must not wait for a hub that does not answer the upgrade)."""
        attempt = asyncio.ensure_future(
            HubTransport.open(
                self.connection_url(),
                self,
                max_size=self.settings.max_message_bytes,
                open_timeout=self.open_timeout,
                close_timeout=CLOSE_TIMEOUT,
            )
        )
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

    async def _sleep_unless_stopped(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), delay)

    async def _shutdown(self, hold_if_last: bool) -> None:
        """Drain (`core.hub.drain`), then close for good."""
        grace = self.settings.shutdown_grace_seconds
        drain = Drain(self._clock, grace)
        if hold_if_last and drain.starts_holding(self._link()):
            logger.warning(
                "shutting down as the service's only joined replica: once it leaves, callers "
                "get 422 from the hub until another replica joins, so it keeps serving until "
                "one joins or for up to %.0f s",
                grace,
            )
        else:
            logger.info(
                "shutting down: leaving the hub's rotation; serving the %d running request(s) "
                "and any the hub still sends for up to %.0f s",
                self.executor.in_flight,
                grace,
            )
        await self._drain(drain)
        await self._close_for_good()

    def _link(self) -> Link:
        return Link(
            self._channel.joined, self.executor.in_flight, self.outbox.settled, self.num_consumers
        )

    async def _drain(self, drain: Drain) -> None:
        """Perform the drain's steps until it is done: each step's wait ends at the latest
        when the drain's phase does."""
        channel, executor = self._channel, self.executor
        rejoins = 0
        while (step := drain.next(self._link())) is not Step.DONE:
            time_left = drain.time_left()
            if step is Step.HOLD:
                self._consumers_changed.clear()
                await self._wait_for(self._consumers_changed, time_left)
            elif step is Step.LEAVE:
                if drain.handed_over:
                    drain.handed_over = False
                    logger.info(
                        "another replica joined (%s consumers): leaving the hub's rotation",
                        self.num_consumers,
                    )
                self._left.clear()
                if channel.leave():
                    await self._wait_for(self._left, min(time_left, LEAVE_TIMEOUT * 2))
            elif step is Step.SERVE:
                await executor.drain(time_left)
            elif step is Step.JOIN:
                # Only to write the kept answers: the join writes them at once, and the next
                # step leaves again.
                self._joined.clear()
                channel.join()
                if await self._wait_for(self._joined, time_left):
                    rejoins += 1
            elif step is Step.REFUSE:
                executor.stop_accepting()
                if executor.in_flight:
                    logger.warning(
                        "%d request(s) still running after %.0f s; cancelling them",
                        executor.in_flight,
                        drain.grace,
                    )
                    await executor.cancel_all()
                else:
                    logger.info("shutdown grace period over (%.0f s): leaving", drain.grace)
        undelivered = self.outbox.kept + self.outbox.unconfirmed
        if undelivered:
            logger.error("%d response(s) could not be confirmed delivered before exit", undelivered)
        elif rejoins:
            logger.info("joined again %d time(s) to deliver answers made after leaving", rejoins)

    async def _leave_and_close(self) -> None:
        """Leave and close for good, without delivering anything (the service is gone:
        nobody waits for its answers)."""
        self._left.clear()
        if self._channel.leave():
            await self._wait_for(self._left, LEAVE_TIMEOUT * 2)
        await self._close_for_good()

    async def _close_for_good(self) -> None:
        self._stopped.set()
        if self.websocket is not None:
            await self.websocket.close()
        logger.info("stopped")

    @staticmethod
    async def _wait_for(event: asyncio.Event, timeout: float) -> bool:
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        return True
