"""Tests of result types (core/model/result.py): read from run()'s annotation, checked by
mypy, validated and encoded for the caller."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
import unittest
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from core import ActionResponse, ActionRunner, Context
from core.model.result import ResultTypeError, result_type

ROOT = Path(__file__).resolve().parents[3]


class Point(BaseModel):
    x: int
    at: datetime


class Plain(ActionRunner):
    @classmethod
    def description(cls) -> str:
        return "plain"

    async def run(self, ctx: Context) -> Point:
        raise NotImplementedError


class WithStatus(ActionRunner):
    @classmethod
    def description(cls) -> str:
        return "with a status code"

    def run(self, ctx: Context) -> ActionResponse[Point]:
        raise NotImplementedError


class Either(ActionRunner):
    @classmethod
    def description(cls) -> str:
        return "either"

    async def run(self, ctx: Context) -> list[int] | ActionResponse:
        raise NotImplementedError


class Seed(ActionRunner):
    @classmethod
    def description(cls) -> str:
        return "seed"

    async def run(self, client: Any, websocket: Any) -> ActionResponse:
        raise NotImplementedError


class Undeclared(ActionRunner):
    @classmethod
    def description(cls) -> str:
        return "no annotation"

    async def run(self, ctx):  # type: ignore[no-untyped-def]  # the case under test
        raise NotImplementedError


class InnerResult(ActionRunner):
    """A result model defined inside the action class."""

    class Result(BaseModel):
        ok: bool

    @classmethod
    def description(cls) -> str:
        return "inner"

    async def run(self, ctx: Context) -> InnerResult.Result:
        raise NotImplementedError


class ResultTypeTest(unittest.TestCase):
    def test_a_plain_result_is_validated_and_encoded_as_json(self) -> None:
        result = result_type(Plain)
        moment = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
        self.assertEqual(
            result.encode(Point(x=1, at=moment)), {"x": 1, "at": "2026-12-06T12:00:00Z"}
        )
        self.assertEqual(
            result.encode({"x": "2", "at": moment}), {"x": 2, "at": "2026-12-06T12:00:00Z"}
        )
        with self.assertRaises(ValidationError):
            result.encode("not a point")
        schema = result.message_schema()
        self.assertEqual(schema["required"], ["x", "at"])

    def test_an_action_response_of_a_type_validates_its_message(self) -> None:
        result = result_type(WithStatus)
        self.assertIsNone(result.value)
        with self.assertRaises(TypeError):
            result.encode({"x": 1})
        self.assertEqual(result.encode_message({"x": 1, "at": "2026-01-01T00:00:00Z"})["x"], 1)
        self.assertEqual(result.message_schema()["title"], "Point")

    def test_a_union_allows_both(self) -> None:
        result = result_type(Either)
        self.assertEqual(result.encode([1, "2"]), [1, 2])
        self.assertIsNone(result.message)
        self.assertEqual(result.encode_message("anything"), "anything")

    def test_the_seeds_form_sends_what_it_built(self) -> None:
        result = result_type(Seed)
        self.assertTrue(result.declared)
        self.assertIsNone(result.value)
        self.assertEqual(result.encode_message({"any": ["json"]}), {"any": ["json"]})
        self.assertEqual(result.message_schema(), {})

    def test_without_an_annotation_any_value_but_none(self) -> None:
        result = result_type(Undeclared)
        self.assertFalse(result.declared)
        self.assertEqual(result.encode({"a": (1, 2)}), {"a": [1, 2]})
        with self.assertRaisesRegex(TypeError, "without a `return`"):
            result.encode(None)

    def test_names_resolve_in_the_class_and_its_module(self) -> None:
        self.assertEqual(result_type(InnerResult).encode({"ok": True}), {"ok": True})

    def test_names_local_to_the_defining_function_resolve(self) -> None:
        from core import ActionResponse as LocalResponse

        class Local(BaseModel):
            value: int

        class Defined(ActionRunner):
            @classmethod
            def description(cls) -> str:
                return "defined in a test"

            async def run(self, ctx: Context) -> Local | LocalResponse:
                raise NotImplementedError

        result = result_type(Defined)
        self.assertEqual(result.encode({"value": "1"}), {"value": 1})
        self.assertIsNone(result.message)

    def test_an_annotation_that_cannot_be_resolved_names_the_action(self) -> None:
        namespace: dict[str, Any] = {}
        exec(  # a module whose annotation names an import made only for type checkers
            textwrap.dedent(
                """
                from __future__ import annotations
                from core import ActionRunner

                class Hidden(ActionRunner):
                    @classmethod
                    def description(cls):
                        return "hidden"

                    async def run(self, ctx) -> NotImported:
                        raise NotImplementedError
                """
            ),
            namespace,
        )
        with self.assertRaisesRegex(ResultTypeError, r"Hidden\.run\(\), 'NotImported'"):
            result_type(namespace["Hidden"])


class MypyTest(unittest.TestCase):
    """mypy --strict, with the project's configuration, checks what run() returns."""

    def test_a_wrong_result_is_a_type_error(self) -> None:
        source = textwrap.dedent(
            """
            from pydantic import BaseModel
            from typing_extensions import override

            from core import ActionResponse, ActionRunner, Context


            class Total(BaseModel):
                total: int


            class Adds(ActionRunner):
                @classmethod
                @override
                def description(cls) -> str:
                    return "adds"

                @override
                async def run(self, ctx: Context) -> Total:
                    return "six"


            class Creates(ActionRunner):
                @classmethod
                @override
                def description(cls) -> str:
                    return "creates"

                @override
                def run(self, ctx: Context) -> ActionResponse[Total]:
                    return ActionResponse(status_code=201, message="six")


            class Right(ActionRunner):
                @classmethod
                @override
                def description(cls) -> str:
                    return "right"

                @override
                def run(self, ctx: Context) -> ActionResponse[Total]:
                    return ActionResponse(status_code=201, message=Total(total=6))
            """
        )
        with tempfile.TemporaryDirectory() as folder:
            module = Path(folder) / "typed_actions.py"
            module.write_text(source)
            checked = subprocess.run(
                [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml", str(module)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=300,
            )
        errors = [line for line in checked.stdout.splitlines() if ": error:" in line]
        self.assertEqual(len(errors), 2, checked.stdout + checked.stderr)
        self.assertIn('got "str", expected "Total"', errors[0])
        self.assertIn(":20:", errors[0])
        self.assertIn('Argument "message" to "ActionResponse" has incompatible type', errors[1])
        self.assertIn(":31:", errors[1])


if __name__ == "__main__":
    unittest.main()
