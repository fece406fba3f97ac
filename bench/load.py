"""Load generation through the local hub: batches of requests sent with `LocalHub.request`,
a fixed number kept in flight, each answer checked and its latency recorded.

No HTTP is involved: the hub runs in this process, so the figures of one batch (`Load`)
hold the consumer's CPU time over the window, read from ``/proc``, and this process's own
(the hub's and the load generator's) beside it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.common import ECHO_FIELDS, IN_FLIGHT, BenchError
from bench.consumers import ConsumerProcess
from bench.stats import percentile, ratio
from core.dev.local_hub.hub import LocalHub

SLEEP_REQUESTS = 200
SLEEP_SECONDS = 0.2
REQUEST_TIMEOUT = 30.0


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


Check = Callable[[int, dict[str, Any]], bool]


def echo_answered(status: int, body: dict[str, Any]) -> bool:
    """True for the answer an Echo of `ECHO_FIELDS` must get."""
    return status == 200 and body.get("message") == ECHO_FIELDS


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
        cpu, system = (
            after - first for after, first in zip(consumer.cpu_times(), before, strict=True)
        )
        load.cpu_seconds, load.cpu_system_seconds = cpu, system
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
