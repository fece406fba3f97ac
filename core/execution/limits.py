"""Concurrency limits for request execution."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque


class Slots:
    """The concurrency limit: a FIFO counting semaphore whose free path is one comparison.

    asyncio.Semaphore.acquire() costs a coroutine and a scan of its waiters even when a slot
    is free; here the caller takes a free slot itself (``if slots.free: slots.free -= 1``)
    and awaits `wait()` only when there is none. `release()` hands the slot straight to the
    oldest waiter, so `free` is never above zero while anyone waits.
    """

    __slots__ = ("_waiters", "free")

    def __init__(self, count: int) -> None:
        self.free = count
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def wait(self) -> None:
        """Wait until `release()` hands this caller a slot (call only when `free` is 0)."""
        future = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # a slot arrived together with the cancellation: pass it on
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(future)
            raise

    def release(self) -> None:
        """Give a slot back: to the oldest waiter, or to the free count."""
        waiters = self._waiters
        while waiters:
            future = waiters.popleft()
            if not future.done():
                future.set_result(None)
                return
        self.free += 1
