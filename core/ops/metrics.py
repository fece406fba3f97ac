"""Prometheus metrics, read from the client's counters when scraped.

Nothing here runs per request: the request executor keeps plain counters (`ActionStats`) and
this collector turns them into Prometheus families only when ``/metrics`` is read. This
module, and prometheus_client with it, is loaded at the first scrape.

A scrape shows, beside the service's own families, everything on prometheus_client's default
registry (``prometheus_client.REGISTRY``): the process (``process_*``: memory, CPU, open file
descriptors), platform (``python_info``) and garbage collector (``python_gc_*``) collectors
that prometheus_client registers there, and any metric an action or a library created with
prometheus_client's default arguments (``Counter("orders_charged", "...")``).
"""

from __future__ import annotations

import logging
import math
import platform
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from core.execution.stats import LATENCY_BUCKETS
from core.version import VERSION

if TYPE_CHECKING:
    from core.hub.client import PlugboardClient

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# The families the service builds itself: one of the same name on the default registry is left
# out (a scrape must not show a name twice).
OWN_PREFIX = "plugboard_"
# Where the container's memory limit is read: cgroup v2, then v1 (Linux; Kubernetes and Docker
# set it from the container's memory limit).
CGROUP_MEMORY_LIMITS = (
    Path("/sys/fs/cgroup/memory.max"),
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
)
# cgroup v1 writes "no limit" as a number near 2**63 (rounded down to a page).
_UNLIMITED_V1 = 2**62


def memory_limit(paths: tuple[Path, ...] = CGROUP_MEMORY_LIMITS) -> float:
    """The container's memory limit in bytes, +Inf when none is set or none can be read."""
    for path in paths:
        try:
            text = path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text == "max":
            return math.inf
        try:
            limit = int(text)
        except ValueError:
            continue
        return math.inf if limit >= _UNLIMITED_V1 else float(limit)
    return math.inf


class ClientCollector(Collector):
    """Exposes one client's request, connection and hub counters."""

    def __init__(self, client: PlugboardClient) -> None:
        self._client = client

    def collect(self) -> Iterator[Metric]:
        """Build the metric families from the client's current counters."""
        client = self._client
        requests = CounterMetricFamily(
            "plugboard_requests",
            "Requests answered, by action and status code",
            labels=["action", "status"],
        )
        latency = HistogramMetricFamily(
            "plugboard_request_duration_seconds",
            "Time from receiving a request to sending its response",
            labels=["action"],
        )
        waiting = GaugeMetricFamily(
            "plugboard_requests_waiting",
            "Requests waiting for a concurrency slot (the action's max_concurrency or the "
            "service's MAX_CONCURRENCY)",
            labels=["action"],
        )
        waited = HistogramMetricFamily(
            "plugboard_request_wait_seconds",
            "Time spent waiting for a concurrency slot, per wait (requests that found a slot "
            "free are not counted)",
            labels=["action"],
        )
        executor = client.executor
        for action, stats in sorted(executor.stats.items()):
            for status, count in sorted(stats.by_status.items()):
                requests.add_metric([action, str(status)], count)
            latency.add_metric([action], _cumulative(stats.buckets), stats.total_seconds)
            waiting.add_metric([action], stats.waiting)
            waited.add_metric([action], _cumulative(stats.wait_buckets), stats.wait_seconds)
        yield requests
        yield latency
        yield waiting
        yield waited
        yield GaugeMetricFamily(
            "plugboard_requests_in_flight",
            "Requests received and not yet answered",
            value=executor.in_flight,
        )
        yield CounterMetricFamily(
            "plugboard_requests_overloaded",
            "Requests answered 503 OVERLOADED at once: MAX_WAITING_REQUESTS requests were "
            "waiting for a concurrency slot already",
            value=executor.overloaded,
        )
        threads = executor.threads
        yield GaugeMetricFamily(
            "plugboard_worker_threads",
            "Worker threads the pool for plain `def run()` actions may start (MAX_CONCURRENCY)",
            value=threads.size,
        )
        yield GaugeMetricFamily(
            "plugboard_worker_threads_busy",
            "Worker threads running an action now",
            value=threads.busy,
        )
        yield GaugeMetricFamily(
            "plugboard_worker_threads_overrun",
            "Worker threads still running an action whose request was already answered (504 "
            "past its time limit, or 503 at shutdown): each holds its thread until run() returns",
            value=threads.overrun,
        )
        yield CounterMetricFamily(
            "plugboard_reconnects",
            "Connections to the hub after the first",
            value=max(0, client.connections - 1),
        )
        yield GaugeMetricFamily(
            "plugboard_joined", "1 while joined to the service topic", value=int(client.joined)
        )
        catalog = GaugeMetricFamily(
            "plugboard_catalog_info",
            "The hash of the action catalog this replica announces (1 per replica)",
            labels=["hash"],
        )
        catalog.add_metric([client.catalog_hash], 1)
        yield catalog
        yield CounterMetricFamily(
            "plugboard_upgrade_refusals",
            "HTTP 403 answers to the upgrade: a wrong token, or a catalog that differs from "
            "the joined replicas' (a stalled rollout)",
            value=client.refused_upgrades,
        )
        yield GaugeMetricFamily(
            "plugboard_consumers",
            "Consumers of this service, as the hub last reported",
            value=client.num_consumers,
        )
        outbox = client.outbox
        yield GaugeMetricFamily(
            "plugboard_responses_kept",
            "Responses waiting for a join (or for the hub to read) to be written",
            value=outbox.kept,
        )
        yield GaugeMetricFamily(
            "plugboard_responses_unconfirmed",
            "Responses written and not yet proven read by a heartbeat reply",
            value=outbox.unconfirmed,
        )
        yield CounterMetricFamily(
            "plugboard_responses_resent",
            "Responses written again after a reconnect or a refusal, not yet proven read before",
            value=outbox.resent,
        )
        yield CounterMetricFamily(
            "plugboard_responses_expired",
            "Kept responses dropped past the hub's request lifetime",
            value=outbox.expired,
        )
        yield GaugeMetricFamily(
            "plugboard_responses_held_bytes",
            "Bytes of encoded responses the outbox holds: kept, and written but not yet "
            "confirmed (at most OUTBOX_MAX_BYTES)",
            value=outbox.held_bytes,
        )
        yield CounterMetricFamily(
            "plugboard_responses_dropped",
            "Responses dropped, oldest first, to stay within OUTBOX_MAX_BYTES or OUTBOX_LIMIT "
            "(one written but not yet confirmed may still have reached the hub)",
            value=outbox.dropped,
        )
        build = GaugeMetricFamily(
            "plugboard_build_info",
            "The service's version, its Python and its action catalog's hash (1 per replica)",
            labels=["version", "python", "catalog_hash"],
        )
        build.add_metric([VERSION, platform.python_version(), client.catalog_hash], 1)
        yield build
        yield GaugeMetricFamily(
            "plugboard_memory_limit_bytes",
            "The container's memory limit (cgroup), +Inf when none is set; compare "
            "process_resident_memory_bytes with it",
            value=memory_limit(),
        )


class DefaultRegistry(Collector):
    """prometheus_client's default registry, less any family named like the service's own."""

    def __init__(self) -> None:
        self._warned: set[str] = set()

    def collect(self) -> Iterator[Metric]:
        """Every family on ``prometheus_client.REGISTRY`` except ``plugboard_*`` ones."""
        for family in REGISTRY.collect():
            if family.name.startswith(OWN_PREFIX):
                if family.name not in self._warned:
                    self._warned.add(family.name)
                    logger.warning(
                        "/metrics leaves out the metric %s registered on prometheus_client's "
                        "default registry: names starting with %s are the service's own",
                        family.name,
                        OWN_PREFIX,
                    )
                continue
            yield family


class Exposition:
    """What ``/metrics`` serves for one client: its families, then the default registry's."""

    def __init__(self, client: PlugboardClient) -> None:
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(ClientCollector(client))
        self._registry.register(DefaultRegistry())

    def render(self) -> bytes:
        """The Prometheus text exposition, read now."""
        return generate_latest(self._registry)


def _cumulative(counts: list[int]) -> list[tuple[str, float]]:
    """Prometheus histogram buckets (cumulative, by upper bound) from per-bucket counts."""
    total = 0
    buckets: list[tuple[str, float]] = []
    for bound, count in zip((*LATENCY_BUCKETS, float("inf")), counts, strict=True):
        total += count
        buckets.append(("+Inf" if bound == float("inf") else repr(bound), total))
    return buckets


def render(client: PlugboardClient) -> bytes:
    """The Prometheus text exposition of `client`'s metrics and the default registry's."""
    return Exposition(client).render()
