"""Tests of ``entrypoint.py --local --reload`` (core/dev/reload.py), end to end: a real
process, a real file change, and the caller's view through the local hub's front."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import sys
import tempfile
import unittest
from pathlib import Path
from typing import Any

import aiohttp

from tests.entrypoint_test import ROOT, clean_env

ACTION = """
from core import ActionRunner, Context


class {name}(ActionRunner):
    @classmethod
    def description(cls) -> str:
        return "{name} answers {answer}"

    async def run(self, ctx: Context) -> str:
        return "{answer}"
"""
# What a caller may see while the service restarts: an answer (200), the old service's
# SHUTTING_DOWN while it drains (the front's 400), or the hub's 422 until the new one has
# joined. Each is (HTTP status, the error code in the message, if any).
GAP_STATUSES = {(200, None), (400, "SHUTTING_DOWN"), (422, None)}
NO_CONSUMER = {
    "status": "error",
    "message": "No service consumers are available to handle the request",
}


class ReloadTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="reload_"))
        self.addCleanup(shutil.rmtree, self.folder, True)
        self.actions = self.folder / "actions"
        self.actions.mkdir()
        self.write("Hello", "one")
        self.session = await self.enterAsyncContext(aiohttp.ClientSession())

    def write(self, name: str, answer: str, file: str = "hello.py") -> None:
        # Written whole and renamed into place, as editors save.
        staging = self.folder / f"{file}.tmp"
        staging.write_text(ACTION.format(name=name, answer=answer))
        staging.replace(self.actions / file)

    async def start(self) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "entrypoint.py",
            "--local",
            "--reload",
            "--local-port",
            "0",
            cwd=ROOT,
            env=clean_env(ACTIONS_PATH=str(self.actions), SHUTDOWN_GRACE_SECONDS="2"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self.addAsyncCleanup(self.reap, process)
        assert process.stdout is not None and process.stderr is not None
        self.lines: list[str] = []
        self.line = asyncio.Event()
        self.reader = asyncio.get_running_loop().create_task(self.read(process.stderr))
        first = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        found = re.search(r"Local hub on (http://\S+);", first)
        self.assertIsNotNone(found, first)
        assert found is not None
        self.url = found.group(1) + "/"
        return process

    async def reap(self, process: asyncio.subprocess.Process) -> None:
        """Stop the process if a failed test left it running, and collect it. SIGTERM first:
        it stops the service it runs as a child (which shares its stderr) before exiting."""
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
        await process.wait()
        await self.reader

    async def read(self, stream: asyncio.StreamReader) -> None:
        """Keep the log lines (the hub's and the service's) as they arrive."""
        async for raw in stream:
            self.lines.append(raw.decode(errors="replace"))
            self.line.set()

    async def logged(self, fragment: str, timeout: float = 30) -> None:
        """Wait for a log line containing `fragment`."""
        async with asyncio.timeout(timeout):
            while not any(fragment in line for line in self.lines):
                self.line.clear()
                await self.line.wait()

    async def call(self, action: str) -> tuple[int, Any]:
        body = {"service_id": 1, "action": action, "fields": {}}
        async with self.session.post(self.url, json=body) as response:
            return response.status, await response.json()

    async def until_answer(self, action: str, message: str) -> set[tuple[int, Any]]:
        """Call `action` until it answers `message`; the statuses seen on the way."""
        seen: set[tuple[int, Any]] = set()
        deadline = asyncio.get_running_loop().time() + 30
        while asyncio.get_running_loop().time() < deadline:
            status, body = await self.call(action)
            message = body.get("message")
            seen.add((status, message.get("code") if isinstance(message, dict) else None))
            if status == 200 and body["message"] == message:
                return seen
            await asyncio.sleep(0.05)  # a caller retrying, not a wait for the test's sake
        self.fail(f"{action} never answered {message!r}; saw {sorted(seen, key=str)}")

    async def test_a_change_restarts_the_service_and_the_hub_stays_up(self) -> None:
        process = await self.start()
        self.assertEqual(await self.until_answer("Hello", "one") - GAP_STATUSES, set())

        self.write("Hello", "two")  # the code changes
        self.assertEqual(await self.until_answer("Hello", "two") - GAP_STATUSES, set())

        # A new action changes the catalog: the hub takes it once the old service left.
        self.write("Added", "three", file="added.py")
        seen = await self.until_answer("Added", "three")
        # Until the restart, the old service answers 404 for the action it does not have.
        self.assertEqual(seen - GAP_STATUSES - {(400, "UNKNOWN_ACTION")}, set())

        # A broken module stops the service, not the hub; the next good change brings it back.
        (self.actions / "hello.py").write_text("this is not python\n")
        await self.logged("the service exited with code 2; it starts again on the next change")
        self.assertEqual(await self.call("Added"), (422, NO_CONSUMER))
        self.write("Hello", "four")
        await self.until_answer("Hello", "four")

        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 30)
        await self.reader
        log = "".join(self.lines)
        self.assertEqual(code, 0, log)
        self.assertIn("changed: hello.py", log)
        self.assertIn("changed: added.py", log)
        self.assertIn("local hub stopped", log)
        self.assertNotIn("Traceback", log)

    async def test_reload_needs_local(self) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "entrypoint.py",
            "--reload",
            cwd=ROOT,
            env=clean_env(),
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await process.communicate()
        self.assertEqual(process.returncode, 2)
        self.assertEqual(
            stderr.decode(),
            "error: --reload works with --local only (python entrypoint.py --local --reload)\n",
        )

    async def test_without_watchfiles_it_says_what_to_install(self) -> None:
        # A module of that name that cannot be imported stands in for a missing package.
        shadow = self.folder / "shadow"
        shadow.mkdir()
        (shadow / "watchfiles.py").write_text("raise ImportError('not installed')\n")
        env = clean_env(ACTIONS_PATH=str(self.actions), PYTHONPATH=str(shadow))
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "entrypoint.py",
            "--local",
            "--reload",
            "--local-port",
            "0",
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
        self.assertEqual(process.returncode, 2)
        self.assertEqual(stderr.decode().count("\n"), 1, stderr.decode())
        self.assertIn("error: --reload needs the watchfiles package", stderr.decode())
        self.assertIn("requirements-test.txt", stderr.decode())


if __name__ == "__main__":
    unittest.main()
