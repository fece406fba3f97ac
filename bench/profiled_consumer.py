"""The framework consumer (``core.main.main``, which ``entrypoint.py`` runs) with cProfile
switched on and off by signals.

``python -m bench.profiled_consumer OUT.prof`` runs the service exactly as ``python
entrypoint.py`` does (same environment variables). SIGUSR1 starts the profiler; SIGUSR2 stops
it and writes the statistics to ``OUT.prof`` (atomically, so the benchmark can wait for the
file). Only the event loop's thread is profiled, which is where every Echo request runs, and
times are that thread's CPU time.
"""

from __future__ import annotations

import cProfile
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

# The signals the benchmark sends (`bench.run --profile`) around its measured window.
START_SIGNAL = signal.SIGUSR1
STOP_SIGNAL = signal.SIGUSR2


def main(argv: list[str]) -> int:
    """Install the profiling signals, then run the service; returns its exit code."""
    if len(argv) != 1:
        sys.stderr.write("usage: python -m bench.profiled_consumer OUT.prof\n")
        return 2
    out = Path(argv[0])
    # The event loop thread's CPU clock, not the wall clock: time spent preempted or waiting
    # in epoll is not a cost of the code, and the machine may be busy with other work.
    profiler = cProfile.Profile(time.thread_time)

    def start(signum: int, frame: FrameType | None) -> None:
        profiler.enable()

    def stop(signum: int, frame: FrameType | None) -> None:
        profiler.disable()
        partial = out.with_name(out.name + ".partial")
        profiler.dump_stats(partial)
        os.replace(partial, out)

    signal.signal(START_SIGNAL, start)
    signal.signal(STOP_SIGNAL, stop)

    from core.main import main  # imported late so that start-up is never profiled

    return main([])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
