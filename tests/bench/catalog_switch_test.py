"""Tests of bench/catalog_switch.py: its arithmetic, and one small Recreate switch end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unittest

from bench.catalog_switch import longest_failure
from bench.replicas import outcome
from core.settings import PROJECT_ROOT

# One replica out, one in, two callers, 0.3 s of load before and after. The replica is the
# only one joined, so on SIGTERM it serves until its grace (1 s) ends.
SMALL_SWITCH = ("--replicas", "1", "--concurrency", "2", "--settle", "0.3", "--grace", "1")


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
        # (no consumer). No call is lost: the leaving replica delivers even what reached it
        # after its leave. It was the last replica and its grace ended, so a request the hub
        # routed to it while it joined again to deliver the last answers is refused: 503,
        # which the hub's front turns into a 400.
        outcomes = figures["outcomes"]
        self.assertGreater(outcomes.get("200", 0), 0, figures)
        self.assertLessEqual(set(outcomes), {"200", "422", "400 (SHUTTING_DOWN)"}, figures)
        self.assertLessEqual(outcomes.get("400 (SHUTTING_DOWN)", 0), 10, figures)
        self.assertGreater(outcomes.get("422", 0), 0, figures)
        self.assertGreater(figures["longest_without_success_s"], 0, figures)


if __name__ == "__main__":
    unittest.main()
