"""Time for the sans-I/O hub link: an injected clock, and a retry timer on a back-off schedule.

The channel and the socket never sleep and never read the time themselves: they are handed a
`Clock`. In the service that is the running asyncio event loop
(`core.hub.loop_clock.RunningLoopClock`); in tests it is a fake clock that a test advances by
hand, so join timeouts, the rejoin schedule and dead-link detection run in microseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from core.hub.backoff import Backoff


class Cancellable(Protocol):
    """A scheduled call that can be called off (asyncio's ``Handle`` and ``TimerHandle``)."""

    def cancel(self) -> None:
        """Call it off; cancelling twice, or after it ran, does nothing."""


class Alarm(Protocol):
    """One re-armable timer that calls its callback at a clock time, as precisely as the
    platform allows: asyncio's own timers wait in whole milliseconds (the epoll selector rounds
    its timeout up), which is coarse for an answer held a millisecond or two, so the service's
    clock uses a timerfd where there is one (`core.hub.loop_clock`)."""

    def set(self, when: float) -> None:
        """Call the callback once, at clock time `when` (replaces any earlier setting)."""

    def cancel(self) -> None:
        """Call off the pending call, if any."""

    def close(self) -> None:
        """Call off the pending call and release what the alarm holds; `set` may follow."""


class Clock(Protocol):
    """What the hub link needs from time."""

    def time(self) -> float:
        """Seconds on a monotonic clock."""
        ...

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> Cancellable:
        """Call ``callback(*args)`` once, `delay` seconds from now."""
        ...

    def call_soon(self, callback: Callable[..., object], *args: Any) -> Cancellable:
        """Call ``callback(*args)`` after the work already queued (end of this iteration)."""
        ...

    def alarm(self, callback: Callable[[], object]) -> Alarm:
        """A new `Alarm` that calls `callback`."""
        ...


class RetryTimer:
    """phoenix.js's ``Timer``: calls `callback` after the next delay of a back-off schedule.

    `schedule()` replaces any pending call; `reset()` calls it off and starts the schedule
    over (after a success).
    """

    __slots__ = ("_backoff", "_callback", "_clock", "_handle")

    def __init__(self, clock: Clock, callback: Callable[[], object], backoff: Backoff) -> None:
        self._clock = clock
        self._callback = callback
        self._backoff = backoff
        self._handle: Cancellable | None = None

    @property
    def pending(self) -> bool:
        """True while a call is scheduled."""
        return self._handle is not None

    def schedule(self) -> float:
        """Schedule the callback after the schedule's next delay; returns that delay."""
        self.cancel()
        delay = self._backoff.next()
        self._handle = self._clock.call_later(delay, self._fire)
        return delay

    def cancel(self) -> None:
        """Call off the pending call, keeping the place in the schedule."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def reset(self) -> None:
        """Call off the pending call and start the schedule over."""
        self.cancel()
        self._backoff.reset()

    def _fire(self) -> None:
        self._handle = None
        self._callback()
