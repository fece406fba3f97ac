"""`WorkerThreads`: where a plain ``def run()`` runs, counted so that `/metrics` shows it.

A thread cannot be stopped from outside: an action that runs past its time limit is answered
504 at once, but keeps its thread until its `run()` returns. The pool has a fixed number of
threads, so such actions cannot multiply threads; they are counted (`overrun`) while they
hold one, and a request whose turn comes only after it was given up never runs at all.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from core.execution.context import Context
from core.log import shown

logger = logging.getLogger("core.execution.executor")


class _Job:
    """One call on the pool, and whether its request was given up."""

    __slots__ = ("args", "context", "ctx", "function", "given_up", "running")

    def __init__(
        self,
        ctx: Context,
        function: Callable[..., Any],
        args: tuple[Any, ...],
        context: contextvars.Context,
    ) -> None:
        self.ctx = ctx
        self.function = function
        self.args = args
        self.context = context
        self.running = False
        self.given_up: float | None = None  # when the request was given up (monotonic)


class WorkerThreads:
    """A fixed pool of worker threads for blocking actions, with live counts.

    `size`: the threads the pool may start; `busy`: threads running an action now;
    `overrun`: of those, the ones whose request was already given up (its time limit passed,
    or the service shut down) and that still run.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.busy = 0
        self.overrun = 0
        self._pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="action")
        self._lock = threading.Lock()

    async def run(self, ctx: Context, function: Callable[..., Any], *args: Any) -> Any:
        """Call ``function(*args)`` in a worker thread with a copy of the caller's context
        variables (as `asyncio.to_thread` does) and return its result.

        Cancelled (time limit, shutdown): the thread keeps running until `function` returns,
        counted in `overrun`; not yet started, it never starts.
        """
        job = _Job(ctx, function, args, contextvars.copy_context())
        future = asyncio.get_running_loop().run_in_executor(self._pool, self._work, job)
        try:
            return await future
        except asyncio.CancelledError:
            with self._lock:
                job.given_up = time.monotonic()
                if job.running:
                    self.overrun += 1
            raise

    def close(self) -> None:
        """Start no more threads; running ones finish in the background."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _work(self, job: _Job) -> Any:
        with self._lock:
            if job.given_up is not None:
                return None  # given up before its turn came: nobody waits for it
            job.running = True
            self.busy += 1
        try:
            return job.context.run(job.function, *job.args)
        except BaseException:
            if job.given_up is not None:
                # Its caller was answered long ago; the error must still be seen.
                logger.exception(
                    "action %s raised after its request was given up (ref %s)",
                    job.ctx.action,
                    shown(job.ctx.ref),
                    extra={"action": job.ctx.action, "ref": job.ctx.ref},
                )
                return None
            raise
        finally:
            with self._lock:
                job.running = False
                self.busy -= 1
                given_up = job.given_up
                if given_up is not None:
                    self.overrun -= 1
            if given_up is not None:
                logger.warning(
                    "action %s returned %.3g s after its request was given up; its worker "
                    "thread is free again (ref %s)",
                    job.ctx.action,
                    time.monotonic() - given_up,
                    shown(job.ctx.ref),
                    extra={"action": job.ctx.action, "ref": job.ctx.ref},
                )
