"""Tests of request execution and the mapping of outcomes to status codes."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import unittest
from typing import Any

from pydantic import BaseModel, Field, field_validator

from core import json_codec
from core.execution.context import Context
from core.execution.executor import RequestExecutor
from core.execution.limits import Slots
from core.execution.responses import MAX_LISTED_ERRORS, ErrorAnswers
from core.json_codec import Salvaged
from core.model.errors import ActionError
from core.model.response import ActionResponse
from core.model.runner import ActionRunner
from tests.support import LogCapture, wait_until


class Add(ActionRunner):
    a: int = Field(description="First")
    b: int = Field(default=0, description="Second")

    @classmethod
    def description(cls) -> str:
        return "Adds"

    async def run(self, client: Any, websocket: Any) -> ActionResponse:
        return ActionResponse(status_code=200, fields=self.a + self.b)


class Boom(ActionRunner):
    @classmethod
    def description(cls) -> str:
        return "Raises"

    async def run(self, client: Any, websocket: Any) -> ActionResponse:
        raise RuntimeError("secret database password is hunter2")


class Slow(ActionRunner):
    timeout_seconds = 0.1

    @classmethod
    def description(cls) -> str:
        return "Too slow"

    async def run(self, client: Any, websocket: Any) -> ActionResponse:
        await asyncio.sleep(5)
        return ActionResponse(status_code=200)


class Blocking(ActionRunner):
    @classmethod
    def description(cls) -> str:
        return "Sync"

    def run(self, client: Any, websocket: Any) -> ActionResponse:
        return ActionResponse(status_code=200, fields=threading.current_thread().name)


class WrongType(ActionRunner):
    @classmethod
    def description(cls) -> str:
        return "Returns a dict"

    async def run(self, client: Any, websocket: Any) -> ActionResponse:
        return {"status_code": 200}  # type: ignore[return-value]  # the mistake under test


class Total(BaseModel):
    total: int


class Typed(ActionRunner):
    """Returns its result directly, of the type its annotation declares."""

    numbers: list[int] = Field(description="What to add")
    wrong: bool = Field(default=False, description="Return a value of another type")

    @classmethod
    def description(cls) -> str:
        return "Adds, typed"

    async def run(self, ctx: Context) -> Total:
        if self.wrong:
            return "not a total"  # type: ignore[return-value]  # the mistake under test
        return Total(total=sum(self.numbers))


class Created(ActionRunner):
    """A status code of its own, with a typed message."""

    total: Any = Field(description="The message's total (any value, to test validation)")

    @classmethod
    def description(cls) -> str:
        return "Creates"

    def run(self, ctx: Context) -> ActionResponse[Total]:
        # A plain dict where a Total is declared: validated (and refused) on the way out.
        message: Any = {"total": self.total}
        return ActionResponse(status_code=201, message=message)


class Refuses(ActionRunner):
    """Answers with an error of its own."""

    @classmethod
    def description(cls) -> str:
        return "Refuses"

    async def run(self, ctx: Context) -> int:
        raise ActionError(409, "already there", retryable=True, id=7)


class SeedFields(ActionRunner):
    """The seed's way: a text message and the data in `fields`."""

    @classmethod
    def description(cls) -> str:
        return "Seed style"

    async def run(self, client: Any, websocket: Any) -> ActionResponse:
        return ActionResponse(status_code=200, message="done", fields={"data": 1})


class ForgotReturn(ActionRunner):
    @classmethod
    def description(cls) -> str:
        return "Ends without returning"

    async def run(self, client: Any, websocket: Any) -> ActionResponse:
        ActionResponse(status_code=200)  # type: ignore[return-value]  # the mistake under test


class Shout(ActionRunner):
    """Overrides `model_validate`: requests must go through it."""

    text: str = Field(description="Any text")

    @classmethod
    def description(cls) -> str:
        return "Shouts"

    @classmethod
    def model_validate(cls, obj: Any, **options: Any) -> Shout:
        if isinstance(obj, dict) and isinstance(obj.get("text"), str):
            obj = {**obj, "text": obj["text"].upper()}
        return super().model_validate(obj, **options)

    async def run(self, client: Any, websocket: Any) -> ActionResponse:
        return ActionResponse(status_code=200, fields=self.text)


class Tally(ActionRunner):
    """Fields that can fail validation in many places, with keys a caller chooses."""

    counts: dict[str, int] = Field(default_factory=dict, description="Counts by name")
    note: str = Field(default="", description="A note that must be short")

    @field_validator("note")
    @classmethod
    def short(cls, note: str) -> str:
        if len(note) > 10:
            raise ValueError(f"the note {note!r} is too long")  # echoes the input: cut
        return note

    @classmethod
    def description(cls) -> str:
        return "Counts"

    async def run(self, ctx: Context) -> int:
        return sum(self.counts.values())


ACTIONS: dict[str, type[ActionRunner]] = {
    cls.__name__: cls
    for cls in (
        Add,
        Boom,
        Slow,
        Blocking,
        WrongType,
        ForgotReturn,
        Shout,
        Typed,
        Created,
        Refuses,
        SeedFields,
        Tally,
    )
}


class ExecutorTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        self.answers: dict[str, dict[str, Any]] = {}
        self.executor = RequestExecutor(
            ACTIONS, self.respond, lambda: (None, None), max_concurrency=4, default_timeout=2.0
        )
        self.addCleanup(self.executor.close)

    def respond(self, ref: str, payload: dict[str, Any], age: float = 0.0) -> None:
        self.answers[ref] = payload

    async def call(self, payload: Any, ref: str = "r") -> dict[str, Any]:
        if isinstance(payload, dict):
            payload = {"response_ref": ref, **payload}
        self.executor.submit(payload)
        await self.executor.drain(5)
        return self.answers[ref]

    async def test_success(self) -> None:
        answer = await self.call({"action": "Add", "fields": {"a": 2, "b": 3}})
        self.assertEqual(
            answer, {"status": "success", "status_code": 200, "message": None, "fields": 5}
        )
        self.assertEqual(self.executor.stats["Add"].count, 1)

    async def test_invalid_fields_are_named(self) -> None:
        answer = await self.call({"action": "Add", "fields": {"b": "x"}})
        self.assertEqual(answer["status_code"], 400)
        self.assertEqual(answer["status"], "error")
        error = answer["message"]
        self.assertEqual((error["code"], error["retryable"]), ("INVALID_FIELDS", False))
        self.assertIn("a: Field required", error["error"])
        self.assertIn("b: Input should be a valid integer", error["error"])
        self.assertNotIn("'x'", str(answer))
        self.assertEqual(
            [(item["field"], item["type"]) for item in error["errors"]],
            [("a", "missing"), ("b", "int_parsing")],
        )
        self.assertIsNone(answer["fields"])

    async def test_an_answer_lists_a_bounded_number_of_errors_and_counts_the_others(
        self,
    ) -> None:
        request = {"action": "Typed", "fields": {"numbers": ["x"] * 10_000}}
        answer = await self.call(request)
        error = answer["message"]
        self.assertEqual(len(error["errors"]), MAX_LISTED_ERRORS)
        self.assertEqual(error["more_errors"], 10_000 - MAX_LISTED_ERRORS)
        self.assertTrue(error["error"].endswith(f"; and {10_000 - MAX_LISTED_ERRORS} more"))
        self.assertEqual(error["errors"][0]["field"], "numbers.0")
        self.assertLess(len(json_codec.dumps_bytes(answer)), 64 * 1024)
        self.assertLess(len(json_codec.dumps_bytes(answer)), len(json_codec.dumps_bytes(request)))
        # Under the bound, nothing more is said.
        answer = await self.call({"action": "Typed", "fields": {"numbers": ["x"]}}, ref="r2")
        self.assertNotIn("more_errors", answer["message"])

    async def test_each_listed_error_is_cut_to_length(self) -> None:
        key = "k" * 100_000
        answer = await self.call({"action": "Tally", "fields": {"counts": {key: "x"}}})
        [problem] = answer["message"]["errors"]
        self.assertTrue(problem["field"].startswith("counts.kkk"))
        self.assertLess(len(problem["field"]), 300)
        answer = await self.call({"action": "Tally", "fields": {"note": "n" * 100_000}}, "r2")
        [problem] = answer["message"]["errors"]
        self.assertLess(len(problem["message"]), 400)
        self.assertLess(len(json_codec.dumps_bytes(answer)), 2000)

    async def test_a_request_decoded_only_in_part_is_answered_invalid(self) -> None:
        self.executor.submit(
            Salvaged(
                {"action": "Add", "fields": {"a": None}, "response_ref": "big"},
                "it holds an integer of up to 5,000 digits; at most 4,300 digits are read",
            )
        )
        answer = self.answers["big"]
        self.assertEqual(answer["status_code"], 400)
        self.assertEqual(answer["message"]["code"], "INVALID_REQUEST")
        self.assertIn("could not be decoded: it holds an integer", answer["message"]["error"])
        self.assertEqual(self.executor.stats["Add"].by_status, {400: 1})
        with LogCapture().installed() as logs:
            self.executor.submit(Salvaged({"action": "Add", "response_ref": None}, "why"))
            self.executor.submit(Salvaged([1, 2], "why"))
        self.assertEqual(set(self.answers), {"big"})
        self.assertEqual(len(logs.matching("could not be decoded")), 2)

    async def test_an_action_s_own_model_validate_is_used(self) -> None:
        answer = await self.call({"action": "Shout", "fields": {"text": "hi"}})
        self.assertEqual((answer["status_code"], answer["fields"]), (200, "HI"))
        answer = await self.call({"action": "Shout", "fields": {"text": 1}}, ref="r2")
        self.assertEqual(answer["status_code"], 400)

    async def test_wrong_envelope_types(self) -> None:
        for ref, payload in (
            ("1", {"action": 5, "fields": {}}),
            ("2", {"action": "Add", "fields": [1]}),
            ("3", {"action": "Add", "fields": "a=1"}),
        ):
            with self.subTest(payload=payload):
                self.assertEqual((await self.call(payload, ref))["status_code"], 400)

    async def test_missing_fields_means_empty(self) -> None:
        answer = await self.call({"action": "Blocking"})
        self.assertEqual(answer["status_code"], 200)

    async def test_unknown_action(self) -> None:
        answer = await self.call({"action": "Nope", "fields": {}})
        self.assertEqual(
            (answer["status_code"], answer["message"]),
            (
                404,
                {"code": "UNKNOWN_ACTION", "error": "Unknown action 'Nope'", "retryable": False},
            ),
        )

    async def test_exception_gives_500_with_an_error_id_and_no_text(self) -> None:
        with LogCapture().installed() as logs:
            answer = await self.call({"action": "Boom", "fields": {}})
        self.assertEqual(answer["status_code"], 500)
        self.assertNotIn("hunter2", str(answer))
        error_id = answer["message"]["error_id"]
        self.assertEqual(answer["message"]["code"], "INTERNAL_ERROR")
        self.assertIn(error_id, answer["message"]["error"])
        self.assertIn(error_id, logs.text())
        self.assertIn("RuntimeError", logs.text())  # the traceback is in the log
        self.assertEqual(self.executor.stats["Boom"].errors, 1)

    async def test_time_limit_gives_504(self) -> None:
        answer = await self.call({"action": "Slow", "fields": {}})
        self.assertEqual(answer["status_code"], 504)
        self.assertEqual(
            answer["message"],
            {
                "code": "TIMEOUT",
                "error": "The action did not finish within 0.1 s",
                "retryable": True,
            },
        )

    async def test_sync_run_uses_a_worker_thread(self) -> None:
        answer = await self.call({"action": "Blocking", "fields": {}})
        self.assertEqual(answer["status_code"], 200)
        self.assertTrue(answer["fields"].startswith("action"))

    async def test_non_response_result_is_500_and_named(self) -> None:
        with LogCapture().installed() as logs:
            answer = await self.call({"action": "WrongType", "fields": {}})
        self.assertEqual(answer["status_code"], 500)
        self.assertIn("action WrongType returned a builtins.dict, which is not its", logs.text())
        self.assertNotIn("Traceback", logs.text())

    async def test_a_missing_return_is_named_without_a_traceback(self) -> None:
        with LogCapture().installed() as logs:
            answer = await self.call({"action": "ForgotReturn", "fields": {}})
        self.assertEqual(answer["status_code"], 500)
        self.assertIn("action ForgotReturn returned None (does run() end without", logs.text())
        self.assertNotIn("raised", logs.text())
        self.assertNotIn("NoneType: None", logs.text())

    async def test_shutting_down_gives_503(self) -> None:
        self.executor.stop_accepting()
        answer = await self.call({"action": "Add", "fields": {"a": 1}})
        self.assertEqual(answer["status_code"], 503)
        self.assertEqual(answer["message"]["code"], "SHUTTING_DOWN")
        self.assertTrue(answer["message"]["retryable"])

    async def test_a_result_is_validated_and_sent_as_the_message(self) -> None:
        answer = await self.call({"action": "Typed", "fields": {"numbers": [1, 2, 3]}})
        self.assertEqual(
            answer,
            {"status": "success", "status_code": 200, "message": {"total": 6}, "fields": None},
        )
        with LogCapture().installed() as logs:
            wrong = await self.call(
                {"action": "Typed", "fields": {"numbers": [], "wrong": True}}, ref="w"
            )
        self.assertEqual(wrong["status_code"], 500)
        self.assertIn("action Typed returned a builtins.str, which is not its", logs.text())
        self.assertIn(wrong["message"]["error_id"], logs.text())

    async def test_an_action_response_of_a_type_validates_its_message(self) -> None:
        answer = await self.call({"action": "Created", "fields": {"total": 5}})
        self.assertEqual((answer["status_code"], answer["message"]), (201, {"total": 5}))
        with LogCapture().installed():
            wrong = await self.call({"action": "Created", "fields": {"total": "x"}}, ref="w")
        self.assertEqual(wrong["status_code"], 500)

    async def test_an_action_error_is_the_callers_error_object(self) -> None:
        answer = await self.call({"action": "Refuses", "fields": {}})
        self.assertEqual(answer["status_code"], 409)
        self.assertEqual(
            answer["message"],
            {"code": "CONFLICT", "error": "already there", "retryable": True, "id": 7},
        )

    async def test_text_format_keeps_the_seeds_sentences(self) -> None:
        executor = RequestExecutor(
            ACTIONS, self.respond, lambda: (None, None), errors=ErrorAnswers("text")
        )
        self.addCleanup(executor.close)
        executor.submit({"action": "Add", "fields": {}, "response_ref": "t1"})
        executor.submit({"action": "Refuses", "fields": {}, "response_ref": "t2"})
        await executor.drain(5)
        invalid, refused = self.answers["t1"], self.answers["t2"]
        self.assertEqual(invalid["message"], "Invalid fields: a: Field required")
        self.assertEqual(invalid["fields"]["code"], "INVALID_FIELDS")
        self.assertEqual((refused["status_code"], refused["message"]), (409, "already there"))

    async def test_data_left_in_fields_is_warned_about_once(self) -> None:
        with LogCapture().installed() as logs:
            first = await self.call({"action": "SeedFields", "fields": {}}, ref="1")
            await self.call({"action": "SeedFields", "fields": {}}, ref="2")
            await self.call({"action": "Add", "fields": {"a": 1}}, ref="3")
        # The seed's payload, unchanged.
        self.assertEqual(
            first,
            {"status": "success", "status_code": 200, "message": "done", "fields": {"data": 1}},
        )
        warnings = [line for line in logs.text().splitlines() if "`fields`" in line]
        self.assertEqual(len(warnings), 2, logs.text())  # SeedFields once, Add once
        self.assertIn("action SeedFields answers with data in `fields`", warnings[0])
        self.assertIn("return the data from run()", warnings[0])

    async def test_unanswerable_payloads_are_dropped(self) -> None:
        for payload in ([1], "x", {"action": "Add"}, {"action": "Add", "response_ref": 5}):
            self.executor.submit(payload)
        await self.executor.drain(1)
        self.assertEqual(self.answers, {})
        self.assertEqual(self.executor.in_flight, 0)

    async def test_concurrency_limit(self) -> None:
        running = 0
        peak = 0

        class Count(ActionRunner):
            @classmethod
            def description(cls) -> str:
                return "Counts"

            async def run(self, client: Any, websocket: Any) -> ActionResponse:
                nonlocal running, peak
                running += 1
                peak = max(peak, running)
                await asyncio.sleep(0.02)
                running -= 1
                return ActionResponse(status_code=200)

        executor = RequestExecutor(
            {"Count": Count}, self.respond, lambda: (None, None), max_concurrency=3
        )
        for index in range(10):
            executor.submit({"action": "Count", "fields": {}, "response_ref": f"c{index}"})
        self.assertTrue(await executor.drain(5))
        executor.close()
        self.assertEqual(peak, 3)
        self.assertEqual(len(self.answers), 10)

    async def test_cancelled_requests_are_answered_503(self) -> None:
        self.executor.submit({"action": "Slow", "fields": {}, "response_ref": "s"})
        await asyncio.sleep(0.01)
        await self.executor.cancel_all()
        self.assertEqual(self.answers["s"]["status_code"], 503)

    async def test_a_request_cancelled_before_its_first_step_is_answered_once(self) -> None:
        # Submitted and cancelled in the same loop iteration: on Python 3.11 the task has
        # not started; on 3.12+ it started eagerly and is waiting in Slow's sleep.
        sent: list[str] = []
        executor = RequestExecutor(
            ACTIONS,
            lambda ref, payload, age: sent.append(ref),  # type: ignore[func-returns-value]
            lambda: (None, None),
        )
        self.addCleanup(executor.close)
        executor.submit({"action": "Slow", "fields": {}, "response_ref": "early"})
        executor.submit({"action": "Add", "fields": {"a": 1}, "response_ref": "quick"})
        executor.stop_accepting()
        await executor.cancel_all()
        self.assertEqual(sorted(sent), ["early", "quick"])
        self.assertEqual(executor.in_flight, 0)
        counts = {name: stats.count for name, stats in executor.stats.items() if stats.count}
        self.assertEqual(sum(counts.values()), 2)

    async def test_the_status_accounted_is_the_status_sent(self) -> None:
        def respond(ref: str, payload: dict[str, Any], age: float) -> dict[str, Any]:
            return {"status": "error", "status_code": 500, "message": "replaced", "fields": None}

        executor = RequestExecutor(ACTIONS, respond, lambda: (None, None))
        self.addCleanup(executor.close)
        with LogCapture().installed() as logs:
            executor.submit({"action": "Add", "fields": {"a": 1}, "response_ref": "r"})
            await executor.drain(5)
        self.assertEqual(executor.stats["Add"].by_status, {500: 1})
        self.assertEqual(executor.stats["Add"].last_error, "replaced")
        self.assertIn("status=500", logs.text())


REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


class TaskAware(ActionRunner):
    """Uses what asyncio gives a task: current_task, timeout, TaskGroup, context variables."""

    label: str = Field(description="Stored in a context variable")

    @classmethod
    def description(cls) -> str:
        return "Task-aware"

    async def run(self, client: Any, websocket: Any) -> ActionResponse:
        before = REQUEST_ID.get()
        REQUEST_ID.set(self.label)
        task = asyncio.current_task()
        async with asyncio.timeout(1):
            async with asyncio.TaskGroup() as group:
                child = group.create_task(asyncio.sleep(0.01, result=REQUEST_ID.get()))
        return ActionResponse(
            status_code=200,
            fields={"before": before, "task": id(task), "child": child.result()},
        )


class TaskSemanticsTest(unittest.IsolatedAsyncioTestCase):
    """Each request runs as its own task with its own context, however it is started."""

    async def test_each_request_is_its_own_task_with_its_own_context(self) -> None:
        answers: dict[str, dict[str, Any]] = {}

        def respond(ref: str, payload: dict[str, Any], age: float) -> None:
            answers[ref] = payload

        executor = RequestExecutor({"TaskAware": TaskAware}, respond, lambda: (None, None))
        self.addCleanup(executor.close)
        REQUEST_ID.set("submitter")
        for label in ("a", "b", "c"):
            executor.submit(
                {"action": "TaskAware", "fields": {"label": label}, "response_ref": label}
            )
        self.assertTrue(await executor.drain(5))
        self.assertEqual(REQUEST_ID.get(), "submitter")  # nothing leaked back
        tasks = set()
        for label in ("a", "b", "c"):
            fields = answers[label]["fields"]
            self.assertEqual(answers[label]["status_code"], 200, answers[label])
            self.assertEqual(fields["before"], "submitter")  # a copy of the submitter's context
            self.assertEqual(fields["child"], label)
            tasks.add(fields["task"])
        self.assertEqual(len(tasks), 3)
        self.assertNotIn(id(asyncio.current_task()), tasks)
        self.assertEqual(executor.in_flight, 0)


class Gate:
    """Requests that wait until the test opens the gate, counting how many run at once."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.running = 0
        self.peak = 0
        self.entered = asyncio.Event()

    async def pass_through(self) -> None:
        self.running += 1
        self.peak = max(self.peak, self.running)
        self.entered.set()
        try:
            await self.open.wait()
        finally:
            self.running -= 1


GATE = Gate()


class Bulkhead(ActionRunner):
    """At most two at once, whatever MAX_CONCURRENCY allows."""

    max_concurrency = 2

    @classmethod
    def description(cls) -> str:
        return "Capped at two"

    async def run(self, ctx: Any) -> ActionResponse:
        await GATE.pass_through()
        return ActionResponse(status_code=200)


class NarrowAndSlow(ActionRunner):
    """One at a time, with a short time limit: a second one waits past it."""

    max_concurrency = 1
    timeout_seconds = 0.2

    @classmethod
    def description(cls) -> str:
        return "Capped at one, short limit"

    async def run(self, ctx: Any) -> ActionResponse:
        await GATE.pass_through()
        return ActionResponse(status_code=200)


class Gated(ActionRunner):
    """No cap of its own: waits at the gate holding a service-wide slot."""

    @classmethod
    def description(cls) -> str:
        return "Waits for the gate"

    async def run(self, ctx: Any) -> ActionResponse:
        await GATE.pass_through()
        return ActionResponse(status_code=200)


class Free(ActionRunner):
    @classmethod
    def description(cls) -> str:
        return "No cap of its own"

    async def run(self, ctx: Any) -> ActionResponse:
        return ActionResponse(status_code=200)


class ActionLimitTest(unittest.IsolatedAsyncioTestCase):
    """An action's own max_concurrency: a bulkhead inside the service-wide limit."""

    async def asyncSetUp(self) -> None:
        global GATE
        GATE = Gate()
        self.answers: dict[str, dict[str, Any]] = {}
        self.executor = RequestExecutor(
            {"Bulkhead": Bulkhead, "NarrowAndSlow": NarrowAndSlow, "Free": Free},
            lambda ref, payload, age: self.answers.__setitem__(ref, payload),  # type: ignore[func-returns-value]
            lambda: (None, None),
            max_concurrency=10,
        )
        self.addCleanup(self.executor.close)

    def submit(self, action: str, ref: str) -> None:
        self.executor.submit({"action": action, "fields": {}, "response_ref": ref})

    async def test_an_action_runs_at_most_its_own_limit_at_once(self) -> None:
        for index in range(5):
            self.submit("Bulkhead", f"b{index}")
        await GATE.entered.wait()
        await wait_until(lambda: self.executor.stats["Bulkhead"].waiting == 3)
        self.assertEqual(GATE.running, 2)
        # The waiting ones hold no service-wide slot: another action still runs at once.
        self.submit("Free", "f")
        await wait_until(lambda: "f" in self.answers)
        self.assertEqual(self.answers["f"]["status_code"], 200)
        GATE.open.set()
        self.assertTrue(await self.executor.drain(5))
        self.assertEqual(GATE.peak, 2)
        self.assertEqual([self.answers[f"b{i}"]["status_code"] for i in range(5)], [200] * 5)
        stats = self.executor.stats["Bulkhead"]
        self.assertEqual((stats.waiting, stats.waits), (0, 3))
        self.assertEqual(sum(stats.wait_buckets), 3)
        self.assertGreater(stats.wait_seconds, 0.0)

    async def test_time_spent_waiting_counts_toward_the_time_limit(self) -> None:
        self.submit("NarrowAndSlow", "holder")
        await GATE.entered.wait()
        self.submit("NarrowAndSlow", "waiter")
        await wait_until(lambda: "waiter" in self.answers)
        self.assertEqual(self.answers["waiter"]["status_code"], 504)
        self.assertEqual(self.executor.stats["NarrowAndSlow"].waiting, 0)
        await wait_until(lambda: "holder" in self.answers)
        self.assertEqual(self.answers["holder"]["status_code"], 504)
        # Both gave their slots back: the next one runs at once.
        GATE.open.set()
        self.submit("NarrowAndSlow", "next")
        self.assertTrue(await self.executor.drain(5))
        self.assertEqual(self.answers["next"]["status_code"], 200)

    async def test_past_max_waiting_a_request_is_answered_overloaded_at_once(self) -> None:
        self.executor.max_waiting = 2
        for index in range(6):
            self.submit("Bulkhead", f"b{index}")
        await wait_until(lambda: len(self.answers) == 2)
        self.assertEqual((GATE.running, self.executor.waiting), (2, 2))
        for ref in ("b4", "b5"):
            answer = self.answers[ref]
            self.assertEqual(answer["status_code"], 503)
            self.assertEqual(answer["message"]["code"], "OVERLOADED")
            self.assertTrue(answer["message"]["retryable"])
        self.assertEqual(self.executor.overloaded, 2)
        GATE.open.set()
        self.assertTrue(await self.executor.drain(5))
        self.assertEqual([self.answers[f"b{i}"]["status_code"] for i in range(4)], [200] * 4)
        self.assertEqual(self.executor.waiting, 0)

    async def test_waits_for_either_limit_count_against_max_waiting(self) -> None:
        executor = RequestExecutor(
            {"Bulkhead": Bulkhead, "Free": Free, "Gated": Gated},
            lambda ref, payload, age: self.answers.__setitem__(ref, payload),  # type: ignore[func-returns-value]
            lambda: (None, None),
            max_concurrency=2,
            max_waiting=3,
        )
        self.addCleanup(executor.close)
        for index in range(2):  # the service's two slots
            executor.submit({"action": "Gated", "fields": {}, "response_ref": f"g{index}"})
        await wait_until(lambda: GATE.running == 2)
        for index in range(2):  # waiting for a service-wide slot
            executor.submit({"action": "Free", "fields": {}, "response_ref": f"f{index}"})
        await wait_until(lambda: executor.waiting == 2)
        with LogCapture().installed() as logs:
            for index in range(3):  # one waits for a service-wide slot; then none may wait
                executor.submit({"action": "Gated", "fields": {}, "response_ref": f"x{index}"})
            await wait_until(lambda: len(self.answers) == 2)
        self.assertEqual(executor.waiting, 3)
        self.assertEqual(
            {ref: answer["message"]["code"] for ref, answer in self.answers.items()},
            {"x1": "OVERLOADED", "x2": "OVERLOADED"},
        )
        self.assertEqual(len(logs.matching("MAX_WAITING_REQUESTS")), 2)
        GATE.open.set()
        self.assertTrue(await executor.drain(5))
        self.assertEqual(executor.waiting, 0)

    async def test_no_waiting_at_all(self) -> None:
        self.executor.max_waiting = 0
        for index in range(3):
            self.submit("Bulkhead", f"b{index}")
        await wait_until(lambda: "b2" in self.answers)
        self.assertEqual(self.answers["b2"]["message"]["code"], "OVERLOADED")
        GATE.open.set()
        self.assertTrue(await self.executor.drain(5))

    async def test_a_limit_out_of_range_is_refused_when_the_executor_is_made(self) -> None:
        class Zero(Free):
            max_concurrency = 0

        with self.assertRaisesRegex(TypeError, "Zero.max_concurrency must be a positive"):
            RequestExecutor({"Zero": Zero}, lambda ref, payload, age: None, lambda: (None, None))


class SlotsTest(unittest.IsolatedAsyncioTestCase):
    async def test_waiters_get_slots_in_order(self) -> None:
        slots = Slots(1)
        slots.free -= 1
        order: list[int] = []

        async def waiter(number: int) -> None:
            await slots.wait()
            order.append(number)

        tasks = [asyncio.create_task(waiter(number)) for number in range(3)]
        await asyncio.sleep(0)
        for _ in range(3):
            slots.release()
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)
        self.assertEqual(order, [0, 1, 2])
        self.assertEqual(slots.free, 0)  # the last waiter still holds the slot
        slots.release()
        self.assertEqual(slots.free, 1)

    async def test_a_cancelled_waiter_leaves_the_queue(self) -> None:
        slots = Slots(1)
        slots.free -= 1
        cancelled = asyncio.create_task(slots.wait())
        second = asyncio.create_task(slots.wait())
        await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.sleep(0)
        slots.release()
        await asyncio.wait_for(second, 1)
        self.assertTrue(cancelled.cancelled())
        self.assertEqual(slots.free, 0)

    async def test_a_slot_handed_to_a_cancelled_waiter_is_passed_on(self) -> None:
        slots = Slots(1)
        slots.free -= 1
        first = asyncio.create_task(slots.wait())
        second = asyncio.create_task(slots.wait())
        await asyncio.sleep(0)
        slots.release()  # hands the slot to `first`...
        first.cancel()  # ...which is cancelled before it runs again
        await asyncio.wait_for(second, 1)
        self.assertTrue(first.cancelled())
        self.assertEqual(slots.free, 0)  # `second` holds the one slot
        slots.release()
        self.assertEqual(slots.free, 1)


if __name__ == "__main__":
    unittest.main()
