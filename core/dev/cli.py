"""The developer sub-commands on the command line: ``actions``, ``call``, ``new``, ``schema``.

They make writing, trying and publishing an action quick, with no hub at all:

* ``actions``: the catalog as the hub receives it, a table of it, the connection URL size
  (`core.dev.catalog`);
* ``call NAME '{"field": ...}'``: runs one action locally as the service would
  (`core.dev.call`); with ``--hub URL``, calls it through a hub's HTTP front instead
  (`core.dev.remote_call`);
* ``new NAME``: writes a new action module and its test from a template (`core.dev.scaffold`);
* ``schema --format jsonschema|openai|mcp|openapi``: exports the actions (`core.dev.schema`).

``entrypoint.py`` wires them in: `add_subcommands` adds the sub-parsers and
`run_subcommand` runs the chosen one and returns the exit code. Only the chosen command's
module is imported, so a command loads what it uses and nothing more (``schema`` never
loads the database stack or the hub client). Results go to stdout; errors are one
``error: ...`` line on stderr, with exit code 2 for a usage error and 1 for a failure.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final

from core.dev.command import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    SERVICE_ID_VARIABLE,
    TOKEN_VARIABLE,
    CommandError,
)
from core.redaction import printable
from core.settings import Settings

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "SUBCOMMANDS",
    "CommandError",
    "add_subcommands",
    "run_subcommand",
]

SUBCOMMANDS: Final = ("actions", "call", "new", "schema")
SCHEMA_FORMATS: Final = ("jsonschema", "openai", "mcp", "openapi")

Command = Callable[[argparse.Namespace, Settings], int]


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
        help="print only the catalog's hash (as in the 403 log line, /metrics and the pod label)",
    )

    call = subparsers.add_parser(
        "call",
        help="run one action locally, or through a hub with --hub",
        description="Validate and run one action locally, as the service would (same "
        "validation, time limit and status codes, database initialized and migrated), then "
        "print the response and its status. With --hub, call the action through that hub's "
        f"HTTP front instead (the account token comes from {TOKEN_VARIABLE}). Exit code 0 "
        "for a success, 1 otherwise.",
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
    remote = call.add_argument_group(
        "through a hub", f"The account token is read from {TOKEN_VARIABLE}, never an argument."
    )
    remote.add_argument(
        "--hub",
        metavar="URL",
        help="the hub's HTTP address, e.g. https://hub.example.com; POSTs to URL/",
    )
    remote.add_argument(
        "--service-id",
        metavar="ID",
        help=f"the service's id on the hub (default: {SERVICE_ID_VARIABLE})",
    )
    remote.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=float,
        help="how long to wait for the hub's answer (default: 35; the hub gives up at 30)",
    )
    remote.add_argument(
        "--allow-plain-http",
        action="store_true",
        help="send the account token over plain http:// to a host other than this machine "
        "(refused otherwise: anyone on the way could read it)",
    )
    # Accepted only to be refused with a clear message (see `_refuse_token`).
    for flag in ("--token", "--api-token"):
        call.add_argument(flag, dest="token_argument", help=argparse.SUPPRESS)

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
        help="export the actions as JSON Schema, OpenAI tools, MCP tools or OpenAPI",
        description="Print every action as JSON Schema (keyed by name), as OpenAI "
        "function-calling tools, as MCP tool definitions, or as an OpenAPI 3.1 document "
        "for calling them through the hub's HTTP front.",
    )
    schema.add_argument(
        "--format",
        choices=SCHEMA_FORMATS,
        default="jsonschema",
        help="the output format (default: jsonschema)",
    )
    schema.add_argument(
        "--service-id",
        metavar="ID",
        help=f"openapi: the service's id on the hub (default: {SERVICE_ID_VARIABLE}, if set)",
    )
    schema.add_argument(
        "--server",
        metavar="URL",
        help="openapi: the hub's HTTP address for the servers entry "
        "(default: http://localhost:4000, the local hub)",
    )


def run_subcommand(args: argparse.Namespace, settings: Settings) -> int:
    """Run the sub-command chosen on the command line and return the exit code."""
    name = getattr(args, "command", None) or ""
    if name not in SUBCOMMANDS:
        sys.stderr.write(f"error: unknown sub-command; choose one of {', '.join(SUBCOMMANDS)}\n")
        return EXIT_USAGE
    try:
        command = _load(name, args)
        code = command(args, settings)
        sys.stdout.flush()
        return code
    except CommandError as error:
        sys.stderr.write(f"error: {printable(str(error))}\n")
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


def _load(name: str, args: argparse.Namespace) -> Command:
    """The chosen command, importing its module (and so its dependencies) only now."""
    if name == "actions":
        from core.dev import catalog

        return catalog.run
    if name == "call":
        _refuse_token(args)
        if args.hub is None:
            if args.service_id is not None or args.timeout is not None or args.allow_plain_http:
                raise CommandError("--service-id, --timeout and --allow-plain-http go with --hub")
            from core.dev import call

            return call.run
        from core.dev import remote_call

        return remote_call.run
    if name == "new":
        from core.dev import scaffold

        return scaffold.run
    from core.dev import schema

    return schema.run


def _refuse_token(args: argparse.Namespace) -> None:
    """A token given as an argument is refused (its value is never repeated)."""
    if getattr(args, "token_argument", None) is not None:
        raise CommandError(
            "the account token is not taken as an argument (the process list and the shell "
            f"history would show it): set {TOKEN_VARIABLE} instead"
        )
