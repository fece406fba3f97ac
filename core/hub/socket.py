"""The Phoenix socket, without I/O: one connection's frames, refs, heartbeat and channels.

Modelled on phoenix.js's ``Socket``, minus the transport: the asyncio layer
(`core.hub.transport`) hands it each text frame (`PhoenixSocket.frame_received`) and tells it
when a connection opens and closes; the socket writes through the `Wire` it was handed at
`connection_made`. It:

- decodes frames and routes them: heartbeat replies to itself, a channel's topic to that
  `Channel`, anything undecodable to a rate-limited warning (the connection stays up), except
  an event whose envelope can still be read (`Serializer.salvage`), which goes on to its
  channel with a payload marked as unreadable;
- sends the heartbeat on topic ``phoenix`` every `heartbeat_interval` seconds, and declares
  the link dead (``Wire.abort``) when a heartbeat has no reply within that interval;
- probes with an early heartbeat, at most every `probe_interval` seconds, when the response
  outbox asks: the hub handles one socket's frames in order, so the reply proves that every
  frame written before that heartbeat reached it (`core.hub.outbox` counts on this);
- tells its `LinkListener`, given at construction, what happened to the link: a heartbeat
  sent and answered, the connection lost, the hub reading again. It knows nothing of who
  listens (the client hands these on to the outbox).

It lives as long as the client: connections come and go underneath it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from core.hub.backoff import Backoff
from core.hub.channel import Channel, ChannelListener
from core.hub.phoenix import (
    HEARTBEAT,
    PHOENIX_TOPIC,
    PHX_REPLY,
    FrameError,
    Message,
    RefCounter,
    Serializer,
)
from core.hub.timers import Cancellable, Clock
from core.log import RateLimitedLog, truncate

logger = logging.getLogger(__name__)

# The soonest a heartbeat follows the previous one when the outbox asks for a probe.
PROBE_INTERVAL = 0.05


class Wire(Protocol):
    """One open connection, as the socket sees it (`core.hub.transport.HubTransport`)."""

    @property
    def writable(self) -> bool:
        """False while the hub is not reading: the write buffer is over its high mark."""
        ...

    def send_frames(self, frames: Sequence[bytes]) -> None:
        """Write each item as one text frame, all in one write."""
        ...

    def abort(self, reason: str) -> None:
        """Drop the connection without a close handshake (the link is dead)."""
        ...

    def pause_reading(self) -> None:
        """Leave what the hub sends in the kernel's buffer until `resume_reading`."""
        ...

    def resume_reading(self) -> None:
        """Read what the hub sends again (nothing happens if reading is not paused)."""
        ...


class LinkListener(Protocol):
    """What happens to the link, as the socket reports it."""

    def heartbeat_sent(self, ref: str) -> None:
        """A heartbeat with `ref` was written: every frame written before it precedes it."""

    def heartbeat_answered(self, ref: str) -> None:
        """The hub replied to heartbeat `ref`: it has read every frame written before it."""

    def link_lost(self) -> None:
        """The connection closed (after the channels were told)."""

    def link_writable(self) -> None:
        """The hub reads again: writes held back may go."""


class PhoenixSocket:
    """See the module's docstring."""

    def __init__(
        self,
        clock: Clock,
        serializer: Serializer,
        listener: LinkListener,
        *,
        heartbeat_interval: float = 30.0,
        probe_interval: float = PROBE_INTERVAL,
    ) -> None:
        self.clock = clock
        self.serializer = serializer
        self.heartbeat_interval = heartbeat_interval
        self.probe_interval = probe_interval
        self._listener = listener
        self._refs = RefCounter()
        self._wire: Wire | None = None
        self._channels: dict[str, Channel] = {}
        # The hub can send these at will: each kind of line has its own budget.
        self._bad_input = RateLimitedLog(logger)
        self._salvaged = RateLimitedLog(logger, chars=400)
        self._not_joined = RateLimitedLog(logger)
        # The heartbeat: the next one's timer, the one awaiting its reply, and when it left.
        self._heartbeat_timer: Cancellable | None = None
        self._pending_heartbeat: str | None = None
        self._heartbeat_deadline: Cancellable | None = None
        self._last_heartbeat = float("-inf")
        self._heartbeat_due = float("inf")
        self._probe_wanted = False

    # ------------------------------------------------------------------ channels and writes

    @property
    def connected(self) -> bool:
        """True while a connection is open."""
        return self._wire is not None

    @property
    def wire(self) -> Wire | None:
        """The open connection, if any."""
        return self._wire

    def channel(
        self,
        topic: str,
        listener: ChannelListener,
        *,
        join_timeout: float = 10.0,
        leave_timeout: float = 1.0,
        rejoin: Backoff | None = None,
    ) -> Channel:
        """Create the channel for `topic` (one per topic)."""
        channel = Channel(
            self,
            topic,
            listener,
            join_timeout=join_timeout,
            leave_timeout=leave_timeout,
            rejoin=rejoin,
        )
        self._channels[topic] = channel
        return channel

    def make_ref(self) -> str:
        """A fresh message ref: increasing integers as strings, like phoenix.js."""
        return self._refs.next()

    def push(self, message: Message) -> None:
        """Write one message now; dropped when not connected (pushes time out instead)."""
        wire = self._wire
        if wire is not None:
            wire.send_frames((self.serializer.encode_bytes(message),))

    # ------------------------------------------------------------------ the connection

    def connection_made(self, wire: Wire) -> None:
        """A connection opened: start the heartbeat and (re)join the channels."""
        self._wire = wire
        self._pending_heartbeat = None
        self._schedule_heartbeat(self.heartbeat_interval)
        for channel in list(self._channels.values()):
            channel.connection_opened()

    def connection_lost(self) -> None:
        """The connection closed: stop the heartbeat; the channels and the listener start over."""
        if self._wire is None:
            return
        self._wire = None
        self._stop_heartbeat()
        for channel in list(self._channels.values()):
            channel.connection_lost()
        self._listener.link_lost()

    def writing_resumed(self) -> None:
        """The hub reads again: let the listener write what it held back."""
        self._listener.link_writable()

    def frame_received(self, frame: str | bytes) -> None:
        """Decode one frame and route it; a frame that does not decode is logged, not fatal."""
        try:
            message = self.serializer.decode(frame)
        except FrameError as error:
            self._undecodable(frame, error)
            return
        channel = self._channels.get(message.topic)
        if channel is not None:
            channel.handle(message)
        elif message.topic == PHOENIX_TOPIC and message.event == PHX_REPLY:
            self._heartbeat_reply(message.ref)
        else:
            self._not_joined.warning(
                "ignoring event %r on topic %r: not a joined topic",
                truncate(message.event, 80),
                truncate(message.topic, 80),
            )

    def _undecodable(self, frame: str | bytes, error: FrameError) -> None:
        """A frame that does not decode: dropped, unless only integers too long to read stood
        in the way of an event for a channel (a request, say). That one goes on with its
        payload as a `json_codec.Salvaged`, so that the request is answered as invalid
        rather than left to time out at the hub. A reply whose payload cannot be read is no
        reply: it is dropped (the push it answers times out)."""
        message = self.serializer.salvage(frame)
        channel = None if message is None else self._channels.get(message.topic)
        if message is None or channel is None or message.event == PHX_REPLY:
            self._bad_input.warning("ignoring a frame that is not a Phoenix message: %s", error)
            return
        self._salvaged.warning(
            "a %r event could not be decoded in full (%s): handled without its payload",
            truncate(message.event, 80),
            message.payload.problem,
        )
        channel.handle(message)

    # ------------------------------------------------------------------ the heartbeat

    def probe(self) -> None:
        """Send a heartbeat soon (rate-limited by `probe_interval`), to confirm writes."""
        if self._wire is None or self._pending_heartbeat is not None:
            self._probe_wanted = self._wire is not None
            return
        self._probe_wanted = False
        due = self._last_heartbeat + self.probe_interval
        if due < self._heartbeat_due:  # called after every batch: usually nothing to change
            self._schedule_heartbeat(max(0.0, due - self.clock.time()))

    def _schedule_heartbeat(self, delay: float) -> None:
        if self._heartbeat_timer is not None:
            self._heartbeat_timer.cancel()
        self._heartbeat_due = self.clock.time() + delay
        self._heartbeat_timer = self.clock.call_later(delay, self._send_heartbeat)

    def _send_heartbeat(self) -> None:
        self._heartbeat_timer = None
        self._heartbeat_due = float("inf")
        wire = self._wire
        if wire is None or self._pending_heartbeat is not None:
            return
        ref = self.make_ref()
        self._pending_heartbeat = ref
        self._last_heartbeat = self.clock.time()
        self._listener.heartbeat_sent(ref)
        self._heartbeat_deadline = self.clock.call_later(
            self.heartbeat_interval, self._heartbeat_timed_out, ref
        )
        frame = self.serializer.encode_bytes(Message(PHOENIX_TOPIC, HEARTBEAT, {}, ref))
        wire.send_frames((frame,))

    def _heartbeat_reply(self, ref: str | None) -> None:
        if ref is None or ref != self._pending_heartbeat:
            return
        self._pending_heartbeat = None
        if self._heartbeat_deadline is not None:
            self._heartbeat_deadline.cancel()
            self._heartbeat_deadline = None
        self._listener.heartbeat_answered(ref)
        if self._probe_wanted:
            self.probe()
        else:
            self._schedule_heartbeat(self.heartbeat_interval)

    def _heartbeat_timed_out(self, ref: str) -> None:
        wire = self._wire
        if wire is None or ref != self._pending_heartbeat:
            return
        self._heartbeat_deadline = None
        wire.abort(f"no heartbeat reply within {self.heartbeat_interval:g} s")

    def _stop_heartbeat(self) -> None:
        for handle in (self._heartbeat_timer, self._heartbeat_deadline):
            if handle is not None:
                handle.cancel()
        self._heartbeat_timer = self._heartbeat_deadline = None
        self._heartbeat_due = float("inf")
        self._pending_heartbeat = None
        self._probe_wanted = False
