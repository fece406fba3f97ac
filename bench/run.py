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
3. an idle framework consumer serving the project's ``actions/``: memory and start-up time.

Each consumer is first measured alone, one after the other (1 and 64 requests in flight).
Then the framework and the baseline are joined at once, with the same catalog, and the hub
alternates requests between them for a few rounds (5; 1 with ``--quick``): both see the same
machine load at the same moment, so that load cancels out of their ratio. The CPU target
(framework / baseline <= 1.0) is judged on the median of these side-by-side ratios. The
sequential ratio (each consumer alone) is reported as information only: the machine's load
can change between the two measurements and move it either way.

The figures are printed as a table, then as one JSON line (the last line of stdout) for CI
or a spreadsheet. Targets are marked PASS or FAIL from this run's figures; the exit code is
0 even when a target fails, and 1 only when the benchmark itself could not run (a consumer
did not join, or requests failed).

``--profile`` runs only the framework consumer, under cProfile for the measured window at 64
requests in flight, prints the top functions by own time to stderr and keeps the ``.prof``
file. Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import secrets
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from core.dev.local_hub.hub import LocalHub
from core.hub.client import PlugboardClient
from core.model.registry import ActionRegistry
from core.model.runner import ActionRunner
from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BENCH_ACTIONS = ROOT / "bench" / "actions"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024

IN_FLIGHT = 64
ECHO_FIELDS = {"message": "hello, plugboard"}
SLEEP_REQUESTS = 200
SLEEP_SECONDS = 0.2
CPU_RATIO_TARGET = 1.0
SLEEP_WALL_TARGET = 0.3
REQUEST_TIMEOUT = 30.0
JOIN_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
FRAMEWORK_MAX_CONCURRENCY = 256

# Settings the consumer reads from the environment: the benchmark sets its own values and
# never inherits these from the shell it runs in.
CONSUMER_VARIABLES = (
    "WEBSOCKET_URL",
    "TOKEN",
    "PHOENIX_VSN",
    "MAX_CONCURRENCY",
    "ACTION_TIMEOUT_SECONDS",
    "HEARTBEAT_INTERVAL_SECONDS",
    "JOIN_TIMEOUT_SECONDS",
    "SHUTDOWN_GRACE_SECONDS",
    "MAX_MESSAGE_BYTES",
    "OUTBOX_LIMIT",
    "RESPONSE_MAX_AGE_SECONDS",
    "ACTIONS_PATH",
    "HEALTH_PORT",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "DATABASE_URL",
)


class BenchError(Exception):
    """The benchmark could not run (a consumer failed to start, requests failed)."""


def progress(text: str) -> None:
    """A progress note on stderr (stdout holds only the results)."""
    sys.stderr.write(f"bench: {text}\n")
    sys.stderr.flush()


# ----------------------------------------------------------------------------- /proc


def stat_times(pid: int) -> tuple[float, float]:
    """User and system CPU time of process `pid` (all its threads) so far, in seconds.

    From ``/proc/<pid>/stat``: clock ticks (10 ms), too coarse for short windows.
    """
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return utime / CLOCK_TICKS, stime / CLOCK_TICKS


def schedstat_available(pid: int | str = "self") -> bool:
    """True when the kernel provides ``/proc/<pid>/schedstat`` (CONFIG_SCHED_INFO)."""
    return Path(f"/proc/{pid}/schedstat").exists()


def schedstat_seconds(pid: int) -> float | None:
    """Time all threads of process `pid` have spent on a CPU so far, in seconds.

    The sum of the first field (run time, ns) of ``/proc/<pid>/task/*/schedstat``; a thread
    that exits between the listing and the reading is skipped. None without schedstat.
    """
    if not schedstat_available(pid):
        return None
    total_ns = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            fields = Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread exited after the listing
        if fields:
            total_ns += int(fields[0])
    return total_ns / 1e9


def cpu_times(pid: int) -> tuple[float, float]:
    """Total and system CPU time of process `pid` (all its threads) so far, in seconds.

    The total is `schedstat_seconds` (ns resolution), or user + system from
    ``/proc/<pid>/stat`` without schedstat; the system part is always stime (clock ticks).
    """
    user, system = stat_times(pid)
    total = schedstat_seconds(pid)
    return (user + system if total is None else total), system


def cpu_source() -> str:
    """Where the CPU figures come from, for the table's header."""
    ticks = f"{1e6 / CLOCK_TICKS:,.0f} us ticks"
    if schedstat_available():
        total = "run time of all the consumer's threads (/proc/<pid>/task/*/schedstat, ns)"
    else:
        total = f"user + system time of the consumer (/proc/<pid>/stat, {ticks})"
    return f"CPU = {total}; of which system = stime (/proc/<pid>/stat, {ticks})."


def rss_bytes(pid: int) -> int:
    """Resident set size of process `pid` (VmRSS), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise BenchError(f"no VmRSS for process {pid}")


# ----------------------------------------------------------------------------- consumers


class ConsumerProcess:
    """One consumer under test, in its own process, stderr written to a file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        """The consumer's process id (after `start`)."""
        if self.process is None:
            raise BenchError(f"{self.name} consumer is not running")
        return self.process.pid

    async def start(self, hub: LocalHub, alongside: int = 0) -> float:
        """Start the process and wait until the hub counts it joined; returns the seconds.

        `alongside`: how many other consumers are meant to be connected already.
        """
        if hub.connection_count() != alongside:
            raise BenchError("another consumer is still connected to the hub")
        self._log = self.log_path.open("wb")
        started = time.perf_counter()
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            cwd=ROOT,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=self._log,
        )
        while hub.joined_count() < alongside + 1:
            if self.process.returncode is not None:
                raise BenchError(
                    f"{self.name} consumer exited with {self.process.returncode} before "
                    f"joining:\n{self.log_tail()}"
                )
            if time.perf_counter() - started > JOIN_TIMEOUT:
                raise BenchError(
                    f"{self.name} consumer did not join within {JOIN_TIMEOUT:g} s:\n"
                    f"{self.log_tail()}"
                )
            await asyncio.sleep(0.002)
        return time.perf_counter() - started

    def cpu_times(self) -> tuple[float, float]:
        """The consumer's total and system CPU time so far (see `cpu_times`)."""
        return cpu_times(self.pid)

    def rss_bytes(self) -> int:
        """The consumer's resident memory now."""
        return rss_bytes(self.pid)

    async def stop(self, hub: LocalHub) -> None:
        """SIGTERM, wait for a graceful exit (kill after `STOP_TIMEOUT`), wait for the hub."""
        process = self.process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                progress(f"{self.name} consumer ignored SIGTERM for {STOP_TIMEOUT:g} s: killing")
                process.kill()
                await process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        with contextlib.suppress(TimeoutError):
            await hub.wait_for_connections(0, timeout=10.0)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the consumer wrote to stderr."""
        if self._log is not None:
            self._log.flush()
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:]) or "(no output)"

    def log_lines(self) -> int:
        """How many lines the consumer wrote to stderr."""
        return len(self.log_path.read_bytes().splitlines()) if self.log_path.exists() else 0


def framework_env(
    hub: LocalHub, token: str, database: Path, actions_path: Path | None
) -> dict[str, str]:
    """The environment of a framework consumer; `actions_path` None means the default."""
    env = {key: value for key, value in os.environ.items() if key not in CONSUMER_VARIABLES}
    env.update(
        WEBSOCKET_URL=hub.websocket_url,
        TOKEN=token,
        PHOENIX_VSN="1.0.0",
        DATABASE_URL=f"sqlite:///{database}",
        LOG_LEVEL="INFO",
        LOG_FORMAT="text",
        MAX_CONCURRENCY=str(FRAMEWORK_MAX_CONCURRENCY),
        PYTHONUNBUFFERED="1",  # as in the container image: one write per log line
    )
    if actions_path is not None:
        env["ACTIONS_PATH"] = str(actions_path)
    return env


def bench_connection_url(hub: LocalHub, token: str) -> str:
    """The URL the framework builds for ``bench/actions``: same token, same catalog."""
    actions: dict[str, type[ActionRunner]] = ActionRegistry.discover(BENCH_ACTIONS, ActionRunner)
    settings = Settings(websocket_url=hub.websocket_url, token=token, actions_path=BENCH_ACTIONS)
    client = PlugboardClient(settings, actions, events={})
    try:
        return client.connection_url()
    finally:
        client.executor.close()


# ----------------------------------------------------------------------------- load


@dataclass
class Load:
    """The outcome of one measured batch of requests."""

    requests: int
    in_flight: int
    wall_seconds: float
    latencies: list[float]
    failures: int
    cpu_seconds: float | None = None
    cpu_system_seconds: float | None = None
    hub_cpu_seconds: float = 0.0

    @property
    def rps(self) -> float | None:
        """Requests answered per second."""
        return ratio(self.requests, self.wall_seconds)

    @property
    def p50_ms(self) -> float:
        """Median latency seen by the hub, in milliseconds."""
        return percentile(self.latencies, 0.50) * 1000

    @property
    def p99_ms(self) -> float:
        """99th percentile latency seen by the hub, in milliseconds."""
        return percentile(self.latencies, 0.99) * 1000

    @property
    def cpu_us_per_request(self) -> float | None:
        """The consumer's CPU time per request, in microseconds."""
        if self.cpu_seconds is None:
            return None
        return self.cpu_seconds / self.requests * 1e6

    @property
    def cpu_system_us_per_request(self) -> float | None:
        """The system (kernel) part of `cpu_us_per_request`."""
        if self.cpu_system_seconds is None:
            return None
        return self.cpu_system_seconds / self.requests * 1e6

    @property
    def hub_cpu_us_per_request(self) -> float:
        """This process's CPU time per request (hub and load generator), in microseconds."""
        return self.hub_cpu_seconds / self.requests * 1e6


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of `values` (`fraction` between 0 and 1)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


Check = Callable[[int, dict[str, Any]], bool]


def echo_answered(status: int, body: dict[str, Any]) -> bool:
    """True for the answer an Echo of `ECHO_FIELDS` must get."""
    return status == 200 and body.get("fields") == ECHO_FIELDS


def sleep_answered(status: int, body: dict[str, Any]) -> bool:
    """True for a successful Sleep answer."""
    return status == 200 and body.get("status") == "success"


async def drive(
    hub: LocalHub,
    action: str,
    fields: dict[str, Any],
    total: int,
    in_flight: int,
    check: Check,
    consumer: ConsumerProcess | None = None,
) -> Load:
    """Send `total` requests keeping `in_flight` outstanding; CPU of `consumer` if given."""
    latencies: list[float] = []
    failures = 0
    remaining = total

    async def worker() -> None:
        nonlocal remaining, failures
        while remaining > 0:
            remaining -= 1
            sent = time.perf_counter()
            status, body = await hub.request(action, fields, timeout=REQUEST_TIMEOUT)
            latencies.append(time.perf_counter() - sent)
            if not check(status, body):
                failures += 1

    before = consumer.cpu_times() if consumer is not None else None
    hub_cpu_before = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(in_flight, total))))
    wall = time.perf_counter() - started
    hub_cpu = time.process_time() - hub_cpu_before
    load = Load(total, in_flight, wall, latencies, failures, hub_cpu_seconds=hub_cpu)
    if consumer is not None and before is not None:
        total, system = (
            after - first for after, first in zip(consumer.cpu_times(), before, strict=True)
        )
        load.cpu_seconds, load.cpu_system_seconds = total, system
    return load


async def echo_load(hub: LocalHub, consumer: ConsumerProcess, total: int, in_flight: int) -> Load:
    """Echo requests with the consumer's CPU measured over the window."""
    return await drive(hub, "Echo", ECHO_FIELDS, total, in_flight, echo_answered, consumer)


async def warm_up(hub: LocalHub, requests: int) -> None:
    """Echo requests whose figures are thrown away (caches, allocator, first-call paths)."""
    load = await drive(hub, "Echo", ECHO_FIELDS, requests, IN_FLIGHT, echo_answered)
    if load.failures:
        raise BenchError(f"{load.failures} of {requests} warm-up requests failed")


async def sleep_round(hub: LocalHub) -> float:
    """`SLEEP_REQUESTS` concurrent Sleep requests; the wall time until the last answer."""
    load = await drive(
        hub,
        "Sleep",
        {"seconds": SLEEP_SECONDS},
        SLEEP_REQUESTS,
        SLEEP_REQUESTS,
        sleep_answered,
    )
    if load.failures:
        raise BenchError(f"{load.failures} of {SLEEP_REQUESTS} Sleep requests failed")
    return load.wall_seconds


async def side_by_side(
    hub: LocalHub, first: ConsumerProcess, second: ConsumerProcess, options: Options
) -> list[tuple[float, float]]:
    """Both consumers joined at once, sharing one load: the hub hands requests out
    round-robin, so each gets every other request under the same conditions at the same
    moment, which takes the machine's changing load out of the comparison. Returns each
    round's CPU per request (µs) for `first` and `second`."""
    progress("side by side: starting both consumers")
    await first.start(hub)
    await second.start(hub, alongside=1)
    await warm_up(hub, options.warmup * 2)
    rounds: list[tuple[float, float]] = []
    for number in range(options.side_by_side_rounds):
        progress(f"side by side: round {number + 1}, {IN_FLIGHT} in flight each")
        before = first.cpu_times(), second.cpu_times()
        load = await drive(
            hub, "Echo", ECHO_FIELDS, options.requests * 2, IN_FLIGHT * 2, echo_answered
        )
        after = first.cpu_times(), second.cpu_times()
        if load.failures:
            raise BenchError(f"side by side: {load.failures} Echo requests failed")
        per_request = [
            (end[0] - start[0]) / options.requests * 1e6  # total CPU (see `cpu_times`)
            for start, end in zip(before, after, strict=True)
        ]
        rounds.append((per_request[0], per_request[1]))
    return rounds


# ----------------------------------------------------------------------------- phases


@dataclass
class Options:
    """What to run, from the command line."""

    requests: int
    warmup: int
    sleep_rounds: int
    side_by_side_rounds: int
    settle_seconds: float
    quick: bool
    profile: bool
    profile_out: Path | None


@dataclass
class ConsumerFigures:
    """One consumer's figures: CPU, throughput and latency at 1 and 64 in flight."""

    start_to_joined: float
    one: Load
    many: Load
    rss_after_load: int


async def measure_consumer(
    hub: LocalHub, consumer: ConsumerProcess, options: Options
) -> ConsumerFigures:
    """Start `consumer`, warm it up, and measure Echo at 1 and at `IN_FLIGHT` in flight."""
    progress(f"starting the {consumer.name} consumer")
    joined = await consumer.start(hub)
    progress(f"{consumer.name}: joined after {joined:.2f} s; warming up")
    await warm_up(hub, options.warmup)
    progress(f"{consumer.name}: {options.requests} requests, 1 in flight")
    one = await echo_load(hub, consumer, options.requests, 1)
    progress(f"{consumer.name}: {options.requests} requests, {IN_FLIGHT} in flight")
    many = await echo_load(hub, consumer, options.requests, IN_FLIGHT)
    if one.failures or many.failures:
        raise BenchError(
            f"{consumer.name}: {one.failures + many.failures} Echo requests failed:\n"
            f"{consumer.log_tail()}"
        )
    return ConsumerFigures(joined, one, many, consumer.rss_bytes())


async def with_consumer(
    hub: LocalHub, consumer: ConsumerProcess, body: Callable[[], Awaitable[Any]]
) -> Any:
    """Run `body` and stop `consumer` afterwards, whatever happens."""
    try:
        return await body()
    finally:
        await consumer.stop(hub)


@dataclass
class Results:
    """Everything one full run measured."""

    framework: ConsumerFigures
    baseline: ConsumerFigures
    sleep_rounds: list[float]
    side_by_side: list[tuple[float, float]]
    framework_log_lines: int
    idle_rss: int
    idle_start_to_joined: float


async def run_benchmark(options: Options) -> Results:
    """The full run: framework, baseline, then an idle framework with the example actions."""
    token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="py-service-bench-") as scratch:
        tmp = Path(scratch)
        database = tmp / "bench.sqlite3"
        async with LocalHub(tokens=(token,), request_timeout=REQUEST_TIMEOUT) as hub:
            framework = ConsumerProcess(
                "framework",
                [sys.executable, "entrypoint.py"],
                framework_env(hub, token, database, BENCH_ACTIONS),
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

            url = bench_connection_url(hub, token)
            baseline = ConsumerProcess(
                "baseline",
                [sys.executable, "-m", "bench.bare_consumer", url],
                dict(os.environ),
                tmp / "baseline.log",
            )
            baseline_figures = await with_consumer(
                hub, baseline, lambda: measure_consumer(hub, baseline, options)
            )

            pair = (
                ConsumerProcess(
                    "framework",
                    [sys.executable, "entrypoint.py"],
                    framework_env(hub, token, database, BENCH_ACTIONS),
                    tmp / "framework-pair.log",
                ),
                ConsumerProcess(
                    "baseline",
                    [sys.executable, "-m", "bench.bare_consumer", url],
                    dict(os.environ),
                    tmp / "baseline-pair.log",
                ),
            )
            try:
                paired = await side_by_side(hub, pair[0], pair[1], options)
            finally:
                await asyncio.gather(*(consumer.stop(hub) for consumer in pair))

            idle = ConsumerProcess(
                "idle framework (example actions)",
                [sys.executable, "entrypoint.py"],
                framework_env(hub, token, database, None),
                tmp / "idle.log",
            )

            async def idle_phase() -> tuple[float, int]:
                progress("starting an idle framework consumer with the example actions")
                joined = await idle.start(hub)
                await asyncio.sleep(options.settle_seconds)
                return joined, idle.rss_bytes()

            idle_joined, idle_rss = await with_consumer(hub, idle, idle_phase)

        return Results(
            framework=framework_figures,
            baseline=baseline_figures,
            sleep_rounds=rounds,
            side_by_side=paired,
            framework_log_lines=framework.log_lines(),
            idle_rss=idle_rss,
            idle_start_to_joined=idle_joined,
        )


async def run_profile(options: Options) -> tuple[Load, Path]:
    """Echo at `IN_FLIGHT` in flight against a framework consumer under cProfile."""
    token = secrets.token_urlsafe(24)
    out = options.profile_out or Path(tempfile.gettempdir()) / f"py-service-{os.getpid()}.prof"
    out = out.resolve()
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="py-service-bench-") as scratch:
        tmp = Path(scratch)
        async with LocalHub(tokens=(token,), request_timeout=REQUEST_TIMEOUT) as hub:
            consumer = ConsumerProcess(
                "framework (cProfile)",
                [sys.executable, "-m", "bench.profiled_consumer", str(out)],
                framework_env(hub, token, tmp / "bench.sqlite3", BENCH_ACTIONS),
                tmp / "framework.log",
            )

            async def profile_phase() -> Load:
                progress("starting the framework consumer under cProfile")
                await consumer.start(hub)
                await warm_up(hub, options.warmup)
                os.kill(consumer.pid, signal.SIGUSR1)
                await asyncio.sleep(0.2)  # the consumer is idle: the signal is handled at once
                progress(f"profiling {options.requests} requests, {IN_FLIGHT} in flight")
                load = await echo_load(hub, consumer, options.requests, IN_FLIGHT)
                os.kill(consumer.pid, signal.SIGUSR2)
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


# ----------------------------------------------------------------------------- output


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, None when either is missing or the denominator is 0."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def verdict(passed: bool) -> str:
    """The marker printed next to a target."""
    return "PASS" if passed else "FAIL"


def median(values: list[float]) -> float | None:
    """The median of `values`, None when there are none."""
    return statistics.median(values) if values else None


def cell(value: float | None, digits: int = 1) -> str:
    """A number for the table ("-" when there is none)."""
    return "-" if value is None else f"{value:,.{digits}f}"


def summary(results: Results, options: Options) -> dict[str, Any]:
    """The figures as one flat JSON object (the last line of the output)."""
    fw, base = results.framework, results.baseline
    sleep_wall = median(results.sleep_rounds)
    data: dict[str, Any] = {
        "bench": "py-service",
        "quick": options.quick,
        "requests": options.requests,
        "in_flight": IN_FLIGHT,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "framework_stderr": "file",
        "framework_log_lines": results.framework_log_lines,
    }
    for prefix, figures in (("framework", fw), ("baseline", base)):
        data[f"{prefix}_cpu_us_per_req_{IN_FLIGHT}"] = figures.many.cpu_us_per_request
        data[f"{prefix}_cpu_us_per_req_1"] = figures.one.cpu_us_per_request
        data[f"{prefix}_cpu_system_us_per_req_{IN_FLIGHT}"] = figures.many.cpu_system_us_per_request
        for load in (figures.one, figures.many):
            suffix = load.in_flight
            data[f"{prefix}_rps_{suffix}"] = load.rps
            data[f"{prefix}_p50_ms_{suffix}"] = load.p50_ms
            data[f"{prefix}_p99_ms_{suffix}"] = load.p99_ms
            data[f"{prefix}_hub_cpu_us_per_req_{suffix}"] = load.hub_cpu_us_per_request
        data[f"{prefix}_start_to_joined_s"] = figures.start_to_joined
        data[f"{prefix}_rss_mib_after_load"] = figures.rss_after_load / MIB
    # A round without a ratio (the baseline read no CPU time) is left out.
    paired_ratios = [
        share
        for fw_us, base_us in results.side_by_side
        if (share := ratio(fw_us, base_us)) is not None
    ]
    # The CPU target is judged on the side-by-side median: the machine's load cancels out.
    cpu_ratio = median(paired_ratios)
    data["side_by_side_framework_cpu_us"] = median([fw_us for fw_us, _ in results.side_by_side])
    data["side_by_side_baseline_cpu_us"] = median([base_us for _, base_us in results.side_by_side])
    data["side_by_side_ratios"] = [round(value, 3) for value in paired_ratios]
    data["side_by_side_ratio"] = cpu_ratio
    data["sequential_cpu_ratio"] = ratio(fw.many.cpu_us_per_request, base.many.cpu_us_per_request)
    data["cpu_ratio"] = cpu_ratio
    data["cpu_ratio_target"] = CPU_RATIO_TARGET
    data["cpu_ratio_pass"] = cpu_ratio is not None and cpu_ratio <= CPU_RATIO_TARGET
    data["sleep_200_wall_s"] = sleep_wall
    data["sleep_200_rounds_s"] = [round(value, 4) for value in results.sleep_rounds]
    data["sleep_200_target_s"] = SLEEP_WALL_TARGET
    data["sleep_200_pass"] = sleep_wall is not None and sleep_wall <= SLEEP_WALL_TARGET
    data["idle_rss_mib"] = results.idle_rss / MIB
    data["idle_start_to_joined_s"] = results.idle_start_to_joined
    return {
        key: round(value, 4) if isinstance(value, float) else value for key, value in data.items()
    }


def print_table(results: Results, options: Options, data: dict[str, Any]) -> None:
    """The human-readable report."""
    fw, base = results.framework, results.baseline
    rows: list[tuple[str, str, str, str, str]] = []

    def row(label: str, a: str, b: str = "", r: str = "", target: str = "") -> None:
        rows.append((label, a, b, r, target))

    def pair(label: str, a: float | None, b: float | None, digits: int = 1) -> None:
        share = ratio(a, b)
        row(label, cell(a, digits), cell(b, digits), "" if share is None else cell(share, 2))

    row(
        f"CPU per request, side by side, {IN_FLIGHT} each (us)",
        cell(data["side_by_side_framework_cpu_us"]),
        cell(data["side_by_side_baseline_cpu_us"]),
        cell(data["cpu_ratio"], 2),
        f"<= {CPU_RATIO_TARGET:.2f} {verdict(data['cpu_ratio_pass'])}",
    )
    row(
        f"CPU per request, alone, {IN_FLIGHT} in flight (us)",
        cell(fw.many.cpu_us_per_request),
        cell(base.many.cpu_us_per_request),
        cell(data["sequential_cpu_ratio"], 2),
    )
    pair(
        "  of which system (us)",
        fw.many.cpu_system_us_per_request,
        base.many.cpu_system_us_per_request,
    )
    pair(
        "CPU per request, alone, 1 in flight (us)",
        fw.one.cpu_us_per_request,
        base.one.cpu_us_per_request,
    )
    for a, b in ((fw.one, base.one), (fw.many, base.many)):
        where = f"{a.in_flight} in flight"
        pair(f"requests/s, {where}", a.rps, b.rps, 0)
        pair(f"p50 latency, {where} (ms)", a.p50_ms, b.p50_ms, 2)
        pair(f"p99 latency, {where} (ms)", a.p99_ms, b.p99_ms, 2)
        pair(
            f"hub's CPU per request, {where} (us)",
            a.hub_cpu_us_per_request,
            b.hub_cpu_us_per_request,
        )
    pair("start -> joined (s)", fw.start_to_joined, base.start_to_joined, 2)
    pair("RSS after the load (MiB)", fw.rss_after_load / MIB, base.rss_after_load / MIB)
    rounds = ", ".join(f"{value:.3f}" for value in results.sleep_rounds)
    row(
        f"{SLEEP_REQUESTS} x Sleep({SLEEP_SECONDS}) at once, wall (s)",
        cell(data["sleep_200_wall_s"], 3),
        target=f"<= {SLEEP_WALL_TARGET:.2f} {verdict(data['sleep_200_pass'])}",
    )
    row("idle RSS, example actions (MiB)", cell(results.idle_rss / MIB))
    row("start -> joined, example actions (s)", cell(results.idle_start_to_joined, 2))

    header = ("", "framework", "baseline", "ratio", "target")
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(5)]
    print(
        f"Py-Service benchmark: {options.requests} Echo requests per measurement after "
        f"{options.warmup} warm-up; {os.cpu_count()} CPUs; Python {platform.python_version()}"
        + (" (--quick: small numbers, not for comparison)" if options.quick else "")
    )
    print(cpu_source())
    print("Latency and requests/s as seen by hub.request().")
    print(
        "The hub and the load generator share this process (its CPU per request is shown): "
        "when it is near one CPU, it limits requests/s at 64 in flight for both consumers."
    )
    print(
        "framework: python entrypoint.py, LOG_LEVEL=INFO, stderr to a file "
        f"({results.framework_log_lines} lines); baseline: python -m bench.bare_consumer."
    )
    print()
    for line in [header, *rows]:
        label, *numbers = line
        print(
            f"{label:<{widths[0]}}  "
            + "  ".join(f"{text:>{width}}" for text, width in zip(numbers, widths[1:], strict=True))
        )
    print()
    print(f"Sleep rounds (s): {rounds}; the median is compared with the target.")
    paired = ", ".join(f"{value:.2f}" for value in data["side_by_side_ratios"]) or "none"
    skipped = len(results.side_by_side) - len(data["side_by_side_ratios"])
    print(
        "Side by side: both consumers joined at once, the hub alternating requests between "
        "them, so both see the same machine load; the CPU target is judged on the median "
        f"ratio. Ratio per round: {paired}"
        + (f" ({skipped} round(s) without a ratio: no baseline CPU time read)." if skipped else ".")
    )
    print(
        "Alone: each consumer measured by itself, one after the other; the machine's load "
        "may change in between, so that ratio is information only."
    )


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
    args = parser.parse_args(argv)
    requests = args.requests or (300 if args.quick else 10000)
    if requests < 1:
        parser.error("--requests must be at least 1")
    return Options(
        requests=requests,
        warmup=100 if args.quick else 500,
        sleep_rounds=1 if args.quick else 3,
        side_by_side_rounds=1 if args.quick else 5,
        settle_seconds=0.5 if args.quick else 2.0,
        quick=args.quick,
        profile=args.profile,
        profile_out=args.profile_out,
    )


def print_profile(load: Load, path: Path) -> None:
    """The profiled run's figures on stdout, the statistics on stderr."""
    import pstats

    stats = pstats.Stats(str(path), stream=sys.stderr)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(r"/(core|events|bench)/", 25)
    print(
        f"framework under cProfile: {load.requests} Echo requests, {IN_FLIGHT} in flight: "
        f"{cell(load.cpu_us_per_request)} us CPU per request, {cell(load.rps, 0)} requests/s "
        "(cProfile slows Python code down: compare shares, not absolute figures)"
    )
    print(f"profile statistics: {path} (python -m pstats {path})")
    print(
        json.dumps(
            {
                "bench": "py-service",
                "mode": "profile",
                "requests": load.requests,
                "in_flight": IN_FLIGHT,
                "profiled_cpu_us_per_req": round(load.cpu_us_per_request or 0.0, 4),
                "profile": str(path),
            }
        )
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
    data = summary(results, options)
    print_table(results, options, data)
    sys.stdout.flush()
    print(json.dumps(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
