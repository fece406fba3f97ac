"""Smoke test of `bench.inprocess`: both sides run and the figures are printed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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
        # The framework wrote each batch once, plus its handshake and its join, and each
        # heartbeat on its own (how many depends on how long the run took); the bare loop
        # wrote each response.
        writes = re.search(
            r"writes: framework (\d+) \((\d+) of them heartbeats\), bare loop (\d+)", result.stdout
        )
        assert writes is not None, result.stdout
        self.assertEqual(int(writes[3]), 1280)
        self.assertEqual(int(writes[1]) - int(writes[2]), 20 + 2)


if __name__ == "__main__":
    unittest.main()
