"""Tests of lifespan functions: opened in order, closed in reverse, failures in one line."""

from __future__ import annotations

import logging
import shutil
import tempfile
import textwrap
import unittest
from collections.abc import AsyncIterator
from pathlib import Path

from core import State, lifespan
from core.execution.lifespan import LifespanError, discover_lifespans, open_lifespans
from core.model.registry import DiscoveryError
from tests.support import LogCapture


class OpenLifespansTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        self.steps: list[str] = []

    def resource(self, name: str, fail: str = "") -> object:
        steps = self.steps

        @lifespan
        async def resource(state: State) -> AsyncIterator[None]:
            steps.append(f"open {name}")
            if fail == "open":
                raise ConnectionError(f"{name} is down (postgresql://u:pa55word@db/app)")
            setattr(state, name, f"the {name}")
            try:
                yield
            finally:
                steps.append(f"close {name}")
                if fail == "close":
                    raise RuntimeError(f"{name}\nwould not close")

        resource.__qualname__ = name
        return resource

    async def test_opened_in_order_closed_in_reverse_with_the_state_filled(self) -> None:
        functions = [self.resource("pool"), self.resource("cache")]
        async with open_lifespans(functions, State()) as state:  # type: ignore[arg-type]
            self.assertEqual((state.pool, state.cache), ("the pool", "the cache"))
            self.steps.append("serving")
        self.assertEqual(
            self.steps, ["open pool", "open cache", "serving", "close cache", "close pool"]
        )

    async def test_a_failure_while_opening_closes_the_open_ones_and_names_the_function(
        self,
    ) -> None:
        functions = [self.resource("pool"), self.resource("cache", fail="open")]
        with self.assertRaises(LifespanError) as caught:
            async with open_lifespans(functions, State()):  # type: ignore[arg-type]
                self.steps.append("serving")
        self.assertEqual(self.steps, ["open pool", "open cache", "close pool"])
        message = str(caught.exception)
        self.assertRegex(message, r"^lifespan \S+\.cache failed at start-up: ConnectionError: ")
        self.assertNotIn("pa55word", message)
        self.assertNotIn("\n", message)

    async def test_a_failure_while_closing_is_one_line_and_the_others_still_close(self) -> None:
        functions = [self.resource("pool"), self.resource("cache", fail="close")]
        with LogCapture().installed() as logs:
            async with open_lifespans(functions, State()):  # type: ignore[arg-type]
                pass
        self.assertEqual(self.steps, ["open pool", "open cache", "close cache", "close pool"])
        errors = [line for line in logs.lines if line.startswith("ERROR")]
        self.assertEqual(len(errors), 1, logs.text())
        self.assertRegex(
            errors[0], r"lifespan \S+\.cache failed while closing: RuntimeError: cache would not"
        )
        self.assertNotIn("Traceback", logs.text())

    async def test_the_traceback_of_a_closing_failure_is_there_at_debug(self) -> None:
        capture = LogCapture()
        capture.setLevel(logging.DEBUG)
        root = logging.getLogger()
        previous = root.level
        root.addHandler(capture)
        root.setLevel(logging.DEBUG)
        try:
            async with open_lifespans([self.resource("x", fail="close")], State()):  # type: ignore[list-item]
                pass
        finally:
            root.removeHandler(capture)
            root.setLevel(previous)
        self.assertIn("Traceback", capture.text())

    async def test_a_function_that_never_yields_fails_the_start_up(self) -> None:
        @lifespan
        async def empty(state: State) -> AsyncIterator[None]:
            return
            yield  # an async generator that ends before its yield

        with self.assertRaisesRegex(LifespanError, r"empty failed at start-up: RuntimeError"):
            async with open_lifespans([empty], State()):
                pass

    async def test_an_error_of_the_body_passes_through(self) -> None:
        with self.assertRaisesRegex(ValueError, "body"):
            async with open_lifespans([self.resource("pool")], State()):  # type: ignore[list-item]
                raise ValueError("body")
        self.assertEqual(self.steps, ["open pool", "close pool"])


class LifespanDecoratorTest(unittest.TestCase):
    def test_only_async_generator_functions(self) -> None:
        async def not_a_generator(state: State) -> None:
            return None

        with self.assertRaisesRegex(TypeError, "@lifespan needs an async generator function"):
            lifespan(not_a_generator)  # type: ignore[arg-type]


class DiscoverLifespansTest(unittest.TestCase):
    def setUp(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="lifespans_"))
        self.addCleanup(shutil.rmtree, self.folder)

    def write(self, relative: str, text: str) -> None:
        path = self.folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))

    def test_finds_marked_functions_in_file_order_once(self) -> None:
        self.write(
            "b.py",
            """
            from core import lifespan

            @lifespan
            async def second(state):
                yield

            async def not_marked(state):
                yield
            """,
        )
        self.write(
            "a.py",
            """
            from core import lifespan

            @lifespan
            async def first(state):
                yield
            """,
        )
        # Imported from another module: found where it is defined only.
        self.write("c.py", "from .b import second\n")
        (self.folder / "__init__.py").write_text("")
        found = discover_lifespans(self.folder)
        self.assertEqual([function.__name__ for function in found], ["first", "second"])

    def test_a_module_that_fails_to_import_is_a_discovery_error(self) -> None:
        self.write("broken.py", "import module_that_does_not_exist\n")
        with self.assertRaisesRegex(DiscoveryError, "broken.py: ModuleNotFoundError"):
            discover_lifespans(self.folder)


if __name__ == "__main__":
    unittest.main()
