"""Tests for `bench.proc`, read against this process and children it starts."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import time
import unittest
from collections.abc import Callable

from bench import proc
from bench.common import BenchError

MIB = 1024 * 1024
BURN = 0.2  # seconds of CPU time burnt per measurement
# /proc figures trail the clocks by up to a scheduler tick; stat's are in 10 ms ticks.
TOLERANCE = 0.05


def burn(seconds: float, clock: Callable[[], float] = time.process_time) -> float:
    """Compute until `clock` has advanced `seconds`; returns how far it did advance.

    The clock (a system call) is read between chunks of pure computation, so that nearly all
    the time is user time.
    """
    start = clock()
    while clock() - start < seconds:
        sum(range(20_000))
    return clock() - start


def threads() -> set[str]:
    """This process's thread ids, as /proc lists them."""
    return set(os.listdir(f"/proc/{os.getpid()}/task"))


def unchanged_threads(measure: Callable[[], tuple[float, float, float]]) -> tuple[float, ...]:
    """`measure()` again until no thread of this process started or exited meanwhile.

    schedstat is read per thread: a thread that exits during a measurement takes its run
    time out of the sum (a thread left by an earlier test, finishing now), and one that
    starts adds its own.
    """
    for _ in range(5):
        before = threads()
        figures = measure()
        if threads() == before:
            return figures
    raise AssertionError("threads kept starting or exiting during every measurement")


@unittest.skipUnless(sys.platform.startswith("linux"), "reads /proc")
class CpuTimeTest(unittest.TestCase):
    def test_stat_times_follow_this_process_cpu_clock(self) -> None:
        pid = os.getpid()
        before_user, before_system = proc.stat_times(pid)
        spent = burn(BURN)
        after_user, after_system = proc.stat_times(pid)
        user, system = after_user - before_user, after_system - before_system
        self.assertAlmostEqual(user + system, spent, delta=TOLERANCE)
        self.assertGreater(user, system)  # a Python loop makes no system calls

    @unittest.skipUnless(proc.schedstat_available(), "the kernel has no schedstat")
    def test_schedstat_follows_this_process_cpu_clock(self) -> None:
        def measure() -> tuple[float, float, float]:
            before = proc.schedstat_seconds(os.getpid())
            spent = burn(BURN)
            after = proc.schedstat_seconds(os.getpid())
            assert before is not None and after is not None
            return before, spent, after

        before, spent, after = unchanged_threads(measure)
        self.assertAlmostEqual(after - before, spent, delta=TOLERANCE)

    @unittest.skipUnless(proc.schedstat_available(), "the kernel has no schedstat")
    def test_schedstat_adds_up_every_thread(self) -> None:
        def measure() -> tuple[float, float, float]:
            burnt = threading.Event()
            release = threading.Event()
            spent: list[float] = []

            def worker() -> None:
                spent.append(burn(BURN, time.thread_time))
                burnt.set()
                release.wait()  # stay alive: an exited thread takes its run time with it

            before = proc.schedstat_seconds(os.getpid())
            thread = threading.Thread(target=worker)
            thread.start()
            try:
                self.assertTrue(burnt.wait(30))
                after = proc.schedstat_seconds(os.getpid())
            finally:
                release.set()
                thread.join()
            assert before is not None and after is not None
            return before, spent[0], after

        # The worker has exited when the threads are compared: only others count.
        before, spent, after = unchanged_threads(measure)
        # The main thread only waited: the difference is the worker's.
        self.assertAlmostEqual(after - before, spent, delta=TOLERANCE)

    def test_cpu_times_total_is_the_finest_clock_available(self) -> None:
        pid = os.getpid()
        before_total, before_system = proc.cpu_times(pid)
        spent = burn(BURN)
        after_total, after_system = proc.cpu_times(pid)
        self.assertAlmostEqual(after_total - before_total, spent, delta=TOLERANCE)
        self.assertGreaterEqual(after_system, before_system)
        self.assertGreaterEqual(after_total, after_system)

    def test_stat_times_read_past_a_command_name_with_spaces_and_parentheses(self) -> None:
        # The child names itself "a) b (c" (prctl PR_SET_NAME), reports its own os.times()
        # and waits on stdin, so its figures stay still while they are read.
        script = (
            "import ctypes, json, os, sys\n"
            "ctypes.CDLL(None).prctl(15, b'a) b (c', 0, 0, 0)\n"
            f"while os.times().user < {BURN}:\n"
            "    sum(range(20_000))\n"
            "times = os.times()\n"
            "print(json.dumps([times.user, times.system]), flush=True)\n"
            "sys.stdin.read()\n"
        )
        with subprocess.Popen(
            [sys.executable, "-c", script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        ) as child:
            assert child.stdout is not None and child.stdin is not None
            own_user, own_system = json.loads(child.stdout.readline())
            with open(f"/proc/{child.pid}/comm") as comm:
                self.assertEqual(comm.read().strip(), "a) b (c")
            user, system = proc.stat_times(child.pid)
            child.stdin.close()
        self.assertGreaterEqual(own_user, BURN)
        self.assertAlmostEqual(user, own_user, delta=TOLERANCE)
        self.assertAlmostEqual(system, own_system, delta=TOLERANCE)

    def test_cpu_source_names_the_clock_in_use(self) -> None:
        source = proc.cpu_source()
        if proc.schedstat_available():
            self.assertIn("/proc/<pid>/task/*/schedstat", source)
        else:
            self.assertIn("user + system time", source)
        self.assertIn("system = stime", source)


@unittest.skipUnless(sys.platform.startswith("linux"), "reads /proc")
class RssTest(unittest.TestCase):
    def test_grows_with_touched_memory_and_agrees_with_statm(self) -> None:
        pid = os.getpid()
        before = proc.rss_bytes(pid)
        block = b"\x01" * (64 * MIB)  # written, so every page is resident
        after = proc.rss_bytes(pid)
        with open(f"/proc/{pid}/statm") as statm:
            resident = int(statm.read().split()[1]) * resource.getpagesize()
        self.assertEqual(len(block), 64 * MIB)
        self.assertGreaterEqual(after - before, 48 * MIB)
        self.assertAlmostEqual(after, resident, delta=MIB)

    def test_the_own_part_grows_with_touched_memory_and_is_within_the_rss(self) -> None:
        pid = os.getpid()
        before = proc.anonymous_rss_bytes(pid)
        block = bytearray(b"\x01" * (64 * MIB))  # anonymous memory, every page written
        after = proc.anonymous_rss_bytes(pid)
        self.assertEqual(len(block), 64 * MIB)
        self.assertGreaterEqual(after - before, 48 * MIB)
        self.assertLess(after, proc.rss_bytes(pid))  # the interpreter's file is mapped too

    def test_a_process_without_memory_is_an_error(self) -> None:
        # A zombie (exited, not reaped yet) has no VmRSS line.
        with subprocess.Popen([sys.executable, "-c", ""]) as child:
            os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
            with self.assertRaisesRegex(BenchError, f"no VmRSS for process {child.pid}"):
                proc.rss_bytes(child.pid)
            with self.assertRaisesRegex(BenchError, f"no RssAnon for process {child.pid}"):
                proc.anonymous_rss_bytes(child.pid)


if __name__ == "__main__":
    unittest.main()
