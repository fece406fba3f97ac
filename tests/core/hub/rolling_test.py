"""A rolling restart under load: replicas (real processes) are each stopped with SIGTERM and
replaced; no caller may wait for its timeout. A fast 503 from a leaving replica is the right
answer; a 408 means an answer was lost.

On the real hub a few requests time out that never reached any replica: its request queue
keys requests by the millisecond they arrived, so a second request in the same millisecond
overwrites the first while no consumer has room (Vera-Plugboard's ServiceRequestProducer).
No consumer can see or save those; they are counted and shown, and every request a replica
answered must reach its caller.
"""

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
from tests.support_phoenix import FrontCaller, PhoenixHub, skip_without_phoenix_hub

REPLICAS = 3
CALLERS = 24
REQUEST_TIMEOUT = 20.0  # the local hub's callers wait this long before a 408
REAL_HUB_TIMEOUT = 30.0  # the real hub's (not configurable)
# Answers the callers must get, at least, while three replicas are replaced: the load ran.
MIN_ANSWERED = 200


async def load(
    call: Any, stop: asyncio.Event, statuses: Counter[int], timed_out: list[str]
) -> None:
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
            if status == 408:
                timed_out.append(ident)
            if status == 200 and body.get("message") != {"message": ident}:
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
        answered = str(self.workdir / "answered.txt")
        replica = Replica(name, url, token, self.workdir, FIXTURE_ANSWERED_FILE=answered)
        self.replicas.append(replica)
        return replica

    async def test_each_replica_replaced_under_load_on_the_local_hub(self) -> None:
        async with LocalHub(request_timeout=REQUEST_TIMEOUT) as hub:
            token = next(iter(hub.tokens))
            statuses, timed_out = await self.roll(hub.websocket_url, token, hub.request)
        self.assertEqual(timed_out, [], "a caller waited for its timeout")
        self.check(statuses, timed_out)

    @skip_without_phoenix_hub
    async def test_each_replica_replaced_under_load_on_the_real_hub(self) -> None:
        async with PhoenixHub() as hub, FrontCaller(hub.http_url, hub.service_id) as caller:
            statuses, timed_out = await self.roll(hub.websocket_url, hub.tokens[0], caller.call)
        self.check(statuses, timed_out)

    async def roll(self, url: str, token: str, call: Any) -> tuple[Counter[int], list[str]]:
        old = [await self.replica(f"old-{n}", url, token).start() for n in range(REPLICAS)]
        for replica in old:
            await replica.joined()
        statuses: Counter[int] = Counter()
        timed_out: list[str] = []
        stop = asyncio.Event()
        running = asyncio.ensure_future(load(call, stop, statuses, timed_out))
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
                await asyncio.wait_for(running, REAL_HUB_TIMEOUT + 5)
        print(f"\nrolling restart: statuses {dict(statuses)}")
        return statuses, timed_out

    def check(self, statuses: Counter[int], timed_out: list[str]) -> None:
        answered_file = self.workdir / "answered.txt"
        answered = set(answered_file.read_text().split()) if answered_file.exists() else set()
        lost = [ident for ident in timed_out if ident in answered]
        self.assertEqual(lost, [], "answered by a replica, never delivered to its caller")
        self.assertEqual(statuses[-1], 0, "a caller got another request's answer")
        self.assertEqual(set(statuses) - {200, 503, 408}, set(), statuses)
        # A caller whose request the real hub lost waits out its 30 s timeout, most of a roll:
        # the load is then carried by the callers that were never stuck.
        stuck = {ident.split("-")[0] for ident in timed_out}
        self.assertGreater(statuses[200], MIN_ANSWERED * (CALLERS - len(stuck)) / CALLERS)


if __name__ == "__main__":
    unittest.main()
