"""Tests of ``schema`` (core/dev/schema.py), run as a real subprocess."""

from __future__ import annotations

import json
import unittest
from functools import partial
from typing import Any

from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from core.dev.openapi import openapi_document
from tests.core.dev.cli_support import (
    ACTIONS,
    CommandTestCase,
    class_folder,
    cli_env,
    run_all,
    run_cli,
)

OPENAPI = ("schema", "--format", "openapi")


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
                "openapi": partial(
                    run_cli,
                    env,
                    *OPENAPI,
                    "--service-id",
                    "12",
                    "--server",
                    "https://hub.example.com/",
                ),
                "openapi_env": partial(
                    run_cli, cli_env(cls.folder, PLUGBOARD_SERVICE_ID="5"), *OPENAPI
                ),
                "bad_id": partial(run_cli, env, *OPENAPI, "--service-id", "abc"),
                "bad_env_id": partial(
                    run_cli, cli_env(cls.folder, PLUGBOARD_SERVICE_ID="-1"), *OPENAPI
                ),
                "bad_server": partial(run_cli, env, *OPENAPI, "--server", "hub.example.com"),
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
        self.assertEqual(echo["description"], "Sends the message back")
        self.assertEqual(echo["parameters"]["required"], ["message"])
        self.assertNotIn("title", echo["parameters"])
        self.assertNotIn("description", echo["parameters"])

    def test_mcp_tools(self) -> None:
        tools = self.output("mcp")
        self.assertEqual([tool["name"] for tool in tools], list(ACTIONS))
        for tool in tools:
            # An action whose result is an object declares it (MCP's outputSchema).
            self.assertLessEqual(
                set(tool) - {"outputSchema"}, {"name", "description", "inputSchema"}
            )
            self.assertEqual(tool["inputSchema"]["type"], "object")
            self.assertIn("properties", tool["inputSchema"])
        greet = next(tool for tool in tools if tool["name"] == "Greet")
        self.assertEqual(greet["inputSchema"]["properties"]["greeting"]["default"], "Hello")
        self.assertEqual(greet["outputSchema"]["properties"]["greeting"]["type"], "string")

    def test_openapi_document(self) -> None:
        document = self.output("openapi")
        validate(document, cls=OpenAPIV31SpecValidator)
        self.assertEqual(
            document,
            json.loads(json.dumps(openapi_document(ACTIONS, 12, "https://hub.example.com"))),
        )
        self.assertEqual(document["servers"], [{"url": "https://hub.example.com"}])
        mapping = document["components"]["schemas"]["ActionRequest"]["discriminator"]["mapping"]
        self.assertEqual(list(mapping), list(ACTIONS))

    def test_openapi_service_id_from_the_environment(self) -> None:
        document = self.output("openapi_env")
        member = document["components"]["schemas"]["EchoRequest"]
        self.assertEqual(member["properties"]["service_id"]["default"], 5)

    def test_openapi_refuses_what_callers_could_not_use(self) -> None:
        self.assert_one_line_error(self.results["bad_id"], 2, "--service-id", "positive integer")
        self.assert_one_line_error(
            self.results["bad_env_id"], 2, "PLUGBOARD_SERVICE_ID", "positive integer"
        )
        self.assert_one_line_error(self.results["bad_server"], 2, "--server", "https://")

    def test_unknown_format_is_a_usage_error(self) -> None:
        result = self.results["xml"]
        self.assertEqual(result.returncode, 2)
        self.assertIn("invalid choice: 'xml'", result.stderr)


if __name__ == "__main__":
    unittest.main()
