"""Request execution: validation, the concurrency limits, the time limit and error mapping.

Every `request` from the hub becomes one task here, so a slow action never delays the
others. The outcome is always one response payload with the status codes of the protocol:
the action's result (`core.model.result`), or 400 invalid fields or request (one whose frame
could not be decoded in full too), 404 unknown action, 500 the action raised (an error id
that the log holds with the traceback), 503 shutting down or overloaded (`max_waiting`
requests wait for a slot already), 504 over the time limit (`core.execution.responses`), or
the error the action raised (`ActionError`).

How each action is run is decided once, when the executor is made (its `Plan`): how its
`run()` is called (the seed's ``run(self, client, websocket)`` is adapted to the one
convention here, a call with the instance and a `Context`), whether it runs in a worker
thread, its result type, its time limit, its own concurrency limit and its counters.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import SchemaValidator

from core.execution.context import Context, State
from core.execution.limits import Slots
from core.execution.responses import (
    INVALID_REQUEST,
    OVERLOADED,
    SHUTTING_DOWN,
    TIMEOUT,
    UNKNOWN_ACTION,
    ErrorAnswers,
)
from core.execution.stats import ActionStats
from core.execution.threads import WorkerThreads
from core.execution.tracing import RequestSpan, RequestTracer
from core.json_codec import Salvaged
from core.log import RateLimitedLog, request_context, request_log, shown, truncate
from core.model.errors import ActionError
from core.model.response import ActionResponse
from core.model.result import ResultType, result_type
from core.model.runner import CONTEXT, ActionRunner, run_convention

logger = logging.getLogger(__name__)
# Python 3.12 and later start each request's task eagerly: until the action first suspends,
# it runs inside submit(), as the current task with its own context, and an action that never
# suspends (Echo) finishes without a trip through the event loop's queue. 3.11 has no eager
# tasks (asyncio.eager_task_factory), so there each task starts on the next iteration.
_eager_task: Callable[..., asyncio.Task[None]] | None = getattr(asyncio, "eager_task_factory", None)
# The counters of requests for actions this service does not have.
UNKNOWN_ACTION_STATS = "(unknown)"
# How often running requests are checked against their time limits.
SWEEP_SECONDS = 0.05


class Overloaded(Exception):
    """Raised instead of waiting for a slot when `max_waiting` requests wait already."""


# Hands the client a response payload for a response_ref, with the seconds since its request
# arrived (the client writes it soon after). It returns None, or the payload it sent instead
# (a 500 for a payload it cannot encode), so that the request is accounted with the status
# its caller really gets.
Respond = Callable[[str, dict[str, Any], float], dict[str, Any] | None]
# Returns the (client, websocket) pair handed to the seed's run(self, client, websocket).
RunContext = Callable[[], tuple[Any, Any]]


def _validator(action: type[ActionRunner]) -> Callable[[Any], ActionRunner]:
    """How a request's fields become an instance of `action`: its `model_validate`, or, when
    the class does not override that, the model's schema validator called directly, which is
    what `model_validate` does without the cost of its keyword arguments. A model whose
    schema is not built yet keeps `model_validate`, which builds it."""
    validator = getattr(action, "__pydantic_validator__", None)
    inherited = getattr(action.model_validate, "__func__", None) is getattr(
        BaseModel.model_validate, "__func__", None
    )
    if inherited and isinstance(validator, SchemaValidator):
        validate: Callable[[Any], ActionRunner] = validator.validate_python
        return validate
    return action.model_validate


class Plan:
    """How one action's requests are handled, decided once when the executor is made."""

    __slots__ = (
        "fields_warned",
        "logger_name",
        "own_slots",
        "result",
        "run",
        "stats",
        "threaded",
        "timeout",
        "validate",
    )

    def __init__(
        self, action: type[ActionRunner], default_timeout: float, context: RunContext
    ) -> None:
        self.validate = _validator(action)
        self.timeout: float = action.timeout_seconds or default_timeout
        self.threaded = not inspect.iscoroutinefunction(action.run)
        # run(instance, ctx): the action's own run(), or the seed's run(client, websocket)
        # behind an adapter, so that the executor knows one way to call an action.
        self.run: Callable[[Any, Context], Any]
        if run_convention(action) == CONTEXT:
            self.run = action.run
        elif self.threaded:
            self.run = lambda instance, _ctx: instance.run(*context())
        else:
            self.run = _seed_coroutine(context)
        self.result: ResultType = result_type(action)
        self.stats = ActionStats()
        # None: only the service-wide limit applies.
        self.own_slots = Slots(action.max_concurrency) if action.max_concurrency else None
        # The logger that the request's ctx.logger binds: the action's module's.
        self.logger_name = action.__module__
        # Whether the one warning about data left in `fields` was logged.
        self.fields_warned = False


def _seed_coroutine(context: RunContext) -> Callable[[Any, Context], Any]:
    async def run(instance: Any, _ctx: Context) -> Any:
        return await instance.run(*context())

    return run


class RequestExecutor:
    """Runs requests as tasks under the concurrency limits and answers each exactly once.

    `state` is handed to every request's `Context` (the lifespan functions fill it); `threads`
    runs the plain ``def run()`` actions; `errors` builds the framework's error answers in
    the configured ``ERROR_FORMAT`` (objects, or the seed's sentences); `tracer`, when set,
    gives each request a span (`core.ops.otel`). An action class whose
    `run()` has neither accepted signature, whose result type cannot be read, or whose
    limits are out of range, raises `ActionDefinitionError` or `ResultTypeError` here.
    """

    def __init__(
        self,
        actions: Mapping[str, type[ActionRunner]],
        respond: Respond,
        context: RunContext,
        *,
        max_concurrency: int = 100,
        max_waiting: int = 1000,
        default_timeout: float = 25.0,
        state: State | None = None,
        errors: ErrorAnswers | None = None,
    ) -> None:
        self._actions = actions
        self._respond = respond
        self._default_timeout = default_timeout
        self.state = state if state is not None else State()
        self.errors = errors if errors is not None else ErrorAnswers()
        self._slots = Slots(max_concurrency)
        # Requests waiting for a slot (either limit), and how many may: each holds its fields
        # and its task, so past the cap a request is answered OVERLOADED at once.
        self.waiting = 0
        self.max_waiting = max_waiting
        self.overloaded = 0
        self._overload_log = RateLimitedLog(logger, chars=400)
        self.threads = WorkerThreads(max_concurrency)
        # Each request's task, with its payload (to answer one cancelled before it started).
        self._tasks: dict[asyncio.Task[None], dict[str, Any]] = {}
        self._plans: dict[str, Plan] = {
            name: Plan(action, default_timeout, context) for name, action in actions.items()
        }
        self.stats = {name: plan.stats for name, plan in self._plans.items()}
        self._deadlines: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self._accepting = True
        self._bad_input = RateLimitedLog(logger)
        self.tracer: RequestTracer | None = None

    @property
    def in_flight(self) -> int:
        """Requests received and not yet answered."""
        return len(self._tasks)

    def submit(self, payload: Any) -> None:
        """Start handling a `request` payload; returns at once."""
        if type(payload) is not dict:
            if type(payload) is Salvaged:
                self._undecodable(payload)
                return
            self._bad_input.warning("request payload is not an object: %s", truncate(repr(payload)))
            return
        response_ref = payload.get("response_ref")
        if type(response_ref) is not str or not response_ref:
            self._bad_input.warning(
                "request without a usable response_ref: %s", truncate(repr(payload))
            )
            return
        loop = asyncio.get_running_loop()
        handling = self._handle(response_ref, payload.get("action"), payload.get("fields"))
        task = loop.create_task(handling) if _eager_task is None else _eager_task(loop, handling)
        # _handle forgets the task when done (cheaper than a done callback); an eager task
        # may already be done here.
        if not task.done():
            self._tasks[task] = payload

    def stop_accepting(self) -> None:
        """From now on, answer new requests 503 without running them."""
        self._accepting = False

    async def drain(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for running requests; True when all finished."""
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        return not pending

    async def cancel_all(self) -> None:
        """Cancel whatever is still running (after the grace period); each is answered 503."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=1.0)
        for task, payload in list(self._tasks.items()):
            if task.done():
                # Cancelled before its first step (a task does not start at once on Python
                # 3.11): its coroutine never ran, so it has not answered.
                del self._tasks[task]
                action = payload.get("action")
                name = action if type(action) is str else "?"
                response = self.errors.framework(
                    SHUTTING_DOWN, "The service shut down before the action started"
                )
                self._answer(
                    payload["response_ref"],
                    name,
                    self._plans.get(name),
                    response.to_payload(),
                    time.perf_counter(),
                )

    def close(self) -> None:
        """Release the worker threads (running ones finish in the background)."""
        self.threads.close()

    async def _handle(self, response_ref: str, action_name: Any, fields: Any) -> None:
        # The hot path: every request runs through here once, so it is written flat (one
        # coroutine, no context managers); the rare outcomes live in small helpers.
        started = time.perf_counter()
        task = asyncio.current_task()
        assert task is not None  # always run as a task by submit()
        name = action_name if type(action_name) is str else "?"
        plan = self._plans.get(name)
        # Every log record made while this request runs names it (core.log), and so does its
        # span when tracing is on; unknown names are the caller's choice, so not theirs.
        request_context.set((name if plan is not None else UNKNOWN_ACTION_STATS, response_ref))
        span: RequestSpan | None = None
        if self.tracer is not None:
            span = self.tracer.start(
                name if plan is not None else UNKNOWN_ACTION_STATS, response_ref
            )
        if fields is None:
            fields = {}
        ctx: Context | None = None
        try:
            if plan is None or not self._accepting or type(fields) is not dict:
                payload = self._refusal(action_name, fields).to_payload()
            else:
                try:
                    instance = plan.validate(fields)
                except ValidationError as error:
                    payload = self.errors.invalid_fields(error).to_payload()
                else:
                    # The time limit runs from here: waiting for a slot counts against it.
                    deadline = time.monotonic() + plan.timeout
                    self._deadlines[task] = deadline
                    if self._sweeper is None:
                        self._sweeper = asyncio.get_running_loop().call_later(
                            SWEEP_SECONDS, self._sweep
                        )
                    # The action's own limit first, so that a request waiting for it holds
                    # no service-wide slot meanwhile.
                    own_slots = plan.own_slots
                    if own_slots is not None:
                        if own_slots.free:
                            own_slots.free -= 1
                        else:
                            await self._wait_for_slot(own_slots, plan.stats)
                    try:
                        slots = self._slots
                        if slots.free:
                            slots.free -= 1
                        else:
                            await self._wait_for_slot(slots, plan.stats)
                        try:
                            ctx = Context(
                                response_ref, name, deadline, self.state, plan.logger_name
                            )
                            if plan.threaded:
                                result = await self._run_in_thread(plan, instance, ctx)
                            else:
                                result = await plan.run(instance, ctx)
                        except ActionError as error:
                            payload = self.errors.action_error(error).to_payload()
                        except Exception:
                            payload = self._raised(name, response_ref)
                        else:
                            payload = self._result_payload(plan, name, response_ref, result)
                        finally:
                            slots.release()
                    finally:
                        if own_slots is not None:
                            own_slots.release()
        except Overloaded:
            payload = self._overloaded(name)
        except asyncio.CancelledError:
            if ctx is not None:
                ctx.cancel()
            if task not in self._expired:
                payload = self.errors.framework(
                    SHUTTING_DOWN, "The service shut down before the action finished"
                ).to_payload()
                try:
                    status_code = self._answer(response_ref, name, plan, payload, started)
                    if span is not None:
                        span.end(status_code)
                finally:
                    self._forget(task)
                raise
            task.uncancel()
            # A blocking run() that got as far as its thread keeps it: say so in the warning.
            in_thread = ctx is not None and plan is not None and plan.threaded
            payload = self._timed_out(response_ref, name, in_thread)
        try:
            status_code = self._answer(response_ref, name, plan, payload, started)
            if span is not None:
                span.end(status_code)
        finally:
            self._forget(task)

    def _result_payload(
        self, plan: Plan, name: str, response_ref: str, result: Any
    ) -> dict[str, Any]:
        """The payload for what `run()` returned: its result as the message of a 200, or the
        `ActionResponse` it built (its message validated when its class declares a type)."""
        try:
            if isinstance(result, ActionResponse):
                payload = result.to_payload()
                if plan.result.message is not None and payload["status"] == "success":
                    payload["message"] = plan.result.encode_message(payload["message"])
                elif result.fields is not None and not plan.fields_warned:
                    self._warn_fields(plan, name, result.message)
                return payload
            return {
                "status": "success",
                "status_code": 200,
                "message": plan.result.encode(result),
                "fields": None,
            }
        except (ValueError, TypeError) as error:  # ValidationError and serialization errors too
            return self._not_its_result(name, response_ref, result, error)

    @staticmethod
    def _warn_fields(plan: Plan, name: str, message: Any) -> None:
        """Say once per action that data left in `fields` never reaches its callers."""
        if message is not None and not isinstance(message, str):
            return  # the message carries data already: `fields` is the seed's extra copy
        plan.fields_warned = True
        logger.warning(
            "action %s answers with data in `fields`, which the hub does not forward to "
            "callers (they receive only status and message): return the data from run() "
            "instead (`def run(self, ctx) -> YourResult`), or put it in `message`",
            name,
            extra={"action": name},
        )

    async def _wait_for_slot(self, slots: Slots, stats: ActionStats) -> None:
        """Wait for a slot of `slots` (none is free), counted in the action's wait metrics;
        raise `Overloaded` instead when `max_waiting` requests wait already."""
        if self.waiting >= self.max_waiting:
            raise Overloaded
        self.waiting += 1
        stats.waiting += 1
        began = time.perf_counter()
        try:
            await slots.wait()
        finally:
            self.waiting -= 1
            stats.waiting -= 1
            waited = time.perf_counter() - began
            stats.record_wait(waited)
            if self.tracer is not None:
                self.tracer.waited(waited)

    def _overloaded(self, name: str) -> dict[str, Any]:
        """The 503 answer to a request that found `max_waiting` requests waiting already."""
        self.overloaded += 1
        self._overload_log.warning(
            "%d requests are waiting for a concurrency slot (MAX_WAITING_REQUESTS): answering "
            "a request for %s 503 OVERLOADED (%d so far)",
            self.waiting,
            name,
            self.overloaded,
        )
        return self.errors.framework(
            OVERLOADED,
            f"The replica has {self.max_waiting} requests waiting already; try again",
        ).to_payload()

    def _undecodable(self, payload: Salvaged) -> None:
        """Answer a request whose frame could not be decoded in full (`json_codec.salvage`)
        400 INVALID_REQUEST, when it names a response_ref."""
        request = payload.value
        response_ref = request.get("response_ref") if type(request) is dict else None
        if type(response_ref) is not str or not response_ref:
            self._bad_input.warning(
                "a request that could not be decoded (%s) has no usable response_ref: dropped",
                payload.problem,
            )
            return
        action = request.get("action")
        name = action if type(action) is str else "?"
        response = self.errors.framework(
            INVALID_REQUEST, f"The request could not be decoded: {payload.problem}"
        )
        self._answer(
            response_ref, name, self._plans.get(name), response.to_payload(), time.perf_counter()
        )

    def _forget(self, task: asyncio.Task[Any]) -> None:
        """Drop an answered request's task, time limit and expiry mark."""
        self._tasks.pop(task, None)
        self._deadlines.pop(task, None)
        if self._expired:
            self._expired.discard(task)

    def _refusal(self, action_name: Any, fields: Any) -> ActionResponse:
        """The answer to a request that is not run: 503, 400 or 404."""
        errors = self.errors
        if not self._accepting:
            return errors.framework(SHUTTING_DOWN, "The service is shutting down; try again")
        if not isinstance(action_name, str):
            return errors.framework(INVALID_REQUEST, "The request's action must be a string")
        if action_name not in self._plans:
            return errors.framework(
                UNKNOWN_ACTION, f"Unknown action {truncate(action_name, 100)!r}"
            )
        return errors.framework(INVALID_REQUEST, "The request's fields must be a JSON object")

    def _raised(self, name: str, response_ref: str) -> dict[str, Any]:
        """The 500 answer when run() raised (call inside `except`): the traceback is logged."""
        error_id, response = self.errors.internal_error()
        if self.tracer is not None:
            self.tracer.failed(error_id)
        logger.exception(
            "action %s raised (error id %s, ref %s)",
            name,
            error_id,
            shown(response_ref),
            extra={"action": name, "ref": response_ref, "error_id": error_id},
        )
        return response.to_payload()

    def _not_its_result(
        self, name: str, response_ref: str, result: Any, error: Exception
    ) -> dict[str, Any]:
        """The 500 answer when run() returned what its declared result type refuses."""
        error_id, response = self.errors.internal_error()
        if self.tracer is not None:
            self.tracer.failed(error_id)
        if result is None:
            what = "None (does run() end without a `return`?)"
        else:
            kind = f"{type(result).__module__}.{type(result).__qualname__}"
            what = f"a {kind}, which is not its result type: {truncate(str(error), 500)}"
        logger.error(
            "action %s returned %s (error id %s, ref %s)",
            name,
            what,
            error_id,
            shown(response_ref),
            extra={"action": name, "ref": response_ref, "error_id": error_id},
        )
        return response.to_payload()

    def _timed_out(self, response_ref: str, name: str, in_thread: bool) -> dict[str, Any]:
        plan = self._plans.get(name)
        limit = plan.timeout if plan is not None else self._default_timeout
        threads = self.threads
        logger.warning(
            "action %s ran past its %.3g s time limit (ref %s)%s",
            name,
            limit,
            shown(response_ref),
            f"; its worker thread, if it started, runs on until run() returns ({threads.busy} of "
            f"{threads.size} threads busy, {threads.overrun} past their time limit)"
            if in_thread
            else "",
            extra={"action": name, "ref": response_ref},
        )
        return self.errors.framework(
            TIMEOUT, f"The action did not finish within {limit:g} s"
        ).to_payload()

    def _sweep(self) -> None:
        now = time.monotonic()
        for task, deadline in list(self._deadlines.items()):
            if deadline <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()
        self._sweeper = (
            asyncio.get_running_loop().call_later(SWEEP_SECONDS, self._sweep)
            if self._deadlines
            else None
        )

    def _answer(
        self,
        response_ref: str,
        name: str,
        plan: Plan | None,
        payload: dict[str, Any],
        started: float,
    ) -> int:
        """Send the response, then count and log the request with the status sent (`plan` is
        None for an unknown action); returns that status code."""
        duration = time.perf_counter() - started
        replaced = self._respond(response_ref, payload, duration)
        if replaced is not None:
            payload = replaced
        if plan is not None:
            stats = plan.stats
        else:
            # Unknown action names are counted under "(unknown)": callers choose them freely.
            if UNKNOWN_ACTION_STATS not in self.stats:
                self.stats[UNKNOWN_ACTION_STATS] = ActionStats()
            stats = self.stats[UNKNOWN_ACTION_STATS]
            name = truncate(name, 100)
        status_code: int = payload["status_code"]
        stats.record(status_code, duration, payload["message"])
        request_log.write(name, status_code, duration, response_ref)
        return status_code

    async def _run_in_thread(self, plan: Plan, instance: ActionRunner, ctx: Context) -> Any:
        result = await self.threads.run(ctx, plan.run, instance, ctx)
        if inspect.isawaitable(result):
            return await result
        return result
