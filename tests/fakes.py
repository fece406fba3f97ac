"""Test doubles for the sans-I/O hub link: a clock a test moves by hand, and a wire that
records frames instead of writing them."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Sequence
from typing import Any

from core.hub.phoenix import Message, Serializer, V1Serializer


class FakeHandle:
    """A scheduled call on a `FakeClock`."""

    def __init__(self, when: float, callback: Callable[..., object], args: tuple[Any, ...]) -> None:
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        """Call it off."""
        self.cancelled = True


class FakeAlarm:
    """A `core.hub.timers.Alarm` on a `FakeClock`: exact, as the timerfd is to within
    microseconds."""

    def __init__(self, clock: FakeClock, callback: Callable[[], object]) -> None:
        self._clock = clock
        self._callback = callback
        self._handle: FakeHandle | None = None
        self.settings = 0

    def set(self, when: float) -> None:
        """Schedule the callback at `when`, calling off the earlier setting."""
        self.cancel()
        self.settings += 1
        self._handle = self._clock.call_later(when - self._clock.now, self._callback)

    def cancel(self) -> None:
        """Call off the pending call."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def close(self) -> None:
        """Call it off."""
        self.cancel()


class FakeClock:
    """A `core.hub.timers.Clock` whose time moves only when a test calls `advance`."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._queue: list[tuple[float, int, FakeHandle]] = []
        self.alarms: list[FakeAlarm] = []
        self._order = itertools.count()

    def time(self) -> float:
        """The fake time."""
        return self.now

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> FakeHandle:
        """Schedule at now + delay."""
        handle = FakeHandle(self.now + max(0.0, delay), callback, args)
        heapq.heappush(self._queue, (handle.when, next(self._order), handle))
        return handle

    def call_soon(self, callback: Callable[..., object], *args: Any) -> FakeHandle:
        """Schedule now (runs on the next `run_ready` or `advance`)."""
        return self.call_later(0.0, callback, *args)

    def alarm(self, callback: Callable[[], object]) -> FakeAlarm:
        """An alarm on this clock (`alarms` keeps every one made)."""
        alarm = FakeAlarm(self, callback)
        self.alarms.append(alarm)
        return alarm

    def run_ready(self) -> None:
        """Run every call due now (and those they schedule for now)."""
        self.advance(0.0)

    def advance(self, seconds: float) -> None:
        """Move time forward, running each due call at its own time, in order."""
        target = self.now + seconds
        while self._queue and self._queue[0][0] <= target:
            when, _, handle = heapq.heappop(self._queue)
            if handle.cancelled:
                continue
            self.now = max(self.now, when)
            handle.callback(*handle.args)
        self.now = target

    def scheduled(self, callback: Callable[..., object]) -> int:
        """How many calls of `callback` are still scheduled."""
        return sum(1 for _, _, h in self._queue if not h.cancelled and h.callback == callback)

    def pending(self) -> list[float]:
        """The delays (from now) of the calls still scheduled, soonest first."""
        return sorted(h.when - self.now for _, _, h in self._queue if not h.cancelled)


class FakeWire:
    """A `core.hub.socket.Wire` that keeps what is written, decoded, one list per write."""

    def __init__(self, serializer: Serializer | None = None) -> None:
        self.serializer = serializer or V1Serializer()
        self.writes: list[list[Message]] = []
        self.writable = True
        self.aborted: str | None = None
        self.reading = True
        self.pauses = 0

    def send_frames(self, frames: Sequence[bytes]) -> None:
        """Record one write."""
        self.writes.append([self.serializer.decode(frame.decode()) for frame in frames])

    def abort(self, reason: str) -> None:
        """Record the abort."""
        self.aborted = reason

    def pause_reading(self) -> None:
        """Record that reading is paused (and how many times it was)."""
        self.reading = False
        self.pauses += 1

    def resume_reading(self) -> None:
        """Record that reading goes on."""
        self.reading = True

    @property
    def sent(self) -> list[Message]:
        """Every message written so far, in order."""
        return [message for write in self.writes for message in write]

    def events(self) -> list[str]:
        """The event of every message written so far."""
        return [message.event for message in self.sent]

    def last(self, event: str) -> Message:
        """The last message written with `event`."""
        return next(m for m in reversed(self.sent) if m.event == event)


class LinkEvents:
    """A `core.hub.socket.LinkListener` for tests: records what the socket reported, and hands
    each report on to `outbox` once a test has set one (as the client hands them to its own)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str | None]] = []
        self.outbox: Any = None

    def heartbeat_sent(self, ref: str) -> None:
        self.events.append(("heartbeat_sent", ref))
        if self.outbox is not None:
            self.outbox.heartbeat_sent(ref)

    def heartbeat_answered(self, ref: str) -> None:
        self.events.append(("heartbeat_answered", ref))
        if self.outbox is not None:
            self.outbox.heartbeat_answered(ref)

    def link_lost(self) -> None:
        self.events.append(("link_lost", None))
        if self.outbox is not None:
            self.outbox.connection_lost()

    def link_writable(self) -> None:
        self.events.append(("link_writable", None))
        if self.outbox is not None:
            self.outbox.writing_resumed()
