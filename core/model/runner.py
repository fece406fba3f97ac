"""`ActionRunner`: an action the hub can call, and how its `run()` is called."""

from __future__ import annotations

import inspect
from abc import abstractmethod
from typing import Any, ClassVar, Final, Literal

from core.model.result import remember_local_names
from core.model.schema import ActionSchema

# The two ways a `run()` may be declared (see `ActionRunner`).
CONTEXT: Final = "context"
CLIENT: Final = "client"
RunConvention = Literal["context", "client"]


class ActionDefinitionError(TypeError):
    """An action class the service cannot serve (its `run()` or its limits are wrong)."""


class ActionRunner(ActionSchema):
    """An action: validated fields plus a `run()` that returns what its caller receives.

    Declare ``async def run(self, ctx: Context) -> Result``: `ctx` carries the request's ref,
    deadline, a logger bound to the request and what the lifespan opened
    (`core.execution.context.Context`), and the return annotation is the action's result
    type (`core.model.result`: a Pydantic model or any JSON-able type; the caller receives
    the result as the answer's message). Raise `ActionError` to answer with an error. A
    plain ``def run(self, ctx)`` is allowed too and runs in a worker thread, so blocking
    work (a database call) never stalls the event loop. The seed's ``run(self, client,
    websocket)`` returning an `ActionResponse` (the `PlugboardClient` and its connection of
    the moment, which may be None) still works; which form a class uses is read from its
    signature once, when the service starts.

    Class settings: ``timeout_seconds`` overrides the service-wide time limit
    (``ACTION_TIMEOUT_SECONDS``); ``max_concurrency`` caps how many requests of this action
    run at once (a bulkhead for a slow downstream), besides the service-wide
    ``MAX_CONCURRENCY``. A request waiting for a slot is counted against its time limit.
    """

    timeout_seconds: ClassVar[float | None] = None
    max_concurrency: ClassVar[int | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # An action defined inside a function (in a test) may name that function's locals in
        # its result type; they are read when the service starts, after the function ended.
        remember_local_names(cls)

    @abstractmethod
    def run(self, *args: Any) -> object:
        """Execute the action and return its result (or an `ActionResponse`):
        ``run(self, ctx)`` (recommended) or ``run(self, client, websocket)`` (the seed's
        form); ``async def`` or ``def``. Each subclass's return annotation is its own result
        type, which mypy checks its ``return`` statements against."""


def run_convention(action: type[ActionRunner]) -> RunConvention:
    """How `action.run` is called, read from its signature: ``"context"`` for
    ``run(self, ctx)``, ``"client"`` for ``run(self, client, websocket)``.

    Raises `ActionDefinitionError` for any other signature, and for class settings out of
    range, naming the class.
    """
    where = f"{action.__module__}.{action.__qualname__}"
    for setting, kind in (("timeout_seconds", float), ("max_concurrency", int)):
        value = getattr(action, setting)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ActionDefinitionError(f"{where}.{setting} must be a positive number or None")
        if kind is int and not isinstance(value, int):
            raise ActionDefinitionError(f"{where}.{setting} must be a whole number or None")
    try:
        parameters = list(inspect.signature(action.run).parameters.values())[1:]
    except (TypeError, ValueError) as error:
        raise ActionDefinitionError(f"{where}.run has no readable signature: {error}") from None
    positional = [
        parameter
        for parameter in parameters
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
    ]
    variadic = any(parameter.kind is parameter.VAR_POSITIONAL for parameter in parameters)
    if not variadic and len(positional) == 1:
        return CONTEXT
    if not variadic and len(positional) == 2:
        return CLIENT
    raise ActionDefinitionError(
        f"{where}.run must take (self, ctx) or, as in the seed, (self, client, websocket); "
        f"it takes {_described(parameters)}"
    )


def _described(parameters: list[inspect.Parameter]) -> str:
    names = ["self", *(str(parameter) for parameter in parameters)]
    return f"({', '.join(names)})"
