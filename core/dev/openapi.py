"""The OpenAPI 3.1 document of the hub's HTTP front, as this service's callers see it.

Callers never reach this service directly: they ``POST /`` to the hub with
``{"service_id", "action", "fields"}`` and an account bearer token, and the hub hands the
request to a replica (protocol page, section 5). The document describes that one operation
for this service's actions:

* the request body is a union with one member per action, told apart by ``action`` (a
  ``oneOf`` with a ``discriminator`` and its mapping), each member's ``fields`` referring to
  that action's JSON Schema as Pydantic generates it (descriptions, defaults, constraints,
  nested models); every schema sits under ``components/schemas``, so a generator makes one
  type per action and per nested model;
* the answers are those of the production front: 200 with ``{"status": "success",
  "message"}``, where the message is the action's result: each action's answer is a schema
  of its own (``GreetAnswer``, its message typed by the action's result type), and the 200
  answer is any of them (one operation cannot tie an answer to the request's action, so a
  client picks the action's answer type itself); 400 with the service's error object (or,
  for the front's own refusals, a sentence); 401, 408, 422 and 502 with a sentence.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

from pydantic import TypeAdapter

from core.dev.exporters import nested_schemas
from core.execution.responses import CODES, MAX_LISTED_ERRORS
from core.model.registry import catalog_hash, catalog_json
from core.model.result import result_type
from core.model.runner import ActionRunner
from core.model.schema import ActionSchema

OPENAPI_VERSION: Final = "3.1.0"
# Where the document points callers when no --server is given: the local hub's front.
DEFAULT_SERVER: Final = "http://localhost:4000"
# What the document shows as a service id when none is given (the hub's ids are integers).
EXAMPLE_SERVICE_ID: Final = 1
SCHEMA_PREFIX: Final = "#/components/schemas/"
SECURITY_SCHEME: Final = "accountToken"
# Component keys must match this (OpenAPI 3.1, "Components Object").
COMPONENT_KEY: Final = re.compile(r"[A-Za-z0-9._-]+")

# What the front answers besides 200, from the hub's request handler. A 400 carries the
# service's error object; the others a sentence of the hub's.
SERVICE_ERROR: Final = (
    "The action answered with an error: the message is its error object (`code` says which: "
    "invalid fields, unknown action, a failure, its time limit...). The front's own 400, for "
    "a body that lacks service_id, action or fields, carries a sentence instead"
)
HUB_ERRORS: Final = {
    "401": "The account token is missing or invalid",
    "408": "No answer from the service within the hub's 30 seconds",
    "422": "The service has no replica connected to the hub (or no such service)",
    "502": "The service answered something the hub could not read",
}


def openapi_document(
    actions: Mapping[str, type[ActionSchema]],
    service_id: int | None = None,
    server: str = DEFAULT_SERVER,
    error_format: str = "object",
) -> dict[str, Any]:
    """The OpenAPI 3.1 document for calling `actions` through the hub's front at `server`.

    `service_id`, when given, becomes the default and example of the request's
    ``service_id``; otherwise the document only says it is an integer. `error_format` is
    the service's ``ERROR_FORMAT``: whether its errors reach the caller as objects or text.
    """
    schemas, fields_keys, results = _schemas(actions)
    members: dict[str, str] = {}
    answers: dict[str, dict[str, Any]] = {}
    for name, action in actions.items():
        key = _free_key(f"{_component_name(name)}Request", schemas)
        schemas[key] = _request_member(name, action, fields_keys[name], service_id)
        members[name] = key
        answer = _free_key(f"{_component_name(name)}Answer", schemas)
        schemas[answer] = _success_answer(name, results.get(name, {}))
        answers[answer] = results.get(name, {})
    union = _free_key("ActionRequest", schemas)
    schemas[union] = _request_union(members)
    success = _free_key("SuccessAnswer", schemas)
    schemas[success] = _success_union(answers)
    error_object = _free_key("ErrorObject", schemas)
    schemas[error_object] = _error_object()
    service_error = _free_key("ErrorAnswer", schemas)
    schemas[service_error] = _error_answer(
        {"anyOf": [{"$ref": SCHEMA_PREFIX + error_object}, {"type": "string"}]}
        if error_format == "object"
        else {"type": "string"}
    )
    hub_error = _free_key("HubErrorAnswer", schemas)
    schemas[hub_error] = _error_answer({"type": "string"})
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Py-Service actions",
            "version": "catalog-" + catalog_hash(catalog_json(_runners(actions))),
            "description": "Calls this service's actions through the Plugboard hub's HTTP "
            "front. The hub hands each request to one replica of the service and returns "
            "its answer. The version is a hash of the action catalog: it changes whenever "
            "an action or one of its fields does.",
        },
        "servers": [{"url": server}],
        "paths": {"/": {"post": _operation(union, success, service_error, hub_error)}},
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An account API token issued by the hub",
                }
            },
        },
        "security": [{SECURITY_SCHEME: []}],
    }


def _runners(actions: Mapping[str, type[ActionSchema]]) -> dict[str, type[ActionRunner]]:
    return {name: action for name, action in actions.items() if issubclass(action, ActionRunner)}


def _schemas(
    actions: Mapping[str, type[ActionSchema]],
) -> tuple[dict[str, Any], dict[str, str], dict[str, dict[str, Any]]]:
    """Every action's fields schema, every result's, and every model they use, keyed for
    components/schemas; the key of each action's fields schema; each action's result schema.

    Pydantic generates them together, so two different models of the same name get two
    keys, and every reference (``$defs`` in a schema of one model) points into
    ``#/components/schemas/`` already.
    """
    models = list(dict.fromkeys(actions.values()))
    inputs: list[tuple[tuple[str, Any], Any, TypeAdapter[Any]]] = [
        (("fields", model), "validation", TypeAdapter(model)) for model in models
    ]
    for name, runner in _runners(actions).items():
        caller_type = result_type(runner).caller_type
        if caller_type is not None:
            inputs.append((("result", name), "serialization", TypeAdapter(caller_type)))
    generated, top = TypeAdapter.json_schemas(inputs, ref_template=SCHEMA_PREFIX + "{model}")
    schemas: dict[str, Any] = top.get("$defs", {})
    fields_keys: dict[str, str] = {}
    for name, action in actions.items():
        key = generated[(("fields", action), "validation")]["$ref"].removeprefix(SCHEMA_PREFIX)
        schemas[key]["description"] = action.description()
        schemas[key].setdefault("properties", {})
        fields_keys[name] = key
    results = {
        name: generated[(("result", name), "serialization")]
        for name in actions
        if (("result", name), "serialization") in generated
    }
    # A nested ActionSchema is described by its description(), as in the catalog; matched by
    # title, which is its class name, when that name is not ambiguous.
    nested: dict[str, list[type[ActionSchema]]] = {}
    for cls in _every_nested(models):
        nested.setdefault(cls.__name__, []).append(cls)
    actions_keys = set(fields_keys.values())
    for key, schema in schemas.items():
        classes = [] if key in actions_keys else nested.get(schema.get("title", ""), [])
        if len(classes) == 1:
            schema["description"] = classes[0].description()
    return schemas, fields_keys, results


def _every_nested(models: list[type[ActionSchema]]) -> Iterator[type[ActionSchema]]:
    """Every `ActionSchema` nested in `models`' fields, each once."""
    seen: set[type[Any]] = set(models)
    for model in models:
        yield from nested_schemas(model, seen)


def _request_member(
    name: str, action: type[ActionSchema], fields_key: str, service_id: int | None
) -> dict[str, Any]:
    """The request body that calls action `name`."""
    service: dict[str, Any] = {
        "type": "integer",
        "minimum": 1,
        "description": "This service's id on the hub",
        "examples": [service_id if service_id is not None else EXAMPLE_SERVICE_ID],
    }
    if service_id is not None:
        service["default"] = service_id
    return {
        "type": "object",
        "title": f"{name} request",
        "description": action.description(),
        "properties": {
            "service_id": service,
            # The default lets generated clients fill in the one possible value.
            "action": {
                "type": "string",
                "const": name,
                "default": name,
                "description": "The action to run",
            },
            "fields": {"$ref": SCHEMA_PREFIX + fields_key},
        },
        "required": ["service_id", "action", "fields"],
    }


def _request_union(members: Mapping[str, str]) -> dict[str, Any]:
    """One request body for every action: ``action`` selects the member."""
    refs = {name: SCHEMA_PREFIX + key for name, key in members.items()}
    union: dict[str, Any] = {
        "description": "A call of one action: `action` names it and `fields` are its fields.",
        "oneOf": [{"$ref": ref} for ref in refs.values()],
    }
    if refs:
        union["discriminator"] = {"propertyName": "action", "mapping": refs}
    else:
        # No actions: no request can succeed, but the document stays valid.
        union["not"] = {}
        del union["oneOf"]
    return union


def _success_answer(name: str, message: dict[str, Any]) -> dict[str, Any]:
    """What the front answers a successful call of action `name`: its result as the message
    (`message` is the result's schema; ``{}`` for an action whose message may be anything)."""
    return {
        "type": "object",
        "title": f"{name} answer",
        "description": f"A successful call of {name}: its result is the message.",
        "properties": {
            "status": {"type": "string", "const": "success"},
            "message": {"description": f"What {name} returns", **message},
        },
        "required": ["status", "message"],
    }


def _success_union(answers: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The 200 answer: one of the actions' answers (keyed by component, with their message
    schemas). Generated clients try the members in order and keep the first that reads the
    body, so the narrowest messages come first: models, then objects, lists, single values,
    and last the messages that may be anything."""
    if not answers:
        return _success_answer("an action", {})
    ordered = sorted(answers, key=lambda key: _breadth(answers[key]))
    return {
        "description": "A successful call: the answer of the action called (each action's "
        "answer is a schema of its own, named after it).",
        "anyOf": [{"$ref": SCHEMA_PREFIX + answer} for answer in ordered],
    }


def _breadth(schema: Mapping[str, Any]) -> int:
    """How much a message schema admits, coarsely: a model, an object, a list, one value,
    anything."""
    if "$ref" in schema:
        return 0
    kind = schema.get("type")
    if kind == "object":
        return 1
    if kind == "array":
        return 2
    if kind is not None:
        return 3
    return 4


def _error_object() -> dict[str, Any]:
    """The service's error object (``ERROR_FORMAT=object``)."""
    codes = "; ".join(
        f"{code} ({status}{', retryable' if retryable else ''}): {meaning}"
        for code, (status, retryable, meaning) in CODES.items()
    )
    return {
        "type": "object",
        "description": "An error the service answered. The framework's codes: "
        f"{codes}. An action's own errors carry a code of its choosing (by default the HTTP "
        "name of its status code, such as NOT_FOUND) and may carry more keys.",
        "properties": {
            "code": {"type": "string", "description": "What went wrong, to branch on"},
            "error": {"type": "string", "description": "What went wrong, for people"},
            "retryable": {
                "type": "boolean",
                "description": "Whether the same request may succeed if sent again",
            },
            "errors": {
                "type": "array",
                "description": "INVALID_FIELDS: each invalid field and why (the first "
                f"{MAX_LISTED_ERRORS}; more_errors counts the others)",
                "items": {
                    "type": "object",
                    "properties": {
                        "field": {"type": "string", "description": "Its path, dotted"},
                        "message": {"type": "string"},
                        "type": {"type": "string", "description": "Pydantic's error type"},
                    },
                    "required": ["field", "message", "type"],
                },
            },
            "more_errors": {
                "type": "integer",
                "description": "INVALID_FIELDS: how many errors `errors` leaves out (only "
                "when it leaves some out)",
            },
            "error_id": {
                "type": "string",
                "description": "INTERNAL_ERROR: finds the details in the service's log",
            },
        },
        "required": ["code", "error", "retryable"],
        "additionalProperties": True,
    }


def _error_answer(message: dict[str, Any]) -> dict[str, Any]:
    """What the front answers an error with: ``{"status": "error", "message"}``."""
    return {
        "type": "object",
        "description": "The call failed: the message says why.",
        "properties": {
            "status": {"type": "string", "const": "error"},
            "message": message,
        },
        "required": ["status", "message"],
    }


def _operation(union: str, success: str, service_error: str, hub_error: str) -> dict[str, Any]:
    """``POST /``: the one operation of the front."""

    def answer(description: str, key: str) -> dict[str, Any]:
        return {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": SCHEMA_PREFIX + key}}},
        }

    responses = {
        "200": answer("The action succeeded: its result is the message", success),
        "400": answer(SERVICE_ERROR, service_error),
    }
    for code, description in HUB_ERRORS.items():
        responses[code] = answer(description, hub_error)
    return {
        "operationId": "callAction",
        "summary": "Call one of the service's actions",
        "description": "The hub waits up to 30 seconds for the service's answer. The body "
        "must be JSON; a body that is not JSON is answered 400 by the web framework itself, "
        'with `{"errors": {"detail": "Bad Request"}}`.',
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": SCHEMA_PREFIX + union}}},
        },
        "responses": responses,
    }


def _component_name(name: str) -> str:
    """`name` with the characters a component key cannot hold replaced by ``_``."""
    return "".join(c if COMPONENT_KEY.fullmatch(c) else "_" for c in name) or "_"


def _free_key(wanted: str, taken: Mapping[str, Any]) -> str:
    """`wanted`, or `wanted` with the first free number appended."""
    key, number = wanted, 2
    while key in taken:
        key, number = f"{wanted}{number}", number + 1
    return key
