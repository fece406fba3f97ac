"""The real Plugboard hub (a Phoenix release) for tests: find it, start it, stop it.

The release lives outside the repository, in ``<repo>/../shared/phoenix-hub`` (or beside the
main checkout when this is a git worktree; override with ``PHOENIX_HUB_DIR``); its
``start PORT`` script runs the hub in the foreground. It needs
x86_64 Linux. Use `skip_without_phoenix_hub` on tests that need it: they are skipped, with
the reason, only when the hub cannot run on this machine; when it can, they run (and a hub
that fails to start is an error, not a skip).

In an ``IsolatedAsyncioTestCase``::

    hub = await self.enterAsyncContext(PhoenixHub(tokens=("my-token",)))
    hub.websocket_url, hub.http_url, hub.tokens, hub.service_id

or share one across a class with the synchronous `start` and `stop` (``setUpClass``).
The hub logs at ``warning`` into a file kept for error messages (`output`); with
``TEST_LOG`` set it logs at that level to this process's stderr instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Self

ROOT = Path(__file__).resolve().parent.parent
HUB_DIR_VARIABLE = "PHOENIX_HUB_DIR"
DEFAULT_TOKEN = "phoenix-test-token"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_LOG_LEVELS = {"DEBUG": "debug", "INFO": "info", "WARNING": "warning", "ERROR": "error"}


def _main_checkout(root: Path) -> Path | None:
    """The main checkout when `root` is a linked git worktree (its ``.git`` is a file)."""
    marker = root / ".git"
    if not marker.is_file():
        return None
    text = marker.read_text(errors="replace").strip()
    if not text.startswith("gitdir:"):
        return None
    gitdir = (root / text.removeprefix("gitdir:").strip()).resolve()
    commondir = gitdir / "commondir"
    if not commondir.is_file():
        return None
    common = (gitdir / commondir.read_text().strip()).resolve()  # the main .git folder
    return common.parent


def phoenix_hub_dir() -> Path:
    """Where the hub's folder is: ``$PHOENIX_HUB_DIR``, else ``<repo>/../shared/phoenix-hub``.

    From a linked git worktree, the main checkout's ``../shared/phoenix-hub`` is tried next.
    """
    override = os.environ.get(HUB_DIR_VARIABLE)
    if override:
        return Path(override)
    beside = ROOT.parent / "shared" / "phoenix-hub"
    main = _main_checkout(ROOT)
    if not beside.exists() and main is not None:
        return main.parent / "shared" / "phoenix-hub"
    return beside


def unavailable_reason() -> str | None:
    """Why the real hub cannot run here, or None when it can."""
    machine = platform.machine()
    if sys.platform != "linux" or machine != "x86_64":
        return (
            f"the Phoenix hub release runs on x86_64 Linux only (this is {sys.platform} {machine})"
        )
    folder = phoenix_hub_dir()
    if not (folder / "release").is_dir() or not (folder / "start").is_file():
        return f"no Phoenix hub release at {folder} (set {HUB_DIR_VARIABLE} to its folder)"
    return None


def skip_without_phoenix_hub(test: Any) -> Any:
    """Skip a test (or class) only when the real hub cannot run on this machine."""
    reason = unavailable_reason()
    return unittest.skipIf(reason is not None, reason or "")(test)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PhoenixHub:
    """One real hub process on a free loopback port, hosting service `service_id`.

    `tokens` are accepted for that service, with ids 1, 2, ... in this order. `http_mode` is
    the hub's ``HUB_HTTP_MODE`` (None: its default body, ``"vera"``: production's
    ``{"status", "message"}``, ``"raw"``: the consumer's payload).
    """

    def __init__(
        self,
        tokens: tuple[str, ...] = (DEFAULT_TOKEN,),
        *,
        service_id: int = 1,
        service_name: str | None = None,
        http_mode: str | None = None,
    ) -> None:
        self.tokens = tokens
        self.service_id = service_id
        self.service_name = service_name
        self.http_mode = http_mode
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._scratch: tempfile.TemporaryDirectory[str] | None = None

    @property
    def http_url(self) -> str:
        """Base URL of the HTTP front, e.g. ``http://127.0.0.1:4321``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def websocket_url(self) -> str:
        """The consumer socket URL, e.g. ``ws://127.0.0.1:4321/websocket``."""
        return f"ws://127.0.0.1:{self.port}/websocket"

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the hub and wait until it answers; RuntimeError with its output if it fails."""
        reason = unavailable_reason()
        if reason is not None:
            raise RuntimeError(reason)
        if self._process is not None:
            raise RuntimeError("the Phoenix hub is already running")
        last_error = ""
        for _ in range(3):  # another process may take the free port before the hub binds it
            self._spawn(_free_port())
            try:
                self._wait_until_up()
                return
            except RuntimeError as error:
                last_error = str(error)
                self.stop()
        raise RuntimeError(last_error)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL to the process group after `STOP_TIMEOUT` seconds."""
        process = self._process
        if process is not None:
            self._process = None
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(STOP_TIMEOUT)
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    def output(self) -> str:
        """What the hub has logged so far (empty with ``TEST_LOG``, which streams it)."""
        if self._scratch is None:
            return ""
        log = Path(self._scratch.name) / "hub.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def _spawn(self, port: int) -> None:
        self.port = port
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="phoenix-hub-test-")
        scratch = Path(self._scratch.name)
        test_log = os.environ.get("TEST_LOG", "").upper()
        env = {
            **os.environ,
            "HUB_TOKENS": ",".join(f"{token}:{self.service_id}" for token in self.tokens),
            "HUB_LOG_LEVEL": _LOG_LEVELS.get(test_log, "info") if test_log else "warning",
            "TMPDIR": str(scratch),  # the hub's runtime files, removed with the folder
        }
        env.pop("HUB_LOG_LEVEL_OVERRIDE", None)
        if self.service_name is not None:
            env["HUB_SERVICES"] = f"{self.service_id}:{self.service_name}"
        if self.http_mode is not None:
            env["HUB_HTTP_MODE"] = self.http_mode
        else:
            env.pop("HUB_HTTP_MODE", None)
        # With TEST_LOG the hub writes to this process's stdout and stderr.
        output: Any = None if test_log else (scratch / "hub.log").open("ab")
        try:
            self._process = subprocess.Popen(
                [str(phoenix_hub_dir() / "start"), str(port)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT if output is not None else None,
                start_new_session=True,  # its own group, so a kill reaches the VM too
            )
        finally:
            if output is not None:
                output.close()

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"the Phoenix hub exited with {self._process.returncode} on port "
                    f"{self.port}:\n{self.output()[-2000:]}"
                )
            try:
                self.state()
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.05)  # waiting for an outside process to bind its port
        raise RuntimeError(
            f"the Phoenix hub did not answer within {START_TIMEOUT} s:\n{self.output()[-2000:]}"
        )

    # ------------------------------------------------------------------ admin endpoints

    def admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """``GET /admin/<path>``, or ``POST`` with `body`; returns the decoded JSON answer."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.http_url}/admin/{path}",
            data=data,
            headers={"Content-Type": "application/json"},
            method="POST" if data is not None else "GET",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    def state(self) -> dict[str, Any]:
        """``GET /admin/state``: consumers, actions, pending requests, services, tokens."""
        state: dict[str, Any] = self.admin("state")
        return state

    def joined_count(self) -> int:
        """Consumers joined to the service, by the hub's own count."""
        return int(self.state()["consumers"].get(str(self.service_id), 0))

    def push(
        self, event: str, payload: Any = None, *, token_id: int | None = None
    ) -> dict[str, Any]:
        """``POST /admin/push``: make the hub push `event` (its own payload unless given)."""
        body: dict[str, Any] = {"service_id": self.service_id, "event": event}
        if payload is not None:
            body["payload"] = payload
        if token_id is not None:
            body["token_id"] = token_id
        answer: dict[str, Any] = self.admin("push", body)
        return answer

    def crash(self) -> dict[str, Any]:
        """``POST /admin/crash``: crash every consumer channel of the service (phx_error)."""
        answer: dict[str, Any] = self.admin("crash", {"service_id": self.service_id})
        return answer

    def disconnect(self) -> dict[str, Any]:
        """``POST /admin/disconnect``: disconnect every consumer socket of the service."""
        answer: dict[str, Any] = self.admin("disconnect", {"service_id": self.service_id})
        return answer


class FrontCaller:
    """Calls actions through a hub's HTTP front (``POST /``), as a remote caller does.

    The answer is ``(HTTP status, body)``: ``{"status", "message"}``, as production's front
    answers (the real hub's default body also carries the consumer's payload under
    ``response``, which is left out).
    """

    def __init__(self, http_url: str, service_id: int, timeout: float = 40.0) -> None:
        self._url = http_url + "/"
        self._service_id = service_id
        self._timeout = timeout
        self._session: Any = None

    async def __aenter__(self) -> Self:
        import aiohttp  # a runtime dependency already (the local hub)

        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            connector=aiohttp.TCPConnector(limit=0),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._session.close()

    async def call(self, action: str, fields: Any) -> tuple[int, dict[str, Any]]:
        """One request; its HTTP status and normalized body."""
        body = {"service_id": self._service_id, "action": action, "fields": fields}
        async with self._session.post(self._url, json=body) as answer:
            data = await answer.json(content_type=None)
        return answer.status, {"status": data.get("status"), "message": data.get("message")}
