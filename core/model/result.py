"""What an action gives its callers: the result type declared by `run()`'s return annotation.

The hub's front forwards only ``status`` and ``message`` to a caller (protocol page, section
5), so an action's result travels in ``message``. An action declares its result the way a
typed Python function does, with the return annotation of ``run()``, which mypy checks
against every ``return`` and which the framework reads once, at start-up:

* ``-> Note`` (a Pydantic model, or any type Pydantic can validate: ``int``,
  ``list[str]``, a ``TypedDict``, ``None``...): ``run()`` returns the result itself; the
  framework validates it against the type, encodes it as JSON and sends it as the message
  of a 200 answer.
* ``-> ActionResponse[Note]``: the same result, with a status code of the action's own
  (``ActionResponse[Note](status_code=201, message=note)``); a 2xx answer's message is
  validated as a `Note`.
* ``-> ActionResponse``: the seed's form: the message and `fields` are sent as they are.
* ``-> Note | ActionResponse``: either of the above, told apart by what ``run()`` returns.

Without an annotation any `ActionResponse` is sent as it is and any other value as a JSON
message (None is refused: it is almost always a missing ``return``).
"""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any, Union
from weakref import WeakKeyDictionary

from pydantic import TypeAdapter

from core.model.response import ActionResponse

# The local names of the function each class defined inside one was defined in (a test's
# action, say): its annotations may name them, and they are gone once the function returns.
_LOCAL_NAMES: WeakKeyDictionary[type[Any], dict[str, Any]] = WeakKeyDictionary()


def remember_local_names(cls: type[Any]) -> None:
    """Keep the names visible where `cls` is being defined, when that is inside a function
    (call from ``__init_subclass__``), so that its annotations resolve later."""
    qualname = cls.__qualname__
    if ".<locals>." not in qualname:
        return
    function = qualname.rsplit(".<locals>.", 1)[0]
    frame = inspect.currentframe()
    try:
        while frame is not None:
            if frame.f_code.co_qualname == function:
                _LOCAL_NAMES[cls] = dict(frame.f_locals)
                return
            frame = frame.f_back
    finally:
        del frame


class ResultTypeError(TypeError):
    """The return annotation of an action's ``run()`` cannot be used as its result type."""


@dataclass(frozen=True, slots=True)
class ResultType:
    """How an action's return value becomes the message its caller receives."""

    declared: bool
    """Whether ``run()`` has a return annotation."""
    value: TypeAdapter[Any] | None
    """Validates a result returned directly (None: only an `ActionResponse` may be)."""
    message: TypeAdapter[Any] | None
    """Validates a successful `ActionResponse`'s message (None: it is sent as it is)."""
    caller_type: Any = None
    """The type of the message a successful answer carries (None: any JSON value)."""

    def encode(self, result: Any) -> Any:
        """`result`, returned directly by ``run()``, as the JSON value of the message.

        Raises `ValueError` (Pydantic's `ValidationError` is one) when it does not match
        the declared type, and `TypeError` when no plain result is allowed.
        """
        adapter = self.value
        if adapter is None:
            raise TypeError("its run() is declared to return an ActionResponse")
        if result is None and not self.declared:
            raise TypeError("run() returned None: does it end without a `return`?")
        return adapter.dump_python(adapter.validate_python(result), mode="json")

    def encode_message(self, message: Any) -> Any:
        """A successful `ActionResponse`'s message as the JSON value sent to the caller."""
        adapter = self.message
        if adapter is None:
            return message
        return adapter.dump_python(adapter.validate_python(message), mode="json")

    def message_schema(self) -> dict[str, Any]:
        """The JSON Schema of the message a caller receives from a successful answer
        (``{}`` when any JSON value can be)."""
        if self.caller_type is None:
            return {}
        return TypeAdapter(self.caller_type).json_schema(mode="serialization")


@cache
def result_type(action: type[Any]) -> ResultType:
    """The result type of `action` (an `ActionRunner` subclass), read from ``run()``.

    Raises `ResultTypeError` when the annotation names something that cannot be found at
    run time (an import made only under ``TYPE_CHECKING``) or that Pydantic cannot validate.
    """
    annotation = _return_annotation(action)
    if annotation is inspect.Signature.empty:
        return ResultType(declared=False, value=_adapter(action, Any), message=None)
    members = list(_union_members(annotation))
    responses = [member for member in members if _is_response(member)]
    values = [member for member in members if not _is_response(member)]
    value = _adapter(action, _union(values)) if values else None
    message_types = [
        arguments[0]
        for member in responses
        if (arguments := _response_arguments(member)) and arguments[0] is not Any
    ]
    message = _adapter(action, _union(message_types)) if message_types else None
    # A bare ActionResponse may carry any message: then so may a successful answer.
    untyped = len(message_types) < len(responses)
    caller_type = None if untyped or Any in values else _union(values + message_types)
    return ResultType(declared=True, value=value, message=message, caller_type=caller_type)


def _return_annotation(action: type[Any]) -> Any:
    """``run()``'s return annotation, resolved in the namespace of its module, of the function
    its class was defined in (if any) and of its class."""
    owner = next((cls for cls in action.__mro__ if "run" in vars(cls)), action)
    function = inspect.unwrap(vars(owner)["run"])
    raw = getattr(function, "__annotations__", {}).get("return", inspect.Signature.empty)
    if raw is inspect.Signature.empty:
        return raw

    def probe() -> None:
        """Carries the one annotation to resolve (the others may name what is not there)."""

    probe.__annotations__ = {"return": raw}
    try:
        hints = typing.get_type_hints(
            probe,
            globalns=getattr(function, "__globals__", {}),
            localns={**_LOCAL_NAMES.get(owner, {}), **vars(owner)},
            include_extras=True,
        )
    except Exception as error:  # NameError, SyntaxError, TypeError: all say the same
        raise ResultTypeError(
            f"the return annotation of {_where(action)}.run(), {raw!r}, cannot be resolved "
            f"when the service runs ({type(error).__name__}: {error}); import what it names "
            "outside `if TYPE_CHECKING:`"
        ) from None
    return hints["return"]


def _union_members(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return list(typing.get_args(annotation))
    return [annotation]


def _union(members: list[Any]) -> Any:
    return members[0] if len(members) == 1 else Union[tuple(members)]  # noqa: UP007


def _is_response(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, ActionResponse)


def _response_arguments(annotation: type[ActionResponse]) -> tuple[Any, ...]:
    """The type argument of a parametrized ``ActionResponse[T]`` (empty when bare)."""
    return tuple(annotation.__pydantic_generic_metadata__["args"])


def _adapter(action: type[Any], annotation: Any) -> TypeAdapter[Any]:
    try:
        return TypeAdapter(annotation)
    except Exception as error:  # Pydantic's schema errors are of several kinds
        raise ResultTypeError(
            f"the return annotation of {_where(action)}.run() is not a type Pydantic can "
            f"validate: {type(error).__name__}: {error}"
        ) from None


def _where(action: type[Any]) -> str:
    return f"{action.__module__}.{action.__qualname__}"
