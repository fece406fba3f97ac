"""Tests of bench/catalog_switch.py: its arithmetic, and one small Recreate switch end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unittest

from bench.catalog_switch import longest_failure, outcome
from core.settings import PROJECT_ROOT

# One replica out, one in, two callers, 0.3 s of load before and after.
SMALL_SWITCH = ("--replicas", "1", "--concurrency", "2", "--settle", "0.3")


class FiguresTest(unittest.TestCase):
    def test_longest_failure_spans_successes_around_failures(self) -> None:
        calls = [
            (0.0, 0.1, "200"),
            (0.1, 0.2, "422"),
            (0.2, 0.3, "422"),
            (0.3, 1.5, "200"),  # 1.4 s after the last success, failures in between
            (1.5, 1.6, "200"),
            (1.6, 1.7, "no answer"),
            (1.7, 2.0, "200"),
        ]
        self.assertAlmostEqual(longest_failure(calls), 1.4)
        self.assertEqual(longest_failure([(0.0, 0.1, "200"), (0.1, 5.0, "200")]), 0.0)

    def test_outcome_names_the_consumers_status(self) -> None:
        self.assertEqual(outcome(200, {"status": "success"}), "200")
        self.assertEqual(outcome(422, {"status": "error"}), "422")
        self.assertEqual(
            outcome(400, {"message": {"code": "SHUTTING_DOWN"}}), "400 (SHUTTING_DOWN)"
        )
        self.assertEqual(outcome(400, {"response": {"status_code": 503}}), "400 (consumer 503)")


@unittest.skipUnless(sys.platform.startswith("linux"), "replicas are signalled with SIGTERM")
class RecreateSwitchTest(unittest.TestCase):
    def test_the_new_catalog_joins_after_a_gap_of_422(self) -> None:
        # SQLite in each replica's own folder: no shared database settings.
        env = {
            key: value
            for key, value in os.environ.items()
            if key != "DATABASE_URL" and not key.startswith("POSTGRES_")
        }
        env["ENVIRONMENT"] = "test"
        result = subprocess.run(
            [sys.executable, "-m", "bench.catalog_switch", *SMALL_SWITCH],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        self.assertEqual(
            list(figures["timeline_s"]),
            [
                "SIGTERM to the old replicas",
                "old replicas exited",
                "new replicas started",
                "first new replica ready",
                "every new replica ready",
            ],
        )
        moments = list(figures["timeline_s"].values())
        self.assertEqual(moments, sorted(moments))
        # Served before and after (the hub took the new catalog), and not in between: 422
        # (no consumer), or the 503 of a leaving replica (the hub's front turns it into 400).
        # No call is lost: the leaving replica delivers even what reached it after its leave.
        outcomes = figures["outcomes"]
        self.assertGreater(outcomes.get("200", 0), 0, figures)
        self.assertLessEqual(set(outcomes), {"200", "422", "400 (SHUTTING_DOWN)"}, figures)
        self.assertGreater(outcomes.get("422", 0), 0, figures)
        self.assertGreater(figures["longest_without_success_s"], 0, figures)


if __name__ == "__main__":
    unittest.main()
