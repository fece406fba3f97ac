"""``call NAME [FIELDS|-]``: validate and run one action locally, as the service would.

The request goes through the same `RequestExecutor` as the service's (so validation, time
limit and status codes match), with the database initialized and migrated as at start-up.
The whole response payload (status, status_code, message and fields, of which a caller of
the hub receives status and message) is printed as indented JSON, then its status; the exit
code is 0 for a 2xx status and 1 otherwise. ``call --hub URL`` is another command:
`core.dev.remote_call`.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import inspect
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from core.dev.command import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    display_path,
    load_actions,
    pretty,
    read_fields,
)
from core.dev.offline import offline_client
from core.execution.context import State
from core.execution.executor import RequestExecutor
from core.execution.lifespan import LifespanError, discover_lifespans, open_lifespans
from core.execution.responses import ErrorAnswers
from core.model.registry import DiscoveryError
from core.model.runner import ActionRunner
from core.settings import Settings

# The response_ref of the single request `call` submits.
CALL_REF: Final = "cli"
# Extra seconds `call` waits past the action's own time limit (which answers 504 itself).
CALL_GRACE_SECONDS: Final = 5.0


def run(args: argparse.Namespace, settings: Settings) -> int:
    """``call NAME [FIELDS|-]``: run one action locally and print its response."""
    actions = load_actions(settings.actions_path)
    name: str = args.name
    action = actions.get(name)
    if action is None:
        raise CommandError(unknown_action(name, actions, settings.actions_path))
    fields = read_fields(args.fields)
    _prepare_database(settings)
    payload = asyncio.run(_execute(settings, actions, name, fields))
    text = pretty(payload)
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


def unknown_action(name: str, actions: Mapping[str, type[ActionRunner]], path: Path) -> str:
    """The one-line error for an unknown action: a suggestion and the known names."""
    if not actions:
        return f"unknown action {name!r}: there are no actions under {display_path(path)}"
    close = difflib.get_close_matches(name, list(actions), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown action {name!r}{hint}; known actions: {', '.join(actions)}"


def _prepare_database(settings: Settings) -> None:
    """Initialize and migrate the database exactly as the service does at start-up."""
    # SQLAlchemy and Alembic: loaded here, by the one command that needs them.
    from core.db.database import database
    from core.db.errors import DatabaseConfigError, DatabaseStartupError

    # Alembic narrates every migration step at INFO; one command needs only its warnings.
    alembic_log = logging.getLogger("alembic")
    if not alembic_log.isEnabledFor(logging.DEBUG):
        alembic_log.setLevel(logging.WARNING)
    try:
        database.initialize(config=settings.database)
        database.migrate()
    except DatabaseConfigError as error:
        raise CommandError(str(error), EXIT_USAGE) from None
    except DatabaseStartupError as error:
        raise CommandError(str(error), EXIT_FAILED) from None


async def _execute(
    settings: Settings,
    actions: Mapping[str, type[ActionRunner]],
    name: str,
    fields: dict[str, Any],
) -> dict[str, Any]:
    """Submit one request to a `RequestExecutor` and return the payload it answers with.

    The lifespan functions under the actions folder open their resources first, as at the
    service's start-up, and close them after the answer.
    """
    answers: list[dict[str, Any]] = []

    def respond(response_ref: str, payload: dict[str, Any], age: float) -> None:
        answers.append(payload)

    # A seed-style action gets an unconnected client (no websocket), as it would between
    # connections.
    client = offline_client(settings, actions)
    try:
        lifespans = discover_lifespans(settings.actions_path)
    except DiscoveryError as error:
        raise CommandError(f"cannot load actions: {error}", EXIT_USAGE) from None
    limit = actions[name].timeout_seconds or settings.action_timeout_seconds
    try:
        async with open_lifespans(lifespans, State()) as state:
            executor = RequestExecutor(
                actions,
                respond,
                lambda: (client, None),
                max_concurrency=settings.max_concurrency,
                default_timeout=settings.action_timeout_seconds,
                state=state,
                errors=ErrorAnswers(settings.error_format),
            )
            try:
                executor.submit({"action": name, "fields": fields, "response_ref": CALL_REF})
                if not await executor.drain(limit + CALL_GRACE_SECONDS):
                    await executor.cancel_all()
            finally:
                executor.close()
    except LifespanError as error:
        raise CommandError(settings.hide_secrets(str(error)), EXIT_FAILED) from None
    if not answers:
        raise CommandError("the action produced no response", EXIT_FAILED)
    return answers[0]
