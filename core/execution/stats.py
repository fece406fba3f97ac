"""Per-action counters: cheap enough to keep for every request; `/metrics` reads them."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

# Upper bounds (seconds) of the latency histogram kept for every action.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0)


@dataclass(slots=True)
class ActionStats:
    """Per-action counters, cheap enough to keep for every request (metrics read them)."""

    count: int = 0
    errors: int = 0
    total_seconds: float = 0.0
    last_error: str | None = None
    by_status: dict[int, int] = field(default_factory=dict)
    # buckets[i] counts requests that took at most LATENCY_BUCKETS[i] (not cumulative).
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    # Waits for a concurrency slot (the action's own or the service-wide one): requests
    # waiting now, and each finished wait's seconds (a request that found a slot free at once
    # is not counted).
    waiting: int = 0
    waits: int = 0
    wait_seconds: float = 0.0
    wait_buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))

    def record(self, status_code: int, seconds: float, message: Any) -> None:
        """Count one answered request; `message` is the one sent (an error object's
        ``error`` sentence is kept as the last error)."""
        self.count += 1
        self.total_seconds += seconds
        self.by_status[status_code] = self.by_status.get(status_code, 0) + 1
        self.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        if status_code >= 500:
            self.errors += 1
            if isinstance(message, dict):
                message = message.get("error")
            self.last_error = message if isinstance(message, str) else None

    def record_wait(self, seconds: float) -> None:
        """Count one finished wait for a concurrency slot (granted or given up)."""
        self.waits += 1
        self.wait_seconds += seconds
        self.wait_buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
