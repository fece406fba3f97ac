"""Exports of the actions for other tools: JSON Schema, OpenAI tools and MCP tools.

Each is built from the action's Pydantic model, so what a tool is told matches what the
service validates; an MCP tool also declares its action's result (`core.model.result`). The
OpenAPI document for the hub's HTTP front is in `core.dev.openapi`.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final, get_args

from pydantic import BaseModel

from core.model.result import result_type
from core.model.runner import ActionRunner
from core.model.schema import ActionSchema

# Tool names the LLM APIs accept: OpenAI functions, and MCP's recommended characters.
OPENAI_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
MCP_NAME: Final = re.compile(r"[A-Za-z0-9_.-]{1,128}")


def json_schemas(actions: Mapping[str, type[ActionSchema]]) -> dict[str, dict[str, Any]]:
    """Every action's JSON Schema (`ActionSchema.json_schema`), keyed by name."""
    return {name: action.json_schema() for name, action in actions.items()}


def parameters_schema(action: type[ActionSchema]) -> dict[str, Any]:
    """The JSON Schema of an action's fields, self-contained, for an LLM tool definition.

    Pydantic's schema minus its top-level ``title`` and ``description`` (the class name and
    docstring: the tool carries its own name and description). Nested models stay in
    ``$defs``, referenced as ``#/$defs/Name``, which resolves inside this object; a nested
    `ActionSchema` is described by its ``description()``, as in the catalog.
    """
    schema = action.model_json_schema()
    schema.pop("title", None)
    schema.pop("description", None)
    schema.pop("type", None)
    schema.setdefault("properties", {})
    nested = {cls.__name__: cls for cls in nested_schemas(action, set())}
    for def_name, definition in schema.get("$defs", {}).items():
        cls = nested.get(def_name)
        if cls is not None and definition.get("title") == def_name:
            definition["description"] = cls.description()
    defs = schema.pop("$defs", None)
    ordered = {"type": "object", **schema}
    if defs is not None:
        ordered["$defs"] = defs
    return ordered


def openai_tool(name: str, action: type[ActionSchema]) -> dict[str, Any]:
    """An OpenAI function-calling tool (Chat Completions ``tools`` entry) for an action."""
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": action.description(),
            "parameters": parameters_schema(action),
        },
    }


def mcp_tool(name: str, action: type[ActionSchema]) -> dict[str, Any]:
    """An MCP tool definition (as listed by ``tools/list``) for an action.

    An action whose result is an object (a Pydantic model, a ``TypedDict``...) declares it as
    the tool's ``outputSchema``; MCP allows only object schemas there, so other results (a
    string, a list) are left undeclared.
    """
    tool = {
        "name": name,
        "description": action.description(),
        "inputSchema": parameters_schema(action),
    }
    if issubclass(action, ActionRunner):
        output = result_type(action).message_schema()
        if output.get("type") == "object":
            tool["outputSchema"] = output
    return tool


def nested_schemas(model: type[BaseModel], seen: set[type[Any]]) -> Iterator[type[ActionSchema]]:
    """Every `ActionSchema` subclass used in `model`'s fields, however deeply nested."""
    for info in model.model_fields.values():
        for cls in _classes_in(info.annotation):
            if cls in seen or not issubclass(cls, ActionSchema):
                continue
            seen.add(cls)
            yield cls
            yield from nested_schemas(cls, seen)


def _classes_in(annotation: Any) -> Iterator[type[Any]]:
    """The classes inside a type annotation: ``list[Address] | None`` -> Address, NoneType."""
    if inspect.isclass(annotation):
        yield annotation
    for argument in get_args(annotation):
        yield from _classes_in(argument)
