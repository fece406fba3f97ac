"""Replicas as operators run them: ``python entrypoint.py`` processes, stopped with SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections import Counter
from pathlib import Path

from core.settings import VARIABLES
from tests.fixtures.actions import FOLDER as FIXTURE_ACTIONS_FOLDER
from tests.support import ROOT

# Settings the test decides; never inherited from the shell that runs the tests.
REPLICA_VARIABLES = (*VARIABLES, "FIXTURE_ANSWERED_FILE")
# The one line per answered request (core.log.RequestLog), in the text format.
REQUEST_LINE = re.compile(r" core\.requests: action=\S* status=(\d+) ")


class Replica:
    """One ``python entrypoint.py`` process; its log lines are kept as they arrive."""

    def __init__(
        self, name: str, websocket_url: str, token: str, workdir: Path, **env: str
    ) -> None:
        self.name = name
        self.lines: list[str] = []
        self._env = {k: v for k, v in os.environ.items() if k not in REPLICA_VARIABLES}
        self._env.update(
            WEBSOCKET_URL=websocket_url,
            TOKEN=token,
            ACTIONS_PATH=str(FIXTURE_ACTIONS_FOLDER),
            LOG_LEVEL="INFO",
            SHUTDOWN_GRACE_SECONDS="10",
        )
        self._env.update(env)  # may replace any of the above
        self._workdir = workdir
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._joined = asyncio.Event()
        self._line = asyncio.Event()

    async def start(self) -> Replica:
        """Start the process (it reads settings from its environment)."""
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "entrypoint.py"),
            cwd=self._workdir,
            env=self._env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def joined(self, timeout: float = 30.0) -> Replica:
        """Wait for its first "joined service" log line."""
        try:
            await asyncio.wait_for(self._joined.wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"{self.name} did not join:\n" + "\n".join(self.lines)) from None
        return self

    def terminate(self) -> None:
        """SIGTERM: the graceful drain."""
        assert self._process is not None
        self._process.send_signal(signal.SIGTERM)

    async def exited(self, timeout: float = 30.0) -> int:
        """Wait for the process to exit; returns its exit code."""
        assert self._process is not None and self._reader is not None
        code = await asyncio.wait_for(self._process.wait(), timeout)
        await self._reader
        return code

    async def kill(self) -> None:
        """Make sure it is gone (test clean-up)."""
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
            await self._process.wait()
        if self._reader is not None:
            await self._reader

    @property
    def pid(self) -> int | None:
        """The process id, once started."""
        return self._process.pid if self._process is not None else None

    def log(self) -> str:
        """Every line so far."""
        return "\n".join(self.lines)

    def story(self) -> str:
        """Every line so far but the request lines: its connections, joins, leaves, drain."""
        return "\n".join(line for line in self.lines if not REQUEST_LINE.search(line))

    def answered(self) -> Counter[int]:
        """The requests it logged so far, by the status code it answered (a running replica
        writes its request lines within milliseconds, an exiting one before it exits)."""
        return Counter(
            int(match.group(1)) for line in self.lines if (match := REQUEST_LINE.search(line))
        )

    async def _read(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        async for raw in self._process.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            if "joined service" in line:
                self._joined.set()
