"""Tests of the sub-command wiring (core/dev/cli.py): what each command loads, and the
arguments it refuses. The commands themselves are tested in the test module of theirs."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import unittest
from functools import partial

from core.dev.cli import EXIT_USAGE, run_subcommand
from core.settings import Settings
from tests.core.dev.cli_support import (
    CommandTestCase,
    Result,
    actions_folder,
    class_folder,
    cli_env,
    run_all,
    run_cli,
)
from tests.support import project_has_migrations

# Fixture actions with no database: what a command imports is then the framework's doing.
PLAIN_ACTIONS = """
from typing import Any

from pydantic import Field

from core import ActionResponse, ActionRunner, ActionSchema


class Point(ActionSchema):
    x: int = Field(description="Across")
    y: int = Field(description="Down")

    @classmethod
    def description(cls) -> str:
        return "A point"


class Plot(ActionRunner):
    points: list[Point] = Field(default_factory=list, description="Where")

    @classmethod
    def description(cls) -> str:
        return "Plots points"

    async def run(self, client: Any, websocket: Any) -> ActionResponse:
        return ActionResponse(message=str(len(self.points)))
"""

# Modules a command must not load unless it needs them: the database stack, the hub link,
# the request executor and the local hub's web server.
DATABASE = ("sqlalchemy", "alembic", "psycopg2", "core.db")
HUB_LINK = ("websockets", "core.hub.client", "core.hub.socket")
EXECUTOR = ("core.execution.executor",)
WEB_SERVER = ("aiohttp", "core.dev.local_hub")

IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \| ( *)(\S+)$", re.MULTILINE)


def imported(result: Result) -> set[str]:
    """The modules a run imported, read from its ``-X importtime`` report on stderr."""
    return {match.group(2) for match in IMPORT_LINE.finditer(result.stderr)}


def loaded(modules: set[str], families: tuple[str, ...]) -> list[str]:
    """The `modules` that are, or are inside, one of `families`."""
    return sorted(
        module
        for module in modules
        if any(module == family or module.startswith(family + ".") for family in families)
    )


class LazyLoadingTest(CommandTestCase):
    """Each command imports what it uses: ``python -X importtime entrypoint.py ...``."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.folder = class_folder(cls)
        plain = actions_folder(cls.folder, "plain", PLAIN_ACTIONS)
        env = cli_env(cls.folder, ACTIONS_PATH=str(plain), PYTHONPROFILEIMPORTTIME="1")
        closed_port = "http://127.0.0.1:9"  # discard: nothing listens there
        cls.results = run_all(
            {
                "schema": partial(run_cli, env, "schema"),
                "openapi": partial(run_cli, env, "schema", "--format", "openapi"),
                "actions": partial(run_cli, env, "actions"),
                "remote": partial(
                    run_cli, env, "call", "Plot", "{}", "--hub", closed_port, "--service-id", "1"
                ),
                "local": partial(run_cli, env, "call", "Plot", "{}"),
            }
        )

    def modules(self, name: str) -> set[str]:
        modules = imported(self.results[name])
        self.assertIn("core.dev.cli", modules)  # the report was read
        return modules

    def test_schema_loads_no_database_hub_link_or_executor(self) -> None:
        for name in ("schema", "openapi"):
            with self.subTest(name=name):
                self.assertEqual(self.results[name].returncode, 0)
                modules = self.modules(name)
                self.assertEqual(loaded(modules, DATABASE + HUB_LINK + EXECUTOR + WEB_SERVER), [])
        self.assertIn("core.dev.openapi", self.modules("openapi"))
        self.assertNotIn("core.dev.openapi", self.modules("schema"))

    def test_actions_sizes_the_url_without_a_client_or_database(self) -> None:
        self.assertEqual(self.results["actions"].returncode, 0)
        modules = self.modules("actions")
        self.assertIn("core.hub.connection", modules)
        self.assertEqual(loaded(modules, DATABASE + HUB_LINK + EXECUTOR + WEB_SERVER), [])

    def test_remote_call_loads_no_database_hub_link_or_executor(self) -> None:
        self.assertEqual(self.results["remote"].returncode, 1)
        modules = self.modules("remote")
        self.assertIn("core.dev.remote_call", modules)
        self.assertEqual(loaded(modules, DATABASE + HUB_LINK + EXECUTOR + WEB_SERVER), [])

    def test_local_call_loads_the_database_and_the_executor(self) -> None:
        self.assertEqual(self.results["local"].returncode, 0, self.results["local"].stderr)
        modules = self.modules("local")
        for module in ("sqlalchemy", "core.execution.executor"):
            self.assertIn(module, modules)
        # a fresh database is migrated first, unless the project has no migrations
        self.assertEqual("alembic" in modules, project_has_migrations())
        self.assertEqual(loaded(modules, WEB_SERVER), [])


class RefusedArgumentsTest(CommandTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.folder = class_folder(cls)
        plain = actions_folder(cls.folder, "plain", PLAIN_ACTIONS)
        env = cli_env(cls.folder, ACTIONS_PATH=str(plain))
        hub = ("--hub", "http://127.0.0.1:9", "--service-id", "1")
        cls.results = run_all(
            {
                "token": partial(run_cli, env, "call", "Plot", "{}", *hub, "--token", "s3cr3t"),
                "api_token": partial(run_cli, env, "call", "Plot", "--api-token=s3cr3t", *hub),
                "local_token": partial(run_cli, env, "call", "Plot", "--token", "s3cr3t"),
                "service_id": partial(run_cli, env, "call", "Plot", "{}", "--service-id", "1"),
                "timeout": partial(run_cli, env, "call", "Plot", "{}", "--timeout", "3"),
                "schema_server": partial(run_cli, env, "schema", "--server", "http://hub"),
            }
        )

    def test_a_token_argument_is_refused_without_repeating_it(self) -> None:
        for name in ("token", "api_token", "local_token"):
            with self.subTest(name=name):
                result = self.results[name]
                self.assert_one_line_error(result, 2, "PLUGBOARD_API_TOKEN")
                self.assertNotIn("s3cr3t", result.stdout + result.stderr)

    def test_hub_options_need_hub(self) -> None:
        self.assert_one_line_error(self.results["service_id"], 2, "--service-id", "--hub")
        self.assert_one_line_error(self.results["timeout"], 2, "--timeout", "--hub")

    def test_openapi_options_need_openapi(self) -> None:
        self.assert_one_line_error(self.results["schema_server"], 2, "--format openapi")


class RunSubcommandTest(unittest.TestCase):
    def test_no_sub_command_is_a_usage_error(self) -> None:
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            code = run_subcommand(argparse.Namespace(command=None), Settings())
        self.assertEqual(code, EXIT_USAGE)
        self.assertEqual(
            stderr.getvalue(),
            "error: unknown sub-command; choose one of actions, call, new, schema\n",
        )


if __name__ == "__main__":
    unittest.main()
