"""The service's command line behind ``python entrypoint.py [--local [--reload] | actions |
call | new | schema]``.

With no options it connects to the hub named by ``WEBSOCKET_URL`` and ``TOKEN``. With
``--local`` it starts the embedded local hub in the same process and connects to it, so the
service can be tried without a Plugboard; ``--local --reload`` keeps that hub in this
process and runs the service as a child process, restarted whenever a file under the
actions folder changes (`core.dev.reload`).

The hub client and the database stack are imported by `serve` when it runs, so that a
developer command loads only what it uses (`core.dev.cli` does the same per command), and a
service whose actions use no database never loads SQLAlchemy.

``entrypoint.py``, the script users run, only calls `main`: the command line is a module like
the rest, imported, type-checked and tested as one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from core import json_codec
from core.log import configure_logging
from core.redaction import printable
from core.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    import argparse

    from core.dev.local_hub.hub import LocalHub
    from core.model.runner import ActionRunner

# Named after the command users run: "INFO entrypoint: serving ...".
logger = logging.getLogger("entrypoint")

EXIT_USAGE = 2
DEFAULT_LOCAL_PORT = 4000
EXIT_DATABASE = 1
# A lifespan function failed at start-up (like an unreachable database: not a usage error).
EXIT_LIFESPAN = 1


def fail(message: str) -> int:
    """Print a one-line error for the operator and return the usage exit code."""
    sys.stderr.write(f"error: {printable(message)}\n")
    return EXIT_USAGE


def load_configuration(
    environ: Mapping[str, str] | None = None, *, database: bool = True
) -> Settings:
    """Every setting, checked before anything starts; `SettingsError` (one line) otherwise.

    With `database` (the service, and the commands that use the database), a configured
    database's URL is parsed too (without connecting), so a malformed one stops start-up
    like any other bad setting; the other commands skip it and never load SQLAlchemy.
    """
    settings = load_settings(environ)
    if database and settings.database_configured:
        from core.db.errors import DatabaseConfigError
        from core.db.urls import DatabaseSettings

        try:
            DatabaseSettings.from_config(settings.database)
        except DatabaseConfigError as error:
            raise SettingsError(settings.hide_secrets(str(error))) from None
    return settings


def example_curl(http_url: str, service_id: int, actions: dict[str, type[ActionRunner]]) -> str:
    """A curl command line that calls an example action through the local hub."""
    action, fields = "Echo", {"message": "hello"}
    if action not in actions and actions:
        action, fields = next(iter(actions)), {}
    body = json_codec.dumps({"service_id": service_id, "action": action, "fields": fields})
    return f"curl -s -X POST {http_url}/ -H 'content-type: application/json' -d '{body}'"


def local_banner(hub: LocalHub, actions: dict[str, type[ActionRunner]]) -> str:
    """What ``--local`` prints once its hub listens: where, and a curl line to try."""
    return (
        f"Local hub on {hub.http_url}; try:\n"
        f"  {example_curl(hub.http_url, hub.service_id, actions)}\n"
    )


def prepare_database(settings: Settings) -> None:
    """Initialize the database and migrate it to head (serialized across replicas)."""
    from core.db.database import database

    database.initialize(config=settings.database)
    database.migrate()


async def database_ready() -> str | None:
    """Readiness check: None when the database answers ``SELECT 1``."""
    from sqlalchemy import text

    from core.db.database import database

    def ping() -> None:
        with database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    await asyncio.to_thread(ping)
    return None


async def serve(settings: Settings, local: bool, local_port: int) -> int:
    """Discover actions and events, prepare the database, optionally start the local hub,
    and run the client until it stops."""
    from core.db.errors import DatabaseConfigError, DatabaseStartupError
    from core.execution.context import State
    from core.execution.lifespan import LifespanError, describe, discover_lifespans, open_lifespans
    from core.hub.client import PlugboardClient
    from core.hub.event_handler import EventHandler
    from core.model.registry import DiscoveryError, discover
    from core.model.runner import ActionRunner
    from core.ops.tracing import TracingError, start_tracing

    if not local and (missing := settings.missing_connection_settings()):
        return fail(f"{' and '.join(missing)} must be set (or run with --local)")
    try:
        # Off unless the OTEL_* variables ask for it and the SDK is installed: then, and only
        # then, OpenTelemetry is loaded (core.ops.tracing).
        tracing = start_tracing(os.environ)
    except TracingError as error:
        return fail(str(error))
    try:
        actions = discover(settings.actions_path, ActionRunner)
        events = discover(settings.events_path, EventHandler)
        lifespans = discover_lifespans(settings.actions_path)
    except DiscoveryError as error:
        return fail(f"cannot load actions or events: {error}")
    if not actions:
        logger.warning("no actions found under %s", settings.actions_path)
    if tracing is not None:
        tracing.instrument_http_clients()
    # The database stack (SQLAlchemy, Alembic) loads only for a service that uses it: one
    # with a database configured, or whose actions or lifespans imported core.database.
    uses_database = settings.database_configured or "core.db.database" in sys.modules
    if uses_database:
        try:
            await asyncio.to_thread(prepare_database, settings)
        except DatabaseConfigError as error:
            return fail(str(error))
        except DatabaseStartupError as error:  # unreachable: not a configuration error
            sys.stderr.write(f"error: {printable(str(error))}\n")
            return EXIT_DATABASE
        if tracing is not None:
            # After the migration: its statements belong to no request.
            from core.db.database import database

            tracing.instrument_database(database.engine)
    else:
        logger.info(
            "no database: no action imports core.database and none is configured "
            "(DATABASE_URL, POSTGRES_*)"
        )
    async with contextlib.AsyncExitStack() as stack:
        # Resources open before the hub sees this replica, and close (last in this stack)
        # once client.run() has delivered the last response.
        state = State()
        if tracing is not None:
            stack.callback(tracing.shutdown)  # the last spans leave after the last response
        try:
            await stack.enter_async_context(open_lifespans(lifespans, state))
        except LifespanError as error:
            sys.stderr.write(f"error: {printable(settings.hide_secrets(str(error)))}\n")
            return EXIT_LIFESPAN
        if lifespans:
            logger.info("lifespan open: %s", ", ".join(describe(item) for item in lifespans))
        if local:
            from core.dev.local_hub.hub import LocalHub

            hub = await stack.enter_async_context(LocalHub(port=local_port))
            settings = settings.with_hub(hub.websocket_url, next(iter(hub.tokens)))
            sys.stdout.write(local_banner(hub, actions))
            sys.stdout.flush()
        client = PlugboardClient(settings, actions, events)
        client.executor.state = state
        if tracing is not None:
            client.executor.tracer = tracing.tracer
        if settings.health_port is not None:
            from core.ops.health import HealthServer

            ready = database_ready if tracing is None else tracing.untraced(database_ready)
            checks = [("database", ready)] if uses_database else []
            health = HealthServer(
                client, settings.health_port, host=settings.health_host or None, checks=checks
            )
            try:
                await health.start()
            except OSError as error:  # the port is taken, or HEALTH_HOST is not this machine's
                where = settings.health_host or "every interface"
                return fail(
                    f"cannot serve the health endpoints on {where}, port "
                    f"{settings.health_port} (HEALTH_HOST, HEALTH_PORT): {error.strerror or error}"
                )
            stack.push_async_callback(health.stop)
        loop = asyncio.get_running_loop()
        # SIGTERM is the orchestrator's stop (Kubernetes, docker stop, compose, systemd): the
        # service's last joined replica keeps serving until another joins. SIGINT is a person
        # at a terminal (or --reload replacing the service), who wants it gone; and with
        # --local the hub goes with the process, so nobody can take over.
        loop.add_signal_handler(
            signal.SIGTERM,
            functools.partial(client.request_shutdown, signal.SIGTERM, hold_if_last=not local),
        )
        loop.add_signal_handler(signal.SIGINT, client.request_shutdown, signal.SIGINT)
        logger.info("serving %d action(s): %s", len(actions), ", ".join(actions) or "-")
        return await client.run()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run; returns the exit code."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(arguments)
    if args.reload and (not args.local or args.command):
        return fail("--reload works with --local only (python entrypoint.py --local --reload)")
    return start(args, local=args.local, local_port=args.local_port, reloading=args.reload)


def build_parser() -> argparse.ArgumentParser:
    """The command line: the service's options and the developer commands."""
    import argparse

    from core.dev import cli as devtools

    parser = argparse.ArgumentParser(description="Py-Service: a Plugboard consumer")
    parser.add_argument(
        "--local",
        action="store_true",
        help="start the embedded local hub and connect to it (no WEBSOCKET_URL or TOKEN needed)",
    )
    parser.add_argument(
        "--local-port",
        type=int,
        default=DEFAULT_LOCAL_PORT,
        help=f"port of the local hub (default {DEFAULT_LOCAL_PORT})",
    )
    parser.add_argument(
        "--reload",
        action="store_true",
        help="with --local: restart the service when a file under the actions folder changes, "
        "keeping the local hub up (needs watchfiles, from requirements-test.txt)",
    )
    commands = parser.add_subparsers(dest="command", title="developer commands")
    devtools.add_subcommands(commands)
    return parser


def start(
    args: argparse.Namespace, *, local: bool, local_port: int, reloading: bool = False
) -> int:
    """Read the settings, then run the developer command in `args`, the reloading local hub,
    or the service."""
    command = args.command
    try:
        # The service and a local `call` use the database; the other commands never do.
        uses_database = command is None or (
            command == "call" and getattr(args, "hub", None) is None
        )
        settings = load_configuration(database=uses_database)
    except SettingsError as error:
        return fail(str(error))
    configure_logging(settings.log_level, settings.log_format)
    if command:
        from core.dev import cli as devtools

        return devtools.run_subcommand(args, settings)
    if reloading:
        return reload(settings, local_port)
    return asyncio.run(serve(settings, local, local_port))


def reload(settings: Settings, local_port: int) -> int:
    """``--local --reload``: the local hub here, the service in a child process restarted on
    every change under the actions folder."""
    from core.dev.reload import ReloadError, serve_with_reload
    from core.model.registry import DiscoveryError, discover
    from core.model.runner import ActionRunner

    try:
        # Only for the curl line: the child process loads the actions it serves.
        actions = discover(settings.actions_path, ActionRunner)
    except DiscoveryError:
        actions = {}
    try:
        return asyncio.run(
            serve_with_reload(settings, local_port, lambda hub: local_banner(hub, actions))
        )
    except ReloadError as error:
        return fail(str(error))
