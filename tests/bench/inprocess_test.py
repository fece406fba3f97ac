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
        # The framework wrote each batch once (plus its handshake, its join and a few
        # heartbeats), the bare loop each response.
        writes = re.search(r"writes: framework (\d+), bare loop (\d+)", result.stdout)
        assert writes is not None, result.stdout
        self.assertEqual(int(writes[2]), 1280)
        self.assertGreaterEqual(int(writes[1]), 20 + 2)
        self.assertLessEqual(int(writes[1]), 20 + 2 + 5)


if __name__ == "__main__":
    unittest.main()
