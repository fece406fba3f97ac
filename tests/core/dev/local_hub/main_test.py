"""Tests for `core.dev.local_hub.__main__`: ``python -m core.local_hub`` as a user runs it."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import unittest
from urllib.parse import urlencode

import aiohttp
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.support import ROOT

START_TIMEOUT = 20.0


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m core.local_hub`` with `args` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "core.local_hub", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class HelpTest(unittest.TestCase):
    def test_help_says_what_it_serves(self) -> None:
        result = run_cli("--help")
        self.assertEqual(result.returncode, 0, result.stderr)
        text = result.stdout
        for needle in (
            "GET  /websocket?token=T&actions=JSON[&vsn=2.0.0]",
            "POST /",
            "Origin",
            "localhost",
            "--service-id",
            "--request-timeout",
            "--origin-host",
            "--allow-host",
            "Host header",
        ):
            self.assertIn(needle, text)

    def test_bad_values_are_one_line_and_exit_2(self) -> None:
        for args in (
            ("--port", "70000"),
            ("--max-in-flight", "0"),
            ("--request-timeout", "0"),
            ("--service-id", "abc"),
            ("--log-level", "LOUD"),
        ):
            with self.subTest(args=args):
                result = run_cli(*args)
                self.assertEqual(result.returncode, 2)
                self.assertNotIn("Traceback", result.stderr)
                self.assertIn(args[0], result.stderr)


class RunTest(unittest.IsolatedAsyncioTestCase):
    async def test_serves_a_consumer_and_an_http_caller_until_sigterm(self) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "core.local_hub",
            "--port",
            "0",
            "--token",
            "cli-token",
            "--service-id",
            "7",
            "--service-name",
            "cli",
            "--allow-host",
            "hub.test",
            cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self.addAsyncCleanup(self._reap, process)
        assert process.stderr is not None
        websocket_url = await asyncio.wait_for(self._announced_url(process.stderr), START_TIMEOUT)
        query = urlencode({"token": "cli-token", "actions": json.dumps({"Echo": {}})})
        websocket = await connect(f"{websocket_url}?{query}", proxy=None, ping_interval=None)
        self.addAsyncCleanup(websocket.close)
        await websocket.send(
            json.dumps({"topic": "service", "event": "phx_join", "payload": {}, "ref": "1"})
        )
        reply = json.loads(await asyncio.wait_for(websocket.recv(), 5))
        response = reply["payload"]["response"]
        self.assertEqual(response["service"]["id"], 7)
        self.assertEqual(response["service"]["name"], "cli")
        self.assertEqual((response["token"]["id"], response["token"]["service_id"]), (1, 7))

        http_url = websocket_url.replace("ws://", "http://").removesuffix("/websocket")
        async with aiohttp.ClientSession() as session:
            call = asyncio.create_task(
                session.post(
                    http_url + "/", json={"service_id": "7", "action": "Echo", "fields": {}}
                )
            )
            push = json.loads(await asyncio.wait_for(websocket.recv(), 5))
            await websocket.send(
                json.dumps(
                    {
                        "topic": "service",
                        "event": "response",
                        "payload": {"status": "success", "message": "hi"},
                        "ref": push["payload"]["response_ref"],
                    }
                )
            )
            async with await call as answer:
                self.assertEqual(answer.status, 200)
                self.assertEqual((await answer.json())["message"], "hi")

            # Answered for --allow-host's name; 421 for any other that is not this machine.
            for host, status in (("hub.test:4000", 400), ("attacker.example", 421)):
                async with session.post(http_url + "/", headers={"Host": host}) as answer:
                    self.assertEqual(answer.status, status, host)

        process.send_signal(signal.SIGTERM)
        with self.assertRaises(ConnectionClosed) as caught:
            await asyncio.wait_for(websocket.recv(), 10)
        assert caught.exception.rcvd is not None
        self.assertEqual(caught.exception.rcvd.code, 1012)
        self.assertEqual(await asyncio.wait_for(process.wait(), 10), 0)

    @staticmethod
    async def _announced_url(stderr: asyncio.StreamReader) -> str:
        """Read the hub's log until it names its consumer URL."""
        while line := (await stderr.readline()).decode():
            found = re.search(r"consumer websocket URL: (\S+)", line)
            if found:
                return found.group(1)
        raise AssertionError("the hub exited without announcing its URL")

    @staticmethod
    async def _reap(process: asyncio.subprocess.Process) -> None:
        if process.returncode is None:
            process.kill()
            await process.wait()


if __name__ == "__main__":
    unittest.main()
