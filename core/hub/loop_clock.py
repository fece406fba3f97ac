"""The hub link's `core.hub.timers.Clock` in the service: the running asyncio event loop.

Its `Alarm` needs sub-millisecond precision, which asyncio's timers do not give: the epoll
selector rounds the time it waits up to a whole millisecond, so ``loop.call_at(when)`` runs
up to a millisecond after `when`. Where the platform has a ``timerfd`` (Linux, Python 3.13 and
later), the alarm is one: the kernel makes the descriptor readable at `when` and wakes the
loop's ``epoll_wait`` then, whatever timeout it was given. Elsewhere it falls back to
``loop.call_at``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from core.hub.timers import Alarm, Cancellable


class RunningLoopClock:
    """The `core.hub.timers.Clock` of the asyncio loop that runs the client (the client may
    be built before any loop runs)."""

    def time(self) -> float:
        """The loop's monotonic time."""
        return asyncio.get_running_loop().time()

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> Cancellable:
        """``loop.call_later``."""
        return asyncio.get_running_loop().call_later(delay, callback, *args)

    def call_soon(self, callback: Callable[..., object], *args: Any) -> Cancellable:
        """``loop.call_soon``."""
        return asyncio.get_running_loop().call_soon(callback, *args)

    def alarm(self, callback: Callable[[], object]) -> Alarm:
        """A timerfd where there is one, else ``loop.call_at``."""
        if sys.version_info >= (3, 13) and sys.platform == "linux":
            return TimerfdAlarm(callback)
        return LoopAlarm(callback)


class LoopAlarm:
    """An `Alarm` on ``loop.call_at``: within a millisecond late on an epoll loop."""

    def __init__(self, callback: Callable[[], object]) -> None:
        self._callback = callback
        self._handle: asyncio.TimerHandle | None = None

    def set(self, when: float) -> None:
        """Call the callback at loop time `when`, instead of when it was set for."""
        if self._handle is not None:
            self._handle.cancel()
        self._handle = asyncio.get_running_loop().call_at(when, self._callback)

    def cancel(self) -> None:
        """Call it off."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def close(self) -> None:
        """Call it off (nothing to release)."""
        self.cancel()


if sys.version_info >= (3, 13) and sys.platform == "linux":

    class TimerfdAlarm:
        """An `Alarm` on a Linux timerfd watched by the running loop.

        The descriptor is made on the first `set` and watched by that call's loop (again by a
        new loop, if the client runs on another one later); `close` releases it.
        """

        def __init__(self, callback: Callable[[], object]) -> None:
            self._callback = callback
            self._fd: int | None = None
            self._loop: asyncio.AbstractEventLoop | None = None

        def set(self, when: float) -> None:
            """Call the callback at loop time `when`, instead of when it was set for."""
            loop = asyncio.get_running_loop()
            fd = self._fd
            if fd is None:
                fd = self._fd = os.timerfd_create(
                    time.CLOCK_MONOTONIC, flags=os.TFD_NONBLOCK | os.TFD_CLOEXEC
                )
            if loop is not self._loop:
                self._unwatch()
                loop.add_reader(fd, self._expired)
                self._loop = loop
            # Relative to the loop's own clock, whatever clock that is; 0 would disarm the timer,
            # and a time already past means at once.
            os.timerfd_settime(fd, initial=max(when - loop.time(), 1e-9))

        def cancel(self) -> None:
            """Call it off (a set timer is disarmed; an expiry not yet handled is ignored)."""
            if self._fd is not None:
                os.timerfd_settime(self._fd, initial=0)

        def close(self) -> None:
            """Call it off and release the descriptor (a later `set` makes a new one)."""
            if self._fd is None:
                return
            self._unwatch()
            os.close(self._fd)
            self._fd = None

        def _unwatch(self) -> None:
            loop, self._loop = self._loop, None
            if loop is not None and not loop.is_closed() and self._fd is not None:
                loop.remove_reader(self._fd)

        def _expired(self) -> None:
            assert self._fd is not None  # the loop watches only an open descriptor
            try:
                os.read(self._fd, 8)  # the count of expiries since the last setting
            except BlockingIOError:
                return  # set again, or called off, after it expired: that expiry is void
            self._callback()
