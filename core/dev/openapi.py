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
  "message"}``; 400, 401, 408, 422 and 502 with ``{"status": "error", "message"}``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

from pydantic.json_schema import models_json_schema

from core import json_codec
from core.dev.exporters import nested_schemas
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

# What the front answers besides 200, from the hub's request handler.
ERROR_ANSWERS: Final = {
    "400": "The action answered with an error (invalid fields, unknown action, a failure or "
    "its time limit: the message says which), or the body lacks service_id, action or fields",
    "401": "The account token is missing or invalid",
    "408": "No answer from the service within the hub's 30 seconds",
    "422": "The service has no replica connected to the hub (or no such service)",
    "502": "The service answered something the hub could not read",
}


def openapi_document(
    actions: Mapping[str, type[ActionSchema]],
    service_id: int | None = None,
    server: str = DEFAULT_SERVER,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document for calling `actions` through the hub's front at `server`.

    `service_id`, when given, becomes the default and example of the request's
    ``service_id``; otherwise the document only says it is an integer.
    """
    schemas, fields_keys = _field_schemas(actions)
    members: dict[str, str] = {}
    for name, action in actions.items():
        key = _free_key(f"{_component_name(name)}Request", schemas)
        schemas[key] = _request_member(name, action, fields_keys[name], service_id)
        members[name] = key
    union = _free_key("ActionRequest", schemas)
    schemas[union] = _request_union(members)
    success = _free_key("SuccessAnswer", schemas)
    schemas[success] = _answer_schema("success")
    failure = _free_key("ErrorAnswer", schemas)
    schemas[failure] = _answer_schema("error")
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Py-Service actions",
            "version": _catalog_version(actions),
            "description": "Calls this service's actions through the Plugboard hub's HTTP "
            "front. The hub hands each request to one replica of the service and returns "
            "its answer. The version is a hash of the action catalog: it changes whenever "
            "an action or one of its fields does.",
        },
        "servers": [{"url": server}],
        "paths": {"/": {"post": _operation(union, success, failure)}},
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


def _field_schemas(
    actions: Mapping[str, type[ActionSchema]],
) -> tuple[dict[str, Any], dict[str, str]]:
    """Every action's fields schema and every nested model, keyed for components/schemas,
    and the key of each action's fields schema.

    Pydantic generates them together, so two different models of the same name get two
    keys, and every reference (``$defs`` in a schema of one model) points into
    ``#/components/schemas/`` already.
    """
    models = list(dict.fromkeys(actions.values()))
    refs, top = models_json_schema(
        [(model, "validation") for model in models], ref_template=SCHEMA_PREFIX + "{model}"
    )
    schemas: dict[str, Any] = top.get("$defs", {})
    fields_keys: dict[str, str] = {}
    for name, action in actions.items():
        key = refs[(action, "validation")]["$ref"].removeprefix(SCHEMA_PREFIX)
        schemas[key]["description"] = action.description()
        schemas[key].setdefault("properties", {})
        fields_keys[name] = key
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
    return schemas, fields_keys


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


def _answer_schema(status: str) -> dict[str, Any]:
    """What the front answers: ``{"status", "message"}``."""
    success = status == "success"
    return {
        "type": "object",
        "description": (
            "The action succeeded: its message."
            if success
            else "The call failed: the message says why."
        )
        + " (The local hub adds the action's status_code and fields; production hubs do not.)",
        "properties": {
            "status": {"type": "string", "const": status},
            "message": {
                "type": ["string", "null"],
                "description": "The action's message" if success else "What went wrong",
            },
        },
        "required": ["status", "message"],
    }


def _operation(union: str, success: str, failure: str) -> dict[str, Any]:
    """``POST /``: the one operation of the front."""

    def answer(description: str, key: str) -> dict[str, Any]:
        return {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": SCHEMA_PREFIX + key}}},
        }

    responses = {"200": answer("The action succeeded", success)}
    for code, description in ERROR_ANSWERS.items():
        responses[code] = answer(description, failure)
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


def _catalog_version(actions: Mapping[str, type[ActionSchema]]) -> str:
    """A short hash of the catalog the service announces to the hub."""
    catalog = json_codec.dumps({name: action.to_dict() for name, action in actions.items()})
    return "catalog-" + hashlib.sha256(catalog.encode()).hexdigest()[:12]
