"""``schema --format F``: the actions for other tools, printed as JSON.

* ``jsonschema`` (default): every action's JSON Schema, keyed by name;
* ``openai``: OpenAI function-calling tools; ``mcp``: MCP tool definitions.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping
from typing import Any

from core.dev.command import EXIT_OK, load_actions, pretty
from core.dev.exporters import MCP_NAME, OPENAI_NAME, json_schemas, mcp_tool, openai_tool
from core.settings import Settings


def run(args: argparse.Namespace, settings: Settings) -> int:
    """``schema --format F``: every action as JSON Schema, OpenAI tools or MCP tools."""
    actions = load_actions(settings.actions_path)
    document: Any
    if args.format == "openai":
        _warn_on_names(actions, OPENAI_NAME, "OpenAI function name (A-Z a-z 0-9 _ -, 1 to 64)")
        document = [openai_tool(name, action) for name, action in actions.items()]
    elif args.format == "mcp":
        _warn_on_names(actions, MCP_NAME, "MCP tool name (A-Z a-z 0-9 _ - ., 1 to 128)")
        document = [mcp_tool(name, action) for name, action in actions.items()]
    else:
        document = json_schemas(actions)
    sys.stdout.write(pretty(document) + "\n")
    return EXIT_OK


def _warn_on_names(actions: Mapping[str, Any], pattern: re.Pattern[str], what: str) -> None:
    """A warning on stderr for each action name that `pattern` rejects."""
    for name in actions:
        if not pattern.fullmatch(name):
            sys.stderr.write(f"warning: {name!r} is not a valid {what}\n")
