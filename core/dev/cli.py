"""Developer tools: the ``actions``, ``call``, ``new`` and ``schema`` sub-commands.

They make writing and trying an action quick, with no hub at all:

* ``actions``: the catalog exactly as the hub receives it, a readable table of the actions
  and their fields, and the size of the connection URL that carries the catalog;
* ``call NAME '{"field": ...}'``: validates and runs one action locally, through the same
  `RequestExecutor` as the service (so validation, time limit and status codes match), with
  the database initialized and migrated as at start-up;
* ``new NAME``: writes a new action module and its test from a template;
* ``schema --format jsonschema|openai|mcp``: exports every action as JSON Schema, as OpenAI
  function-calling tools or as MCP tool definitions.

``entrypoint.py`` wires them in: `add_subcommands` adds the sub-parsers and
`run_subcommand` runs the chosen one and returns the exit code. This module is a command
line, so it writes its results to stdout; errors are one ``error: ...`` line on stderr, with
exit code 2 for a usage error and 1 for a failure.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import inspect
import json
import keyword
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any, Final, get_args

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError, to_jsonable_python

from core.execution.executor import RequestExecutor
from core.hub.client import URL_SIZE_WARNING, PlugboardClient
from core.model.registry import ActionRegistry, DiscoveryError
from core.model.runner import ActionRunner
from core.model.schema import ActionSchema
from core.settings import PROJECT_ROOT, Settings

SUBCOMMANDS = ("actions", "call", "new", "schema")

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130

# Stand-ins for the hub settings when they are not set, so `actions` can size the URL.
PLACEHOLDER_WEBSOCKET_URL: Final = "ws://localhost:4000/websocket"
PLACEHOLDER_TOKEN: Final = "x" * 32

# The response_ref of the single request `call` submits.
CALL_REF: Final = "cli"
# Extra seconds `call` waits past the action's own time limit (which answers 504 itself).
CALL_GRACE_SECONDS: Final = 5.0

SCHEMA_FORMATS: Final = ("jsonschema", "openai", "mcp")
# Tool names the LLM APIs accept: OpenAI functions, and MCP's recommended characters.
OPENAI_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
MCP_NAME: Final = re.compile(r"[A-Za-z0-9_.-]{1,128}")

DEFAULT_TESTS_PATH: Final = PROJECT_ROOT / "tests" / "actions"
# `new` names: an ASCII identifier that starts with a letter, short enough for tool names.
NEW_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
NEW_NAME_MAX_LENGTH: Final = 64
# The generated files must pass the project's ruff configuration (line-length = 100).
MAX_LINE_LENGTH: Final = 100
# The fields the generated action accepts, as a shell argument (for the hint `new` prints).
EXAMPLE_FIELDS: Final = """'{"text": "hello"}'"""
# Names the templates import; a class of the same name would shadow them.
TEMPLATE_NAMES: Final = frozenset(
    {"ActionResponse", "ActionRunner", "Any", "Field", "PlugboardClient", "ValidationError"}
)
# Longest default shown in the `actions` table before it is shortened.
DEFAULT_DISPLAY_LENGTH: Final = 40


class CommandError(Exception):
    """A user error: shown as one ``error:`` line on stderr and ends with `exit_code`."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# ----------------------------------------------------------------------------- wiring


def add_subcommands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``actions``, ``call``, ``new`` and ``schema`` sub-parsers."""
    actions = subparsers.add_parser(
        "actions",
        help="show the action catalog, its fields and the connection URL size",
        description="Print the catalog JSON exactly as the hub receives it, a table of the "
        "actions and their fields, and the size of the connection URL that carries it.",
    )
    shown = actions.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="print only the catalog JSON")
    shown.add_argument(
        "--hash",
        action="store_true",
        help="print only the catalog's hash (as in the 403 log line and /metrics)",
    )

    call = subparsers.add_parser(
        "call",
        help="validate and run one action locally",
        description="Validate and run one action locally, as the service would (same "
        "validation, time limit and status codes, database initialized and migrated), then "
        "print the response and its status. Exit code 0 for a 2xx status, 1 otherwise.",
    )
    call.add_argument("name", metavar="NAME", help="the action's name, e.g. Echo")
    call.add_argument(
        "fields",
        metavar="FIELDS",
        nargs="?",
        help="the fields as a JSON object; '-' reads them from stdin, as does leaving them "
        "out when stdin is not a terminal (otherwise no fields: {})",
    )
    call.add_argument("--json", action="store_true", help="print only the response JSON")

    new = subparsers.add_parser(
        "new",
        help="write a new action and its test from a template",
        description="Write <actions>/<snake_name>.py (an action with one typed field) and "
        "<tests>/<snake_name>_test.py. NAME may be CamelCase or snake_case. Existing files "
        "are never overwritten.",
    )
    new.add_argument("name", metavar="NAME", help="e.g. SendEmail or send_email")
    new.add_argument(
        "--path",
        type=Path,
        help="the actions folder (default: ACTIONS_PATH, normally actions/)",
    )
    new.add_argument(
        "--tests-path",
        type=Path,
        help="the folder for the test file (default: tests/actions/)",
    )

    schema = subparsers.add_parser(
        "schema",
        help="export the actions as JSON Schema, OpenAI tools or MCP tools",
        description="Print every action as JSON Schema (keyed by name), as OpenAI "
        "function-calling tools, or as MCP tool definitions.",
    )
    schema.add_argument(
        "--format",
        choices=SCHEMA_FORMATS,
        default="jsonschema",
        help="the output format (default: jsonschema)",
    )


def run_subcommand(args: argparse.Namespace, settings: Settings) -> int:
    """Run the sub-command chosen on the command line and return the exit code."""
    commands: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
        "actions": _actions_command,
        "call": _call_command,
        "new": _new_command,
        "schema": _schema_command,
    }
    command = commands.get(getattr(args, "command", None) or "")
    if command is None:
        sys.stderr.write(f"error: unknown sub-command; choose one of {', '.join(SUBCOMMANDS)}\n")
        return EXIT_USAGE
    try:
        code = command(args, settings)
        sys.stdout.flush()
        return code
    except CommandError as error:
        sys.stderr.write(f"error: {error}\n")
        return error.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``... | head``): stop quietly, and keep Python from
        # complaining again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED


# ----------------------------------------------------------------------------- shared


def _load_actions(path: Path) -> dict[str, type[ActionRunner]]:
    """The actions under `path`, or a `CommandError` naming the module that failed."""
    try:
        return ActionRegistry.discover(path, ActionRunner)
    except DiscoveryError as error:
        raise CommandError(f"cannot load actions: {error}") from None


def _offline_client(
    settings: Settings, actions: Mapping[str, type[ActionRunner]]
) -> tuple[PlugboardClient, list[str]]:
    """An unconnected client for `actions`, and the stand-ins used for unset hub settings."""
    assumed: list[str] = []
    if not settings.websocket_url:
        assumed.append(f"WEBSOCKET_URL={PLACEHOLDER_WEBSOCKET_URL}")
    if not settings.token:
        assumed.append(f"a {len(PLACEHOLDER_TOKEN)}-character TOKEN")
    hub_settings = settings.with_hub(
        settings.websocket_url or PLACEHOLDER_WEBSOCKET_URL, settings.token or PLACEHOLDER_TOKEN
    )
    return PlugboardClient(hub_settings, actions, events={}), assumed


def _pretty(value: Any) -> str:
    """`value` as indented JSON, converting Pydantic and standard-library types as the wire does."""
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, default=to_jsonable_python)
    except (TypeError, ValueError, PydanticSerializationError) as error:
        raise CommandError(f"cannot encode the output as JSON: {error}", EXIT_FAILED) from None


def _display_path(path: Path) -> str:
    """`path` relative to the current folder when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class _Row:
    """One line of the `actions` table."""

    name: str
    type: str = ""
    requirement: str = ""
    description: str = ""


def _actions_command(args: argparse.Namespace, settings: Settings) -> int:
    """``actions [--json | --hash]``: the catalog JSON, a table and the connection URL size."""
    actions = _load_actions(settings.actions_path)
    client, assumed = _offline_client(settings, actions)
    out = sys.stdout
    if args.hash:
        out.write(client.catalog_hash + "\n")
        return EXIT_OK
    out.write(client.catalog_json + "\n")
    if args.json:
        return EXIT_OK
    out.write("\n")
    if actions:
        out.write(_table(actions))
    else:
        out.write(f"(no actions under {_display_path(settings.actions_path)})\n")
    size = len(client.connection_url().encode())
    note = f" (assuming {' and '.join(assumed)}; set them for the exact size)" if assumed else ""
    out.write(f"\nConnection URL: {size:,} bytes; hubs accept about {URL_SIZE_WARNING:,}{note}\n")
    if size > URL_SIZE_WARNING:
        sys.stderr.write(
            f"warning: the connection URL is {size:,} bytes, over {URL_SIZE_WARNING:,}: the hub "
            "may refuse it. Shorten the action and field descriptions or split the service\n"
        )
    return EXIT_OK


def _table(actions: Mapping[str, type[ActionRunner]]) -> str:
    """Every action with its description, then its fields: type, required or default."""
    header = _Row("ACTION / FIELD", "TYPE", "REQUIRED / DEFAULT", "DESCRIPTION")
    blocks: list[list[_Row]] = []
    for name, action in actions.items():
        schema = action.json_schema()
        rows = [_Row(name, description=action.description())]
        fields = _field_rows(schema, schema.get("$defs", {}), "  ", frozenset())
        rows.extend(fields or [_Row("  (no fields)")])
        blocks.append(rows)
    every = [header, *(row for block in blocks for row in block)]
    widths = [
        max(len(row.name) for row in every),
        max(len(row.type) for row in every),
        max(len(row.requirement) for row in every),
    ]

    def line(row: _Row) -> str:
        cells = (row.name, row.type, row.requirement)
        padded = "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        return f"{padded}  {row.description}".rstrip() + "\n"

    return line(header) + "\n".join("".join(line(row) for row in block) for block in blocks)


def _field_rows(
    schema: Mapping[str, Any], defs: Mapping[str, Any], prefix: str, seen: frozenset[str]
) -> list[_Row]:
    """Rows for the properties of `schema`; nested models follow as ``parent.child``."""
    required = set(schema.get("required", []))
    rows: list[_Row] = []
    for key, prop in schema.get("properties", {}).items():
        name = f"{prefix}{key}"
        if key in required:
            requirement = "required"
        elif "default" in prop:
            shown = json.dumps(prop["default"], ensure_ascii=False, default=str)
            if len(shown) > DEFAULT_DISPLAY_LENGTH:
                shown = shown[: DEFAULT_DISPLAY_LENGTH - 3] + "..."
            requirement = f"default {shown}"
        else:
            requirement = "optional"
        rows.append(_Row(name, _type_label(prop), requirement, prop.get("description") or ""))
        nested = _nested_ref(prop)
        if nested is not None:
            ref, suffix = nested
            if ref in defs and ref not in seen:
                rows.extend(_field_rows(defs[ref], defs, f"{name}{suffix}.", seen | {ref}))
    return rows


def _ref_name(ref: str) -> str:
    """``#/$defs/Address`` -> ``Address``."""
    return ref.rsplit("/", 1)[-1]


def _type_label(prop: Mapping[str, Any]) -> str:
    """A short, readable type for a JSON Schema property: ``string | null``, ``array[Address]``."""
    if "$ref" in prop:
        return _ref_name(prop["$ref"])
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in prop:
            labels = dict.fromkeys(_type_label(option) for option in prop[combinator])
            return " | ".join(labels) if combinator != "allOf" else " & ".join(labels)
    if "const" in prop:
        return json.dumps(prop["const"], default=str)
    if "enum" in prop:
        return " | ".join(json.dumps(value, default=str) for value in prop["enum"])
    kind = prop.get("type")
    if isinstance(kind, list):
        return " | ".join(str(item) for item in kind)
    if kind == "array" and isinstance(prop.get("items"), Mapping):
        return f"array[{_type_label(prop['items'])}]"
    if kind == "object" and isinstance(prop.get("additionalProperties"), Mapping):
        return f"object[{_type_label(prop['additionalProperties'])}]"
    return str(kind) if kind else "any"


def _nested_ref(prop: Mapping[str, Any]) -> tuple[str, str] | None:
    """The model a property holds (directly, optionally or in a list), with a name suffix."""
    if "$ref" in prop:
        return _ref_name(prop["$ref"]), ""
    if prop.get("type") == "array" and isinstance(prop.get("items"), Mapping):
        inner = _nested_ref(prop["items"])
        return (inner[0], f"[]{inner[1]}") if inner else None
    for combinator in ("anyOf", "oneOf", "allOf"):
        for option in prop.get(combinator, []):
            found = _nested_ref(option)
            if found is not None:
                return found
    return None


# ----------------------------------------------------------------------------- call


def _call_command(args: argparse.Namespace, settings: Settings) -> int:
    """``call NAME [FIELDS|-]``: run one action locally and print its response."""
    actions = _load_actions(settings.actions_path)
    name: str = args.name
    action = actions.get(name)
    if action is None:
        raise CommandError(_unknown_action(name, actions, settings.actions_path))
    fields = _read_fields(args.fields)
    _prepare_database()
    payload = asyncio.run(_execute(settings, actions, name, fields))
    text = _pretty(payload)
    status_code = payload.get("status_code")
    out = sys.stdout
    out.write(text + "\n")
    if not args.json:
        out.write(f"status {status_code} ({payload.get('status')})\n")
    if status_code == 504 and not inspect.iscoroutinefunction(action.run):
        sys.stderr.write(
            "note: the action's worker thread is still running; the command ends when it does\n"
        )
    ok = isinstance(status_code, int) and 200 <= status_code < 300
    return EXIT_OK if ok else EXIT_FAILED


def _unknown_action(name: str, actions: Mapping[str, type[ActionRunner]], path: Path) -> str:
    """The one-line error for an unknown action: a suggestion and the known names."""
    if not actions:
        return f"unknown action {name!r}: there are no actions under {_display_path(path)}"
    close = difflib.get_close_matches(name, list(actions), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown action {name!r}{hint}; known actions: {', '.join(actions)}"


def _read_fields(raw: str | None) -> dict[str, Any]:
    """The FIELDS argument (or stdin) as a JSON object; a `CommandError` says what is wrong."""
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
        raise CommandError(f"the fields must be a JSON object, not {_json_kind(value)}")
    return value


def _json_kind(value: Any) -> str:
    """How to name a decoded JSON value in a message: "an array", "a string"..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array"


def _prepare_database() -> None:
    """Initialize and migrate the database exactly as the service does at start-up."""
    from core.db.database import DatabaseStartupError, database

    # Alembic narrates every migration step at INFO; one command needs only its warnings.
    alembic_log = logging.getLogger("alembic")
    if not alembic_log.isEnabledFor(logging.DEBUG):
        alembic_log.setLevel(logging.WARNING)
    try:
        database.initialize()
        database.migrate()
    except DatabaseStartupError as error:
        raise CommandError(str(error), EXIT_FAILED) from None


async def _execute(
    settings: Settings,
    actions: Mapping[str, type[ActionRunner]],
    name: str,
    fields: dict[str, Any],
) -> dict[str, Any]:
    """Submit one request to a `RequestExecutor` and return the payload it answers with."""
    answers: list[dict[str, Any]] = []

    def respond(response_ref: str, payload: dict[str, Any]) -> None:
        answers.append(payload)

    # The action gets an unconnected client (no websocket), as it would between connections.
    client, _ = _offline_client(settings, actions)
    executor = RequestExecutor(
        actions,
        respond,
        lambda: (client, None),
        max_concurrency=settings.max_concurrency,
        default_timeout=settings.action_timeout_seconds,
    )
    limit = actions[name].timeout_seconds or settings.action_timeout_seconds
    try:
        executor.submit({"action": name, "fields": fields, "response_ref": CALL_REF})
        if not await executor.drain(limit + CALL_GRACE_SECONDS):
            await executor.cancel_all()
    finally:
        executor.close()
    if not answers:
        raise CommandError("the action produced no response", EXIT_FAILED)
    return answers[0]


# ----------------------------------------------------------------------------- new


ACTION_TEMPLATE: Final = Template('''\
"""The $class_name action."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field
from typing_extensions import override

from core.model.response import ActionResponse
from core.model.runner import ActionRunner

if TYPE_CHECKING:
    from core.hub.client import PlugboardClient


class $class_name(ActionRunner):
    """TODO: what this action does, for readers of the code."""

    text: str = Field(min_length=1, max_length=1000, description="The text to work on")

    @classmethod
    @override
    def description(cls) -> str:
        # One line for the hub's catalog (and for LLMs reading the exported tools).
        return "Returns the text unchanged (TODO: describe what the action does)"

    @override
    async def run(self, client: PlugboardClient, websocket: Any) -> ActionResponse:
        # Await here, never block: blocking work belongs in a plain `def run` instead,
        # which the service runs in a worker thread.
        return ActionResponse(status_code=200, message="ok", fields={"text": self.text})
''')

TEST_TEMPLATE: Final = Template('''\
"""Tests of the $class_name action."""

from __future__ import annotations

import asyncio
import unittest
from typing import Any

from pydantic import ValidationError

from $module import $class_name
from core.model.response import ActionResponse


def run(fields: dict[str, Any]) -> ActionResponse:
    """Validate `fields` as the service does, then run the action (no hub needed)."""
    action = $class_name.model_validate(fields)
    return asyncio.run(action.run(None, None))  # type: ignore[arg-type]  # no client here


class ${class_name}Test(unittest.TestCase):
    def test_returns_the_text(self) -> None:
        response = run({"text": "hello"})
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.fields, {"text": "hello"})

    def test_text_is_required(self) -> None:
        with self.assertRaises(ValidationError):
            run({})

    def test_catalog_entry(self) -> None:
        entry = $class_name.to_dict()
        self.assertTrue(entry["description"])
        self.assertEqual(entry["fields"]["text"]["type"], "string")


if __name__ == "__main__":
    unittest.main()
''')


def _new_command(args: argparse.Namespace, settings: Settings) -> int:
    """``new NAME``: write an action module and its test, refusing to overwrite either."""
    class_name, module_name = _new_names(args.name)
    actions_dir: Path = args.path if args.path is not None else settings.actions_path
    tests_dir: Path = args.tests_path if args.tests_path is not None else DEFAULT_TESTS_PATH
    if not actions_dir.is_dir():
        raise CommandError(f"the actions folder {_display_path(actions_dir)} does not exist")
    action_file = actions_dir / f"{module_name}.py"
    test_file = tests_dir / f"{module_name}_test.py"
    for file in (action_file, actions_dir / module_name, test_file):
        if file.exists():
            raise CommandError(
                f"{_display_path(file)} already exists; refusing to overwrite it", EXIT_FAILED
            )
    existing = _load_actions(actions_dir).get(class_name)
    if existing is not None:
        where = _display_path(Path(inspect.getfile(existing)))
        raise CommandError(
            f"an action named {class_name!r} already exists (in {where}); choose another name",
            EXIT_FAILED,
        )
    package = _package_name(actions_dir)
    names = {"class_name": class_name, "module": f"{package}.{module_name}"}
    contents = {
        action_file: ACTION_TEMPLATE.substitute(names),
        test_file: TEST_TEMPLATE.substitute(names),
    }
    for text in contents.values():
        if max(len(line) for line in text.splitlines()) > MAX_LINE_LENGTH:
            raise CommandError(
                f"the name {args.name!r} makes lines longer than {MAX_LINE_LENGTH} characters; "
                "choose a shorter one"
            )
    _write_new_files(contents)
    out = sys.stdout
    for file in contents:
        out.write(f"created {_display_path(file)}\n")
    same_folder = actions_dir.resolve() == settings.actions_path.resolve()
    prefix = "" if same_folder else f"ACTIONS_PATH={_display_path(actions_dir)} "
    out.write(f"try it:  {prefix}python entrypoint.py call {class_name} {EXAMPLE_FIELDS}\n")
    if tests_dir.resolve() == DEFAULT_TESTS_PATH.resolve():
        out.write(f"test it: python -m tests -k {class_name}\n")
    return EXIT_OK


def _write_new_files(contents: Mapping[Path, str]) -> None:
    """Create each file with its text; none is overwritten, and a failure leaves none behind."""
    written: list[Path] = []
    try:
        for file, text in contents.items():
            file.parent.mkdir(parents=True, exist_ok=True)
            with file.open("x", encoding="utf-8") as handle:
                written.append(file)
                handle.write(text)
    except OSError as error:
        for file in written:
            file.unlink(missing_ok=True)
        reason = error.strerror or str(error)
        raise CommandError(f"cannot write {error.filename}: {reason}", EXIT_FAILED) from None


def _new_names(name: str) -> tuple[str, str]:
    """(ClassName, module_name) for a CamelCase or snake_case `name`; validates both."""
    if not NEW_NAME.fullmatch(name):
        raise CommandError(
            f"{name!r} is not a valid action name: use letters, digits and underscores, "
            "starting with a letter (e.g. SendEmail or send_email)"
        )
    if len(name) > NEW_NAME_MAX_LENGTH:
        raise CommandError(f"the name is longer than {NEW_NAME_MAX_LENGTH} characters")
    class_name = "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)
    module_name = _snake_case(class_name)
    for candidate in (class_name, module_name):
        if keyword.iskeyword(candidate):
            raise CommandError(f"{name!r} gives {candidate!r}, a Python keyword; choose another")
    if class_name in TEMPLATE_NAMES:
        raise CommandError(f"{class_name!r} would shadow a name the template imports")
    return class_name, module_name


def _snake_case(name: str) -> str:
    """``SendEmail`` -> ``send_email``, ``HTTPFetch`` -> ``http_fetch``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _package_name(folder: Path) -> str:
    """The dotted name the modules of `folder` are imported under (``actions``)."""
    folder = folder.resolve()
    parts = [folder.name]
    parent = folder.parent
    if (folder / "__init__.py").is_file():
        while (parent / "__init__.py").is_file():
            parts.insert(0, parent.name)
            parent = parent.parent
    bad = [part for part in parts if not part.isidentifier() or keyword.iskeyword(part)]
    if bad:
        raise CommandError(
            f"{_display_path(folder)} cannot be imported as a Python package "
            f"({bad[0]!r} is not a valid module name)"
        )
    return ".".join(parts)


# ----------------------------------------------------------------------------- schema


def _schema_command(args: argparse.Namespace, settings: Settings) -> int:
    """``schema --format F``: every action as JSON Schema, OpenAI tools or MCP tools."""
    actions = _load_actions(settings.actions_path)
    document: Any
    if args.format == "openai":
        _warn_on_names(actions, OPENAI_NAME, "OpenAI function name (A-Z a-z 0-9 _ -, 1 to 64)")
        document = [openai_tool(name, action) for name, action in actions.items()]
    elif args.format == "mcp":
        _warn_on_names(actions, MCP_NAME, "MCP tool name (A-Z a-z 0-9 _ - ., 1 to 128)")
        document = [mcp_tool(name, action) for name, action in actions.items()]
    else:
        document = {name: action.json_schema() for name, action in actions.items()}
    sys.stdout.write(_pretty(document) + "\n")
    return EXIT_OK


def _warn_on_names(actions: Mapping[str, Any], pattern: re.Pattern[str], what: str) -> None:
    """A warning on stderr for each action name that `pattern` rejects."""
    for name in actions:
        if not pattern.fullmatch(name):
            sys.stderr.write(f"warning: {name!r} is not a valid {what}\n")


def parameters_schema(action: type[ActionSchema]) -> dict[str, Any]:
    """The JSON Schema of an action's fields, self-contained, for an LLM tool definition.

    Pydantic's schema minus its top-level ``title`` and ``description`` (the class name and
    docstring: the tool carries its own name and description). Nested models stay in
    ``$defs``, referenced as ``#/$defs/Name``, which resolves inside this object; a nested
    `ActionSchema` is described by its ``description()``, as in the catalog.
    """
    schema = action.model_json_schema()
    schema.pop("title", None)
    schema.pop("description", None)
    schema.pop("type", None)
    schema.setdefault("properties", {})
    nested = {cls.__name__: cls for cls in _nested_schemas(action, set())}
    for def_name, definition in schema.get("$defs", {}).items():
        cls = nested.get(def_name)
        if cls is not None and definition.get("title") == def_name:
            definition["description"] = cls.description()
    defs = schema.pop("$defs", None)
    ordered = {"type": "object", **schema}
    if defs is not None:
        ordered["$defs"] = defs
    return ordered


def openai_tool(name: str, action: type[ActionSchema]) -> dict[str, Any]:
    """An OpenAI function-calling tool (Chat Completions ``tools`` entry) for an action."""
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": action.description(),
            "parameters": parameters_schema(action),
        },
    }


def mcp_tool(name: str, action: type[ActionSchema]) -> dict[str, Any]:
    """An MCP tool definition (as listed by ``tools/list``) for an action."""
    return {
        "name": name,
        "description": action.description(),
        "inputSchema": parameters_schema(action),
    }


def _nested_schemas(model: type[BaseModel], seen: set[type[Any]]) -> Iterator[type[ActionSchema]]:
    """Every `ActionSchema` subclass used in `model`'s fields, however deeply nested."""
    for info in model.model_fields.values():
        for cls in _classes_in(info.annotation):
            if cls in seen or not issubclass(cls, ActionSchema):
                continue
            seen.add(cls)
            yield cls
            yield from _nested_schemas(cls, seen)


def _classes_in(annotation: Any) -> Iterator[type[Any]]:
    """The classes inside a type annotation: ``list[Address] | None`` -> Address, NoneType."""
    if inspect.isclass(annotation):
        yield annotation
    for argument in get_args(annotation):
        yield from _classes_in(argument)
