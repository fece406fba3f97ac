"""Tests for `bench.run`: the command line, and smoke runs of the whole benchmark (it runs and
reports). Timings are never asserted here."""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import unittest
from pathlib import Path

from bench.run import parse_options

ROOT = Path(__file__).resolve().parents[2]

EXPECTED_KEYS = {
    "requests",
    "framework_cpu_us_per_req_64",
    "baseline_cpu_us_per_req_64",
    "cpu_ratio",
    "cpu_ratio_pass",
    "sequential_cpu_ratio",
    "side_by_side_ratio",
    "framework_rps_1",
    "framework_p50_ms_1",
    "framework_p99_ms_1",
    "framework_rps_64",
    "framework_p50_ms_64",
    "framework_p99_ms_64",
    "baseline_rps_1",
    "baseline_rps_64",
    "sleep_200_wall_s",
    "sleep_200_pass",
    "idle_rss_mib",
    "idle_start_to_joined_s",
    "idle_no_database_rss_mib",
    "idle_no_database_start_to_joined_s",
    "idle_examples_first_start_to_joined_s",
}


def marked_processes(marker: str) -> set[int]:
    """The processes whose environment holds `marker` (``NAME=value``)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if marker.encode() in environ.split(b"\0"):
            found.add(int(entry.name))
    return found


class OptionsTest(unittest.TestCase):
    def test_defaults(self) -> None:
        options = parse_options([])
        self.assertEqual((options.requests, options.warmup), (10000, 500))
        self.assertEqual((options.sleep_rounds, options.side_by_side_rounds), (3, 6))
        self.assertEqual((options.settle_seconds, options.idle_starts), (2.0, 3))
        self.assertFalse(options.quick or options.profile)
        self.assertIsNone(options.profile_out)

    def test_quick(self) -> None:
        options = parse_options(["--quick"])
        self.assertEqual((options.requests, options.warmup), (300, 100))
        self.assertEqual((options.sleep_rounds, options.side_by_side_rounds), (1, 2))
        self.assertEqual((options.settle_seconds, options.idle_starts), (0.5, 1))

    def test_requests_and_profile(self) -> None:
        options = parse_options(["--quick", "--requests", "42", "--profile", "--profile-out", "p"])
        self.assertEqual(options.requests, 42)
        self.assertTrue(options.profile)
        self.assertEqual(options.profile_out, Path("p"))

    def test_profile_level_and_floor(self) -> None:
        options = parse_options(["--profile", "--in-flight", "1", "--floor", "0"])
        self.assertEqual((options.profile_in_flight, options.profile_floor), (1, "0"))
        defaults = parse_options(["--profile"])
        self.assertEqual((defaults.profile_in_flight, defaults.profile_floor), (64, None))

    def test_level_and_floor_without_profile_are_refused(self) -> None:
        refused = (["--in-flight", "64"], ["--floor", "0"], ["--profile", "--in-flight", "0"])
        for argv in refused:
            with self.subTest(argv=argv):
                with (
                    self.assertRaises(SystemExit) as caught,
                    contextlib.redirect_stderr(io.StringIO()),
                ):
                    parse_options(argv)
                self.assertEqual(caught.exception.code, 2)

    def test_negative_requests_are_refused(self) -> None:
        with self.assertRaises(SystemExit) as caught, contextlib.redirect_stderr(io.StringIO()):
            parse_options(["--requests", "-5"])
        self.assertEqual(caught.exception.code, 2)


@unittest.skipUnless(sys.platform.startswith("linux"), "the benchmark reads /proc")
class BenchSmokeTest(unittest.TestCase):
    def test_quick_run_exits_0_and_prints_the_json_line(self) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "bench.run", "--quick"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        last_line = result.stdout.strip().splitlines()[-1]
        figures = json.loads(last_line)
        self.assertLessEqual(EXPECTED_KEYS, figures.keys())
        # The CPU target is judged on the side-by-side measurement.
        self.assertEqual(figures["cpu_ratio"], figures["side_by_side_ratio"])
        # Two side-by-side rounds, each consumer joining first in one of them.
        self.assertIn("round 1, the framework joining first", result.stderr)
        self.assertIn("round 2, the baseline joining first", result.stderr)
        self.assertIsNotNone(figures["side_by_side_ratio_baseline_first"])

    def test_sigterm_stops_the_consumers_it_started(self) -> None:
        marker = f"BENCH_TEST_MARKER={secrets.token_hex(8)}"
        env = dict(os.environ, BENCH_TEST_MARKER=marker.split("=", 1)[1])
        command = [sys.executable, "-m", "bench.run", "--quick"]
        with subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        ) as process:
            watchdog = threading.Timer(120, process.kill)
            watchdog.start()
            running: set[int] = set()
            try:
                assert process.stderr is not None
                for line in process.stderr:
                    if "side by side: round 1, 64 in flight each" in line:
                        break  # both consumers of the round are running
                running = marked_processes(marker) - {process.pid}
                self.assertEqual(len(running), 2, "the framework and the baseline consumer")
                process.send_signal(signal.SIGTERM)
                rest = process.stderr.read()
                self.assertEqual(process.wait(), 1, rest)
                self.assertIn("error: stopped by SIGTERM", rest)
                self.assertEqual(marked_processes(marker) & running, set())
            finally:
                watchdog.cancel()
                process.kill()
                for pid in marked_processes(marker) & running:  # left behind: clean up
                    os.kill(pid, signal.SIGKILL)

    def test_quick_profile_exits_0_and_keeps_the_statistics(self) -> None:
        with tempfile.TemporaryDirectory() as scratch:
            out = Path(scratch) / "bench.prof"
            command = ["bench.run", "--profile", "--quick", "--requests", "100", "--in-flight", "2"]
            result = subprocess.run(
                [sys.executable, "-m", *command, "--profile-out", str(out)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
            )
            self.assertEqual(result.returncode, 0, result.stderr[-2000:])
            self.assertGreater(out.stat().st_size, 0)
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        self.assertEqual(
            set(figures),
            {
                "bench",
                "mode",
                "requests",
                "in_flight",
                "profiled_cpu_us_per_req",
                "profiled_own_us_per_req",
                "python_calls_per_req",
                "profile",
            },
        )
        self.assertEqual(
            (figures["mode"], figures["requests"], figures["in_flight"]), ("profile", 100, 2)
        )
        # Answering an Echo request takes Python calls: the count is read from the statistics.
        self.assertGreater(figures["python_calls_per_req"], 10)
        self.assertGreater(figures["profiled_own_us_per_req"], 0)
        self.assertEqual(figures["profile"], str(out))
        self.assertIn("function calls", result.stderr)  # pstats' statistics


if __name__ == "__main__":
    unittest.main()
