"""CPU time and resident memory of a process, read from ``/proc`` (Linux only).

The total CPU time of a process is the run time of all its threads in nanoseconds, summed
from ``/proc/<pid>/task/*/schedstat``; without schedstat (a kernel without
CONFIG_SCHED_INFO) it is user + system from ``/proc/<pid>/stat``, in clock ticks (10 ms).
The system part is always ``stime`` from ``/proc/<pid>/stat``. A thread that exits between
two readings takes its run time with it.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.common import BenchError

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


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
    return _status_bytes(pid, "VmRSS")


def anonymous_rss_bytes(pid: int) -> int:
    """The part of `rss_bytes` that is the process's own memory (RssAnon), in bytes.

    The rest is mapped files (the interpreter, the extension modules), shared with every
    process that maps them; how much of a file is resident also depends on the page cache:
    a shared library freshly written by pip was seen 0.9 MiB larger in VmRSS than the same
    file some minutes later, with the same code.
    """
    return _status_bytes(pid, "RssAnon")


def _status_bytes(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) * 1024
    raise BenchError(f"no {key} for process {pid}")
