"""Replicas of the service as processes on this machine, behind one hub, and what their
callers see: shared by ``python -m bench.catalog_switch`` and ``python -m bench.deploys``.

A replica is ``python entrypoint.py`` in its own working folder (so its own SQLite file
unless the environment names a shared database), with a free health port and its log in
that folder. It is ready when its ``/readyz`` answers 200, as a Kubernetes readiness probe
sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import ROOT

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0
POLL_SECONDS = 0.02


@dataclass
class Hub:
    """Where the replicas connect and where the callers post."""

    http_url: str
    websocket_url: str
    token: str
    service_id: int | str


@dataclass
class Replica:
    """One ``python entrypoint.py`` process: its health port, log, and how it ended."""

    name: str
    process: asyncio.subprocess.Process
    health_port: int
    log: Path
    stopped_after_s: float | None = None

    def lines(self) -> list[str]:
        """Its log so far."""
        return self.log.read_text(errors="replace").splitlines() if self.log.exists() else []


@contextlib.contextmanager
def work_folder(keep: str | None, prefix: str) -> Iterator[Path]:
    """Where the replicas' folders go: `keep` (made new, and left behind for reading), else
    a scratch folder removed afterwards."""
    if keep:
        folder = Path(keep)
        folder.mkdir(parents=True)
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        yield Path(scratch)


def free_port() -> int:
    """A port nobody listens on right now, below Linux's ephemeral range (32768 and up), so
    an outgoing connection cannot take it between this check and the replica's bind."""
    while True:
        port = random.randrange(20000, 32000)
        with socket.socket() as probe:
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port


async def start_replica(
    hub: Hub, work: Path, name: str, actions: Path, grace: float, environ: Mapping[str, str]
) -> Replica:
    """Start one replica in ``work/name`` serving `actions`, with `environ` as its environment
    but for what connects it to `hub` and its health port; it logs to a file there."""
    folder = work / name
    folder.mkdir()
    port = free_port()
    env = {
        **environ,
        "WEBSOCKET_URL": hub.websocket_url,
        "TOKEN": hub.token,
        "ACTIONS_PATH": str(actions),
        "HEALTH_PORT": str(port),
        "SHUTDOWN_GRACE_SECONDS": f"{grace:g}",
    }
    log = folder / "replica.log"
    with log.open("wb") as handle:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "entrypoint.py"),
            cwd=folder,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=handle,
            stderr=handle,
        )
    return Replica(name, process, port, log)


async def ready(session: aiohttp.ClientSession, replica: Replica) -> bool:
    """Whether the replica's /readyz answers 200 (joined, database fine)."""
    try:
        url = f"http://127.0.0.1:{replica.health_port}/readyz"
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=1)) as response:
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def wait_ready(
    session: aiohttp.ClientSession, replicas: list[Replica], every: bool = True
) -> None:
    """Wait until every replica (or, with every=False, the first) is ready."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        states = await asyncio.gather(*(ready(session, replica) for replica in replicas))
        if all(states) if every else any(states):
            return
        for replica in replicas:
            if replica.process.returncode is not None:
                raise RuntimeError(f"{replica.name} exited; see {replica.log}")
        await asyncio.sleep(POLL_SECONDS)
    raise RuntimeError(f"replicas not ready after {READY_TIMEOUT:g} s; see their logs")


async def terminate(replicas: list[Replica], signum: int = signal.SIGTERM) -> None:
    """Signal the replicas still running (together) and wait until each has exited; each
    notes how long it took."""
    running = [replica for replica in replicas if replica.process.returncode is None]
    signalled_at = time.monotonic()
    for replica in running:
        replica.process.send_signal(signum)

    async def exited(replica: Replica) -> None:
        await asyncio.wait_for(replica.process.wait(), STOP_TIMEOUT)
        replica.stopped_after_s = round(time.monotonic() - signalled_at, 3)

    await asyncio.gather(*(exited(replica) for replica in running))


def outcome(status: int, body: Any) -> str:
    """A call's outcome: the HTTP status, with the service's error code for a 400 (the code
    in the message's error object, or the consumer's status code in the real hub's default
    body)."""
    if status == 400 and isinstance(body, dict):
        message = body.get("message")
        if isinstance(message, dict) and isinstance(message.get("code"), str):
            return f"{status} ({message['code']})"
        inner = body.get("response", {}).get("status_code")
        if inner is not None:
            return f"{status} (consumer {inner})"
    return str(status)
