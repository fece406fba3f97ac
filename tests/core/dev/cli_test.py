"""Tests of the developer sub-commands (core/devtools.py), each run as a real subprocess.

They run ``python entrypoint.py actions|call|new|schema ...``, so they rely on entrypoint.py
wiring in `core.devtools` (``add_subcommands`` on its sub-parsers, ``run_subcommand`` when a
sub-command was given). Every run has its own SQLite file, and the folders they write to are
temporary: nothing is written into the project.

Starting the entrypoint costs a couple of seconds of imports, so each class starts its
independent runs together in `setUpClass` and the tests then check the results.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import unittest
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from core import json_codec
from core.dev.cli import mcp_tool, openai_tool, parameters_schema
from core.hub.client import PlugboardClient
from core.model.registry import ActionRegistry
from core.model.runner import ActionRunner
from core.settings import PROJECT_ROOT as ROOT
from core.settings import Settings

ACTIONS = ActionRegistry.discover(ROOT / "actions", ActionRunner)
CATALOG_JSON = json_codec.dumps({name: action.to_dict() for name, action in ACTIONS.items()})
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
    """The environment without hub or database settings, with SQLite file `database`."""
    removed = ("WEBSOCKET_URL", "TOKEN", "DATABASE_URL", "ENVIRONMENT", "ACTIONS_PATH")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in removed and not key.startswith("POSTGRES_")
    }
    env["DATABASE_URL"] = f"sqlite:///{folder / database}.sqlite3"
    env["LOG_LEVEL"] = "WARNING"
    env.update(extra)
    return env


def run_cli(env: Mapping[str, str], *args: str, stdin: str = "") -> Result:
    """``python entrypoint.py ARGS`` in the project root, with `stdin` as its input."""
    return subprocess.run(
        [sys.executable, "entrypoint.py", *args],
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


def split_call_output(stdout: str) -> tuple[dict[str, Any], str]:
    """`call` prints the payload as indented JSON, then one ``status ...`` line."""
    body, _, status = stdout.rstrip("\n").rpartition("\n")
    payload: dict[str, Any] = json.loads(body)
    return payload, status


class DevtoolsTestCase(unittest.TestCase):
    folder: ClassVar[Path]
    results: ClassVar[dict[str, Result]]

    def assert_one_line_error(self, result: Result, code: int, *parts: str) -> None:
        """The command failed with `code` and exactly one ``error:`` line naming `parts`."""
        self.assertEqual(result.returncode, code, result.stderr)
        lines = result.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertTrue(lines[0].startswith("error: "), lines[0])
        for part in parts:
            self.assertIn(part, lines[0])

    def assert_ok(self, result: Result) -> None:
        self.assertEqual(result.returncode, 0, result.stderr)


class ActionsCommandTest(DevtoolsTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.folder = class_folder(cls)
        extra, broken = cls.folder / "extra", cls.folder / "broken"
        extra.mkdir()
        (extra / "extra.py").write_text(EXTRA_ACTIONS)
        broken.mkdir()
        (broken / "bad.py").write_text("import module_that_does_not_exist\n")
        env = cli_env(cls.folder)
        cls.results = run_all(
            {
                "table": partial(run_cli, env, "actions"),
                "json": partial(run_cli, env, "actions", "--json"),
                "hash": partial(run_cli, env, "actions", "--hash"),
                "extra_hash": partial(
                    run_cli, cli_env(cls.folder, ACTIONS_PATH=str(extra)), "actions", "--hash"
                ),
                "big": partial(run_cli, cli_env(cls.folder, ACTIONS_PATH=str(extra)), "actions"),
                "broken": partial(
                    run_cli, cli_env(cls.folder, ACTIONS_PATH=str(broken)), "actions"
                ),
            }
        )

    def test_catalog_table_and_url_size(self) -> None:
        result = self.results["table"]
        self.assert_ok(result)
        self.assertEqual(result.stderr, "")
        lines = result.stdout.splitlines()
        self.assertEqual(lines[0], CATALOG_JSON)
        table = "\n".join(lines[1:])
        self.assertRegex(table, r"\nEcho +Sends the message back unchanged\n")
        self.assertRegex(table, r"\n  message +string +required +The text to send back\n")
        self.assertRegex(table, r'\n  greeting +string +default "Hello" +The greeting word\n')
        self.assertRegex(table, r"\n  punctuation +string \| null +default null ")
        self.assertRegex(table, r"\n  address\.street +string +required +Street and number\n")
        settings = Settings().with_hub("ws://localhost:4000/websocket", "x" * 32)
        size = len(PlugboardClient(settings, ACTIONS, {}).connection_url().encode())
        self.assertTrue(lines[-1].startswith(f"Connection URL: {size:,} bytes"), lines[-1])

    def test_json_prints_only_the_catalog(self) -> None:
        result = self.results["json"]
        self.assert_ok(result)
        self.assertEqual(result.stdout, CATALOG_JSON + "\n")

    def test_hash_prints_only_the_catalogs_hash(self) -> None:
        result = self.results["hash"]
        self.assert_ok(result)
        self.assertEqual(
            result.stdout, hashlib.sha256(CATALOG_JSON.encode()).hexdigest()[:12] + "\n"
        )
        other = self.results["extra_hash"]
        self.assert_ok(other)
        self.assertRegex(other.stdout, r"^[0-9a-f]{12}\n$")
        self.assertNotEqual(other.stdout, result.stdout)

    def test_warns_when_the_url_is_too_long(self) -> None:
        result = self.results["big"]
        self.assert_ok(result)
        self.assertRegex(result.stdout, r"\nBig +x{100}")
        lines = result.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertTrue(lines[0].startswith("warning: the connection URL is 9,"), lines[0])

    def test_a_broken_action_module_is_one_line(self) -> None:
        self.assert_one_line_error(self.results["broken"], 2, "cannot load actions", "bad.py")


class CallCommandTest(DevtoolsTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.folder = class_folder(cls)
        extra = cls.folder / "extra"
        extra.mkdir()
        (extra / "extra.py").write_text(EXTRA_ACTIONS)

        def call(name: str, *args: str, stdin: str = "", **env: str) -> Callable[[], Result]:
            return partial(run_cli, cli_env(cls.folder, name, **env), "call", *args, stdin=stdin)

        cls.results = run_all(
            {
                "echo": call("echo", "Echo", '{"message": "hello"}'),
                "create": call("notes", "CreateNote", "-", stdin='{"title": "from stdin"}'),
                "invalid": call("invalid", "Greet", '{"greeting": 5}'),
                "unknown": call("unknown", "Ecko", "{}"),
                "bad_json": call("bad_json", "Echo", '{"message": }'),
                "bad_stdin": call("bad_stdin", "Echo", stdin='{\n  "message": "x",\n}'),
                "array": call("array", "Echo", '["hello"]'),
                "boom": call("boom", "Boom", ACTIONS_PATH=str(extra)),
                "late": call("late", "Late", ACTIONS_PATH=str(extra)),
                "production": call(
                    "production", "Echo", "{}", ENVIRONMENT="production", DATABASE_URL=""
                ),
            }
        )

    def test_runs_an_action_and_prints_payload_and_status(self) -> None:
        result = self.results["echo"]
        self.assert_ok(result)
        payload, status = split_call_output(result.stdout)
        expected = {"status": "success", "status_code": 200, "message": "ok"}
        self.assertEqual(payload, {**expected, "fields": {"message": "hello"}})
        self.assertEqual(status, "status 200 (success)")

    def test_fields_from_stdin_with_the_database_migrated(self) -> None:
        created = self.results["create"]
        self.assert_ok(created)
        payload, status = split_call_output(created.stdout)
        self.assertEqual((payload["status_code"], status), (201, "status 201 (success)"))
        self.assertEqual(payload["fields"]["title"], "from stdin")
        # No FIELDS argument: they come from stdin too; --json prints the payload alone.
        note = json.dumps({"id": payload["fields"]["id"]})
        fetched = run_cli(cli_env(self.folder, "notes"), "call", "GetNote", "--json", stdin=note)
        self.assert_ok(fetched)
        self.assertEqual(json.loads(fetched.stdout)["fields"]["title"], "from stdin")

    def test_invalid_fields_are_the_400_response(self) -> None:
        result = self.results["invalid"]
        self.assertEqual(result.returncode, 1, result.stderr)
        payload, status = split_call_output(result.stdout)
        self.assertEqual(status, "status 400 (error)")
        self.assertIn("name: Field required", payload["message"])
        fields = {problem["field"] for problem in payload["fields"]["errors"]}
        self.assertEqual(fields, {"name", "greeting"})

    def test_unknown_action(self) -> None:
        result = self.results["unknown"]
        self.assert_one_line_error(
            result, 2, "unknown action 'Ecko'", "did you mean 'Echo'?", "Greet, ListNotes"
        )
        self.assertEqual(result.stdout, "")

    def test_invalid_json_says_where(self) -> None:
        self.assert_one_line_error(
            self.results["bad_json"], 2, "FIELDS is not valid JSON", "line 1, column 13"
        )
        self.assert_one_line_error(
            self.results["bad_stdin"], 2, "stdin is not valid JSON", "line 3, column 1"
        )

    def test_fields_must_be_an_object(self) -> None:
        self.assert_one_line_error(
            self.results["array"], 2, "must be a JSON object", "not an array"
        )

    def test_an_action_that_raises(self) -> None:
        result = self.results["boom"]
        self.assertEqual(result.returncode, 1, result.stderr)
        payload, status = split_call_output(result.stdout)
        self.assertEqual(status, "status 500 (error)")
        self.assertIn("error id", payload["message"])
        self.assertNotIn("kaboom", result.stdout)
        self.assertIn("kaboom", result.stderr)  # the log keeps the traceback for the developer

    def test_an_action_past_its_time_limit(self) -> None:
        result = self.results["late"]
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(split_call_output(result.stdout)[1], "status 504 (error)")

    def test_database_configuration_error_is_one_line(self) -> None:
        self.assert_one_line_error(self.results["production"], 1, "ENVIRONMENT=production")


class NewCommandTest(DevtoolsTestCase):
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
        self.assertIn("Ran 3 tests", results["test"].stderr)
        # ...and the new action is discovered, validated and run like any other.
        self.assert_ok(results["call"])
        self.assertEqual(split_call_output(results["call"].stdout)[0]["fields"], {"text": "hello"})

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


class SchemaCommandTest(DevtoolsTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.folder = class_folder(cls)
        env = cli_env(cls.folder)
        cls.results = run_all(
            {
                "default": partial(run_cli, env, "schema"),
                "openai": partial(run_cli, env, "schema", "--format", "openai"),
                "mcp": partial(run_cli, env, "schema", "--format", "mcp"),
                "xml": partial(run_cli, env, "schema", "--format", "xml"),
            }
        )

    def output(self, name: str) -> Any:
        result = self.results[name]
        self.assert_ok(result)
        return json.loads(result.stdout)

    def test_jsonschema_is_each_actions_json_schema(self) -> None:
        expected = {name: action.json_schema() for name, action in ACTIONS.items()}
        self.assertEqual(self.output("default"), json.loads(json.dumps(expected)))

    def test_openai_tools(self) -> None:
        tools = self.output("openai")
        self.assertEqual([tool["function"]["name"] for tool in tools], list(ACTIONS))
        for tool in tools:
            self.assertEqual(tool["type"], "function")
            self.assertEqual(set(tool["function"]), {"name", "description", "parameters"})
            self.assertEqual(tool["function"]["parameters"]["type"], "object")
        echo = next(tool["function"] for tool in tools if tool["function"]["name"] == "Echo")
        self.assertEqual(echo["description"], "Sends the message back unchanged")
        self.assertEqual(echo["parameters"]["required"], ["message"])
        self.assertNotIn("title", echo["parameters"])
        self.assertNotIn("description", echo["parameters"])

    def test_mcp_tools(self) -> None:
        tools = self.output("mcp")
        self.assertEqual([tool["name"] for tool in tools], list(ACTIONS))
        for tool in tools:
            self.assertEqual(set(tool), {"name", "description", "inputSchema"})
            self.assertEqual(tool["inputSchema"]["type"], "object")
            self.assertIn("properties", tool["inputSchema"])
        greet = next(tool for tool in tools if tool["name"] == "Greet")
        self.assertEqual(greet["inputSchema"]["properties"]["greeting"]["default"], "Hello")

    def test_unknown_format_is_a_usage_error(self) -> None:
        result = self.results["xml"]
        self.assertEqual(result.returncode, 2)
        self.assertIn("invalid choice: 'xml'", result.stderr)


class ParametersSchemaTest(unittest.TestCase):
    """The tool schemas in-process: nested models stay resolvable inside the parameters."""

    def test_nested_models_stay_in_defs(self) -> None:
        action = ACTIONS["FormatAddress"]
        parameters = parameters_schema(action)
        self.assertEqual(parameters["properties"]["address"]["$ref"], "#/$defs/Address")
        address = parameters["$defs"]["Address"]
        self.assertEqual(address["description"], "A postal address")  # as in the catalog
        self.assertEqual(address["required"], ["street", "city"])
        self.assertEqual(openai_tool("FormatAddress", action)["function"]["parameters"], parameters)
        self.assertEqual(mcp_tool("FormatAddress", action)["inputSchema"], parameters)

    def test_leaves_the_json_schema_alone(self) -> None:
        action = ACTIONS["FormatAddress"]
        before = action.json_schema()
        parameters_schema(action)
        self.assertEqual(action.json_schema(), before)


if __name__ == "__main__":
    unittest.main()
