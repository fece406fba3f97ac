"""The Phoenix channel, without I/O: join state, rejoin, leave, and the pushes that await a reply.

Modelled on phoenix.js (``channel.js`` and ``push.js``):

- A `Push` is one message that expects a ``phx_reply``: it owns a ref and a timeout, and runs
  the hooks registered for ``"ok"``, ``"error"`` or ``"timeout"``.
- A `Channel` is one topic's membership: ``closed`` -> ``joining`` -> ``joined``, back to
  ``errored`` when the hub's channel crashes (``phx_error``), closes (``phx_close``), refuses
  the join, does not answer it in time or the connection drops, and ``leaving`` -> ``closed``
  after `Channel.leave`. While it wants to be joined, an errored channel rejoins on the
  phoenix.js schedule (1, 2, 5, then every 10 s, with jitter), or as soon as a new
  connection opens. Unlike phoenix.js, a join starts that schedule over only once it has
  lasted `healthy_after` seconds, so a channel that the hub ends right after each join is
  rejoined every 10 s, not every second.

The channel is driven by three things only: `Channel.handle` (a message for its topic),
`Channel.connection_opened` / `connection_lost` (from the socket) and the clock's timers.
It writes through the socket (`ChannelSocket`), and tells its owner what happened through a
`ChannelListener`; so every transition is unit-tested with a fake clock and a list of frames.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import Any, Protocol

from core.hub.backoff import HEALTHY_AFTER_SECONDS, REJOIN_DELAYS, Backoff
from core.hub.phoenix import PHX_CLOSE, PHX_ERROR, PHX_JOIN, PHX_LEAVE, PHX_REPLY, Message
from core.hub.timers import Cancellable, Clock, RetryTimer

logger = logging.getLogger(__name__)

# What a push's hooks receive: the reply's ``response`` (None for a timeout).
Hook = Callable[[Any], None]


class ChannelSocket(Protocol):
    """What a channel needs from its socket."""

    clock: Clock

    @property
    def connected(self) -> bool:
        """True while a connection is open."""
        ...

    def make_ref(self) -> str:
        """A fresh message ref."""
        ...

    def push(self, message: Message) -> None:
        """Write `message` now (dropped when not connected: the push times out)."""
        ...


class ChannelListener(Protocol):
    """What a channel tells its owner."""

    def channel_joined(self, response: Any) -> None:
        """The hub accepted the join; `response` is the reply's response object."""

    def channel_join_refused(self, reason: str, rejoin_in: float | None) -> None:
        """The hub answered the join with an error; the next try is `rejoin_in` s away
        (None: when a connection opens)."""

    def channel_lost(self, why: str, rejoin_in: float | None) -> None:
        """The channel is no longer joined, not by our leave (crash, close, timeout); the next
        try is `rejoin_in` s away (None: when a connection opens)."""

    def channel_left(self, acknowledged: bool) -> None:
        """Our leave completed: the hub answered it (`acknowledged`), or it timed out or the
        hub's channel crashed first."""

    def channel_message(self, message: Message) -> None:
        """Any other message on the topic: the hub's domain events, and replies to our
        messages that are not pushes (a ``response`` the hub refused, say)."""


class State(enum.Enum):
    """A channel's membership of its topic, as phoenix.js names it."""

    CLOSED = "closed"
    JOINING = "joining"
    JOINED = "joined"
    ERRORED = "errored"
    LEAVING = "leaving"


def reply_parts(message: Message) -> tuple[str | None, Any]:
    """A ``phx_reply`` payload as (status, response); status is None when malformed."""
    payload = message.payload
    if not isinstance(payload, dict):
        return None, None
    status = payload.get("status")
    return (status if isinstance(status, str) else None), payload.get("response")


class Push:
    """One message that awaits a ``phx_reply`` with its ref, or times out."""

    __slots__ = ("_channel", "_hooks", "_timer", "event", "payload", "ref", "timeout")

    def __init__(self, channel: Channel, event: str, payload: Any, timeout: float) -> None:
        self._channel = channel
        self.event = event
        self.payload = payload
        self.timeout = timeout
        self.ref: str | None = None
        self._hooks: dict[str, list[Hook]] = {}
        self._timer: Cancellable | None = None

    def receive(self, status: str, hook: Hook) -> Push:
        """Run ``hook(response)`` when the reply's status is `status` (or "timeout")."""
        self._hooks.setdefault(status, []).append(hook)
        return self

    def send(self, join_ref: str | None = None) -> None:
        """Send with a fresh ref and start the timeout (a push can be sent again)."""
        self.cancel()
        socket = self._channel.socket
        self.ref = socket.make_ref()
        self._timer = socket.clock.call_later(self.timeout, self._timed_out, self.ref)
        topic = self._channel.topic
        socket.push(Message(topic, self.event, self.payload, self.ref, join_ref or self.ref))

    def cancel(self) -> None:
        """Stop waiting: no hook will run for the ref sent last."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.ref = None

    def reply(self, status: str, response: Any) -> None:
        """The reply arrived (the channel matched its ref): run the hooks for `status`."""
        self.cancel()
        for hook in self._hooks.get(status, ()):
            hook(response)

    def _timed_out(self, ref: str) -> None:
        if ref != self.ref:
            return
        self._timer = None
        self.ref = None
        for hook in self._hooks.get("timeout", ()):
            hook(None)


class Channel:
    """One topic joined over a `ChannelSocket`; see the module's docstring."""

    def __init__(
        self,
        socket: ChannelSocket,
        topic: str,
        listener: ChannelListener,
        *,
        join_timeout: float = 10.0,
        leave_timeout: float = 1.0,
        rejoin: Backoff | None = None,
        healthy_after: float = HEALTHY_AFTER_SECONDS,
    ) -> None:
        self.socket = socket
        self.topic = topic
        self.state = State.CLOSED
        self._listener = listener
        self._leave_timeout = leave_timeout
        self._healthy_after = healthy_after
        # Starts the rejoin schedule over once a join has lasted `healthy_after` seconds.
        self._healthy: Cancellable | None = None
        # Whether we want to be joined: the rejoin timer and a new connection honour it.
        self._wanted = False
        self._join_push = (
            Push(self, PHX_JOIN, {}, join_timeout)
            .receive("ok", self._joined)
            .receive("error", self._join_refused)
            .receive("timeout", self._join_timed_out)
        )
        self._leave_push: Push | None = None
        self.join_ref: str | None = None
        self._rejoin = RetryTimer(socket.clock, self._rejoin_now, rejoin or Backoff(REJOIN_DELAYS))

    # ------------------------------------------------------------------ what we ask for

    @property
    def joined(self) -> bool:
        """True while the hub has us joined."""
        return self.state is State.JOINED

    def join(self) -> None:
        """Join now if connected (else as soon as a connection opens), and stay joined."""
        self._wanted = True
        self._rejoin.reset()
        if self.state in (State.CLOSED, State.ERRORED) and self.socket.connected:
            self._send_join()

    def leave(self) -> bool:
        """Leave: send ``phx_leave`` and return True; `ChannelListener.channel_left` follows
        on its reply or timeout. When not joined (or not connected) the channel is closed at
        once and this returns False.
        """
        self._wanted = False
        self._rejoin.cancel()
        self._join_push.cancel()
        if self.state is not State.JOINED or not self.socket.connected:
            self._closed()
            return False
        self.state = State.LEAVING
        push = Push(self, PHX_LEAVE, {}, self._leave_timeout)
        push.receive("ok", self._left).receive("error", self._left)
        push.receive("timeout", self._left_unconfirmed)
        self._leave_push = push
        push.send(self.join_ref)
        return True

    # ------------------------------------------------------------------ what happens to us

    def connection_opened(self) -> None:
        """A new connection is open: join it if we want to be joined."""
        if self._wanted and self.state in (State.CLOSED, State.ERRORED):
            self._rejoin.reset()
            self._send_join()

    def connection_lost(self) -> None:
        """The connection dropped: every join and pending push ends with it."""
        self._rejoin.cancel()
        self._cancel_healthy()
        self._join_push.cancel()
        if self._leave_push is not None:
            self._leave_push.cancel()
        was = self.state
        if was is State.LEAVING:
            self._closed()
            self._listener.channel_left(acknowledged=False)
            return
        self.state = State.ERRORED if self._wanted else State.CLOSED
        self.join_ref = None
        if was is State.JOINED:
            self._listener.channel_lost("the connection closed", None)

    def handle(self, message: Message) -> None:
        """A message on this channel's topic."""
        event = message.event
        if event == PHX_REPLY:
            self._reply(message)
        elif event in (PHX_ERROR, PHX_CLOSE):
            if self._is_current(message):
                self._hub_ended(event)
        else:
            self._listener.channel_message(message)

    # ------------------------------------------------------------------ internals

    def _send_join(self) -> None:
        self.state = State.JOINING
        self._join_push.send()
        self.join_ref = self._join_push.ref

    def _reply(self, message: Message) -> None:
        ref = message.ref
        status, response = reply_parts(message)
        if ref is not None and ref == self._join_push.ref:
            self._join_push.reply(status or "error", response)
        elif self._leave_push is not None and ref is not None and ref == self._leave_push.ref:
            self._leave_push.reply(status or "error", response)
        else:
            self._listener.channel_message(message)

    def _is_current(self, message: Message) -> bool:
        """True when a lifecycle message is about the current join, not an earlier one.

        One that names no join at all is taken as the current one: ignoring a channel error
        would leave the replica out of the rotation for good.
        """
        if self.join_ref is None:
            return False
        if message.ref is None and message.join_ref is None:
            return True
        return self.join_ref in (message.join_ref, message.ref)

    def _joined(self, response: Any) -> None:
        self.state = State.JOINED
        self._rejoin.cancel()
        self._cancel_healthy()
        self._healthy = self.socket.clock.call_later(self._healthy_after, self._joined_healthy)
        self._listener.channel_joined(response)

    def _joined_healthy(self) -> None:
        self._healthy = None
        if self.state is State.JOINED:
            self._rejoin.reset()

    def _cancel_healthy(self) -> None:
        if self._healthy is not None:
            self._healthy.cancel()
            self._healthy = None

    def _join_refused(self, response: Any) -> None:
        reason = response.get("reason") if isinstance(response, dict) else None
        rejoin_in = self._errored()
        self._listener.channel_join_refused(
            str(reason if reason is not None else response), rejoin_in
        )

    def _join_timed_out(self, _: Any) -> None:
        # phoenix.js leaves the join it gave up on, so a late "ok" cannot count twice.
        if self.join_ref is not None and self.socket.connected:
            ref = self.socket.make_ref()
            self.socket.push(Message(self.topic, PHX_LEAVE, {}, ref, self.join_ref))
        rejoin_in = self._errored()
        self._listener.channel_lost(
            f"no reply to the join within {self._join_push.timeout:g} s", rejoin_in
        )

    def _hub_ended(self, event: str) -> None:
        if self.state is State.LEAVING:
            # A close ends the channel in its turn, after the frames written before our
            # leave; a crash proves nothing of them.
            if event == PHX_CLOSE:
                self._left(None)
            else:
                self._left_unconfirmed(None)
            return
        was_joined = self.state is State.JOINED
        self._join_push.cancel()
        rejoin_in = self._errored()
        if was_joined or self._wanted:
            self._listener.channel_lost(f"the hub sent {event}", rejoin_in)

    def _errored(self) -> float | None:
        """Mark the channel errored; schedule a rejoin and return its delay, if one is due."""
        self.state = State.ERRORED
        self.join_ref = None
        self._cancel_healthy()
        if self._wanted and self.socket.connected:
            return self._rejoin.schedule()
        return None

    def _rejoin_now(self) -> None:
        if self._wanted and self.state is State.ERRORED and self.socket.connected:
            self._send_join()

    def _left(self, _: Any) -> None:
        if self.state is not State.LEAVING:
            return
        self._closed()
        self._listener.channel_left(acknowledged=True)

    def _left_unconfirmed(self, _: Any) -> None:
        """Out of the channel with no reply to our leave: it timed out, or the hub's channel
        crashed before answering it."""
        if self.state is not State.LEAVING:
            return
        self._closed()
        self._listener.channel_left(acknowledged=False)

    def _closed(self) -> None:
        self._cancel_healthy()
        if self._leave_push is not None:
            self._leave_push.cancel()
            self._leave_push = None
        self.state = State.CLOSED
        self.join_ref = None
