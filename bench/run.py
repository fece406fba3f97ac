"""The service's benchmark: ``python -m bench.run [--requests N] [--quick] [--profile]``.

This process runs the local hub (`core.local_hub.LocalHub`) on loopback and drives load with
`LocalHub.request`, so no HTTP is involved and the hub's own cost stays in this process.
Each consumer under test runs in its own process, so its CPU time, read before and after a
measured window, is its own: the run time of all its threads in nanoseconds, summed from
``/proc/<pid>/task/*/schedstat`` (user + system from ``/proc/<pid>/stat``, in 10 ms clock
ticks, where schedstat is missing); the system part shown is ``stime`` from
``/proc/<pid>/stat`` (clock ticks). A thread that exits during a window takes its run time
with it, which is acceptable here: the consumers' threads (an idle thread pool) live as long
as the process.

The consumers under test:

1. the framework: ``python entrypoint.py`` serving ``bench/actions`` (Echo and Sleep),
   LOG_LEVEL=INFO, stderr written to a file, MAX_CONCURRENCY=256;
2. the baseline: ``python -m bench.bare_consumer`` (json.loads, one dict, json.dumps, send),
   connected with the same token and catalog;
3. idle framework consumers, for start-up time and memory: one serving ``bench/actions``
   with no database configured, started three times one after the other (once with
   ``--quick``), then one serving the project's ``actions/`` (the examples, which use the
   database) on one SQLite file: once migrating it, then three times finding it migrated.
   The medians of each case's starts are compared with the targets: a single start on a
   shared machine moves by a third from one to the next.

The service's own modules are first compiled to bytecode, as the image's build compiles them
(`bench.consumers.compile_service`), so that start-up is measured as a replica starts, even
where PYTHONDONTWRITEBYTECODE is set.

Each consumer is first measured alone, one after the other, at 1, 2, 4 and 64 requests in
flight; the framework twice, with the floor on answers (``RESPONSE_MIN_DELAY_SECONDS``) at its
default and at 0. At 1 in flight, its latency is judged against the floor (p50 <= floor +
0.5 ms) and, with no floor, against the baseline's (p50 <= 1.5 x), and its CPU per request
against the baseline's (<= 1.5 x).
Then the framework and the baseline are joined at once, with the same catalog, and the hub
alternates requests between them for a few rounds (6; 2 with ``--quick``): both see the same
machine load at the same moment, so that load cancels out of their ratio. Each round starts
a new pair, and which of the two joins first alternates from one round to the next, so that
neither keeps the first place in the hub's rotation. The CPU targets (framework / baseline
<= 0.8, and <= 0.7 on Python 3.13 and later) are judged on the median of these side-by-side
ratios. The sequential ratio (each
consumer alone) is reported as information only: the machine's load can change between the
two measurements and move it either way.

The figures are printed as a table, then as one JSON line (the last line of stdout) for CI
or a spreadsheet. Targets are marked PASS or FAIL from this run's figures; the exit code is
0 even when a target fails, and 1 only when the benchmark itself could not run (a consumer
did not join, or requests failed).

``--profile`` runs only the framework consumer, under cProfile for the measured window at 64
requests in flight (``--in-flight N`` for another level, ``--floor SECONDS`` for another
``RESPONSE_MIN_DELAY_SECONDS``), prints the top functions by own time to stderr, the own time
and Python calls per request to stdout, and keeps the ``.prof`` file. Comparing two such runs
shows what a setting adds per request, call by call. Linux only (``/proc``).

This module holds the command line and the order of the phases; the parts they use are
`bench.proc` (/proc readings), `bench.consumers` (the consumer processes), `bench.load`
(requests through the hub), `bench.stats` and `bench.report` (the table and the JSON line).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import BENCH_ACTIONS, ECHO_FIELDS, IN_FLIGHT, LEVELS, BenchError, progress
from bench.consumers import (
    ConsumerProcess,
    baseline_consumer,
    bench_connection_url,
    compile_service,
    framework_consumer,
    framework_env,
    profiled_framework_consumer,
)
from bench.load import (
    REQUEST_TIMEOUT,
    SLEEP_REQUESTS,
    SLEEP_SECONDS,
    Load,
    drive,
    echo_answered,
    echo_load,
    sleep_round,
    warm_up,
)
from bench.profiled_consumer import START_SIGNAL, STOP_SIGNAL
from bench.report import (
    ConsumerFigures,
    Idle,
    Results,
    framework_joined_first,
    print_profile,
    print_table,
    summary,
)
from core.dev.local_hub.hub import LocalHub

NO_FLOOR = {"RESPONSE_MIN_DELAY_SECONDS": "0"}


@dataclass
class Options:
    """What to run, from the command line."""

    requests: int
    warmup: int
    sleep_rounds: int
    side_by_side_rounds: int
    settle_seconds: float
    idle_starts: int
    quick: bool
    profile: bool
    profile_out: Path | None
    profile_in_flight: int = IN_FLIGHT
    profile_floor: str | None = None


# ----------------------------------------------------------------------------- phases


async def measure_consumer(
    hub: LocalHub, consumer: ConsumerProcess, options: Options
) -> ConsumerFigures:
    """Start `consumer`, warm it up, and measure Echo at each of `LEVELS` in flight."""
    progress(f"starting the {consumer.name} consumer")
    joined = await consumer.start(hub)
    progress(f"{consumer.name}: joined after {joined:.2f} s; warming up")
    await warm_up(hub, options.warmup)
    loads = {}
    for in_flight in LEVELS:
        progress(f"{consumer.name}: {options.requests} requests, {in_flight} in flight")
        loads[in_flight] = await echo_load(hub, consumer, options.requests, in_flight)
    failures = sum(load.failures for load in loads.values())
    if failures:
        raise BenchError(
            f"{consumer.name}: {failures} Echo requests failed:\n{consumer.log_tail()}"
        )
    return ConsumerFigures(joined, loads, consumer.rss_bytes())


async def side_by_side(
    hub: LocalHub,
    pair: Callable[[int], tuple[ConsumerProcess, ConsumerProcess]],
    options: Options,
) -> list[tuple[float, float]]:
    """Both consumers joined at once, sharing one load: the hub hands requests out
    round-robin, so each gets every other request under the same conditions at the same
    moment, which takes the machine's changing load out of the comparison.

    The join order can move a ratio by a few per cent (two identical builds side by side
    differed by 1 to 3 %), so each round starts a new pair from `pair(round)` and the join
    order alternates (`framework_joined_first`). Returns each round's CPU per request (µs) for the
    framework and the baseline, in that order whatever joined first."""
    rounds: list[tuple[float, float]] = []
    for number in range(options.side_by_side_rounds):
        framework, baseline = pair(number)
        first, second = (
            (framework, baseline) if framework_joined_first(number) else (baseline, framework)
        )
        try:
            progress(f"side by side: round {number + 1}, the {first.name} joining first")
            await first.start(hub)
            await second.start(hub, alongside=1)
            await warm_up(hub, options.warmup * 2)
            progress(f"side by side: round {number + 1}, {IN_FLIGHT} in flight each")
            before = framework.cpu_times(), baseline.cpu_times()
            load = await drive(
                hub, "Echo", ECHO_FIELDS, options.requests * 2, IN_FLIGHT * 2, echo_answered
            )
            after = framework.cpu_times(), baseline.cpu_times()
        finally:
            await asyncio.gather(framework.stop(hub), baseline.stop(hub))
        if load.failures:
            raise BenchError(f"side by side: {load.failures} Echo requests failed")
        framework_us, baseline_us = (
            (end[0] - start[0]) / options.requests * 1e6  # total CPU (see `proc.cpu_times`)
            for start, end in zip(before, after, strict=True)
        )
        rounds.append((framework_us, baseline_us))
    return rounds


async def with_consumer(
    hub: LocalHub, consumer: ConsumerProcess, body: Callable[[], Awaitable[Any]]
) -> Any:
    """Run `body` and stop `consumer` afterwards, whatever happens."""
    try:
        return await body()
    finally:
        await consumer.stop(hub)


def cancel_on_sigterm() -> None:
    """Make SIGTERM cancel the running task, as Ctrl-C does under `asyncio.run`: the phases'
    ``finally`` blocks then stop the consumers they started. Killed by a bare SIGTERM, the
    benchmark left them running, reconnecting to its vanished hub."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


async def run_benchmark(options: Options) -> Results:
    """The full run: framework, baseline, then an idle framework with the example actions."""
    cancel_on_sigterm()
    compile_service()
    token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="py-service-bench-") as scratch:
        tmp = Path(scratch)
        database = tmp / "bench.sqlite3"
        async with LocalHub(tokens=(token,), request_timeout=REQUEST_TIMEOUT) as hub:
            # The benchmark's actions use no database: none is configured for them.
            framework = framework_consumer(
                "framework",
                framework_env(hub, token, None, BENCH_ACTIONS),
                tmp / "framework.log",
            )

            async def framework_phase() -> tuple[ConsumerFigures, list[float]]:
                figures = await measure_consumer(hub, framework, options)
                rounds = []
                for number in range(options.sleep_rounds):
                    progress(f"framework: {SLEEP_REQUESTS} x Sleep({SLEEP_SECONDS}), {number + 1}")
                    rounds.append(await sleep_round(hub))
                return figures, rounds

            framework_figures, rounds = await with_consumer(hub, framework, framework_phase)

            # The same service with no floor on answers: what the floor costs in latency.
            no_floor = framework_consumer(
                "framework, no floor",
                framework_env(hub, token, None, BENCH_ACTIONS) | NO_FLOOR,
                tmp / "framework-no-floor.log",
            )
            no_floor_figures = await with_consumer(
                hub, no_floor, lambda: measure_consumer(hub, no_floor, options)
            )

            url = bench_connection_url(hub, token)
            baseline = baseline_consumer(url, tmp / "baseline.log")
            baseline_figures = await with_consumer(
                hub, baseline, lambda: measure_consumer(hub, baseline, options)
            )

            def pair(number: int) -> tuple[ConsumerProcess, ConsumerProcess]:
                return (
                    framework_consumer(
                        "framework",
                        framework_env(hub, token, None, BENCH_ACTIONS),
                        tmp / f"framework-pair-{number + 1}.log",
                    ),
                    baseline_consumer(url, tmp / f"baseline-pair-{number + 1}.log"),
                )

            paired = await side_by_side(hub, pair, options)

            async def idle(
                name: str, database_file: Path | None, actions: Path | None, starts: int
            ) -> Idle:
                """Start an idle consumer `starts` times, one after the other: the medians
                of its start-up times and of its resident memory."""
                joined: list[float] = []
                rss: list[int] = []
                anonymous: list[int] = []
                for number in range(starts):
                    consumer = framework_consumer(
                        f"idle framework ({name})",
                        framework_env(hub, token, database_file, actions),
                        tmp / f"idle-{name.replace(' ', '-')}-{number + 1}.log",
                    )

                    async def phase(consumer: ConsumerProcess = consumer) -> None:
                        progress(f"starting an idle framework consumer: {name}")
                        joined.append(await consumer.start(hub))
                        await asyncio.sleep(options.settle_seconds)
                        rss.append(consumer.rss_bytes())
                        anonymous.append(consumer.anonymous_rss_bytes())

                    await with_consumer(hub, consumer, phase)
                return Idle(
                    statistics.median(joined),
                    int(statistics.median(rss)),
                    joined,
                    int(statistics.median(anonymous)),
                )

            no_database = await idle("no database", None, BENCH_ACTIONS, options.idle_starts)
            # The examples' first start migrates a new database; the next ones find it at
            # head, as every replica but the first of a release does.
            examples_first = await idle("example actions, new database", database, None, 1)
            examples = await idle("example actions", database, None, options.idle_starts)

        return Results(
            framework=framework_figures,
            framework_no_floor=no_floor_figures,
            baseline=baseline_figures,
            sleep_rounds=rounds,
            side_by_side=paired,
            framework_log_lines=framework.log_lines(),
            idle_no_database=no_database,
            idle_examples_first=examples_first,
            idle_examples=examples,
        )


async def run_profile(options: Options) -> tuple[Load, Path]:
    """Echo at `Options.profile_in_flight` in flight against a framework consumer under
    cProfile, with `Options.profile_floor` as its floor when given."""
    cancel_on_sigterm()
    compile_service()
    token = secrets.token_urlsafe(24)
    out = options.profile_out or Path(tempfile.gettempdir()) / f"py-service-{os.getpid()}.prof"
    out = out.resolve()
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="py-service-bench-") as scratch:
        tmp = Path(scratch)
        async with LocalHub(tokens=(token,), request_timeout=REQUEST_TIMEOUT) as hub:
            env = framework_env(hub, token, None, BENCH_ACTIONS)
            if options.profile_floor is not None:
                env["RESPONSE_MIN_DELAY_SECONDS"] = options.profile_floor
            consumer = profiled_framework_consumer(env, out, tmp / "framework.log")
            in_flight = options.profile_in_flight

            async def profile_phase() -> Load:
                progress("starting the framework consumer under cProfile")
                await consumer.start(hub)
                await warm_up(hub, options.warmup)
                os.kill(consumer.pid, START_SIGNAL)
                await asyncio.sleep(0.2)  # the consumer is idle: the signal is handled at once
                progress(f"profiling {options.requests} requests, {in_flight} in flight")
                load = await echo_load(hub, consumer, options.requests, in_flight)
                os.kill(consumer.pid, STOP_SIGNAL)
                deadline = time.perf_counter() + 10.0
                while not out.exists():
                    if time.perf_counter() > deadline:
                        raise BenchError(f"the profiled consumer wrote no {out}")
                    await asyncio.sleep(0.05)
                return load

            load = await with_consumer(hub, consumer, profile_phase)
    if load.failures:
        raise BenchError(f"{load.failures} profiled requests failed")
    return load, out


# ----------------------------------------------------------------------------- main


def parse_options(argv: list[str] | None) -> Options:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Measure the consumer's CPU per request, throughput, latency, concurrency "
        "and memory against a bare consumer.",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=None,
        help="requests per measurement (default 10000; 300 with --quick)",
    )
    parser.add_argument("--quick", action="store_true", help="small numbers: a smoke test")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="only profile the framework consumer (cProfile, 64 in flight): top functions "
        "by own time to stderr, statistics kept in a .prof file",
    )
    parser.add_argument(
        "--profile-out", type=Path, default=None, help="where --profile writes its .prof file"
    )
    parser.add_argument(
        "--in-flight",
        type=int,
        default=None,
        help=f"requests in flight while --profile measures (default {IN_FLIGHT})",
    )
    parser.add_argument(
        "--floor",
        default=None,
        metavar="SECONDS",
        help="the profiled consumer's RESPONSE_MIN_DELAY_SECONDS (default: the service's)",
    )
    args = parser.parse_args(argv)
    requests = args.requests or (300 if args.quick else 10000)
    if requests < 1:
        parser.error("--requests must be at least 1")
    if (args.in_flight is not None or args.floor is not None) and not args.profile:
        parser.error("--in-flight and --floor go with --profile")
    in_flight = IN_FLIGHT if args.in_flight is None else args.in_flight
    if in_flight < 1:
        parser.error("--in-flight must be at least 1")
    return Options(
        requests=requests,
        warmup=100 if args.quick else 500,
        sleep_rounds=1 if args.quick else 3,
        side_by_side_rounds=2 if args.quick else 6,
        settle_seconds=0.5 if args.quick else 2.0,
        idle_starts=1 if args.quick else 3,
        quick=args.quick,
        profile=args.profile,
        profile_out=args.profile_out,
        profile_in_flight=in_flight,
        profile_floor=args.floor,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns 0 when it ran (targets met or not), 1 when it could not."""
    options = parse_options(argv)
    if not Path("/proc/self/stat").exists():
        sys.stderr.write("error: the benchmark reads /proc and needs Linux\n")
        return 1
    try:
        if options.profile:
            load, path = asyncio.run(run_profile(options))
            print_profile(load, path)
            return 0
        results = asyncio.run(run_benchmark(options))
    except BenchError as error:
        sys.stderr.write(f"error: {error}\n")
        return 1
    except asyncio.CancelledError:
        sys.stderr.write("error: stopped by SIGTERM; the consumers it started were stopped\n")
        return 1
    data = summary(results, requests=options.requests, quick=options.quick)
    print_table(
        results, data, requests=options.requests, warmup=options.warmup, quick=options.quick
    )
    sys.stdout.flush()
    print(json.dumps(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
