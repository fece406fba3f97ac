"""Request execution: validation, the concurrency limits, the time limit and error mapping.

Every `request` from the hub becomes one task here, so a slow action never delays the
others. The outcome is always an `ActionResponse` with the status codes of the protocol:
400 invalid fields, 404 unknown action, 500 the action raised (generic message plus an error
id that the log holds with the traceback), 503 shutting down, 504 over the time limit.

How each action is run is decided once, when the executor is made (its plan): the calling
convention of its `run()` (a `Context`, or the seed's client and websocket), whether it is a
coroutine or runs in a worker thread, its time limit, its own concurrency limit and its
counters.
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
from core.execution.responses import error_response, internal_error, validation_response
from core.execution.stats import ActionStats
from core.execution.threads import WorkerThreads
from core.execution.tracing import RequestSpan, RequestTracer
from core.log import RateLimitedLog, request_context, request_log, truncate
from core.model.response import ActionResponse
from core.model.runner import CONTEXT, ActionRunner, run_convention

logger = logging.getLogger(__name__)
# Python 3.12 and later start each request's task eagerly: until the action first suspends,
# it runs inside submit(), as the current task with its own context, and an action that never
# suspends (Echo) finishes without a trip through the event loop's queue. 3.11 has no eager
# tasks (asyncio.eager_task_factory), so there each task starts on the next iteration.
_eager_task: Callable[..., asyncio.Task[None]] | None = getattr(asyncio, "eager_task_factory", None)
# The counters of requests for actions this service does not have.
UNKNOWN_ACTION = "(unknown)"
# How often running requests are checked against their time limits.
SWEEP_SECONDS = 0.05

# Hands the client a response payload for a response_ref, with the seconds since its request
# arrived (the client writes it soon after). It returns None, or the payload it sent instead
# (a 500 for a payload it cannot encode), so that the request is accounted with the status
# its caller really gets.
Respond = Callable[[str, dict[str, Any], float], dict[str, Any] | None]
# How a plan calls run(): awaited with a Context, awaited with (client, websocket), or in a
# worker thread with either.
ASYNC_CONTEXT = 0
ASYNC_CLIENT = 1
THREAD_CONTEXT = 2
THREAD_CLIENT = 3
# Per action, decided once: how its fields become an instance (see `_validator`), its time
# limit, how run() is called, its counters, its own concurrency limit (None: only the
# service-wide one) and the name of the logger its contexts bind (its module's).
Plan = tuple[Callable[[Any], ActionRunner], float, int, ActionStats, Slots | None, str]
# Returns the (client, websocket) pair handed to the seed's run(self, client, websocket).
RunContext = Callable[[], tuple[Any, Any]]


def _validator(action: type[ActionRunner]) -> Callable[[Any], ActionRunner]:
    """How a request's fields become an instance of `action`: its `model_validate`, or, when
    the class does not override that, the model's schema validator called directly, which is
    what `model_validate` does, at half its cost (its keyword arguments are most of it). A
    model whose schema is not built yet keeps `model_validate`, which builds it."""
    validator = getattr(action, "__pydantic_validator__", None)
    inherited = getattr(action.model_validate, "__func__", None) is getattr(
        BaseModel.model_validate, "__func__", None
    )
    if inherited and isinstance(validator, SchemaValidator):
        validate: Callable[[Any], ActionRunner] = validator.validate_python
        return validate
    return action.model_validate


def _mode(action: type[ActionRunner]) -> int:
    """How `action.run` is called (raises `ActionDefinitionError` for a signature that is
    neither form)."""
    by_context = run_convention(action) == CONTEXT
    if inspect.iscoroutinefunction(action.run):
        return ASYNC_CONTEXT if by_context else ASYNC_CLIENT
    return THREAD_CONTEXT if by_context else THREAD_CLIENT


class RequestExecutor:
    """Runs requests as tasks under the concurrency limits and answers each exactly once.

    `state` is handed to every request's `Context` (the lifespan functions fill it); `threads`
    runs the plain ``def run()`` actions; `tracer`, when set, gives each request a span
    (`core.ops.otel`). An action class whose `run()` has neither accepted
    signature, or whose limits are out of range, raises `ActionDefinitionError` here.
    """

    def __init__(
        self,
        actions: Mapping[str, type[ActionRunner]],
        respond: Respond,
        context: RunContext,
        *,
        max_concurrency: int = 100,
        default_timeout: float = 25.0,
        state: State | None = None,
    ) -> None:
        self._actions = actions
        self._respond = respond
        self._context = context
        self._default_timeout = default_timeout
        self.state = state if state is not None else State()
        self._slots = Slots(max_concurrency)
        self.threads = WorkerThreads(max_concurrency)
        # Each request's task, with its payload (to answer one cancelled before it started).
        self._tasks: dict[asyncio.Task[None], dict[str, Any]] = {}
        self.stats: dict[str, ActionStats] = {name: ActionStats() for name in actions}
        self._plans: dict[str, Plan] = {
            name: (
                _validator(action),
                action.timeout_seconds or default_timeout,
                _mode(action),
                self.stats[name],
                Slots(action.max_concurrency) if action.max_concurrency is not None else None,
                action.__module__,
            )
            for name, action in actions.items()
        }
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
                self._answer(
                    payload["response_ref"],
                    name,
                    self._plans.get(name),
                    error_response(503, "The service shut down before the action started"),
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
        request_context.set((name if plan is not None else UNKNOWN_ACTION, response_ref))
        span: RequestSpan | None = None
        if self.tracer is not None:
            span = self.tracer.start(name if plan is not None else UNKNOWN_ACTION, response_ref)
        if fields is None:
            fields = {}
        ctx: Context | None = None
        try:
            if plan is None or not self._accepting or type(fields) is not dict:
                response = self._refusal(action_name, fields)
            else:
                validate, limit, mode, stats, own_slots, logger_name = plan
                try:
                    instance = validate(fields)
                except ValidationError as error:
                    response = validation_response(error)
                else:
                    # The time limit runs from here: waiting for a slot counts against it.
                    deadline = time.monotonic() + limit
                    self._deadlines[task] = deadline
                    if self._sweeper is None:
                        self._sweeper = asyncio.get_running_loop().call_later(
                            SWEEP_SECONDS, self._sweep
                        )
                    # The action's own limit first, so that a request waiting for it holds
                    # no service-wide slot meanwhile.
                    if own_slots is not None:
                        if own_slots.free:
                            own_slots.free -= 1
                        else:
                            await self._wait_for_slot(own_slots, stats)
                    try:
                        slots = self._slots
                        if slots.free:
                            slots.free -= 1
                        else:
                            await self._wait_for_slot(slots, stats)
                        try:
                            # run() is declared to return an ActionResponse or an awaitable
                            # of one; which, and its parameters, were read from its
                            # signature at start-up, which mypy cannot know.
                            if mode == ASYNC_CONTEXT:
                                ctx = Context(response_ref, name, deadline, self.state, logger_name)
                                result = await instance.run(ctx)  # type: ignore[misc]
                            elif mode == ASYNC_CLIENT:
                                client, websocket = self._context()
                                result = await instance.run(client, websocket)  # type: ignore[misc]
                            else:
                                ctx = Context(response_ref, name, deadline, self.state, logger_name)
                                result = await self._run_in_thread(instance, ctx, mode)
                        except Exception:
                            response = self._raised(name, response_ref)
                        else:
                            response = (
                                result
                                if isinstance(result, ActionResponse)
                                else self._not_a_response(name, response_ref, result)
                            )
                        finally:
                            slots.release()
                    finally:
                        if own_slots is not None:
                            own_slots.release()
        except asyncio.CancelledError:
            if ctx is not None:
                ctx.cancel()
            if task not in self._expired:
                response = error_response(503, "The service shut down before the action finished")
                try:
                    status_code = self._answer(response_ref, name, plan, response, started)
                    if span is not None:
                        span.end(status_code)
                finally:
                    self._forget(task)
                raise
            task.uncancel()
            # A blocking run() that got as far as its thread keeps it: say so in the warning.
            in_thread = ctx is not None and plan is not None and plan[2] >= THREAD_CONTEXT
            response = self._timed_out(response_ref, name, in_thread)
        try:
            status_code = self._answer(response_ref, name, plan, response, started)
            if span is not None:
                span.end(status_code)
        finally:
            self._forget(task)

    async def _wait_for_slot(self, slots: Slots, stats: ActionStats) -> None:
        """Wait for a slot of `slots` (none is free), counted in the action's wait metrics."""
        stats.waiting += 1
        began = time.perf_counter()
        try:
            await slots.wait()
        finally:
            stats.waiting -= 1
            waited = time.perf_counter() - began
            stats.record_wait(waited)
            if self.tracer is not None:
                self.tracer.waited(waited)

    def _forget(self, task: asyncio.Task[Any]) -> None:
        """Drop an answered request's task, time limit and expiry mark."""
        self._tasks.pop(task, None)
        self._deadlines.pop(task, None)
        if self._expired:
            self._expired.discard(task)

    def _refusal(self, action_name: Any, fields: Any) -> ActionResponse:
        """The answer to a request that is not run: 503, 400 or 404."""
        if not self._accepting:
            return error_response(503, "The service is shutting down; try again")
        if not isinstance(action_name, str):
            return error_response(400, "The request's action must be a string")
        if action_name not in self._plans:
            return error_response(404, f"Unknown action {truncate(action_name, 100)!r}")
        return error_response(400, "The request's fields must be a JSON object")

    def _raised(self, name: str, response_ref: str) -> ActionResponse:
        """The 500 answer when run() raised (call inside `except`): the traceback is logged."""
        error_id, response = internal_error()
        if self.tracer is not None:
            self.tracer.failed(error_id)
        logger.exception(
            "action %s raised (error id %s, ref %s)",
            name,
            error_id,
            response_ref,
            extra={"action": name, "ref": response_ref, "error_id": error_id},
        )
        return response

    def _not_a_response(self, name: str, response_ref: str, result: Any) -> ActionResponse:
        """The 500 answer when run() returned something else than an `ActionResponse`."""
        error_id, response = internal_error()
        if self.tracer is not None:
            self.tracer.failed(error_id)
        if result is None:
            what = "None (does run() end without `return ActionResponse(...)`?)"
        else:
            what = f"a {type(result).__module__}.{type(result).__qualname__}"
        logger.error(
            "action %s returned %s instead of an ActionResponse (error id %s, ref %s)",
            name,
            what,
            error_id,
            response_ref,
            extra={"action": name, "ref": response_ref, "error_id": error_id},
        )
        return response

    def _timed_out(self, response_ref: str, name: str, in_thread: bool) -> ActionResponse:
        plan = self._plans.get(name)
        limit = plan[1] if plan is not None else self._default_timeout
        threads = self.threads
        logger.warning(
            "action %s ran past its %.3g s time limit (ref %s)%s",
            name,
            limit,
            response_ref,
            f"; its worker thread, if it started, runs on until run() returns ({threads.busy} of "
            f"{threads.size} threads busy, {threads.overrun} past their time limit)"
            if in_thread
            else "",
            extra={"action": name, "ref": response_ref},
        )
        return error_response(504, f"The action did not finish within {limit:g} s")

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
        response: ActionResponse,
        started: float,
    ) -> int:
        """Send the response, then count and log the request with the status sent (`plan` is
        None for an unknown action); returns that status code."""
        duration = time.perf_counter() - started
        replaced = self._respond(response_ref, response.to_payload(), duration)
        if replaced is None:
            status_code, message = response.status_code, response.message
        else:
            status_code, message = replaced["status_code"], replaced["message"]
        if plan is not None:
            stats = plan[3]
        else:
            # Unknown action names are counted under "(unknown)": callers choose them freely.
            if UNKNOWN_ACTION not in self.stats:
                self.stats[UNKNOWN_ACTION] = ActionStats()
            stats = self.stats[UNKNOWN_ACTION]
            name = truncate(name, 100)
        stats.record(status_code, duration, message)
        request_log.write(name, status_code, duration, response_ref)
        return status_code

    async def _run_in_thread(self, instance: ActionRunner, ctx: Context, mode: int) -> Any:
        if mode == THREAD_CONTEXT:
            result = await self.threads.run(ctx, instance.run, ctx)
        else:
            client, websocket = self._context()
            result = await self.threads.run(ctx, instance.run, client, websocket)
        if inspect.isawaitable(result):
            return await result
        return result
