"""Shared test fixtures: a local hub plus real consumers, all on loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Self, TypeVar

from core.dev.local_hub.hub import LocalHub
from core.hub.client import PlugboardClient
from core.hub.event_handler import EventHandler
from core.model.registry import discover
from core.model.runner import ActionRunner
from core.settings import PROJECT_ROOT, Settings
from tests.fixtures.actions import FOLDER as FIXTURE_ACTIONS_FOLDER

ROOT = Path(__file__).resolve().parent.parent
# The framework's tests serve actions of their own (never the shipped examples, which a
# project may delete): tests/fixtures/actions.
FIXTURE_ACTIONS = discover(FIXTURE_ACTIONS_FOLDER, ActionRunner)
EVENTS = discover(PROJECT_ROOT / "events", EventHandler)
H = TypeVar("H", bound=logging.Handler)


def project_has_migrations() -> bool:
    """Whether the project's own alembic/versions holds a migration.

    A service started without the examples may have none; then a service process (which
    always uses the project's alembic.ini) has nothing to migrate and never loads Alembic.
    """
    from core.db.heads import script_heads

    return bool(script_heads(PROJECT_ROOT / "alembic.ini"))


def fast_settings(hub: LocalHub | None = None, **overrides: Any) -> Settings:
    """Settings for tests: short heartbeat and time limits, pointed at `hub`."""
    settings = Settings(heartbeat_interval_seconds=5.0, join_timeout_seconds=2.0)
    if hub is not None:
        settings = settings.with_hub(hub.websocket_url, next(iter(hub.tokens)))
    return replace(settings, **overrides)


class Consumer:
    """A `PlugboardClient` running as a task, with helpers to wait on it."""

    def __init__(self, client: PlugboardClient) -> None:
        self.client = client
        self.task: asyncio.Task[int] = asyncio.get_running_loop().create_task(client.run())

    async def joined(self, timeout: float = 10.0) -> Consumer:
        """Wait until the consumer has joined."""
        await self.client.wait_joined(timeout)
        return self

    async def stop(self, timeout: float = 10.0) -> int:
        """Shut down gracefully and return the exit code."""
        if not self.task.done() and not self.client.shutting_down:
            self.client.request_shutdown()
        return await asyncio.wait_for(self.task, timeout)


def start_consumer(
    hub: LocalHub,
    actions: Mapping[str, type[ActionRunner]] | None = None,
    **overrides: Any,
) -> Consumer:
    """Start a real client against `hub` (call inside a running loop); it serves `actions`
    (default: the fixture actions)."""
    settings = fast_settings(hub, **overrides)
    client = PlugboardClient(settings, actions if actions is not None else FIXTURE_ACTIONS, EVENTS)
    return Consumer(client)


@contextlib.asynccontextmanager
async def hub_and_consumer(
    actions: Mapping[str, type[ActionRunner]] | None = None, **overrides: Any
) -> AsyncIterator[tuple[LocalHub, Consumer]]:
    """A started local hub and one joined consumer; both are stopped afterwards."""
    async with LocalHub() as hub:
        consumer = start_consumer(hub, actions, **overrides)
        try:
            await consumer.joined()
            await hub.wait_for_joined(1)
            yield hub, consumer
        finally:
            await consumer.stop()


async def wait_until(condition: Any, timeout: float = 10.0, interval: float = 0.01) -> None:
    """Poll `condition()` until it is true, failing after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


@contextlib.contextmanager
def on_root_logger(handler: H) -> Iterator[H]:
    """`handler` attached to the root logger, which lets INFO and above through, for the
    duration of a with-block."""
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


class LineHandler(logging.Handler):
    """Keeps the log lines at INFO and above that reach it, secrets hidden by the service's
    filter; a subclass formats them."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        from core.log import secret_filter

        self.addFilter(secret_filter)
        self.lines: list[str] = []

    def matching(self, text: str) -> list[str]:
        """The lines that contain `text`."""
        return [line for line in self.lines if text in line]

    def installed(self) -> contextlib.AbstractContextManager[Self]:
        """Attach to the root logger for the duration of a with-block."""
        return on_root_logger(self)


class LogCapture(LineHandler):
    """Collects formatted log lines (after the secret filter) for assertions."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the formatted record."""
        self.lines.append(self.format(record))

    def text(self) -> str:
        """Every line so far, joined."""
        return "\n".join(self.lines)


class LogVolume(LineHandler):
    """Counts the bytes every record would take in the service's two formats (text and
    JSON, as `core.log.configure_logging` writes them, secrets hidden), and keeps the text
    lines."""

    def __init__(self) -> None:
        super().__init__()
        from core.log import JSONFormatter, TextFormatter

        self._text = TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._json = JSONFormatter()
        self.text_bytes = 0
        self.json_bytes = 0

    def emit(self, record: logging.LogRecord) -> None:
        """Format the record both ways and count the bytes, newline included."""
        line = self._text.format(record)
        self.text_bytes += len(line.encode()) + 1
        self.json_bytes += len(self._json.format(record).encode()) + 1
        self.lines.append(line)


async def consumer_of_a_stopped_hub(**overrides: Any) -> tuple[Consumer, int, str]:
    """A consumer that joined a local hub which has stopped since; returns it with the port
    and token that a restarted hub must use to get it back."""
    hub = LocalHub()
    await hub.start()
    port, token = hub.port, next(iter(hub.tokens))
    consumer = start_consumer(hub, **overrides)
    await consumer.joined()
    await hub.stop()
    return consumer, port, token
