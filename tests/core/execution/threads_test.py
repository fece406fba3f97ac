"""Tests of the worker threads behind plain ``def run()`` actions."""

from __future__ import annotations

import contextvars
import threading
import unittest
from typing import Any, ClassVar

from core import ActionResponse, ActionRunner, Context
from core.execution.executor import RequestExecutor
from tests.support import LogCapture, wait_until

TRACE_ID: contextvars.ContextVar[str] = contextvars.ContextVar("trace_id", default="unset")


class ReadsContextVariable(ActionRunner):
    @classmethod
    def description(cls) -> str:
        return "Reads a context variable in its thread"

    def run(self, ctx: Context) -> ActionResponse:
        return ActionResponse(fields=TRACE_ID.get())


class Hold(ActionRunner):
    """Blocks its thread until the test lets it go, whatever its time limit says."""

    timeout_seconds = 0.1
    release: ClassVar[threading.Event] = threading.Event()
    entered: ClassVar[list[str]] = []

    @classmethod
    def description(cls) -> str:
        return "Holds a thread"

    def run(self, ctx: Context) -> ActionResponse:
        Hold.entered.append(ctx.ref)
        Hold.release.wait(10)
        return ActionResponse()


class RaisesLate(ActionRunner):
    """Raises once it is let go, long after its request was answered."""

    timeout_seconds = 0.1
    release: ClassVar[threading.Event] = threading.Event()

    @classmethod
    def description(cls) -> str:
        return "Raises after its time limit"

    def run(self, ctx: Context) -> ActionResponse:
        RaisesLate.release.wait(10)
        raise RuntimeError("too late to matter")


ACTIONS: dict[str, type[ActionRunner]] = {
    cls.__name__: cls for cls in (ReadsContextVariable, Hold, RaisesLate)
}


class WorkerThreadsTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        self.answers: dict[str, dict[str, Any]] = {}
        Hold.release.clear()
        Hold.entered.clear()
        RaisesLate.release.clear()
        # Whatever happens, no thread stays blocked after the test.
        self.addCleanup(Hold.release.set)
        self.addCleanup(RaisesLate.release.set)

    def executor(self, max_concurrency: int = 4) -> RequestExecutor:
        executor = RequestExecutor(
            ACTIONS, self.respond, lambda: (None, None), max_concurrency=max_concurrency
        )
        self.addCleanup(executor.close)
        return executor

    def respond(self, ref: str, payload: dict[str, Any], age: float) -> None:
        self.answers[ref] = payload

    async def test_context_variables_reach_the_thread(self) -> None:
        executor = self.executor()
        TRACE_ID.set("trace-42")
        executor.submit({"action": "ReadsContextVariable", "fields": {}, "response_ref": "r"})
        self.assertTrue(await executor.drain(5))
        self.assertEqual(self.answers["r"]["fields"], "trace-42")

    async def test_a_thread_past_its_time_limit_is_counted_until_it_returns(self) -> None:
        executor = self.executor()
        threads = executor.threads
        self.assertEqual((threads.size, threads.busy, threads.overrun), (4, 0, 0))
        with LogCapture().installed() as logs:
            executor.submit({"action": "Hold", "fields": {}, "response_ref": "h"})
            self.assertTrue(await executor.drain(5))
            self.assertEqual(self.answers["h"]["status_code"], 504)
            self.assertEqual((threads.busy, threads.overrun), (1, 1))
            self.assertIn(
                "its worker thread, if it started, runs on until run() returns (1 of 4",
                logs.text(),
            )
            Hold.release.set()
            await wait_until(lambda: threads.busy == 0)
        self.assertEqual(threads.overrun, 0)
        self.assertRegex(logs.text(), r"action Hold returned .* after its request was given up")

    async def test_threads_stay_bounded_and_a_request_given_up_in_the_queue_never_runs(
        self,
    ) -> None:
        executor = self.executor(max_concurrency=1)
        executor.submit({"action": "Hold", "fields": {}, "response_ref": "first"})
        self.assertTrue(await executor.drain(5))
        # The first holds the only thread past its time limit; its slot is free again, so
        # the second is admitted, waits for the thread, and is given up in the queue.
        executor.submit({"action": "Hold", "fields": {}, "response_ref": "second"})
        self.assertTrue(await executor.drain(5))
        self.assertEqual(self.answers["second"]["status_code"], 504)
        self.assertEqual((executor.threads.busy, executor.threads.overrun), (1, 1))
        # One thread for both: the second request never got one, even after it was freed.
        Hold.release.set()
        await wait_until(lambda: executor.threads.busy == 0)
        self.assertEqual(Hold.entered, ["first"])

    async def test_an_error_after_the_request_was_given_up_is_logged(self) -> None:
        executor = self.executor()
        with LogCapture().installed() as logs:
            executor.submit({"action": "RaisesLate", "fields": {}, "response_ref": "late"})
            self.assertTrue(await executor.drain(5))
            self.assertEqual(self.answers["late"]["status_code"], 504)
            RaisesLate.release.set()
            await wait_until(lambda: executor.threads.busy == 0)
        self.assertIn(
            "action RaisesLate raised after its request was given up (ref late)", logs.text()
        )
        self.assertIn("RuntimeError: too late to matter", logs.text())


if __name__ == "__main__":
    unittest.main()
