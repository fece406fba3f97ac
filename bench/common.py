"""What the benchmark's modules share: where things are, the Echo workload, the error that
stops a run, and progress notes."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_ACTIONS = ROOT / "bench" / "actions"

IN_FLIGHT = 64
# Where latency is measured: one request at a time (most services, most of the time), a few,
# and `IN_FLIGHT`.
LEVELS = (1, 2, 4, IN_FLIGHT)
ECHO_FIELDS = {"message": "hello, plugboard"}


class BenchError(Exception):
    """The benchmark could not run (a consumer failed to start, requests failed)."""


def progress(text: str) -> None:
    """A progress note on stderr (stdout holds only the results)."""
    sys.stderr.write(f"bench: {text}\n")
    sys.stderr.flush()
