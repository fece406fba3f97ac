"""Tests of action and event discovery."""

from __future__ import annotations

import tempfile
import textwrap
import unittest
from pathlib import Path

from core.hub.event_handler import EventHandler
from core.model.registry import DiscoveryError, discover, import_modules
from core.model.runner import ActionRunner
from core.settings import PROJECT_ROOT

ACTION = """
from core.model.response import ActionResponse
from core.model.runner import ActionRunner


class {name}(ActionRunner):
    @classmethod
    def description(cls):
        return "{name} action"

    async def run(self, client, websocket):
        return ActionResponse(status_code=200)
"""


class DiscoverTest(unittest.TestCase):
    def setUp(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="actions_"))
        self.addCleanup(lambda: __import__("shutil").rmtree(self.folder))

    def write(self, relative: str, text: str) -> Path:
        path = self.folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def test_finds_actions_in_subfolders_once(self) -> None:
        self.write("one.py", ACTION.format(name="One"))
        self.write("nested/two.py", ACTION.format(name="Two"))
        # A module that imports an action from another module does not count it twice.
        self.write("reexport.py", "from core.action_response import ActionResponse\n")
        found = discover(self.folder, ActionRunner)
        self.assertEqual(list(found), ["One", "Two"])
        self.assertTrue(all(issubclass(cls, ActionRunner) for cls in found.values()))

    def test_abstract_classes_are_skipped(self) -> None:
        self.write(
            "base.py",
            """
            from core.model.runner import ActionRunner

            class Base(ActionRunner):
                pass
            """,
        )
        self.assertEqual(discover(self.folder, ActionRunner), {})

    def test_a_failing_module_names_its_file(self) -> None:
        self.write("good.py", ACTION.format(name="Good"))
        bad = self.write("bad.py", "import module_that_does_not_exist\n")
        with self.assertRaises(DiscoveryError) as caught:
            discover(self.folder, ActionRunner)
        self.assertIn(str(bad), str(caught.exception))
        self.assertIn("ModuleNotFoundError", str(caught.exception))

    def test_duplicate_names_name_both_files(self) -> None:
        first = self.write("a.py", ACTION.format(name="Same"))
        second = self.write("b/c.py", ACTION.format(name="Same"))
        with self.assertRaises(DiscoveryError) as caught:
            discover(self.folder, ActionRunner)
        message = str(caught.exception)
        self.assertIn(str(first), message)
        self.assertIn(str(second), message)

    def test_an_action_whose_run_takes_neither_form_names_its_file(self) -> None:
        bad = self.write(
            "odd.py",
            """
            from core import ActionResponse, ActionRunner

            class Odd(ActionRunner):
                @classmethod
                def description(cls):
                    return "Odd"

                async def run(self):
                    return ActionResponse()
            """,
        )
        self.write("good.py", ACTION.format(name="Good"))
        with self.assertRaises(DiscoveryError) as caught:
            discover(self.folder, ActionRunner)
        self.assertIn(f"{bad}: ", str(caught.exception))
        self.assertIn("Odd.run must take (self, ctx) or", str(caught.exception))

    def test_import_modules_imports_each_module_in_file_order(self) -> None:
        self.write("b.py", "VALUE = 'b'\n")
        self.write("a/c.py", "VALUE = 'c'\n")
        modules = import_modules(self.folder)
        self.assertEqual([module.VALUE for module in modules], ["c", "b"])
        self.write("broken.py", "raise RuntimeError('no')\n")
        with self.assertRaisesRegex(DiscoveryError, "broken.py: RuntimeError: no"):
            import_modules(self.folder)

    def test_missing_folder(self) -> None:
        with self.assertRaises(DiscoveryError):
            discover(self.folder / "nope", ActionRunner)

    def test_a_path_the_system_refuses_is_a_discovery_error(self) -> None:
        # ACTIONS_PATH can hold any text; a name too long to look up must not escape as OSError.
        with self.assertRaises(DiscoveryError) as caught:
            discover(self.folder / ("x" * 5000), ActionRunner)
        self.assertIn("cannot be read", str(caught.exception))
        self.assertLess(len(str(caught.exception)), 500)

    def test_project_events_are_keyed_by_event_name(self) -> None:
        events = discover(PROJECT_ROOT / "events", EventHandler)
        self.assertNotIn("request", events)  # the client hands requests to the executor itself
        for name in (
            "service_updated",
            "service_deleted",
            "token_created",
            "token_deleted",
            "num_consumers",
        ):
            self.assertIn(name, events)
            self.assertEqual(events[name].event, name)

    def test_an_action_whose_result_type_cannot_be_read_names_its_file(self) -> None:
        self.write(
            "typed.py",
            """
            from __future__ import annotations
            from typing import TYPE_CHECKING
            from core import ActionRunner
            if TYPE_CHECKING:
                from elsewhere import Result

            class Typed(ActionRunner):
                @classmethod
                def description(cls):
                    return "typed"

                async def run(self, ctx) -> Result:
                    raise NotImplementedError
            """,
        )
        with self.assertRaises(DiscoveryError) as caught:
            discover(self.folder, ActionRunner)
        self.assertIn("typed.py", str(caught.exception))
        self.assertIn("'Result', cannot be resolved", str(caught.exception))


if __name__ == "__main__":
    unittest.main()
