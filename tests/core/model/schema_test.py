"""Tests of the catalog format (protocol section 2) and the JSON Schema export."""

from __future__ import annotations

import json
import unittest
from typing import Any, Optional

from pydantic import Field

from core.model.response import ActionResponse
from core.model.runner import ActionRunner
from core.model.schema import ActionSchema


class Foo(ActionRunner):
    foo: str = Field(default="Foo", description="The foo value")
    bar: str = Field(description="The bar value")

    @classmethod
    def description(cls) -> str:
        return "..."

    async def run(self, client: Any, websocket: Any) -> ActionResponse:
        return ActionResponse(status_code=200)


class Inner(ActionSchema):
    level: int = Field(default=1, description="How deep")

    @classmethod
    def description(cls) -> str:
        return "An inner schema"


class Middle(ActionSchema):
    inner: Inner = Field(description="ignored: the nested class describes itself")
    label: str = Field(description="A label")

    @classmethod
    def description(cls) -> str:
        return "A middle schema"

    @classmethod
    def discriminator(cls) -> str:
        return "middle"


class Outer(ActionRunner):
    middle: Middle = Field(description="Nested twice")
    maybe: Optional[int] = Field(default=None, description="An Optional field")  # noqa: UP045
    either: int | str = Field(description="A union")
    items: list[str] = Field(default_factory=list, description="A list with a factory")
    ratio: float = Field(default=0.5, description="A number")
    flag: bool = Field(default=False, description="A boolean")
    undocumented: int = 3

    @classmethod
    def description(cls) -> str:
        return "Outer action"

    async def run(self, client: Any, websocket: Any) -> ActionResponse:
        return ActionResponse(status_code=200)


class CatalogTest(unittest.TestCase):
    def test_the_protocol_page_example(self) -> None:
        entry = {
            "description": "...",
            "fields": {
                "foo": {"type": "string", "description": "The foo value", "default": "Foo"},
                "bar": {"type": "string", "description": "The bar value"},
            },
        }
        self.assertEqual(Foo.catalog_entry(), entry)
        # Keyed by the discriminator, as the seed's: entries merge into a catalog.
        self.assertEqual(Foo.to_dict(), {"Foo": entry})
        self.assertEqual({**Foo.to_dict(), **Outer.to_dict()}.keys(), {"Foo", "Outer"})

    def test_to_json_is_the_seeds_text(self) -> None:
        # The standard library's separators, and its indent when one is given.
        self.assertEqual(
            Foo.to_json(),
            '{"Foo": {"description": "...", "fields": {"foo": {"type": "string", '
            '"description": "The foo value", "default": "Foo"}, "bar": {"type": "string", '
            '"description": "The bar value"}}}}',
        )
        indented = Foo.to_json(indent=2)
        self.assertTrue(indented.startswith('{\n  "Foo": {\n    "description": "...",'))
        self.assertEqual(json.loads(indented), Foo.to_dict())

    def test_a_nested_schema_with_a_default_has_no_default_key(self) -> None:
        class WithDefault(ActionSchema):
            inner: Inner = Field(default=Inner(), description="ignored")

            @classmethod
            def description(cls) -> str:
                return "nested with a default"

        self.assertEqual(
            WithDefault.catalog_fields()["inner"],
            {"type": "Inner", **Inner.catalog_entry()},
        )

    def test_nested_optional_and_other_fields(self) -> None:
        fields = Outer.catalog_fields()
        self.assertEqual(
            fields["middle"],
            {
                "type": "middle",
                "description": "A middle schema",
                "fields": {
                    "inner": {
                        "type": "Inner",
                        "description": "An inner schema",
                        "fields": {
                            "level": {"type": "integer", "description": "How deep", "default": 1}
                        },
                    },
                    "label": {"type": "string", "description": "A label"},
                },
            },
        )
        self.assertEqual(
            fields["maybe"], {"type": None, "description": "An Optional field", "default": None}
        )
        self.assertEqual(fields["either"], {"type": None, "description": "A union"})
        self.assertEqual(fields["items"], {"type": "array", "description": "A list with a factory"})
        self.assertEqual(fields["ratio"]["type"], "number")
        self.assertEqual(
            fields["flag"], {"type": "boolean", "description": "A boolean", "default": False}
        )
        self.assertEqual(
            fields["undocumented"], {"type": "integer", "description": None, "default": 3}
        )

    def test_discriminator_defaults_to_class_name(self) -> None:
        self.assertEqual(Foo.discriminator(), "Foo")
        self.assertEqual(Middle.discriminator(), "middle")

    def test_json_schema_is_pydantics_with_the_description(self) -> None:
        schema = Outer.json_schema()
        self.assertEqual(schema["description"], "Outer action")
        self.assertEqual(schema["required"], ["middle", "either"])
        self.assertIn("Middle", schema["$defs"])

    def test_description_is_abstract(self) -> None:
        class NoDescription(ActionSchema):
            value: int = 1

        with self.assertRaises(TypeError):
            NoDescription()


class ResponseTest(unittest.TestCase):
    def test_status_follows_the_status_code(self) -> None:
        for code, status in (
            (200, "success"),
            (204, "success"),
            (299, "success"),
            (199, "error"),
            (300, "error"),
            (404, "error"),
            (500, "error"),
        ):
            with self.subTest(code=code):
                self.assertEqual(ActionResponse(status_code=code).to_payload()["status"], status)

    def test_payload_shape(self) -> None:
        payload = ActionResponse(
            status_code=201, message="made", fields=[1, {"a": None}]
        ).to_payload()
        self.assertEqual(
            payload,
            {
                "status": "success",
                "status_code": 201,
                "message": "made",
                "fields": [1, {"a": None}],
            },
        )


if __name__ == "__main__":
    unittest.main()
