"""Tests of bench/deploys.py: its verdict, and one small rolling restart end to end."""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import unittest
from typing import Any

from bench.deploys import Calls, figures
from core.settings import PROJECT_ROOT

ARGS = argparse.Namespace(
    hub="local", vsn="1.0.0", scenario="rolling", rounds=1, replicas=2, callers=4, grace=25.0
)
STOPPED = ({"replica": "replica-0", "exit_code": 0},)


class VerdictTest(unittest.TestCase):
    def verdict(
        self,
        outcomes: dict[str, int],
        logged: dict[int, int],
        lost: tuple[str, ...] = (),
        stops: tuple[dict[str, Any], ...] = STOPPED,
    ) -> dict[str, bool]:
        calls = Calls(outcomes=collections.Counter(outcomes))
        result = figures(ARGS, calls, collections.Counter(logged), list(lost), list(stops), 1.0)
        return {**result["verdict"], "pass": result["pass"]}

    def test_only_200s_and_408s_no_replica_received_pass(self) -> None:
        self.assertTrue(self.verdict({"200": 10, "408": 1}, {200: 10})["pass"])

    def test_a_refusal_the_caller_saw_fails(self) -> None:
        verdict = self.verdict({"200": 10, "400 (consumer 503)": 1}, {200: 10, 503: 1})
        self.assertEqual(
            (verdict["no_400_or_5xx"], verdict["every_logged_request_200"], verdict["pass"]),
            (False, False, False),
        )

    def test_a_5xx_fails(self) -> None:
        self.assertFalse(self.verdict({"200": 10, "502": 1}, {200: 10})["no_400_or_5xx"])

    def test_a_lost_answer_fails(self) -> None:
        verdict = self.verdict({"200": 10, "408": 1}, {200: 11}, lost=("3-7",))
        self.assertFalse(verdict["no_answer_lost"])

    def test_a_replica_that_did_not_exit_0_fails(self) -> None:
        stops = ({"replica": "replica-0", "exit_code": 143},)
        verdict = self.verdict({"200": 10}, {200: 10}, stops=stops)
        self.assertFalse(verdict["every_stopped_replica_exit_0"])


@unittest.skipUnless(sys.platform.startswith("linux"), "replicas are signalled with SIGTERM")
class RollingRestartBenchTest(unittest.TestCase):
    def test_one_rolling_restart_of_two_replicas_on_the_local_hub(self) -> None:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.deploys",
                *("--rounds", "1", "--replicas", "2", "--callers", "4", "--settle", "0.3"),
            ],
            cwd=PROJECT_ROOT,
            env={k: v for k, v in os.environ.items() if k != "ENVIRONMENT"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.assertEqual(result.returncode, 0, result.stdout[-2000:] + result.stderr[-2000:])
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        self.assertTrue(figures["pass"], figures)
        self.assertEqual(set(figures["outcomes"]), {"200"}, figures)
        self.assertEqual(figures["logged_by_status"], {"200": figures["outcomes"]["200"]})
        self.assertEqual([stop["exit_code"] for stop in figures["stops"]], [0, 0])


if __name__ == "__main__":
    unittest.main()
