"""Answers the real hub drops, by floor: ``python -m bench.floor [--seconds 20] [--callers 16]``.

The hub's HTTP front hands a request to a consumer before it registers the caller as the
one waiting for the answer, and drops an answer that arrives in between: the caller gets
408 after 30 s although the replica answered. `RESPONSE_MIN_DELAY_SECONDS` holds every
answer at least that long after its request arrived; this benchmark counts the answers
dropped at each floor, to choose its default from data.

For each load and each floor (``--floors``, in ms), it starts the real hub
(``../shared/phoenix-hub``, ``HUB_HTTP_MODE=vera``) once, one replica (``python
entrypoint.py``, on this interpreter) serving `Work` (``bench/deploy_actions``: it answers at
once and notes every message it answered in a file), and callers (in this process) that
post ``POST /`` in a loop for ``--seconds``, each with a message of its own; meanwhile
other processes keep the machine busy: one spinning process (one CPU busy), or one per CPU
(every CPU busy). A call answered 408 whose message the replica noted is an answer the hub
dropped. Calls still waiting when the time is up are waited for (a dropped one takes 30 s).

Printed: the table (calls and answers dropped, per load and floor), the Python version and
CPU it ran on, and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import ROOT, progress
from tests.support_phoenix import FrontCaller, PhoenixHub

DEPLOY_ACTIONS = ROOT / "bench" / "deploy_actions"
JOIN_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
SPIN = "while True: pass"


@dataclass
class Cell:
    """One load and one floor: how many calls, and how many answers the hub dropped."""

    load: str
    floor_ms: float
    calls: int
    ok: int
    dropped: int
    unanswered: int  # 408 for a request the replica never answered

    @property
    def per_10000(self) -> float:
        """Answers dropped per 10,000 calls."""
        return self.dropped / self.calls * 10_000 if self.calls else 0.0


def cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


async def start_replica(
    hub: PhoenixHub, floor: float, answered: Path, log: Path
) -> asyncio.subprocess.Process:
    """One replica serving `Work`, holding answers `floor` seconds."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "DATABASE_URL" and not key.startswith("POSTGRES_")
    }
    env.update(
        WEBSOCKET_URL=hub.websocket_url,
        TOKEN=hub.tokens[0],
        ACTIONS_PATH=str(DEPLOY_ACTIONS),
        LOG_LEVEL="WARNING",
        RESPONSE_MIN_DELAY_SECONDS=f"{floor:g}",
        DEPLOY_ANSWERED_FILE=str(answered),
        PYTHONUNBUFFERED="1",
    )
    with log.open("wb") as handle:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "entrypoint.py"),
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=handle,
            stderr=handle,
        )


async def wait_served(caller: FrontCaller, replica: asyncio.subprocess.Process) -> None:
    """Until the replica answers a call (the hub answers 422 while none is joined)."""
    deadline = time.monotonic() + JOIN_TIMEOUT
    while time.monotonic() < deadline:
        if replica.returncode is not None:
            raise RuntimeError(f"the replica exited with {replica.returncode}")
        status, _ = await caller.call("Work", {"message": "warm-up"})
        if status == 200:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the replica did not serve within {JOIN_TIMEOUT:g} s")


async def measure(
    load: str, spinners: int, floor_ms: float, seconds: float, callers: int, work: Path
) -> Cell:
    """One cell of the table, on a hub of its own."""
    answered = work / f"answered-{spinners}-{floor_ms:g}.txt"
    log = work / f"replica-{spinners}-{floor_ms:g}.log"
    statuses: list[tuple[int, str]] = []
    async with (
        PhoenixHub(http_mode="vera") as hub,
        FrontCaller(hub.http_url, hub.service_id) as caller,
    ):
        replica = await start_replica(hub, floor_ms / 1000, answered, log)
        spinning: list[asyncio.subprocess.Process] = []
        try:
            await wait_served(caller, replica)
            for _ in range(spinners):
                spinning.append(await asyncio.create_subprocess_exec(sys.executable, "-c", SPIN))
            progress(f"{load}, floor {floor_ms:g} ms: {callers} callers for {seconds:g} s")
            end = time.monotonic() + seconds
            numbers = itertools.count()

            async def call_in_a_loop(name: int) -> None:
                while time.monotonic() < end:
                    message = f"c{name}-{next(numbers)}"
                    status, _ = await caller.call("Work", {"message": message})
                    statuses.append((status, message))

            await asyncio.gather(*(call_in_a_loop(name) for name in range(callers)))
        finally:
            for process in spinning:
                process.kill()
                await process.wait()
            if replica.returncode is None:
                replica.send_signal(signal.SIGTERM)
                await asyncio.wait_for(replica.wait(), STOP_TIMEOUT)
    noted = set(answered.read_text().split()) if answered.exists() else set()
    timed_out = [message for status, message in statuses if status == 408]
    dropped = sum(1 for message in timed_out if message in noted)
    ok = sum(1 for status, _ in statuses if status == 200)
    return Cell(load, floor_ms, len(statuses), ok, dropped, len(timed_out) - dropped)


async def run(args: argparse.Namespace) -> list[Cell]:
    """Every load, every floor."""
    cpus = os.cpu_count() or 1
    loads = [("one CPU busy", 1)] + ([(f"{cpus} CPUs busy", cpus)] if cpus > 1 else [])
    cells = []
    with tempfile.TemporaryDirectory(prefix="py-service-floor-") as scratch:
        for load, spinners in loads:
            for floor_ms in args.floors:
                cells.append(
                    await measure(
                        load, spinners, floor_ms, args.seconds, args.callers, Path(scratch)
                    )
                )
    return cells


def print_table(cells: list[Cell], args: argparse.Namespace) -> None:
    """The table for people, then the JSON line."""
    print(
        f"Answers the real hub dropped, by floor (RESPONSE_MIN_DELAY_SECONDS): one replica, "
        f"{args.callers} callers looping POST / for {args.seconds:g} s per cell; "
        f"Python {platform.python_version()}; {os.cpu_count()} x {cpu_model()}"
    )
    loads = list(dict.fromkeys(cell.load for cell in cells))
    header = ["floor (ms)"] + [f"{load}: calls, dropped" for load in loads]
    rows = [header]
    for floor_ms in args.floors:
        row = [f"{floor_ms:g}"]
        for load in loads:
            cell = next(c for c in cells if c.load == load and c.floor_ms == floor_ms)
            row.append(f"{cell.calls:,}, {cell.dropped} ({cell.per_10000:.1f} per 10,000)")
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(f"{text:>{width}}" for text, width in zip(row, widths, strict=True)))
    unanswered = sum(cell.unanswered for cell in cells)
    print(f"408s for requests the replica never answered (not counted as dropped): {unanswered}")
    print(
        json.dumps(
            {
                "bench": "floor",
                "python": platform.python_version(),
                "cpu": cpu_model(),
                "cpus": os.cpu_count(),
                "seconds": args.seconds,
                "callers": args.callers,
                "cells": [
                    {
                        "load": cell.load,
                        "floor_ms": cell.floor_ms,
                        "calls": cell.calls,
                        "ok": cell.ok,
                        "dropped": cell.dropped,
                        "unanswered": cell.unanswered,
                    }
                    for cell in cells
                ],
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    """Run every cell and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0, help="calling time per cell")
    parser.add_argument("--callers", type=int, default=16, help="callers looping POST /")
    parser.add_argument(
        "--floors",
        type=float,
        nargs="+",
        default=[0.0, 0.5, 1.0, 2.0],
        help="floors to measure, in ms",
    )
    args = parser.parse_args(argv)
    cells = asyncio.run(run(args))
    print_table(cells, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
