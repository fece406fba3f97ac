"""Deploys under load: replicas (real processes) stopped with SIGTERM while callers loop.

A rolling restart replaces each of three replicas in turn (the new one joins, then the old
one gets SIGTERM, as a Deployment's rolling update does); a scale-down stops two of three at
once. Callers must never notice: every answer is a 200, every request a replica logged was
answered 200 and reached its caller, no replica answered 503 (another replica was always
joined, so none had to refuse anything), and every stopped replica exits 0.

On the real hub a few requests time out that never reached any replica: its request queue
keys requests by the millisecond they arrived, so a second request in the same millisecond
overwrites the first while no consumer has room (Vera-Plugboard's ServiceRequestProducer).
No consumer can see or save those: a 408 is accepted only for a request no replica answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import unittest
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from core.dev.local_hub.hub import LocalHub
from tests.replicas import Replica
from tests.support import wait_until
from tests.support_phoenix import FrontCaller, PhoenixHub, skip_without_phoenix_hub

REPLICAS = 3
CALLERS = 24
REQUEST_TIMEOUT = 20.0  # the local hub's callers wait this long before a 408
# Once the deploy is over, the callers still waiting get this long for their answer. Every
# request a replica received is answered within a second (Sleep takes 0.3 s); one still
# unanswered after it is one no replica received, which the real hub answers 408 only after
# 30 s: it is counted as a 408 without waiting for that.
STRAGGLERS_SECONDS = 5.0
# Answers the callers must get, at least, while three replicas are replaced: the load ran.
MIN_ANSWERED = 200
Call = Callable[[str, Any], Awaitable[tuple[int, dict[str, Any]]]]


async def load(
    call: Call,
    stop: asyncio.Event,
    statuses: Counter[int],
    timed_out: list[str],
    waiting: dict[int, str],
) -> None:
    """Callers in a loop until `stop`: Echo, and Sleep long enough to be running at SIGTERM.
    Statuses are the HTTP status the caller got (the hub's front turns any consumer status
    that is not a success into 400); `waiting` holds each caller's request in flight."""

    async def caller(number: int) -> None:
        sent = 0
        while not stop.is_set():
            sent += 1
            ident = waiting[number] = f"{number}-{sent}"
            if sent % 3:
                action, fields = "Echo", {"message": ident}
            else:
                action, fields = "Sleep", {"message": ident, "seconds": 0.3}
            status, body = await call(action, fields)
            del waiting[number]
            statuses[status] += 1
            if status == 408:
                timed_out.append(ident)
            if status == 200 and body.get("message") != {"message": ident}:
                statuses[-1] += 1  # somebody else's answer
            if status != 200:
                await asyncio.sleep(0.01)

    await asyncio.gather(*(caller(number) for number in range(CALLERS)))


class DeployUnderLoadTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        self.workdir = Path(self.enterContext(tempfile.TemporaryDirectory()))
        self.replicas: list[Replica] = []
        self.statuses: Counter[int] = Counter()
        self.timed_out: list[str] = []

    async def asyncTearDown(self) -> None:
        for replica in self.replicas:
            await replica.kill()

    def replica(self, name: str, url: str, token: str, **env: str) -> Replica:
        answered = str(self.workdir / "answered.txt")
        replica = Replica(name, url, token, self.workdir, FIXTURE_ANSWERED_FILE=answered, **env)
        self.replicas.append(replica)
        return replica

    # ------------------------------------------------------------------ the local hub

    async def test_each_replica_replaced_under_load_on_the_local_hub(self) -> None:
        async with LocalHub(request_timeout=REQUEST_TIMEOUT) as hub:
            await self.under_load(self.roll, hub.websocket_url, next(iter(hub.tokens)), hub.request)
        self.assertEqual(self.timed_out, [], "a caller waited for its timeout")
        await self.check(MIN_ANSWERED)

    async def test_scale_down_from_three_to_one_under_load_on_the_local_hub(self) -> None:
        async with LocalHub(request_timeout=REQUEST_TIMEOUT) as hub:
            token = next(iter(hub.tokens))
            await self.under_load(self.scale_down, hub.websocket_url, token, hub.request)
        self.assertEqual(self.timed_out, [], "a caller waited for its timeout")
        await self.check(MIN_ANSWERED // 4)

    # ------------------------------------------------------------------ the real hub

    @skip_without_phoenix_hub
    async def test_each_replica_replaced_under_load_on_the_real_hub(self) -> None:
        async with PhoenixHub() as hub, FrontCaller(hub.http_url, hub.service_id) as caller:
            await self.under_load(self.roll, hub.websocket_url, hub.tokens[0], caller.call)
        await self.check(MIN_ANSWERED)

    @skip_without_phoenix_hub
    async def test_scale_down_from_three_to_one_under_load_on_the_real_hub_v2(self) -> None:
        async with PhoenixHub() as hub, FrontCaller(hub.http_url, hub.service_id) as caller:
            await self.under_load(
                self.scale_down, hub.websocket_url, hub.tokens[0], caller.call, vsn="2.0.0"
            )
        await self.check(MIN_ANSWERED // 4)

    # ------------------------------------------------------------------ the deploys

    async def under_load(
        self,
        deploy: Callable[[list[Replica], str, str, dict[str, str]], Awaitable[None]],
        url: str,
        token: str,
        call: Call,
        vsn: str = "1.0.0",
    ) -> None:
        """Three replicas joined, then `deploy` while the callers loop."""
        env = {"PHOENIX_VSN": vsn}
        old = [await self.replica(f"old-{n}", url, token, **env).start() for n in range(REPLICAS)]
        for replica in old:
            await replica.joined()
        stop = asyncio.Event()
        waiting: dict[int, str] = {}
        running = asyncio.ensure_future(load(call, stop, self.statuses, self.timed_out, waiting))
        try:
            await deploy(old, url, token, env)
        finally:
            stop.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(running, STRAGGLERS_SECONDS)
            self.statuses[408] += len(waiting)
            self.timed_out.extend(waiting.values())
        print(f"\n{self.id().rsplit('.', 1)[-1]}: callers got {dict(self.statuses)}")

    async def roll(self, old: list[Replica], url: str, token: str, env: dict[str, str]) -> None:
        """Each old replica in turn: a new one joins, then the old one gets SIGTERM."""
        for number, leaving in enumerate(old):
            new = await self.replica(f"new-{number}", url, token, **env).start()
            await new.joined()
            leaving.terminate()
            self.assertEqual(await leaving.exited(), 0, leaving.log())

    async def scale_down(
        self, old: list[Replica], url: str, token: str, env: dict[str, str]
    ) -> None:
        """Two of the three get SIGTERM at once; the third serves on."""
        await wait_until(lambda: self.statuses[200] >= CALLERS)  # the load is under way
        for leaving in old[1:]:
            leaving.terminate()
        for leaving in old[1:]:
            self.assertEqual(await leaving.exited(), 0, leaving.log())
        served = self.statuses[200]
        await wait_until(lambda: self.statuses[200] >= served + CALLERS)  # by the last one

    # ------------------------------------------------------------------ the verdict

    def lost_story(self, lost: list[str], answered_by: dict[str, str]) -> str:
        """What to read when answers were lost: which replica answered each, and its log but
        the request lines."""
        by_pid = {str(replica.pid): replica for replica in self.replicas}
        parts = ["answered by a replica, never delivered to its caller:"]
        answering: dict[str, Replica] = {}  # by name, each once
        for ident in lost:
            pid = answered_by[ident]
            replica = by_pid.get(pid)
            if replica is None:
                parts.append(f"{ident}, answered by pid {pid}")
                continue
            parts.append(f"{ident}, answered by {replica.name}")
            answering[replica.name] = replica
        for replica in answering.values():
            parts.append(f"--- {replica.name}, but its request lines:\n{replica.story()}")
        return "\n".join(parts)

    def logged(self) -> Counter[int]:
        """The requests every replica logged, by the status it answered."""
        total: Counter[int] = Counter()
        for replica in self.replicas:
            total += replica.answered()
        return total

    async def check(self, min_answered: int) -> None:
        statuses = self.statuses
        answered_file = self.workdir / "answered.txt"
        lines = answered_file.read_text().splitlines() if answered_file.exists() else []
        answered_by = dict(line.split() for line in lines)  # ident: the pid that answered it
        lost = [ident for ident in self.timed_out if ident in answered_by]
        self.assertEqual(lost, [], self.lost_story(lost, answered_by))
        self.assertEqual(statuses[-1], 0, "a caller got another request's answer")
        self.assertEqual(set(statuses) - {200, 408}, set(), f"callers saw errors: {statuses}")
        # The replicas still running write their last request lines within milliseconds.
        with contextlib.suppress(AssertionError):
            await wait_until(lambda: self.logged()[200] >= statuses[200], timeout=2)
        logged = self.logged()
        for replica in self.replicas:
            by_status = replica.answered()
            self.assertEqual(
                set(by_status) - {200},
                set(),
                f"{replica.name} answered with an error while another replica was joined:\n"
                + replica.log(),
            )
        self.assertNotIn(
            "could not be confirmed delivered", "".join(r.log() for r in self.replicas)
        )
        # Every request a replica answered reached its caller, and nothing else did.
        self.assertEqual(logged[200], statuses[200], f"logged {logged}, callers got {statuses}")
        # A caller whose request the real hub lost waits out its 30 s timeout, most of a roll:
        # the load is then carried by the callers that were never stuck.
        stuck = {ident.split("-")[0] for ident in self.timed_out}
        self.assertGreater(statuses[200], min_answered * (CALLERS - len(stuck)) / CALLERS)


if __name__ == "__main__":
    unittest.main()
