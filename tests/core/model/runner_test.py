"""Tests of how an action's run() is read: its calling convention and its class settings."""

from __future__ import annotations

import unittest
from typing import Any

from core import ActionResponse, ActionRunner, Context
from core.model.runner import CLIENT, CONTEXT, ActionDefinitionError, run_convention


class Base(ActionRunner):
    @classmethod
    def description(cls) -> str:
        return "A test action"


class AsyncContext(Base):
    async def run(self, ctx: Context) -> ActionResponse:
        return ActionResponse()


class SyncContext(Base):
    def run(self, ctx: Context) -> ActionResponse:
        return ActionResponse()


class AsyncSeed(Base):
    async def run(self, client: Any, websocket: Any) -> ActionResponse:
        return ActionResponse()


class SyncSeed(Base):
    def run(self, client: Any, websocket: Any) -> ActionResponse:
        return ActionResponse()


class RunConventionTest(unittest.TestCase):
    def test_one_parameter_is_a_context_and_two_are_client_and_websocket(self) -> None:
        self.assertEqual(run_convention(AsyncContext), CONTEXT)
        self.assertEqual(run_convention(SyncContext), CONTEXT)
        self.assertEqual(run_convention(AsyncSeed), CLIENT)
        self.assertEqual(run_convention(SyncSeed), CLIENT)

    def test_other_signatures_are_refused_with_both_forms_named(self) -> None:
        class NoArguments(Base):
            async def run(self) -> ActionResponse:  # type: ignore[override]
                return ActionResponse()

        class Three(Base):
            async def run(self, a: Any, b: Any, c: Any) -> ActionResponse:  # type: ignore[override]
                return ActionResponse()

        class Variadic(Base):
            async def run(self, *args: Any) -> ActionResponse:
                return ActionResponse()

        for action, shown in (
            (NoArguments, "(self)"),
            (Three, "(self, a: 'Any', b: 'Any', c: 'Any')"),
            (Variadic, "(self, *args: 'Any')"),
        ):
            with self.subTest(action.__name__), self.assertRaises(ActionDefinitionError) as caught:
                run_convention(action)
            message = str(caught.exception)
            self.assertIn(f"{action.__qualname__}.run must take (self, ctx) or", message)
            self.assertIn("(self, client, websocket)", message)
            self.assertIn(f"it takes {shown}", message)

    def test_limits_must_be_positive(self) -> None:
        for setting, value in (
            ("timeout_seconds", 0),
            ("timeout_seconds", -1.0),
            ("timeout_seconds", True),
            ("max_concurrency", 0),
            ("max_concurrency", 1.5),
            ("max_concurrency", "3"),
        ):
            action = type("Limited", (AsyncContext,), {setting: value})
            with (
                self.subTest(setting=setting, value=value),
                self.assertRaisesRegex(ActionDefinitionError, f"Limited.{setting} must be a"),
            ):
                run_convention(action)
        fine = type("Fine", (AsyncContext,), {"timeout_seconds": 0.5, "max_concurrency": 3})
        self.assertEqual(run_convention(fine), CONTEXT)


if __name__ == "__main__":
    unittest.main()
