"""Smoke test of the benchmark: it runs and reports. Timings are never asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

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
}


@unittest.skipUnless(sys.platform.startswith("linux"), "the benchmark reads /proc")
class BenchSmokeTest(unittest.TestCase):
    def test_quick_run_exits_0_and_prints_the_json_line(self) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "bench.run", "--quick"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        last_line = result.stdout.strip().splitlines()[-1]
        figures = json.loads(last_line)
        self.assertLessEqual(EXPECTED_KEYS, figures.keys())
        # The CPU target is judged on the side-by-side measurement.
        self.assertEqual(figures["cpu_ratio"], figures["side_by_side_ratio"])


class InProcessSmokeTest(unittest.TestCase):
    def test_runs_both_sides_and_prints_the_json_line(self) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "bench.inprocess", "--batches", "20", "--log-format", "json"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        lines = result.stdout.strip().splitlines()
        figures = json.loads(lines[-1])
        self.assertEqual(set(figures), {"framework_us", "bare_us", "ratio"})
        self.assertGreater(figures["framework_us"], 0)
        self.assertGreater(figures["bare_us"], 0)
        # The framework wrote each batch once, the bare loop each response.
        self.assertIn("writes: framework 20, bare loop 1280", result.stdout)


if __name__ == "__main__":
    unittest.main()
