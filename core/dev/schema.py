"""``schema --format F``: the actions for other tools, printed as JSON.

* ``jsonschema`` (default): every action's JSON Schema, keyed by name;
* ``openai``: OpenAI function-calling tools; ``mcp``: MCP tool definitions;
* ``openapi``: an OpenAPI 3.1 document for calling the actions through the hub's HTTP front
  (``--service-id`` and ``--server`` fill in what callers need).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from typing import Any

from core.dev.command import (
    EXIT_OK,
    SERVICE_ID_VARIABLE,
    CommandError,
    load_actions,
    pretty,
)
from core.dev.exporters import MCP_NAME, OPENAI_NAME, json_schemas, mcp_tool, openai_tool
from core.settings import Settings


def run(args: argparse.Namespace, settings: Settings) -> int:
    """``schema --format F``: every action as JSON Schema, tools or an OpenAPI document."""
    if args.format != "openapi" and (args.service_id is not None or args.server is not None):
        raise CommandError("--service-id and --server go with --format openapi only")
    actions = load_actions(settings.actions_path)
    document: Any
    if args.format == "openai":
        _warn_on_names(actions, OPENAI_NAME, "OpenAI function name (A-Z a-z 0-9 _ -, 1 to 64)")
        document = [openai_tool(name, action) for name, action in actions.items()]
    elif args.format == "mcp":
        _warn_on_names(actions, MCP_NAME, "MCP tool name (A-Z a-z 0-9 _ - ., 1 to 128)")
        document = [mcp_tool(name, action) for name, action in actions.items()]
    elif args.format == "openapi":
        from core.dev.openapi import DEFAULT_SERVER, openapi_document

        service_id = _openapi_service_id(args.service_id)
        server = _server(args.server) if args.server is not None else DEFAULT_SERVER
        document = openapi_document(actions, service_id, server, settings.error_format)
    else:
        document = json_schemas(actions)
    sys.stdout.write(pretty(document) + "\n")
    return EXIT_OK


def _openapi_service_id(given: str | None) -> int | None:
    """--service-id or $PLUGBOARD_SERVICE_ID as a hub id (a positive integer), if either is set."""
    source = "--service-id"
    if given is None:
        given, source = os.environ.get(SERVICE_ID_VARIABLE) or None, SERVICE_ID_VARIABLE
    if given is None:
        return None
    value = given.strip()
    if not (value.isascii() and value.isdigit() and int(value) > 0):
        raise CommandError(f"{source} must be the hub's id of the service, a positive integer")
    return int(value)


def _server(url: str) -> str:
    """--server, checked: an absolute http(s) URL, as OpenAPI generators expect."""
    if not re.fullmatch(r"https?://[^\s/?#]+[^\s?#]*", url):
        raise CommandError(f"--server must be an http:// or https:// URL, not {url!r}")
    return url.rstrip("/") or url


def _warn_on_names(actions: Mapping[str, Any], pattern: re.Pattern[str], what: str) -> None:
    """A warning on stderr for each action name that `pattern` rejects."""
    for name in actions:
        if not pattern.fullmatch(name):
            sys.stderr.write(f"warning: {name!r} is not a valid {what}\n")
