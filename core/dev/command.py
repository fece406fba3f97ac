"""What every developer sub-command shares: its errors, exit codes, actions and output.

A sub-command is a function ``run(args, settings) -> int`` in its own module of
`core.dev`; `core.dev.cli` parses the command line and imports only the module of the
command that was chosen. This module stays light (no database, no hub client, no executor)
because every command imports it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Final

from pydantic_core import PydanticSerializationError, to_jsonable_python

from core.model.registry import DiscoveryError, discover
from core.model.runner import ActionRunner

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130

# What a caller of the service needs, read by ``call --hub`` (both) and ``schema --format
# openapi`` (the id) only, never by the service: the service's id on the hub, and an account
# token for the hub's HTTP front.
SERVICE_ID_VARIABLE: Final = "PLUGBOARD_SERVICE_ID"
TOKEN_VARIABLE: Final = "PLUGBOARD_API_TOKEN"


class CommandError(Exception):
    """A user error: shown as one ``error:`` line on stderr and ends with `exit_code`."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def load_actions(path: Path) -> dict[str, type[ActionRunner]]:
    """The actions under `path`, or a `CommandError` naming the module that failed."""
    try:
        return discover(path, ActionRunner)
    except DiscoveryError as error:
        raise CommandError(f"cannot load actions: {error}") from None


def pretty(value: Any) -> str:
    """`value` as indented JSON, converting Pydantic and standard-library types as the wire does."""
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, default=to_jsonable_python)
    except (TypeError, ValueError, PydanticSerializationError) as error:
        raise CommandError(f"cannot encode the output as JSON: {error}", EXIT_FAILED) from None


def display_path(path: Path) -> str:
    """`path` relative to the current folder when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def read_fields(raw: str | None) -> dict[str, Any]:
    """The FIELDS argument (or stdin) as a JSON object; a `CommandError` says what is wrong.

    ``-`` reads stdin, and so does leaving FIELDS out when stdin is not a terminal; otherwise
    no FIELDS means no fields (``{}``).
    """
    source = "FIELDS"
    if raw is None or raw == "-":
        stdin = sys.stdin
        if stdin is None or (raw is None and stdin.isatty()):
            return {}
        try:
            raw = stdin.read()
        except UnicodeDecodeError as error:
            raise CommandError(f"stdin is not UTF-8 text: {error.reason}") from None
        source = "stdin"
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        raise CommandError(
            f"{source} is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        ) from None
    except RecursionError:
        raise CommandError(f"{source} is nested too deeply to decode") from None
    if not isinstance(value, dict):
        raise CommandError(f"the fields must be a JSON object, not {json_kind(value)}")
    return value


def json_kind(value: Any) -> str:
    """How to name a decoded JSON value in a message: "an array", "a string"..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    return "an array"
