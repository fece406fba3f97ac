"""SIGTERM and SIGINT: the real entrypoint in a subprocess, with requests in flight."""

from __future__ import annotations

import asyncio
import signal
import sys
import unittest

from core.dev.local_hub.hub import LocalHub
from tests.entrypoint_test import ROOT, clean_env
from tests.support import wait_until


class SignalTest(unittest.IsolatedAsyncioTestCase):
    async def start_service(self, hub: LocalHub, **env: str) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "entrypoint.py",
            cwd=ROOT,
            env=clean_env(WEBSOCKET_URL=hub.websocket_url, TOKEN=next(iter(hub.tokens)), **env),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self.addCleanup(lambda: process.returncode is None and process.kill())
        await hub.wait_for_joined(1, timeout=30)
        return process

    async def test_sigterm_finishes_running_requests_then_leaves(self) -> None:
        async with LocalHub() as hub:
            process = await self.start_service(hub)
            running = [
                asyncio.ensure_future(hub.request("Sleep", {"seconds": 1.0})) for _ in range(5)
            ]
            await wait_until(lambda: sum(1 for _, m in hub.received if m.event == "phx_join") >= 1)
            await asyncio.sleep(0.3)  # the five requests have started
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.2)
            late = (await hub.call("Echo", {"message": "late"})).payload
            results = await asyncio.gather(*running)
            code = await asyncio.wait_for(process.wait(), 30)
            _, stderr = await process.communicate()
        self.assertEqual(late["status_code"], 503)
        self.assertEqual([status for status, _ in results], [200] * 5)
        self.assertEqual(code, 0)
        self.assertTrue(any(m.event == "phx_leave" for _, m in hub.received))
        self.assertNotIn(b"Traceback", stderr)

    async def test_grace_period_cuts_long_requests_short(self) -> None:
        async with LocalHub() as hub:
            process = await self.start_service(hub, SHUTDOWN_GRACE_SECONDS="0.5")
            running = asyncio.ensure_future(hub.call("Sleep", {"seconds": 10}))
            await asyncio.sleep(0.3)
            process.send_signal(signal.SIGTERM)
            body = (await asyncio.wait_for(running, 10)).payload
            code = await asyncio.wait_for(process.wait(), 10)
        self.assertEqual((code, body["status_code"]), (0, 503))

    async def test_second_signal_exits_at_once(self) -> None:
        async with LocalHub() as hub:
            process = await self.start_service(hub)
            running = asyncio.ensure_future(hub.request("Sleep", {"seconds": 10}))
            await asyncio.sleep(0.3)
            process.send_signal(signal.SIGINT)
            await asyncio.sleep(0.3)
            process.send_signal(signal.SIGINT)
            code = await asyncio.wait_for(process.wait(), 5)
            running.cancel()
        self.assertEqual(code, 128 + signal.SIGINT)


if __name__ == "__main__":
    unittest.main()
