"""Code written for the seed (Vera-Py-Service) runs unchanged: its model API, module paths
and names, and a project of its style served end to end (tests/fixtures/seed_project)."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import unittest
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

from pydantic import Field, SecretStr, ValidationError

from core.action_registry import ActionRegistry
from core.action_response import ActionResponse
from core.action_runner import ActionRunner
from core.action_schema import ActionSchema
from core.dev.local_hub.hub import LocalHub
from core.plugboard_client import PlugboardClient
from events.request_event import RequestEvent
from schemas.service import Service
from schemas.token import Token
from tests.fixtures.seed_project import ACTIONS_FOLDER as SEED_ACTIONS
from tests.support import wait_until

# The seed's ActionRegistry.json() of tests/fixtures/seed_project/actions, as the seed's
# code writes it (the standard library's separators; actions in name order, one module).
SEED_CATALOG_JSON = (
    '{"Baz": {"description": "Moves a point to the right", "fields": {"point": {"type": '
    '"Point", "description": "A point", "fields": {"x": {"type": "integer", "description": '
    '"Horizontal position"}, "y": {"type": "integer", "description": "Vertical position", '
    '"default": 0}}}, "label": {"type": null, "description": "A label", "default": null}, '
    '"steps": {"type": "array", "description": "Steps to the right", "default": []}}}, '
    '"Foo": {"description": "Joins foo and bar", "fields": {"foo": {"type": "string", '
    '"description": "The foo value", "default": "Foo"}, "bar": {"type": "string", '
    '"description": "The bar value"}}}}'
)


class Flat(ActionSchema):
    name: str = Field(description="A name")
    count: int = Field(description="A count", default=3)

    @classmethod
    def description(cls) -> str:
        return "Flat"


class Nested(ActionSchema):
    flat: Flat = Field(description="ignored: the nested schema describes itself")

    @classmethod
    def description(cls) -> str:
        return "Nested"

    @classmethod
    def discriminator(cls) -> str:
        return "nested"


class SchemaShapesTest(unittest.TestCase):
    def test_to_dict_is_keyed_by_the_discriminator(self) -> None:
        flat_entry = {
            "description": "Flat",
            "fields": {
                "name": {"type": "string", "description": "A name"},
                "count": {"type": "integer", "description": "A count", "default": 3},
            },
        }
        self.assertEqual(Flat.to_dict(), {"Flat": flat_entry})
        self.assertEqual(
            Nested.to_dict(),
            {
                "nested": {
                    "description": "Nested",
                    "fields": {"flat": {"type": "Flat", **flat_entry}},
                }
            },
        )
        # How a seed project assembles a catalog by hand: no entry loses its name.
        self.assertEqual(list({**Flat.to_dict(), **Nested.to_dict()}), ["Flat", "nested"])

    def test_to_json_takes_an_indent(self) -> None:
        self.assertEqual(json.loads(Nested.to_json()), Nested.to_dict())
        self.assertEqual(Flat.to_json(indent=2), json.dumps(Flat.to_dict(), indent=2))
        self.assertIn('\n    "description": "Flat"', Flat.to_json(indent=2))


class ActionRegistryTest(unittest.TestCase):
    def test_valid_action_types(self) -> None:
        self.assertEqual(ActionRegistry.valid_action_types(), [ActionSchema, ActionRunner])

    def test_discover_by_kind(self) -> None:
        runners = ActionRegistry.discover(SEED_ACTIONS, ActionRunner)
        self.assertEqual(list(runners), ["Baz", "Foo"])
        self.assertTrue(all(issubclass(cls, ActionRunner) for cls in runners.values()))
        # ActionSchema: the schemas that are not actions (the seed's direct subclasses).
        self.assertEqual(list(ActionRegistry.discover(SEED_ACTIONS, ActionSchema)), ["Point"])
        self.assertEqual(ActionRegistry.actions(SEED_ACTIONS, ActionRunner), runners)

    def test_a_missing_folder_is_empty_and_other_kinds_are_refused(self) -> None:
        self.assertEqual(ActionRegistry.discover("/no/such/folder", ActionRunner), {})
        with self.assertRaises(ValueError):
            ActionRegistry.discover(SEED_ACTIONS, str)
        with tempfile.TemporaryDirectory() as empty:
            self.assertEqual(ActionRegistry.discover(empty, ActionSchema), {})

    def test_dict_and_json_are_the_seeds_catalog(self) -> None:
        self.assertEqual(ActionRegistry.json(SEED_ACTIONS), SEED_CATALOG_JSON)
        self.assertEqual(ActionRegistry.dict(SEED_ACTIONS), json.loads(SEED_CATALOG_JSON))
        indented = ActionRegistry.json(SEED_ACTIONS, indent=4)
        self.assertEqual(indented, json.dumps(json.loads(SEED_CATALOG_JSON), indent=4))

    def test_dict_defaults_to_the_actions_folder(self) -> None:
        with tempfile.TemporaryDirectory() as folder:
            previous = Path.cwd()
            os.chdir(folder)
            try:
                self.assertEqual(ActionRegistry.dict(), {})  # no ./actions here
                self.assertEqual(ActionRegistry.json(indent=2), "{}")
            finally:
                os.chdir(previous)


class ModelsTest(unittest.TestCase):
    def test_action_response_is_a_schema(self) -> None:
        self.assertTrue(issubclass(ActionResponse, ActionSchema))
        self.assertEqual(ActionResponse.discriminator(), "ActionResponse")
        self.assertTrue(ActionResponse.description())
        entry = ActionResponse.to_dict()["ActionResponse"]
        self.assertEqual(list(entry["fields"]), ["status_code", "message", "fields"])
        response = ActionResponse(status_code=201, message="made", fields={"id": 1})
        self.assertEqual(
            json.loads(response.model_dump_json()),
            {"status_code": 201, "message": "made", "fields": {"id": 1}},
        )

    def test_token_defaults_to_nothing_and_keeps_its_value_secret(self) -> None:
        token = Token()
        self.assertEqual(
            (token.id, token.context, token.value, token.service_id), (None, None, None, None)
        )
        self.assertTrue(Token.description())
        token.value = "s3cr3t-value"  # type: ignore[assignment]  # what seed code does
        self.assertIsInstance(token.value, SecretStr)
        assert token.value is not None
        self.assertEqual(token.value.get_secret_value(), "s3cr3t-value")
        self.assertNotIn("s3cr3t", repr(token))
        self.assertNotIn("s3cr3t", str(Token(id=1, value=SecretStr("s3cr3t-value"))))

    def test_service_requires_its_four_fields(self) -> None:
        moment = datetime(2026, 1, 1, tzinfo=UTC)
        service = Service(id=1, name="Notes", inserted_at=moment, updated_at=moment)
        self.assertEqual((service.id, service.name), (1, "Notes"))
        self.assertEqual(Service.discriminator(), "Service")
        with self.assertRaises(ValidationError) as caught:
            Service()  # type: ignore[call-arg]
        missing = {error["loc"][0] for error in caught.exception.errors()}
        self.assertEqual(missing, {"id", "name", "inserted_at", "updated_at"})

    def test_request_event_and_its_payload(self) -> None:
        frame = {
            "topic": "service",
            "event": "request",
            "payload": {"action": "Foo", "fields": {"bar": "x"}, "response_ref": "r1"},
            "ref": None,
        }
        event = RequestEvent.model_validate(frame)
        self.assertIsInstance(event.payload, RequestEvent.Payload)
        self.assertEqual(
            (event.topic, event.event, event.ref, event.payload.action, event.payload.fields),
            ("service", "request", None, "Foo", {"bar": "x"}),
        )
        self.assertEqual(event.payload.response_ref, "r1")
        self.assertEqual(RequestEvent.discriminator(), "request")
        self.assertIsNone(RequestEvent.Payload(action="A", fields={}).response_ref)
        with self.assertRaises(ValidationError):
            RequestEvent.model_validate({**frame, "event": "response"})


class PlugboardClientTest(unittest.IsolatedAsyncioTestCase):
    def test_constructs_with_no_arguments(self) -> None:
        environment = {"ACTIONS_PATH": str(SEED_ACTIONS)}
        with mock.patch.dict(os.environ, environment):
            client = PlugboardClient()
        self.assertEqual(sorted(client.actions), ["Baz", "Foo"])
        self.assertIn("service_updated", client.events)
        self.assertIn("num_consumers", client.events)
        self.assertIsNone(client.service)
        self.assertIsInstance(client.token, Token)
        self.assertEqual((client.num_consumers, client.connected), (0, False))

    def test_constructs_with_the_seeds_keywords(self) -> None:
        moment = datetime(2026, 1, 1, tzinfo=UTC)
        service = Service(id=3, name="Notes", inserted_at=moment, updated_at=moment)
        token = Token(id=4, context="api")
        with mock.patch.dict(os.environ, {"ACTIONS_PATH": str(SEED_ACTIONS)}):
            client = PlugboardClient(service=service, token=token, num_consumers=5, connected=True)
        self.assertEqual(
            (client.service, client.token, client.num_consumers, client.connected),
            (service, token, 5, True),
        )

    async def test_connect_serves_a_seed_project_unchanged(self) -> None:
        async with LocalHub() as hub:
            with mock.patch.dict(os.environ, {"ACTIONS_PATH": str(SEED_ACTIONS)}):
                client = PlugboardClient()
            token = next(iter(hub.tokens))
            running = asyncio.ensure_future(client.connect(hub.websocket_url, token))
            try:
                await client.wait_joined(10)
                self.assertTrue(client.connected)
                assert client.service is not None and client.token.value is not None
                self.assertEqual(client.service.id, hub.service_id)
                self.assertEqual(client.token.value.get_secret_value(), token)
                self.assertEqual(client.num_consumers, 1)
                # The hub received the seed's catalog.
                self.assertEqual(hub.catalog, json.loads(SEED_CATALOG_JSON))
                foo = await hub.call("Foo", {"bar": "Bar"})
                baz = await hub.call("Baz", {"point": {"x": 1}, "steps": [2, 3]})
                refused = await hub.call("Baz", {"point": {"x": 1}})
            finally:
                client.request_shutdown()
                self.assertEqual(await asyncio.wait_for(running, 10), 0)
        # Each answer is the seed's payload, as the action built it.
        expected_foo: dict[str, Any] = {
            "status": "success",
            "status_code": 200,
            "message": "Foo ran",
            "fields": {"joined": "FooBar", "consumers": 1, "service": client.service.name},
        }
        self.assertEqual(foo.payload, expected_foo)
        self.assertEqual(baz.payload["fields"], {"x": 6, "y": 0})
        self.assertEqual(
            (refused.payload["status_code"], refused.payload["message"]), (400, "No steps given")
        )
        await wait_until(lambda: not client.connected)


if __name__ == "__main__":
    unittest.main()
