"""SIGTERM and SIGINT: the real entrypoint in a subprocess, with requests in flight.

On SIGTERM a replica leaves the hub's rotation at once unless it is the service's only joined
one: that one keeps serving until another joins or its grace ends (with none joined the hub
answers callers 422). SIGINT (a person at a terminal) always leaves at once.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
import unittest

from core.dev.local_hub.hub import LocalHub
from tests.entrypoint_test import ROOT, clean_env


class SignalTest(unittest.IsolatedAsyncioTestCase):
    async def start_service(
        self, hub: LocalHub, joined: int | None = 1, **env: str
    ) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "entrypoint.py",
            cwd=ROOT,
            env=clean_env(WEBSOCKET_URL=hub.websocket_url, TOKEN=next(iter(hub.tokens)), **env),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self.addCleanup(lambda: process.returncode is None and process.kill())
        if joined is not None:
            await hub.wait_for_joined(joined, timeout=30)
        return process

    async def stderr_of(self, process: asyncio.subprocess.Process) -> str:
        code = await asyncio.wait_for(process.wait(), 30)
        _, stderr = await process.communicate()
        self.assertEqual(code, 0, stderr.decode())
        return stderr.decode()

    async def test_sigterm_of_the_last_replica_serves_until_its_grace_ends(self) -> None:
        async with LocalHub() as hub:
            process = await self.start_service(hub, SHUTDOWN_GRACE_SECONDS="1.5")
            running = [
                asyncio.ensure_future(hub.request("Sleep", {"seconds": 1.0})) for _ in range(5)
            ]
            await hub.wait_for_pushed(5)
            process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            # Once the replica has taken in the signal, it is still in the rotation: a new
            # request is served, not refused.
            assert process.stderr is not None
            seen = ""
            while "only joined replica" not in seen:
                line = await asyncio.wait_for(process.stderr.readline(), 10)
                self.assertTrue(line, f"no warning before the end of its log: {seen}")
                seen += line.decode()
            late = await hub.call("Echo", {"message": "late"})
            results = await asyncio.gather(*running)
            stderr = seen + await self.stderr_of(process)
            held = time.monotonic() - signalled
            after_status, _ = await hub.request("Echo", {"message": "after"})
        self.assertEqual((late.status, late.payload["status_code"]), (200, 200))
        self.assertEqual([status for status, _ in results], [200] * 5)
        self.assertGreaterEqual(held, 1.4)  # it stayed for its grace period
        self.assertEqual(after_status, 422)  # no consumer left
        self.assertTrue(any(m.event == "phx_leave" for _, m in hub.received))
        warnings = [line for line in stderr.splitlines() if "only joined replica" in line]
        self.assertEqual(len(warnings), 1, stderr)
        self.assertIn("callers get 422", warnings[0])
        self.assertNotIn("status=503", stderr)
        self.assertNotIn("Traceback", stderr)

    async def test_sigterm_of_the_last_replica_ends_once_another_joins(self) -> None:
        async with LocalHub() as hub:
            first = await self.start_service(hub, SHUTDOWN_GRACE_SECONDS="25")
            first.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            second = await self.start_service(hub, joined=None)
            stderr = await self.stderr_of(first)
            handed_over = time.monotonic() - signalled
            await hub.wait_for_joined(1, timeout=5)
            status, body = await hub.request("Echo", {"message": "to the new one"})
            second.send_signal(signal.SIGINT)
            await self.stderr_of(second)
        self.assertLess(handed_over, 20)  # long before its 25 s grace
        self.assertIn("another replica joined (2 consumers)", stderr)
        self.assertEqual((status, body["message"]), (200, {"message": "to the new one"}))

    async def test_sigterm_with_another_replica_joined_leaves_at_once(self) -> None:
        async with LocalHub() as hub:
            leaving = await self.start_service(hub, SHUTDOWN_GRACE_SECONDS="25")
            staying = await self.start_service(hub, joined=2)
            # Round robin: two of the four run on the replica that gets SIGTERM.
            running = [
                asyncio.ensure_future(hub.request("Sleep", {"seconds": 1.0})) for _ in range(4)
            ]
            await hub.wait_for_pushed(4)
            leaving.send_signal(signal.SIGTERM)
            await hub.wait_for_joined(1, timeout=5)
            served = [await hub.request("Echo", {"message": str(n)}) for n in range(4)]
            results = await asyncio.gather(*running)
            stderr = await self.stderr_of(leaving)
            staying.send_signal(signal.SIGINT)
            await self.stderr_of(staying)
        self.assertEqual([status for status, _ in results + served], [200] * 8)
        self.assertIn("leaving the hub's rotation", stderr)
        self.assertNotIn("only joined replica", stderr)
        self.assertNotIn("status=503", stderr)

    async def test_sigint_of_the_last_replica_leaves_at_once(self) -> None:
        async with LocalHub() as hub:
            process = await self.start_service(hub, SHUTDOWN_GRACE_SECONDS="25")
            running = asyncio.ensure_future(hub.request("Sleep", {"seconds": 0.5}))
            await hub.wait_for_pushed(1)
            process.send_signal(signal.SIGINT)
            await hub.wait_for_joined(0, timeout=5)
            status, _ = await running
            stderr = await self.stderr_of(process)
        self.assertEqual(status, 200)
        self.assertNotIn("only joined replica", stderr)

    async def test_grace_period_cuts_long_requests_short(self) -> None:
        async with LocalHub() as hub:
            process = await self.start_service(hub, SHUTDOWN_GRACE_SECONDS="0.5")
            running = asyncio.ensure_future(hub.call("Sleep", {"seconds": 10}))
            await hub.wait_for_pushed(1)
            process.send_signal(signal.SIGTERM)
            body = (await asyncio.wait_for(running, 10)).payload
            code = await asyncio.wait_for(process.wait(), 10)
        self.assertEqual((code, body["status_code"]), (0, 503))

    async def test_second_signal_exits_at_once(self) -> None:
        async with LocalHub() as hub:
            process = await self.start_service(hub)
            running = asyncio.ensure_future(hub.request("Sleep", {"seconds": 10}))
            await hub.wait_for_pushed(1)
            process.send_signal(signal.SIGINT)
            # The first signal made it leave: the hub has it out of the rotation.
            await hub.wait_for_joined(0, timeout=5)
            process.send_signal(signal.SIGINT)
            code = await asyncio.wait_for(process.wait(), 5)
            running.cancel()
        self.assertEqual(code, 128 + signal.SIGINT)


if __name__ == "__main__":
    unittest.main()
