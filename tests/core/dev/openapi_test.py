"""Tests of the OpenAPI document (core/dev/openapi.py), in-process.

Every document is checked with openapi-spec-validator (pinned in requirements-test.txt), and
every reference in it is resolved here as well; request bodies are checked against the
document's own schemas with the OpenAPI 3.1 schema validator that comes with it.
"""

from __future__ import annotations

import copy
import unittest
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from pydantic import Field

from core.dev.openapi import DEFAULT_SERVER, SECURITY_SCHEME, openapi_document
from core.model.response import ActionResponse
from core.model.runner import ActionRunner
from core.model.schema import ActionSchema
from tests.core.dev.cli_support import ACTIONS

REF_PREFIX = "#/components/schemas/"


class Point(ActionSchema):
    lat: float = Field(ge=-90, le=90, description="Latitude")
    lon: float = Field(ge=-180, le=180, description="Longitude")

    @classmethod
    def description(cls) -> str:
        return "A point on the map"


class Stop(ActionSchema):
    """The docstring, which the catalog does not use."""

    name: str = Field(description="What the stop is called")
    at: Point = Field(description="Where it is")
    wait_minutes: int = Field(default=0, ge=0, description="How long to stay")

    @classmethod
    def description(cls) -> str:
        return "A stop on a route"


class PlanRoute(ActionRunner):
    """Plans a route (the docstring)."""

    title: str = Field(min_length=1, description="The route's name")
    stops: list[Stop] = Field(min_length=1, description="Where to go, in order")
    tags: list[str] = Field(default_factory=list, description="Labels")
    mode: Literal["walk", "drive"] = Field(default="walk", description="How to travel")
    note: str | None = Field(default=None, description="Anything else")
    home: Stop | None = Field(default=None, description="Where to end, if not the last stop")

    @classmethod
    def description(cls) -> str:
        return "Plans a route through the stops"

    async def run(self, client: Any, websocket: Any) -> ActionResponse:
        return ActionResponse(message=self.title)


class Heartbeat(ActionRunner):
    @classmethod
    def description(cls) -> str:
        return "Answers when the service is up (no fields)"

    async def run(self, client: Any, websocket: Any) -> ActionResponse:
        return ActionResponse(message="up")


class Namespaced(ActionRunner):
    count: int = Field(default=1, description="How many")

    @classmethod
    def description(cls) -> str:
        return "An action whose hub name is not a valid component key"

    @classmethod
    def discriminator(cls) -> str:
        return "tools/count"

    async def run(self, client: Any, websocket: Any) -> ActionResponse:
        return ActionResponse()


FIXTURE_ACTIONS: dict[str, type[ActionRunner]] = {
    "PlanRoute": PlanRoute,
    "Heartbeat": Heartbeat,
    "tools/count": Namespaced,
}


def two_models_named_item() -> dict[str, type[ActionRunner]]:
    """Two actions whose nested models are different classes that share the name ``Item``."""

    def first() -> type[ActionRunner]:
        class Item(ActionSchema):
            sku: str = Field(description="Stock keeping unit")

            @classmethod
            def description(cls) -> str:
                return "An item by SKU"

        class Order(ActionRunner):
            item: Item

            @classmethod
            def description(cls) -> str:
                return "Orders an item"

            async def run(self, client: Any, websocket: Any) -> ActionResponse:
                return ActionResponse()

        return Order

    def second() -> type[ActionRunner]:
        class Item(ActionSchema):
            label: str = Field(description="A free-form label")

            @classmethod
            def description(cls) -> str:
                return "An item by label"

        class Tag(ActionRunner):
            item: Item

            @classmethod
            def description(cls) -> str:
                return "Tags an item"

            async def run(self, client: Any, websocket: Any) -> ActionResponse:
                return ActionResponse()

        return Tag

    return {"Order": first(), "Tag": second()}


def refs_in(value: Any) -> Iterator[str]:
    """Every ``$ref`` and every discriminator mapping target inside `value`."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                yield item
            elif key == "discriminator" and isinstance(item, Mapping):
                yield from item.get("mapping", {}).values()
            else:
                yield from refs_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from refs_in(item)


def resolve(document: Mapping[str, Any], ref: str) -> Any:
    """The target of a local reference (``#/a/b``) in `document`; KeyError if there is none."""
    if not ref.startswith("#/"):
        raise KeyError(f"{ref} does not point inside the document")
    target: Any = document
    for part in ref[2:].split("/"):
        target = target[part.replace("~1", "/").replace("~0", "~")]
    return target


class OpenApiDocumentTest(unittest.TestCase):
    def document(self, actions: Mapping[str, type[ActionRunner]], **options: Any) -> dict[str, Any]:
        """The document for `actions`, after checking it as a generator would need it."""
        document = openapi_document(actions, **options)
        validate(document, cls=OpenAPIV31SpecValidator)
        for ref in refs_in(document):
            with self.subTest(ref=ref):
                self.assertIsInstance(resolve(document, ref), dict)
        self.assertNotIn("$defs", str(document))
        return document

    def request_errors(self, document: Mapping[str, Any], body: Any) -> list[str]:
        """What the document's request schema says is wrong with `body` (empty: valid)."""
        root = {**document, "$ref": REF_PREFIX + "ActionRequest"}
        return [error.message for error in OAS31Validator(root).iter_errors(body)]

    def schema(self, document: Mapping[str, Any], key: str) -> dict[str, Any]:
        schema: dict[str, Any] = document["components"]["schemas"][key]
        return schema

    def test_the_projects_actions(self) -> None:
        document = self.document(ACTIONS)
        union = self.schema(document, "ActionRequest")
        self.assertEqual(union["discriminator"]["propertyName"], "action")
        self.assertEqual(list(union["discriminator"]["mapping"]), list(ACTIONS))
        self.assertEqual(len(union["oneOf"]), len(ACTIONS))
        for name, action in ACTIONS.items():
            with self.subTest(action=name):
                member = resolve(document, union["discriminator"]["mapping"][name])
                self.assertEqual(member["description"], action.description())
                self.assertEqual(member["properties"]["action"]["const"], name)
                self.assertEqual(member["required"], ["service_id", "action", "fields"])
                fields = resolve(document, member["properties"]["fields"]["$ref"])
                expected = action.model_json_schema()["properties"]
                self.assertEqual(set(fields["properties"]), set(expected))

    def test_nested_models_lists_defaults_and_optional_fields(self) -> None:
        document = self.document(FIXTURE_ACTIONS)
        mapping = self.schema(document, "ActionRequest")["discriminator"]["mapping"]
        member = resolve(document, mapping["PlanRoute"])
        route = resolve(document, member["properties"]["fields"]["$ref"])
        self.assertEqual(route["description"], "Plans a route through the stops")
        self.assertEqual(route["required"], ["title", "stops"])
        properties = route["properties"]
        self.assertEqual(properties["title"]["minLength"], 1)
        self.assertEqual(properties["tags"]["items"], {"type": "string"})
        self.assertEqual(properties["mode"]["default"], "walk")
        self.assertEqual(properties["mode"]["enum"], ["walk", "drive"])
        self.assertIsNone(properties["note"]["default"])
        # A list of nested models, and a nested model inside that one.
        stop = resolve(document, properties["stops"]["items"]["$ref"])
        self.assertEqual(
            stop["description"], "A stop on a route"
        )  # description(), as in the catalog
        self.assertEqual(stop["properties"]["wait_minutes"]["default"], 0)
        point = resolve(document, stop["properties"]["at"]["$ref"])
        self.assertEqual(point["description"], "A point on the map")
        self.assertEqual(point["properties"]["lat"]["maximum"], 90)
        # An optional nested model refers to the same component.
        optional = [option.get("$ref") for option in properties["home"]["anyOf"]]
        self.assertIn(properties["stops"]["items"]["$ref"], optional)

    def test_an_action_with_no_fields(self) -> None:
        document = self.document(FIXTURE_ACTIONS)
        mapping = self.schema(document, "ActionRequest")["discriminator"]["mapping"]
        fields = resolve(
            document, resolve(document, mapping["Heartbeat"])["properties"]["fields"]["$ref"]
        )
        self.assertEqual(fields["properties"], {})
        self.assertEqual(fields.get("required", []), [])

    def test_the_action_selects_the_fields(self) -> None:
        document = self.document(FIXTURE_ACTIONS, service_id=3)
        stop = {"name": "Harbour", "at": {"lat": 51.5, "lon": -0.1}}
        good = {"service_id": 3, "action": "PlanRoute", "fields": {"title": "x", "stops": [stop]}}
        self.assertEqual(self.request_errors(document, good), [])
        heartbeat = {"service_id": 3, "action": "Heartbeat", "fields": {}}
        self.assertEqual(self.request_errors(document, heartbeat), [])
        bad_bodies = {
            "PlanRoute's fields missing": {**good, "fields": {"title": "x"}},
            "nested field out of range": {
                **good,
                "fields": {"title": "x", "stops": [{**stop, "at": {"lat": 99, "lon": 0}}]},
            },
            "unknown action": {**good, "action": "Nope"},
            "no service_id": {"action": "Heartbeat", "fields": {}},
            "service_id not an integer": {**heartbeat, "service_id": "three"},
        }
        for case, body in bad_bodies.items():
            with self.subTest(case=case):
                self.assertNotEqual(self.request_errors(document, body), [])

    def test_responses_and_security_match_the_front(self) -> None:
        document = self.document(FIXTURE_ACTIONS)
        operation = document["paths"]["/"]["post"]
        self.assertEqual(set(operation["responses"]), {"200", "400", "401", "408", "422", "502"})
        for code, response in operation["responses"].items():
            with self.subTest(code=code):
                schema = resolve(
                    document, response["content"]["application/json"]["schema"]["$ref"]
                )
                answers = (
                    [resolve(document, member["$ref"]) for member in schema["anyOf"]]
                    if ("anyOf" in schema)
                    else [schema]
                )
                for answer in answers:
                    self.assertEqual(answer["required"], ["status", "message"])
                    status = "success" if code == "200" else "error"
                    self.assertEqual(answer["properties"]["status"]["const"], status)
        scheme = document["components"]["securitySchemes"][SECURITY_SCHEME]
        self.assertEqual((scheme["type"], scheme["scheme"]), ("http", "bearer"))
        self.assertEqual(document["security"], [{SECURITY_SCHEME: []}])

    def test_each_answer_carries_its_actions_result_type(self) -> None:
        document = self.document(ACTIONS)
        schemas = document["components"]["schemas"]

        def message(action: str) -> dict[str, Any]:
            schema: dict[str, Any] = schemas[f"{action}Answer"]["properties"]["message"]
            return schema

        self.assertEqual(message("Greet")["$ref"], REF_PREFIX + "Greeting")
        self.assertEqual(schemas["Greeting"]["properties"]["greeting"]["type"], "string")
        self.assertEqual(message("FormatAddress")["items"], {"type": "string"})
        self.assertEqual(message("BlockingSum")["type"], "number")
        self.assertNotIn("type", message("SeedEcho"))  # the seed's message: any value
        union = schemas["SuccessAnswer"]["anyOf"]
        self.assertEqual(len(union), len(ACTIONS))
        # Models first, the messages that may be anything last.
        self.assertEqual(union[0], {"$ref": REF_PREFIX + "GreetAnswer"})
        self.assertEqual(union[-1], {"$ref": REF_PREFIX + "SeedEchoAnswer"})

    def test_errors_are_the_service_s_error_object(self) -> None:
        document = self.document(ACTIONS)
        schemas = document["components"]["schemas"]
        message = schemas["ErrorAnswer"]["properties"]["message"]
        self.assertEqual(message["anyOf"][0], {"$ref": REF_PREFIX + "ErrorObject"})
        error_object = schemas["ErrorObject"]
        self.assertEqual(error_object["required"], ["code", "error", "retryable"])
        self.assertIn("INVALID_FIELDS", error_object["description"])
        for code in ("401", "408", "422", "502"):
            answer = document["paths"]["/"]["post"]["responses"][code]
            self.assertEqual(
                answer["content"]["application/json"]["schema"]["$ref"],
                REF_PREFIX + "HubErrorAnswer",
            )
        text = self.document(ACTIONS, error_format="text")["components"]["schemas"]
        self.assertEqual(text["ErrorAnswer"]["properties"]["message"], {"type": "string"})

    def test_service_id_and_server(self) -> None:
        default = self.document(FIXTURE_ACTIONS)
        self.assertEqual(default["servers"], [{"url": DEFAULT_SERVER}])
        member = self.schema(default, "HeartbeatRequest")["properties"]["service_id"]
        self.assertNotIn("default", member)
        self.assertEqual(member["type"], "integer")
        chosen = self.document(FIXTURE_ACTIONS, service_id=42, server="https://hub.example.com")
        self.assertEqual(chosen["servers"], [{"url": "https://hub.example.com"}])
        member = self.schema(chosen, "HeartbeatRequest")["properties"]["service_id"]
        self.assertEqual((member["default"], member["examples"]), (42, [42]))

    def test_hub_names_that_are_not_component_keys(self) -> None:
        document = self.document(FIXTURE_ACTIONS)
        mapping = self.schema(document, "ActionRequest")["discriminator"]["mapping"]
        self.assertEqual(mapping["tools/count"], REF_PREFIX + "tools_countRequest")
        member = resolve(document, mapping["tools/count"])
        self.assertEqual(member["properties"]["action"]["const"], "tools/count")

    def test_two_nested_models_with_one_name(self) -> None:
        document = self.document(two_models_named_item())
        mapping = self.schema(document, "ActionRequest")["discriminator"]["mapping"]
        items = {}
        for name in ("Order", "Tag"):
            fields = resolve(
                document, resolve(document, mapping[name])["properties"]["fields"]["$ref"]
            )
            items[name] = fields["properties"]["item"]["$ref"]
        self.assertNotEqual(items["Order"], items["Tag"])
        self.assertEqual(list(resolve(document, items["Order"])["properties"]), ["sku"])
        self.assertEqual(list(resolve(document, items["Tag"])["properties"]), ["label"])

    def test_no_actions_is_still_a_valid_document(self) -> None:
        document = self.document({})
        body = {"service_id": 1, "action": "Anything", "fields": {}}
        self.assertNotEqual(self.request_errors(document, body), [])

    def test_version_follows_the_catalog(self) -> None:
        one = openapi_document(FIXTURE_ACTIONS)["info"]["version"]
        self.assertEqual(openapi_document(dict(FIXTURE_ACTIONS))["info"]["version"], one)
        fewer = {"Heartbeat": Heartbeat}
        self.assertNotEqual(openapi_document(fewer)["info"]["version"], one)

    def test_the_checks_catch_a_dangling_reference(self) -> None:
        # The checks above can fail: a reference to a component that is not there.
        document = copy.deepcopy(openapi_document(FIXTURE_ACTIONS))
        del document["components"]["schemas"]["Point"]
        with self.assertRaises(KeyError):
            for ref in refs_in(document):
                resolve(document, ref)
        with self.assertRaisesRegex(Exception, "Point"):
            validate(document, cls=OpenAPIV31SpecValidator)

    def test_leaves_the_actions_json_schema_alone(self) -> None:
        before = PlanRoute.json_schema()
        openapi_document(FIXTURE_ACTIONS)
        self.assertEqual(PlanRoute.json_schema(), before)


if __name__ == "__main__":
    unittest.main()
