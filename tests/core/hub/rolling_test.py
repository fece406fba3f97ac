"""A rolling restart under load: replicas (real processes) are each stopped with SIGTERM and
replaced; no caller may wait for its timeout. A fast 503 from a leaving replica is the right
answer; a 408 means an answer was lost."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import unittest
from collections import Counter
from pathlib import Path
from typing import Any

from core.dev.local_hub.hub import LocalHub
from tests.replicas import Replica

REPLICAS = 3
CALLERS = 24
REQUEST_TIMEOUT = 20.0


async def load(call: Any, stop: asyncio.Event, statuses: Counter[int]) -> None:
    """Callers in a loop until `stop`: Echo, and Sleep long enough to be running at SIGTERM."""

    async def caller(number: int) -> None:
        sent = 0
        while not stop.is_set():
            sent += 1
            ident = f"{number}-{sent}"
            if sent % 3:
                action, fields = "Echo", {"message": ident}
            else:
                action, fields = "Sleep", {"message": ident, "seconds": 0.3}
            status, body = await call(action, fields)
            if status == 400 and "shut" in str(body.get("message")):
                status = 503  # the hub's front answers a replica's 503 with HTTP 400
            statuses[status] += 1
            if status == 200 and body.get("fields") != {"message": ident}:
                statuses[-1] += 1  # somebody else's answer
            if status != 200:
                await asyncio.sleep(0.01)

    await asyncio.gather(*(caller(number) for number in range(CALLERS)))


class RollingRestartTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        self.workdir = Path(self.enterContext(tempfile.TemporaryDirectory()))
        self.replicas: list[Replica] = []

    async def asyncTearDown(self) -> None:
        for replica in self.replicas:
            await replica.kill()

    def replica(self, name: str, url: str, token: str) -> Replica:
        replica = Replica(name, url, token, self.workdir)
        self.replicas.append(replica)
        return replica

    async def test_each_replica_replaced_under_load_on_the_local_hub(self) -> None:
        async with LocalHub(request_timeout=REQUEST_TIMEOUT) as hub:
            token = next(iter(hub.tokens))
            statuses = await self.roll(hub.websocket_url, token, hub.request)
        self.check(statuses)

    async def roll(self, url: str, token: str, call: Any) -> Counter[int]:
        old = [await self.replica(f"old-{n}", url, token).start() for n in range(REPLICAS)]
        for replica in old:
            await replica.joined()
        statuses: Counter[int] = Counter()
        stop = asyncio.Event()
        running = asyncio.ensure_future(load(call, stop, statuses))
        try:
            for number, leaving in enumerate(old):
                new = await self.replica(f"new-{number}", url, token).start()
                await new.joined()
                leaving.terminate()
                self.assertEqual(await leaving.exited(), 0, leaving.log())
                self.assertNotIn("could not be confirmed delivered", leaving.log())
        finally:
            stop.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(running, REQUEST_TIMEOUT + 5)
        print(f"\nrolling restart: statuses {dict(statuses)}")
        return statuses

    def check(self, statuses: Counter[int]) -> None:
        self.assertEqual(statuses[408], 0, "a caller waited for its timeout")
        self.assertEqual(statuses[-1], 0, "a caller got another request's answer")
        self.assertEqual(set(statuses) - {200, 503}, set(), statuses)
        self.assertGreater(statuses[200], 200)


if __name__ == "__main__":
    unittest.main()
