"""The soak test: ``python -m bench.soak [--minutes 10] [--callers 32]`` (not in CI).

One replica (``python entrypoint.py``) serves `bench/soak_actions` through a TCP front that
cuts its connection every 1 to 3 s, while callers keep requests flowing through the local
hub (in this process) for the given minutes. It prints, at the start (after a warm-up
minute's first 20 s) and at the end: the replica's resident memory and open file
descriptors, and then the requests, their statuses, how many answers the replica gave that
never reached their caller (lost: must be 0), how many never reached the replica (the hub
pushed them into a connection that was cut: the hub's loss, shown for information), and how
many responses the replica wrote again after a reconnect. Memory and descriptors must grow
by less than 5 % between start and end. The last line is the figures as JSON; the exit code
is 0 when both checks pass.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import ROOT, progress
from bench.consumers import ConsumerProcess, framework_consumer, framework_env
from core.dev.local_hub import LocalHub
from tests.faults import TcpFront

SOAK_ACTIONS = ROOT / "bench" / "soak_actions"
WARM_UP = 20.0
GROWTH_LIMIT = 0.05


@dataclass
class Snapshot:
    """The replica's footprint at one moment."""

    rss_mib: float
    open_fds: int


@dataclass
class Calls:
    """What the callers saw."""

    statuses: Counter[int] = field(default_factory=Counter)
    timed_out: list[str] = field(default_factory=list)
    wrong: int = 0


def snapshot(pid: int) -> Snapshot:
    """Resident memory (VmRSS) and open descriptors of `pid`."""
    rss_kib = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kib = int(line.split()[1])
    return Snapshot(rss_kib / 1024, len(os.listdir(f"/proc/{pid}/fd")))


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def metric(port: int, name: str) -> float:
    """One unlabelled value from the replica's ``/metrics``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return float("nan")


async def call_loop(hub: LocalHub, number: int, stop: asyncio.Event, calls: Calls) -> None:
    """One caller: Traced requests with unique messages until `stop`."""
    sent = 0
    while not stop.is_set():
        ident = f"{number}-{sent}"
        sent += 1
        status, body = await hub.request("Traced", {"message": ident})
        calls.statuses[status] += 1
        if status == 200 and body.get("message") != ident:
            calls.wrong += 1
        elif status == 408:
            calls.timed_out.append(ident)
        elif status != 200:
            await asyncio.sleep(0.01)


async def cut_loop(front: TcpFront, stop: asyncio.Event, rng: random.Random) -> None:
    """Cut the replica's connection every 1 to 3 s until `stop`."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), rng.uniform(1.0, 3.0))
        front.cut()


async def soak(minutes: float, callers: int, workdir: Path) -> dict[str, object]:
    """Run the soak; returns the figures."""
    answered_file = workdir / "answered.txt"
    health_port = free_port()
    async with LocalHub() as hub, TcpFront((hub.host, hub.port)) as front:
        token = next(iter(hub.tokens))
        env = framework_env(hub, token, workdir / "soak.sqlite3", SOAK_ACTIONS)
        env.update(
            WEBSOCKET_URL=front.websocket_url,
            SOAK_ANSWERED_FILE=str(answered_file),
            HEALTH_PORT=str(health_port),
        )
        replica: ConsumerProcess = framework_consumer("replica", env, workdir / "replica.log")
        await replica.start(hub)
        calls = Calls()
        stop = asyncio.Event()
        tasks = [asyncio.ensure_future(call_loop(hub, n, stop, calls)) for n in range(callers)]
        tasks.append(asyncio.ensure_future(cut_loop(front, stop, random.Random(1))))
        started = time.monotonic()
        await asyncio.sleep(WARM_UP)
        first = snapshot(replica.pid)
        progress(f"start: {first.rss_mib:.1f} MiB, {first.open_fds} descriptors")
        end_at = started + minutes * 60
        while (left := end_at - time.monotonic()) > 0:
            await asyncio.sleep(min(60.0, left))
            done = sum(calls.statuses.values())
            progress(
                f"{(time.monotonic() - started) / 60:.1f} min: {done} requests, {front.cuts} cuts"
            )
        last = snapshot(replica.pid)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), hub.request_timeout + 10)
        resent = metric(health_port, "plugboard_responses_resent_total")
        await replica.stop(hub)
    answered = set(answered_file.read_text().split())
    lost = [ident for ident in calls.timed_out if ident in answered]
    growth_rss = last.rss_mib / first.rss_mib - 1
    growth_fds = last.open_fds / first.open_fds - 1
    return {
        "minutes": minutes,
        "callers": callers,
        "requests": sum(calls.statuses.values()),
        "statuses": {str(code): count for code, count in sorted(calls.statuses.items())},
        "cuts": front.cuts,
        "lost": len(lost),
        "never_reached_the_replica": len(calls.timed_out) - len(lost),
        "wrong_answers": calls.wrong,
        "resent": resent,
        "rss_mib_start": round(first.rss_mib, 1),
        "rss_mib_end": round(last.rss_mib, 1),
        "open_fds_start": first.open_fds,
        "open_fds_end": last.open_fds,
        "rss_growth": round(growth_rss, 4),
        "fds_growth": round(growth_fds, 4),
        "pass": not lost and not calls.wrong and max(growth_rss, growth_fds) < GROWTH_LIMIT,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the soak and print its figures; 0 when nothing was lost and nothing grew."""
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long (10)")
    parser.add_argument("--callers", type=int, default=32, help="concurrent callers (32)")
    args = parser.parse_args(argv)
    if args.minutes * 60 <= WARM_UP:
        parser.error(f"--minutes must be over {WARM_UP / 60:.2f} (the warm-up)")
    with tempfile.TemporaryDirectory() as folder:
        figures = asyncio.run(soak(args.minutes, args.callers, Path(folder)))
    out = sys.stdout
    out.write(
        f"soak: {figures['minutes']} min, {figures['callers']} callers, {figures['cuts']} cuts\n"
        f"requests {figures['requests']}, statuses {figures['statuses']}\n"
        f"lost (answered by the replica, never delivered): {figures['lost']}\n"
        f"never reached the replica (cut in the hub's push): "
        f"{figures['never_reached_the_replica']}\n"
        f"re-sent after a reconnect: {figures['resent']:.0f}\n"
        f"RSS {figures['rss_mib_start']} -> {figures['rss_mib_end']} MiB "
        f"({figures['rss_growth']:+.1%}), open descriptors {figures['open_fds_start']} -> "
        f"{figures['open_fds_end']} ({figures['fds_growth']:+.1%}); limit +{GROWTH_LIMIT:.0%}\n"
        f"{'PASS' if figures['pass'] else 'FAIL'}\n"
    )
    out.write(json.dumps(figures) + "\n")
    return 0 if figures["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
