"""Tests of the request context: what an action's run(self, ctx) is handed."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
import time
import unittest
from typing import Any, ClassVar

from pydantic import Field

from core import ActionResponse, ActionRunner, Context, State
from core.execution.executor import RequestExecutor
from core.log import JSONFormatter
from tests.support import LogCapture


class Inspect(ActionRunner):
    """Answers with what its context holds."""

    @classmethod
    def description(cls) -> str:
        return "Describes its context"

    async def run(self, ctx: Context) -> ActionResponse:
        return ActionResponse(
            fields={
                "ref": ctx.ref,
                "action": ctx.action,
                "deadline": ctx.deadline,
                "remaining": ctx.remaining(),
                "now": time.monotonic(),
                "greeting": ctx.state.greeting,
                "cancelled": ctx.is_cancelled(),
            }
        )


class Talk(ActionRunner):
    """Logs through its context's logger, in the forms logging accepts."""

    @classmethod
    def description(cls) -> str:
        return "Logs"

    async def run(self, ctx: Context) -> ActionResponse:
        ctx.logger.info("plain 100%")
        ctx.logger.info("with %s and %d", "args", 7)
        ctx.logger.warning("%(what)s by name", {"what": "formatted"})
        ctx.logger.info("extra kept", extra={"event": "custom"})
        return ActionResponse()


class BlockingWait(ActionRunner):
    """A thread action that waits on its cancellation event, as a long loop would."""

    timeout_seconds = 0.1
    saw: ClassVar[list[bool]] = []
    finished: ClassVar[threading.Event] = threading.Event()

    @classmethod
    def description(cls) -> str:
        return "Waits to be given up"

    def run(self, ctx: Context) -> ActionResponse:
        BlockingWait.saw.append(ctx.cancelled.wait(10))
        BlockingWait.saw.append(ctx.is_cancelled())
        BlockingWait.finished.set()
        return ActionResponse()


class Stuck(ActionRunner):
    """An async action that never finishes by itself."""

    started: ClassVar[asyncio.Event]
    contexts: ClassVar[list[Context]] = []

    @classmethod
    def description(cls) -> str:
        return "Waits forever"

    async def run(self, ctx: Context) -> ActionResponse:
        Stuck.contexts.append(ctx)
        Stuck.started.set()
        await asyncio.Event().wait()
        return ActionResponse()


class Seed(ActionRunner):
    """The seed's signature: handed the client and the websocket."""

    @classmethod
    def description(cls) -> str:
        return "Seed style"

    async def run(self, client: Any, websocket: Any) -> ActionResponse:
        return ActionResponse(fields=[client, websocket])


class SeedInThread(ActionRunner):
    @classmethod
    def description(cls) -> str:
        return "Seed style, blocking"

    def run(self, client: Any, websocket: Any) -> ActionResponse:
        return ActionResponse(fields=[client, websocket, threading.current_thread().name])


class Echo(ActionRunner):
    text: str = Field(description="Sent back")

    @classmethod
    def description(cls) -> str:
        return "Echoes"

    def run(self, ctx: Context) -> ActionResponse:
        return ActionResponse(fields=[self.text, ctx.action, threading.current_thread().name])


ACTIONS: dict[str, type[ActionRunner]] = {
    cls.__name__: cls for cls in (Inspect, Talk, BlockingWait, Stuck, Seed, SeedInThread, Echo)
}


class ContextThroughTheExecutorTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        self.answers: dict[str, dict[str, Any]] = {}
        self.state = State(greeting="hello")
        self.executor = RequestExecutor(
            ACTIONS,
            self.respond,
            lambda: ("the client", "the websocket"),
            default_timeout=2.0,
            state=self.state,
        )
        self.addCleanup(self.executor.close)

    def respond(self, ref: str, payload: dict[str, Any], age: float) -> None:
        self.answers[ref] = payload

    async def call(self, action: str, ref: str = "r", **fields: Any) -> dict[str, Any]:
        self.executor.submit({"action": action, "fields": fields, "response_ref": ref})
        self.assertTrue(await self.executor.drain(5))
        return self.answers[ref]

    async def test_the_context_carries_ref_action_deadline_and_state(self) -> None:
        before = time.monotonic()
        answer = await self.call("Inspect", ref="ref-1")
        fields = answer["fields"]
        self.assertEqual(answer["status_code"], 200)
        self.assertEqual((fields["ref"], fields["action"]), ("ref-1", "Inspect"))
        self.assertGreaterEqual(fields["deadline"], before + 2.0)
        self.assertLessEqual(fields["deadline"], fields["now"] + 2.0)
        self.assertAlmostEqual(fields["remaining"], fields["deadline"] - fields["now"], delta=0.5)
        self.assertEqual(fields["greeting"], "hello")
        self.assertFalse(fields["cancelled"])

    async def test_a_blocking_run_gets_a_context_in_a_worker_thread(self) -> None:
        answer = await self.call("Echo", text="hi")
        text, action, thread = answer["fields"]
        self.assertEqual((text, action), ("hi", "Echo"))
        self.assertTrue(thread.startswith("action"))

    async def test_the_seed_signature_still_gets_client_and_websocket(self) -> None:
        self.assertEqual((await self.call("Seed"))["fields"], ["the client", "the websocket"])
        client, websocket, thread = (await self.call("SeedInThread", ref="t"))["fields"]
        self.assertEqual((client, websocket), ("the client", "the websocket"))
        self.assertTrue(thread.startswith("action"))

    async def test_every_line_of_the_logger_carries_action_and_ref(self) -> None:
        with LogCapture().installed() as logs:
            await self.call("Talk", ref="r%1")
        lines = [line for line in logs.lines if "core.requests" not in line]
        module = Talk.__module__
        self.assertEqual(
            lines,
            [
                f"INFO {module}: plain 100% [action=Talk ref=r%1]",
                f"INFO {module}: with args and 7 [action=Talk ref=r%1]",
                f"WARNING {module}: formatted by name [action=Talk ref=r%1]",
                f"INFO {module}: extra kept [action=Talk ref=r%1]",
            ],
        )

    async def test_json_lines_carry_action_and_ref_as_fields(self) -> None:
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(JSONFormatter())
        records: list[logging.LogRecord] = []
        handler.addFilter(lambda record: records.append(record) is None)
        root = logging.getLogger()
        root.addHandler(handler)
        previous = root.level
        root.setLevel(logging.INFO)
        try:
            await self.call("Talk", ref="abc")
        finally:
            root.removeHandler(handler)
            root.setLevel(previous)
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        mine = [line for line in lines if line["logger"] == Talk.__module__]
        self.assertEqual(len(mine), 4)
        for line in mine:
            self.assertEqual((line["action"], line["ref"]), ("Talk", "abc"))
        self.assertEqual(mine[1]["message"], "with args and 7 [action=Talk ref=abc]")
        self.assertEqual(mine[3]["event"], "custom")
        # The record names the action's line, not the logger's own.
        talk = [record for record in records if record.name == Talk.__module__]
        self.assertEqual(
            {(record.filename, record.funcName) for record in talk}, {("context_test.py", "run")}
        )

    async def test_a_thread_sees_the_cancellation_when_the_time_limit_passes(self) -> None:
        BlockingWait.saw.clear()
        BlockingWait.finished.clear()
        answer = await self.call("BlockingWait")
        self.assertEqual(answer["status_code"], 504)
        self.assertTrue(await asyncio.to_thread(BlockingWait.finished.wait, 10))
        self.assertEqual(BlockingWait.saw, [True, True])

    async def test_shutdown_cancels_the_context_too(self) -> None:
        Stuck.started = asyncio.Event()
        Stuck.contexts.clear()
        self.executor.submit({"action": "Stuck", "fields": {}, "response_ref": "s"})
        await Stuck.started.wait()
        (ctx,) = Stuck.contexts
        self.assertFalse(ctx.is_cancelled())
        await self.executor.cancel_all()
        self.assertEqual(self.answers["s"]["status_code"], 503)
        self.assertTrue(ctx.is_cancelled())
        self.assertTrue(ctx.cancelled.is_set())


class ContextTest(unittest.TestCase):
    def context(self, deadline: float) -> Context:
        return Context("r1", "Act", deadline, State(), "tests.context")

    def test_remaining_counts_down_to_zero_and_stays_there(self) -> None:
        now = time.monotonic()
        self.assertGreater(self.context(now + 60).remaining(), 59)
        self.assertEqual(self.context(now - 1).remaining(), 0.0)

    def test_the_event_made_after_the_cancellation_is_set(self) -> None:
        ctx = self.context(time.monotonic() + 60)
        ctx.cancel()
        self.assertTrue(ctx.cancelled.is_set())

    def test_the_event_made_before_the_cancellation_is_set_by_it(self) -> None:
        ctx = self.context(time.monotonic() + 60)
        event = ctx.cancelled
        self.assertFalse(event.is_set())
        self.assertIs(ctx.cancelled, event)
        ctx.cancel()
        self.assertTrue(event.is_set())

    def test_the_logger_is_built_once(self) -> None:
        ctx = self.context(time.monotonic() + 60)
        self.assertIs(ctx.logger, ctx.logger)
        self.assertEqual(repr(ctx), "Context(action='Act', ref='r1')")

    def test_a_missing_resource_says_where_it_comes_from(self) -> None:
        with self.assertRaisesRegex(AttributeError, "'http'.*@lifespan"):
            _ = State().http


if __name__ == "__main__":
    unittest.main()
