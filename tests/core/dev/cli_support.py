"""What the tests of the developer sub-commands share: running ``entrypoint.py`` as a real
subprocess, in an environment with no hub or database settings, and checking its output.

Starting the entrypoint costs a moment of imports, so the test classes start their
independent runs together (`run_all`) and then check the results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import unittest
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

from core import json_codec
from core.model.registry import discover
from core.model.runner import ActionRunner
from core.settings import PROJECT_ROOT as ROOT
from tests.fixtures.actions import FOLDER as FIXTURE_ACTIONS_FOLDER

# What the commands serve unless a test names another folder: the fixture actions.
ACTIONS = discover(FIXTURE_ACTIONS_FOLDER, ActionRunner)
CATALOG_JSON = json_codec.dumps({name: action.catalog_entry() for name, action in ACTIONS.items()})
PARALLEL_RUNS = 8

Result = subprocess.CompletedProcess[str]

# Actions for the failure paths: one raises, one outlives its time limit, one is huge.
EXTRA_ACTIONS = """
import asyncio
from typing import Any

from core.model.response import ActionResponse
from core.model.runner import ActionRunner


class Boom(ActionRunner):
    @classmethod
    def description(cls) -> str:
        return "Raises"

    async def run(self, client: Any, websocket: Any) -> ActionResponse:
        raise RuntimeError("kaboom")


class Late(ActionRunner):
    timeout_seconds = 0.1

    @classmethod
    def description(cls) -> str:
        return "Sleeps past its time limit"

    async def run(self, client: Any, websocket: Any) -> ActionResponse:
        await asyncio.sleep(5)
        return ActionResponse()


class Big(ActionRunner):
    @classmethod
    def description(cls) -> str:
        return "x" * 9000

    async def run(self, client: Any, websocket: Any) -> ActionResponse:
        return ActionResponse()
"""


def cli_env(folder: Path, database: str = "devtools", **extra: str) -> dict[str, str]:
    """The environment without hub, database or caller settings, with SQLite file `database`,
    serving the fixture actions (``ACTIONS_PATH`` in `extra` names another folder)."""
    removed = (
        "WEBSOCKET_URL",
        "TOKEN",
        "DATABASE_URL",
        "ENVIRONMENT",
        "ACTIONS_PATH",
        "PLUGBOARD_API_TOKEN",
        "PLUGBOARD_SERVICE_ID",
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in removed and not key.startswith("POSTGRES_")
    }
    env["DATABASE_URL"] = f"sqlite:///{folder / database}.sqlite3"
    env["ACTIONS_PATH"] = str(FIXTURE_ACTIONS_FOLDER)
    env["LOG_LEVEL"] = "WARNING"
    env.update(extra)
    return env


def cli_command(*args: str) -> list[str]:
    """The command line of ``python entrypoint.py ARGS``."""
    return [sys.executable, "entrypoint.py", *args]


def run_cli(env: Mapping[str, str], *args: str, stdin: str = "") -> Result:
    """``python entrypoint.py ARGS`` in the project root, with `stdin` as its input."""
    return subprocess.run(
        cli_command(*args),
        cwd=ROOT,
        env=dict(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def run_all(runs: Mapping[str, Callable[[], Result]]) -> dict[str, Result]:
    """Start every run at once; their results by name."""
    with ThreadPoolExecutor(max_workers=PARALLEL_RUNS) as pool:
        futures = {name: pool.submit(run) for name, run in runs.items()}
        return {name: future.result() for name, future in futures.items()}


def class_folder(cls: type[unittest.TestCase]) -> Path:
    """A temporary folder that lives as long as the test class."""
    folder = tempfile.TemporaryDirectory(prefix="devtools_")
    cls.addClassCleanup(folder.cleanup)
    return Path(folder.name)


def actions_folder(parent: Path, name: str, source: str) -> Path:
    """A folder `parent`/`name` holding one actions module with `source`."""
    folder = parent / name
    folder.mkdir()
    (folder / f"{name}.py").write_text(source)
    return folder


def split_call_output(stdout: str) -> tuple[Any, str]:
    """`call` prints the payload as indented JSON, then one status line."""
    body, _, status = stdout.rstrip("\n").rpartition("\n")
    return json.loads(body), status


class CommandTestCase(unittest.TestCase):
    """Assertions on a finished command."""

    folder: ClassVar[Path]
    results: ClassVar[dict[str, Result]]

    def assert_one_line_error(self, result: Result, code: int, *parts: str) -> None:
        """The command failed with `code` and exactly one ``error:`` line naming `parts`."""
        assert_one_line_error(self, result, code, *parts)

    def assert_ok(self, result: Result) -> None:
        self.assertEqual(result.returncode, 0, result.stderr)


def assert_one_line_error(test: unittest.TestCase, result: Result, code: int, *parts: str) -> None:
    """`result` failed with `code` and exactly one ``error:`` line on stderr naming `parts`."""
    test.assertEqual(result.returncode, code, result.stderr)
    lines = result.stderr.strip().splitlines()
    test.assertEqual(len(lines), 1, result.stderr)
    test.assertTrue(lines[0].startswith("error: "), lines[0])
    for part in parts:
        test.assertIn(part, lines[0])
