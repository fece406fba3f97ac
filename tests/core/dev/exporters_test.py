"""Tests of the tool exports (core/dev/exporters.py), in-process."""

from __future__ import annotations

import unittest

from core.dev.exporters import mcp_tool, openai_tool, parameters_schema
from tests.core.dev.cli_support import ACTIONS


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

    def test_an_mcp_tool_declares_an_object_result(self) -> None:
        greet = mcp_tool("Greet", ACTIONS["Greet"])
        self.assertEqual(greet["outputSchema"]["type"], "object")
        self.assertEqual(greet["outputSchema"]["required"], ["greeting"])
        # MCP allows only object output schemas: a list or a number is left undeclared.
        self.assertNotIn("outputSchema", mcp_tool("FormatAddress", ACTIONS["FormatAddress"]))
        self.assertNotIn("outputSchema", mcp_tool("BlockingSum", ACTIONS["BlockingSum"]))
        # OpenAI's function tools have no place for a result.
        self.assertEqual(
            set(openai_tool("Greet", ACTIONS["Greet"])["function"]),
            {"name", "description", "parameters"},
        )

    def test_leaves_the_json_schema_alone(self) -> None:
        action = ACTIONS["FormatAddress"]
        before = action.json_schema()
        parameters_schema(action)
        self.assertEqual(action.json_schema(), before)


if __name__ == "__main__":
    unittest.main()
