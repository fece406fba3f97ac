"""A replica's peak memory under two hostile loads: ``python -m bench.hostile``.

One replica (``python entrypoint.py`` serving `bench/actions`, every setting at its default,
no database) joins a hub scripted frame by frame (`tests.faults.ScriptedHub`), which then:

* ``held``: stops reading, and pushes 100 `Echo` requests of 1 MB each. Every answer has to
  be held or dropped: ``OUTBOX_MAX_BYTES`` bounds what is held.
* ``waiting``: pushes 20,000 `Sleep` requests of 20 s each at once. ``MAX_CONCURRENCY`` of
  them run, ``MAX_WAITING_REQUESTS`` wait for a slot, and the others are answered 503
  ``OVERLOADED`` at once.

For each case it prints the replica's resident memory once joined and its peak (``VmHWM``)
once the last request it can answer at once is answered (what its log says: one line per
request), then one JSON line with the figures. ``--case held|waiting`` runs one of them.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import platform
import re
import secrets
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from bench.common import BENCH_ACTIONS, ROOT, BenchError, progress
from core.hub.phoenix import Message, V1Serializer
from core.settings import VARIABLES
from tests.faults import ScriptedConnection, ScriptedHub

MIB = 1024 * 1024
# The bound the replica must stay under in both cases (the Deployment's limit is 256 MiB).
PEAK_LIMIT = 128 * MIB
HELD_REQUESTS = 100
HELD_MESSAGE_BYTES = 1_000_000
WAITING_REQUESTS = 20_000
WAITING_SECONDS = 20.0
REQUEST_LINE = re.compile(r" core\.requests: action=\S* status=(\d+) ")
SERIALIZER = V1Serializer()


@dataclass
class Replica:
    """The replica process, its request lines counted by status as they are logged."""

    process: asyncio.subprocess.Process
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=50))
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    joined: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self) -> None:
        """Follow its stderr."""
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            self.tail.append(line[:300])
            if "joined service" in line:
                self.joined.set()
            if (match := REQUEST_LINE.search(line)) is not None:
                self.statuses[int(match.group(1))] += 1
                self.changed.set()

    async def answered(self, count: int, timeout: float) -> None:
        """Wait until it has logged `count` request lines."""
        async with asyncio.timeout(timeout):
            while self.statuses.total() < count:
                self.changed.clear()
                await self.changed.wait()

    def memory(self, key: str) -> int:
        """A memory figure of its /proc status (VmRSS, VmHWM), in bytes."""
        with open(f"/proc/{self.process.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
        raise BenchError(f"no {key} in /proc/{self.process.pid}/status")


def replica_env(url: str, token: str) -> dict[str, str]:
    """Every setting at its default, but the hub, the token and the actions."""
    env = {key: value for key, value in os.environ.items() if key not in VARIABLES}
    env.update(
        WEBSOCKET_URL=url,
        TOKEN=token,
        ACTIONS_PATH=str(BENCH_ACTIONS),
        PYTHONUNBUFFERED="1",
    )
    return env


async def joined(connection: ScriptedConnection) -> Message:
    """Accept the upgrade, then the replica's join; returns the join."""
    await connection.handshake()
    while True:
        [frame] = await connection.frames(1, timeout=30.0)
        message = SERIALIZER.decode(frame.data.decode())
        if message.event == "phx_join":
            break
    payload = {"status": "ok", "response": {"num_consumers": 1}}
    connection.send_text(
        SERIALIZER.encode(Message("service", "phx_reply", payload, message.ref, message.ref))
    )
    return message


def request(join: Message, ref: str, action: str, fields: dict[str, Any]) -> str:
    """A request frame, as the hub pushes it."""
    payload = {"action": action, "fields": fields, "response_ref": ref}
    return SERIALIZER.encode(Message("service", "request", payload, None, join.ref))


async def discard(connection: ScriptedConnection) -> None:
    """Read and forget what the replica writes (a hub that reads)."""
    with contextlib.suppress(ConnectionError, OSError):
        while await connection.reader.read(1 << 20):
            pass


async def run_case(case: str, timeout: float = 300.0) -> dict[str, Any]:
    """One case against a fresh replica; returns its figures."""
    async with ScriptedHub() as hub:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "entrypoint.py",
            cwd=ROOT,
            env=replica_env(hub.url(), secrets.token_urlsafe(16)),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        replica = Replica(process)
        reader = asyncio.get_running_loop().create_task(replica.read())
        try:
            connection = await hub.accept(timeout=60.0)
            join = await joined(connection)
            await asyncio.wait_for(replica.joined.wait(), 30.0)
            idle = replica.memory("VmRSS")
            started = time.perf_counter()
            if case == "held":
                message = "x" * HELD_MESSAGE_BYTES
                for index in range(HELD_REQUESTS):
                    connection.send_text(request(join, f"h{index}", "Echo", {"message": message}))
                expected = HELD_REQUESTS
            else:
                reading = asyncio.get_running_loop().create_task(discard(connection))
                fields = {"seconds": WAITING_SECONDS}
                for index in range(WAITING_REQUESTS):
                    connection.send_text(request(join, f"w{index}", "Sleep", fields))
                # MAX_CONCURRENCY (100) run and MAX_WAITING_REQUESTS (1000) wait: 20 s away.
                expected = WAITING_REQUESTS - 100 - 1000
            await replica.answered(expected, timeout)
            seconds = time.perf_counter() - started
            peak = replica.memory("VmHWM")
            if case != "held":
                reading.cancel()
        except BaseException:
            progress("the replica's last lines:\n" + "\n".join(replica.tail))
            raise
        finally:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            await reader
    return {
        "case": case,
        "requests": HELD_REQUESTS if case == "held" else WAITING_REQUESTS,
        "answered_by_status": dict(sorted(replica.statuses.items())),
        "seconds": round(seconds, 2),
        "idle_rss_mib": round(idle / MIB, 1),
        "peak_rss_mib": round(peak / MIB, 1),
        "within_limit": peak < PEAK_LIMIT,
    }


def machine() -> dict[str, str]:
    """Python and the CPU the figures come from."""
    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"python": platform.python_version(), "cpu": cpu, "cpus": str(os.cpu_count())}


async def main(cases: list[str]) -> int:
    """Run the cases, print their figures; exit code 0 when each stayed under the limit."""
    results = []
    for case in cases:
        progress(f"case {case}")
        result = await run_case(case)
        results.append(result)
        print(
            f"{case:8} idle {result['idle_rss_mib']:6.1f} MiB, peak {result['peak_rss_mib']:6.1f} "
            f"MiB (limit {PEAK_LIMIT // MIB} MiB), answered {result['answered_by_status']} in "
            f"{result['seconds']} s"
        )
    print(json.dumps({"machine": machine(), "results": results}))
    return 0 if all(result["within_limit"] for result in results) else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.hostile", description=__doc__)
    parser.add_argument("--case", choices=("held", "waiting"), action="append")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    sys.exit(asyncio.run(main(arguments.case or ["held", "waiting"])))
