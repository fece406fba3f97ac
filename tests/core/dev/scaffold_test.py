"""Tests of ``new`` (core/dev/scaffold.py), run as a real subprocess.

``new`` writes into a temporary actions package and tests folder, never into the project.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import unittest
from collections.abc import Callable
from functools import partial
from pathlib import Path

from tests.core.dev.cli_support import (
    EXTRA_ACTIONS,
    ROOT,
    CommandTestCase,
    Result,
    cli_env,
    run_all,
    run_cli,
    split_call_output,
)


class NewCommandTest(CommandTestCase):
    """``new`` writes into a temporary actions package and tests folder."""

    def setUp(self) -> None:
        folder = tempfile.TemporaryDirectory(prefix="devtools_")
        self.addCleanup(folder.cleanup)
        self.root = Path(folder.name)
        self.actions = self.root / "actions"
        self.actions.mkdir()
        (self.actions / "__init__.py").write_text("")
        self.tests = self.root / "tests" / "actions"
        self.env = cli_env(self.root)

    def new(self, name: str) -> Callable[[], Result]:
        args = ("new", name, "--path", str(self.actions), "--tests-path", str(self.tests))
        return partial(run_cli, self.env, *args)

    def test_writes_an_action_and_a_passing_test(self) -> None:
        result = self.new("send_email")()
        self.assert_ok(result)
        action_file = self.actions / "send_email.py"
        test_file = self.tests / "send_email_test.py"
        self.assertIn("class SendEmail(ActionRunner):", action_file.read_text())
        self.assertIn("from actions.send_email import SendEmail", test_file.read_text())
        self.assertIn("send_email_test.py", result.stdout)
        run_test = partial(
            subprocess.run,
            [sys.executable, "-m", "unittest", "send_email_test"],
            cwd=self.tests,
            env={**self.env, "PYTHONPATH": os.pathsep.join([str(self.root), str(ROOT)])},
            capture_output=True,
            text=True,
            timeout=60,
        )
        call = partial(
            run_cli,
            cli_env(self.root, ACTIONS_PATH=str(self.actions)),
            "call",
            "SendEmail",
            '{"text": "hello"}',
        )
        results = run_all({"test": run_test, "call": call})
        # The generated test passes...
        self.assertEqual(results["test"].returncode, 0, results["test"].stderr)
        self.assertIn("Ran 4 tests", results["test"].stderr)
        # ...and the new action is discovered, validated and run like any other.
        self.assert_ok(results["call"])
        self.assertEqual(split_call_output(results["call"].stdout)[0]["message"], {"text": "hello"})

    @unittest.skipIf(importlib.util.find_spec("ruff") is None, "ruff is not installed")
    def test_generated_files_pass_ruff(self) -> None:
        self.assert_ok(self.new("HTTPFetch")())
        files = [str(self.actions / "http_fetch.py"), str(self.tests / "http_fetch_test.py")]
        config = ["--config", str(ROOT / "pyproject.toml")]
        for command in (["check", *config], ["format", "--check", *config]):
            checked = subprocess.run(
                [sys.executable, "-m", "ruff", *command, *files],
                capture_output=True,
                text=True,
                timeout=60,
            )
            self.assertEqual(checked.returncode, 0, checked.stdout + checked.stderr)

    def test_refuses_to_overwrite(self) -> None:
        self.assert_ok(self.new("SendEmail")())
        action_file = self.actions / "send_email.py"
        action_file.write_text("# edited by hand\n")
        (self.tests / "other_test.py").write_text("# mine\n")
        results = run_all({"again": self.new("send_email"), "other": self.new("Other")})
        self.assert_one_line_error(results["again"], 1, "send_email.py already exists")
        self.assertEqual(action_file.read_text(), "# edited by hand\n")
        # The test file alone is enough to refuse, and then nothing is written.
        self.assert_one_line_error(results["other"], 1, "other_test.py already exists")
        self.assertFalse((self.actions / "other.py").exists())

    def test_refuses_bad_names_and_clashes(self) -> None:
        (self.actions / "misc.py").write_text(EXTRA_ACTIONS)
        results = run_all(
            {name: self.new(name) for name in ("send-email", "2fast", "class", "boom")}
        )
        for name in ("send-email", "2fast", "class"):
            with self.subTest(name=name):
                self.assert_one_line_error(results[name], 2, repr(name))
        self.assert_one_line_error(
            results["boom"], 1, "an action named 'Boom' already exists", "misc.py"
        )
        written = sorted(path.name for path in self.actions.iterdir())
        self.assertEqual(written, ["__init__.py", "misc.py"])
        self.assertFalse(self.tests.exists())


if __name__ == "__main__":
    unittest.main()
