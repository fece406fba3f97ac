"""The consumers under test, each in its own process: start, wait for the join, read its
CPU time and memory, stop.

Three commands are started: the framework (``python entrypoint.py``), the framework under
cProfile (``python -m bench.profiled_consumer``) and the baseline (``python -m
bench.bare_consumer URL``). Each one's stderr goes to a file, which `ConsumerProcess` reads
back when the consumer fails.
"""

from __future__ import annotations

import asyncio
import compileall
import contextlib
import os
import py_compile
import signal
import sys
import time
from pathlib import Path
from typing import IO

from bench import proc
from bench.common import BENCH_ACTIONS, ROOT, BenchError, progress
from core.dev.local_hub.hub import LocalHub
from core.hub.client import PlugboardClient
from core.model.registry import discover
from core.model.runner import ActionRunner
from core.settings import VARIABLES, Settings

JOIN_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
FRAMEWORK_MAX_CONCURRENCY = 256

# The benchmark sets the consumer's settings itself and never inherits them from the shell
# it runs in (a POSTGRES_HOST there would give its consumers a database).
CONSUMER_VARIABLES = VARIABLES


# The service's own source folders, which the image compiles to bytecode at build (see the
# Dockerfile), with the benchmark's actions.
SERVICE_SOURCES = ("alembic", "core", "events", "schemas", "actions", "bench")


def compile_service(root: Path = ROOT) -> None:
    """Compile the service's modules to bytecode, as the image's build does, so that start-up
    is measured as a replica starts. Python writes bytecode on first import anyway, but not
    under PYTHONDONTWRITEBYTECODE (set in the image, and on some development machines), where
    each start would compile every module again."""
    for name in SERVICE_SOURCES:
        folder = root / name
        if folder.is_dir() and not compileall.compile_dir(
            folder, quiet=1, invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH
        ):
            raise BenchError(f"compiling {folder} to bytecode failed")


class ConsumerProcess:
    """One consumer under test, in its own process, stderr written to a file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        """The consumer's process id (after `start`)."""
        if self.process is None:
            raise BenchError(f"{self.name} consumer is not running")
        return self.process.pid

    async def start(self, hub: LocalHub, alongside: int = 0) -> float:
        """Start the process and wait until the hub counts it joined; returns the seconds.

        `alongside`: how many other consumers are meant to be connected already.
        """
        if hub.connection_count() != alongside:
            raise BenchError("another consumer is still connected to the hub")
        self._log = self.log_path.open("wb")
        started = time.perf_counter()
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            cwd=ROOT,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=self._log,
        )
        while hub.joined_count() < alongside + 1:
            if self.process.returncode is not None:
                raise BenchError(
                    f"{self.name} consumer exited with {self.process.returncode} before "
                    f"joining:\n{self.log_tail()}"
                )
            if time.perf_counter() - started > JOIN_TIMEOUT:
                raise BenchError(
                    f"{self.name} consumer did not join within {JOIN_TIMEOUT:g} s:\n"
                    f"{self.log_tail()}"
                )
            await asyncio.sleep(0.002)
        return time.perf_counter() - started

    def cpu_times(self) -> tuple[float, float]:
        """The consumer's total and system CPU time so far (see `bench.proc.cpu_times`)."""
        return proc.cpu_times(self.pid)

    def rss_bytes(self) -> int:
        """The consumer's resident memory now."""
        return proc.rss_bytes(self.pid)

    def anonymous_rss_bytes(self) -> int:
        """The part of its resident memory that is the consumer's own (not mapped files)."""
        return proc.anonymous_rss_bytes(self.pid)

    async def stop(self, hub: LocalHub) -> None:
        """SIGTERM, wait for a graceful exit (kill after `STOP_TIMEOUT`), wait for the hub."""
        process = self.process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                progress(f"{self.name} consumer ignored SIGTERM for {STOP_TIMEOUT:g} s: killing")
                process.kill()
                await process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        with contextlib.suppress(TimeoutError):
            await hub.wait_for_connections(0, timeout=10.0)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the consumer wrote to stderr."""
        if self._log is not None:
            self._log.flush()
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:]) or "(no output)"

    def log_lines(self) -> int:
        """How many lines the consumer wrote to stderr."""
        return len(self.log_path.read_bytes().splitlines()) if self.log_path.exists() else 0


def framework_env(
    hub: LocalHub, token: str, database: Path | None, actions_path: Path | None
) -> dict[str, str]:
    """The environment of a framework consumer; `actions_path` None means the default, and
    `database` None configures none (a service whose actions use none never loads one)."""
    env = {key: value for key, value in os.environ.items() if key not in CONSUMER_VARIABLES}
    if database is not None:
        env["DATABASE_URL"] = f"sqlite:///{database}"
    env.update(
        WEBSOCKET_URL=hub.websocket_url,
        TOKEN=token,
        PHOENIX_VSN="1.0.0",
        LOG_LEVEL="INFO",
        LOG_FORMAT="text",
        MAX_CONCURRENCY=str(FRAMEWORK_MAX_CONCURRENCY),
        PYTHONUNBUFFERED="1",  # as in the container image: one write per log line
    )
    if actions_path is not None:
        env["ACTIONS_PATH"] = str(actions_path)
    return env


def bench_connection_url(hub: LocalHub, token: str) -> str:
    """The URL the framework builds for ``bench/actions``: same token, same catalog."""
    actions: dict[str, type[ActionRunner]] = discover(BENCH_ACTIONS, ActionRunner)
    settings = Settings(websocket_url=hub.websocket_url, token=token, actions_path=BENCH_ACTIONS)
    client = PlugboardClient(settings, actions, events={})
    try:
        return client.connection_url()
    finally:
        client.executor.close()


def framework_consumer(name: str, env: dict[str, str], log_path: Path) -> ConsumerProcess:
    """The framework as it runs in production: ``python entrypoint.py`` with `env`."""
    return ConsumerProcess(name, [sys.executable, "entrypoint.py"], env, log_path)


def profiled_framework_consumer(env: dict[str, str], out: Path, log_path: Path) -> ConsumerProcess:
    """The framework under cProfile (`bench.profiled_consumer`), writing its statistics to
    `out` when told to stop profiling."""
    return ConsumerProcess(
        "framework (cProfile)",
        [sys.executable, "-m", "bench.profiled_consumer", str(out)],
        env,
        log_path,
    )


def baseline_consumer(url: str, log_path: Path) -> ConsumerProcess:
    """The bare loop (`bench.bare_consumer`) connecting to `url` (see `bench_connection_url`)."""
    return ConsumerProcess(
        "baseline",
        [sys.executable, "-m", "bench.bare_consumer", url],
        dict(os.environ),
        log_path,
    )
