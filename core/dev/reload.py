"""``entrypoint.py --local --reload``: restart the service when a file under ACTIONS_PATH
changes, keeping the local hub up.

This process runs the local hub and watches the actions folder (with watchfiles, a
development requirement); the service runs as a child process (``python entrypoint.py``,
pointed at the hub), started again after each change: the old one is stopped with SIGINT, as
from a terminal, so it leaves the hub's rotation at once (on SIGTERM the service's last
replica keeps serving until another joins, and the new one starts only once it exited),
serves what still reaches it and delivers every answer; a caller sees an answer or, until
the new one has joined, the hub's 422, and never a dead hub.
A child that fails to start (a syntax error in an action) is reported, and the next change
starts it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from core.redaction import printable
from core.settings import PROJECT_ROOT, Settings

if TYPE_CHECKING:
    from core.dev.local_hub.hub import LocalHub

logger = logging.getLogger(__name__)

ENTRYPOINT: Final = PROJECT_ROOT / "entrypoint.py"
# How long a child may take past its own shutdown grace before it is killed.
STOP_MARGIN_SECONDS: Final = 5.0
MISSING_WATCHER: Final = (
    "--reload needs the watchfiles package, a development requirement: "
    "python3 -m pip install -r requirements-test.txt"
)


class ReloadError(Exception):
    """Reloading cannot start (the watcher library is missing)."""


def _watcher() -> tuple[Callable[..., AsyncIterator[set[tuple[Any, str]]]], Any]:
    """watchfiles' `awatch` and `PythonFilter`, imported on demand (watchfiles is a
    development requirement, not in the runtime image)."""
    try:
        from watchfiles import PythonFilter, awatch
    except ImportError:
        raise ReloadError(MISSING_WATCHER) from None
    return awatch, PythonFilter


async def serve_with_reload(
    settings: Settings,
    local_port: int,
    banner: Callable[[LocalHub], str],
    environ: Mapping[str, str] | None = None,
) -> int:
    """Run the local hub on `local_port` and the service beside it, restarting the service
    after every change under ``settings.actions_path``, until SIGTERM or SIGINT.

    `banner` is what to print once the hub listens (the curl line). Returns the exit code.
    """
    from core.dev.local_hub.hub import LocalHub

    awatch, python_filter = _watcher()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    folder = settings.actions_path.resolve()
    async with LocalHub(port=local_port) as hub:
        sys.stdout.write(banner(hub))
        sys.stdout.write(f"Reloading the service when a file under {folder} changes\n")
        sys.stdout.flush()
        env = dict(os.environ if environ is None else environ)
        env.update(WEBSOCKET_URL=hub.websocket_url, TOKEN=next(iter(hub.tokens)))
        changed = asyncio.Event()

        async def watch() -> None:
            async for batch in awatch(folder, watch_filter=python_filter(), stop_event=stop):
                names = sorted({_shown(Path(path), folder) for _, path in batch})
                logger.info("changed: %s", ", ".join(names))
                changed.set()

        watcher = loop.create_task(watch())
        try:
            await _supervise(env, settings, stop, changed)
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(watcher, STOP_MARGIN_SECONDS)
    return 0


async def _supervise(
    env: dict[str, str], settings: Settings, stop: asyncio.Event, changed: asyncio.Event
) -> None:
    """Start the service; on a change restart it; on `stop` stop it and return."""
    while not stop.is_set():
        changed.clear()
        child = await asyncio.create_subprocess_exec(
            sys.executable, str(ENTRYPOINT), env=env, stdin=asyncio.subprocess.DEVNULL
        )
        exited = asyncio.ensure_future(child.wait())
        await _until(stop, changed, also=exited)
        if exited.done():
            if stop.is_set():
                return
            logger.warning(
                "the service exited with code %d; it starts again on the next change",
                exited.result(),
            )
            await _until(stop, changed)
            continue
        await _terminate(child, exited, settings.shutdown_grace_seconds + STOP_MARGIN_SECONDS)
        if not stop.is_set():
            logger.info("restarting the service")


async def _until(*events: asyncio.Event, also: asyncio.Future[int] | None = None) -> None:
    """Wait until one of `events` is set, or `also` is done."""
    waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(event.wait()) for event in events}
    try:
        await asyncio.wait(
            waiters if also is None else {*waiters, also}, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for waiter in waiters:
            waiter.cancel()


async def _terminate(
    child: asyncio.subprocess.Process, exited: asyncio.Future[int], timeout: float
) -> None:
    """SIGINT (the graceful drain, leaving at once), then SIGKILL if it is still running
    after `timeout`."""
    if child.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(asyncio.shield(exited), timeout)
    except TimeoutError:
        logger.warning("the service did not stop within %.0f s; killing it", timeout)
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        await exited


def _shown(path: Path, folder: Path) -> str:
    """`path` relative to the watched folder when it is inside it."""
    try:
        return printable(str(path.relative_to(folder)))
    except ValueError:
        return printable(str(path))
