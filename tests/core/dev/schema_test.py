"""Tests of ``schema`` (core/dev/schema.py), run as a real subprocess."""

from __future__ import annotations

import json
import unittest
from functools import partial
from typing import Any

from tests.core.dev.cli_support import (
    ACTIONS,
    CommandTestCase,
    class_folder,
    cli_env,
    run_all,
    run_cli,
)


class SchemaCommandTest(CommandTestCase):
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


if __name__ == "__main__":
    unittest.main()
