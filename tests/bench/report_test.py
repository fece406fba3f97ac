"""Tests for `bench.report`: the JSON line, the table and the profile figures, made from
figures chosen here (no consumer runs)."""

from __future__ import annotations

import contextlib
import cProfile
import io
import json
import sys
import tempfile
import unittest
from pathlib import Path

from bench.load import Load
from bench.proc import cpu_source
from bench.report import (
    MIB,
    ConsumerFigures,
    Idle,
    Results,
    cell,
    print_profile,
    print_table,
    summary,
    verdict,
)

# The JSON line's keys, in order: CI and spreadsheets read them.
SUMMARY_KEYS = [
    "bench",
    "quick",
    "requests",
    "in_flight",
    "cpus",
    "python",
    "framework_stderr",
    "framework_log_lines",
    *(
        f"{prefix}_{name}"
        for prefix in ("framework", "baseline")
        for name in (
            "cpu_us_per_req_64",
            "cpu_us_per_req_1",
            "cpu_system_us_per_req_64",
            "rps_1",
            "p50_ms_1",
            "p99_ms_1",
            "hub_cpu_us_per_req_1",
            "rps_64",
            "p50_ms_64",
            "p99_ms_64",
            "hub_cpu_us_per_req_64",
            "start_to_joined_s",
            "rss_mib_after_load",
        )
    ),
    # Latency and CPU at every level in flight; those at 1 and 64 are above already, but
    # not for the framework with no floor.
    *(
        f"{prefix}_{name}_{level}"
        for prefix in ("framework", "framework_no_floor", "baseline")
        for level in (1, 2, 4, 64)
        for name in ("p50_ms", "p99_ms", "cpu_us_per_req")
        if prefix == "framework_no_floor" or level in (2, 4)
    ),
    "floor_ms",
    "one_p50_over_floor_ms",
    "one_p50_pass",
    "one_cpu_ratio",
    "one_cpu_pass",
    "one_no_floor_p50_ratio",
    "one_no_floor_p50_pass",
    "side_by_side_framework_cpu_us",
    "side_by_side_baseline_cpu_us",
    "side_by_side_ratios",
    "side_by_side_ratio",
    "side_by_side_ratio_framework_first",
    "side_by_side_ratio_baseline_first",
    "sequential_cpu_ratio",
    "cpu_ratio",
    "cpu_ratio_target",
    "cpu_ratio_pass",
    "cpu_ratio_313_pass",
    "sleep_200_wall_s",
    "sleep_200_rounds_s",
    "sleep_200_target_s",
    "sleep_200_pass",
    "idle_no_database_start_to_joined_s",
    "idle_no_database_starts_s",
    "idle_no_database_rss_mib",
    "idle_no_database_rss_anonymous_mib",
    "idle_no_database_pass",
    "idle_examples_first_start_to_joined_s",
    "idle_start_to_joined_s",
    "idle_examples_starts_s",
    "idle_rss_mib",
    "idle_rss_anonymous_mib",
    "idle_examples_pass",
]

# The table's rows, in order.
TABLE_LABELS = [
    "CPU per request, side by side, 64 each (us)",
    "  on Python 3.13 and later",
    "p50 latency, 1 in flight, over the 2 ms floor (ms)",
    "CPU per request, alone, 1 in flight (us)",
    "p50 latency, 1 in flight, no floor (ms)",
    "CPU per request, alone, 64 in flight (us)",
    "  of which system (us)",
    "requests/s, 1 in flight",
    "p50 latency, 1 in flight (ms)",
    "p99 latency, 1 in flight (ms)",
    "hub's CPU per request, 1 in flight (us)",
    "requests/s, 64 in flight",
    "p50 latency, 64 in flight (ms)",
    "p99 latency, 64 in flight (ms)",
    "hub's CPU per request, 64 in flight (us)",
    "start -> joined (s)",
    "RSS after the load (MiB)",
    "200 x Sleep(0.2) at once, wall (s)",
    "start -> joined, no database (s)",
    "idle RSS, no database (MiB)",
    "  of which the consumer's own (MiB)",
    "start -> joined, example actions (s)",
    "idle RSS, example actions (MiB)",
    "  of which the consumer's own (MiB)",
    "  first start, migrating a new database (s)",
]


def load(in_flight: int, cpu_us: float, latency_ms: float, requests: int = 1000) -> Load:
    """A batch of `requests` that each took `latency_ms` and `cpu_us` of the consumer's CPU
    (a fifth of it system time), answered in one second."""
    return Load(
        requests=requests,
        in_flight=in_flight,
        wall_seconds=1.0,
        latencies=[latency_ms / 1000] * requests,
        failures=0,
        cpu_seconds=cpu_us * requests / 1e6,
        cpu_system_seconds=cpu_us * requests / 5e6,
        hub_cpu_seconds=0.1,
    )


def levels(one: Load, many: Load, latency_ms: float = 1.0) -> dict[int, Load]:
    """Figures at 1, 2, 4 and 64 in flight: `one` and `many` at the ends."""
    return {1: one, 2: load(2, 100.0, latency_ms), 4: load(4, 90.0, latency_ms), 64: many}


def results(
    side_by_side: list[tuple[float, float]],
    *,
    one_ms: float = 2.25,
    one_cpu_us: float = 120.0,
    no_floor_ms: float = 0.4,
) -> Results:
    """A full run's figures with the given side-by-side rounds (and, at 1 in flight, the
    framework's p50 and CPU, and its p50 with no floor)."""
    return Results(
        framework=ConsumerFigures(
            0.61234567,
            levels(load(1, one_cpu_us, one_ms), load(64, 40.0, 5.0)),
            64 * MIB,
        ),
        framework_no_floor=ConsumerFigures(
            0.6, levels(load(1, 110.0, no_floor_ms), load(64, 41.0, 4.0)), 64 * MIB
        ),
        baseline=ConsumerFigures(0.1, levels(load(1, 150.0, 0.3), load(64, 50.0, 6.0)), 25 * MIB),
        sleep_rounds=[0.25, 0.22, 0.23],
        side_by_side=side_by_side,
        framework_log_lines=912,
        idle_no_database=Idle(0.25, int(36.5 * MIB), [0.31, 0.25, 0.2], int(24.5 * MIB)),
        idle_examples_first=Idle(0.6, int(63.0 * MIB)),
        idle_examples=Idle(0.48, int(56.5 * MIB), [0.48]),
    )


class SummaryTest(unittest.TestCase):
    def test_keys_in_order(self) -> None:
        data = summary(results([(45.0, 50.0)]), requests=1000, quick=False)
        self.assertEqual(list(data), SUMMARY_KEYS)
        json.dumps(data)  # one JSON line: every value serialises

    def test_cpu_target_is_judged_on_the_side_by_side_median(self) -> None:
        # The third round has no baseline CPU time: it has no ratio and is left out.
        data = summary(
            results([(45.0, 50.0), (48.0, 40.0), (46.0, 0.0)]), requests=1000, quick=True
        )
        self.assertEqual(data["side_by_side_ratios"], [0.9, 1.2])
        self.assertEqual(data["side_by_side_ratio"], 1.05)
        self.assertEqual(data["cpu_ratio"], 1.05)
        self.assertIs(data["cpu_ratio_pass"], False)
        self.assertEqual(data["side_by_side_framework_cpu_us"], 46.0)
        self.assertEqual(data["side_by_side_baseline_cpu_us"], 40.0)
        # Alone, the framework is cheaper; that ratio is information only.
        self.assertEqual(data["sequential_cpu_ratio"], 0.8)

    def test_figures(self) -> None:
        data = summary(results([(38.0, 50.0)]), requests=1000, quick=True)
        self.assertEqual((data["quick"], data["requests"], data["in_flight"]), (True, 1000, 64))
        self.assertIs(data["cpu_ratio_pass"], True)  # 0.76, under the 0.8 target
        self.assertEqual(data["framework_cpu_us_per_req_64"], 40.0)
        self.assertEqual(data["framework_cpu_system_us_per_req_64"], 8.0)
        self.assertEqual(data["baseline_cpu_us_per_req_1"], 150.0)
        self.assertEqual(data["framework_rps_64"], 1000.0)
        self.assertEqual(data["baseline_p99_ms_64"], 6.0)
        self.assertEqual(data["framework_hub_cpu_us_per_req_1"], 100.0)
        self.assertEqual(data["framework_start_to_joined_s"], 0.6123)  # 4 decimals
        self.assertEqual(data["framework_rss_mib_after_load"], 64.0)
        self.assertEqual(data["sleep_200_rounds_s"], [0.25, 0.22, 0.23])
        self.assertEqual(data["sleep_200_wall_s"], 0.23)
        self.assertIs(data["sleep_200_pass"], True)
        self.assertEqual(data["idle_rss_mib"], 56.5)
        self.assertEqual(data["idle_no_database_rss_mib"], 36.5)
        self.assertEqual(data["idle_no_database_rss_anonymous_mib"], 24.5)
        self.assertIsNone(data["idle_rss_anonymous_mib"])  # not read: no figure, not 0
        self.assertEqual(data["idle_no_database_starts_s"], [0.31, 0.25, 0.2])
        self.assertEqual(data["idle_examples_starts_s"], [0.48])
        self.assertIs(data["idle_no_database_pass"], True)
        self.assertIs(data["idle_examples_pass"], False)  # 56.5 MiB: over its 56
        self.assertEqual(data["framework_log_lines"], 912)

    def test_ratios_by_join_order(self) -> None:
        # Rounds 1 and 3 had the framework join first, rounds 2 and 4 the baseline; the fifth
        # round (framework first) has no ratio.
        rounds = [(45.0, 50.0), (48.0, 40.0), (40.0, 50.0), (44.0, 40.0), (46.0, 0.0)]
        data = summary(results(rounds), requests=1000, quick=False)
        self.assertEqual(data["side_by_side_ratio_framework_first"], 0.85)
        self.assertEqual(data["side_by_side_ratio_baseline_first"], 1.15)
        self.assertEqual(data["side_by_side_ratio"], 1.0)

    def test_one_in_flight_is_judged_against_the_floor_and_the_baseline(self) -> None:
        data = summary(results([(38.0, 50.0)]), requests=1000, quick=False)
        self.assertEqual(data["floor_ms"], 2.0)
        self.assertEqual(data["one_p50_over_floor_ms"], 0.25)
        self.assertIs(data["one_p50_pass"], True)
        self.assertEqual(data["one_cpu_ratio"], 0.8)  # 120 us against the baseline's 150
        self.assertIs(data["one_cpu_pass"], True)
        self.assertEqual(data["one_no_floor_p50_ratio"], 1.3333)  # 0.4 ms against 0.3
        self.assertIs(data["one_no_floor_p50_pass"], True)
        self.assertEqual(data["framework_no_floor_p50_ms_64"], 4.0)
        self.assertEqual(data["baseline_cpu_us_per_req_4"], 90.0)
        slow = summary(
            results([(38.0, 50.0)], one_ms=2.6, one_cpu_us=230.0, no_floor_ms=0.5),
            requests=1000,
            quick=False,
        )
        self.assertIs(slow["one_p50_pass"], False)  # 0.6 ms over the floor
        self.assertIs(slow["one_cpu_pass"], False)  # 1.53 times the baseline's
        self.assertIs(slow["one_no_floor_p50_pass"], False)  # 1.67 times

    def test_the_313_cpu_target_is_judged_on_313_only(self) -> None:
        data = summary(results([(36.0, 50.0)]), requests=1000, quick=False)
        if sys.version_info >= (3, 13):
            self.assertIs(data["cpu_ratio_313_pass"], False)  # 0.72
        else:
            self.assertIsNone(data["cpu_ratio_313_pass"])

    def test_no_side_by_side_ratio_fails_the_target(self) -> None:
        data = summary(results([(45.0, 0.0)]), requests=10, quick=True)
        self.assertEqual(data["side_by_side_ratios"], [])
        self.assertIsNone(data["cpu_ratio"])
        self.assertIs(data["cpu_ratio_pass"], False)


class TableTest(unittest.TestCase):
    def table(self, figures: Results, *, quick: bool) -> list[str]:
        data = summary(figures, requests=1000, quick=quick)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            print_table(figures, data, requests=1000, warmup=50, quick=quick)
        return out.getvalue().splitlines()

    def test_layout(self) -> None:
        lines = self.table(results([(45.0, 50.0), (48.0, 40.0), (46.0, 0.0)]), quick=False)
        self.assertTrue(
            lines[0].startswith(
                "Py-Service benchmark: 1000 Echo requests per measurement after 50 warm-up;"
            )
        )
        self.assertNotIn("--quick", lines[0])
        self.assertEqual(lines[1], cpu_source())
        self.assertIn("(912 lines)", lines[4])
        blank = [number for number, line in enumerate(lines) if not line]
        self.assertEqual(len(blank), 3)
        header, *rows = lines[blank[0] + 1 : blank[1]]
        self.assertEqual(header.split(), ["framework", "baseline", "ratio", "target"])
        self.assertEqual(len(rows), len(TABLE_LABELS))
        labels = [row[: len(label)] for row, label in zip(rows, TABLE_LABELS, strict=True)]
        self.assertEqual(labels, TABLE_LABELS)
        # Columns are aligned: every line of the table has the same width.
        self.assertEqual({len(line) for line in [header, *rows]}, {len(header)})
        first = rows[0].split()
        self.assertEqual(first[-6:], ["46.0", "40.0", "1.05", "<=", "0.80", "FAIL"])
        self.assertEqual(rows[17].split()[-4:], ["0.230", "<=", "0.30", "PASS"])
        self.assertEqual(rows[7].split()[-3:], ["1,000", "1,000", "1.00"])
        self.assertEqual(rows[2].split()[-4:], ["0.25", "<=", "0.50", "PASS"])
        self.assertEqual(rows[3].split()[-6:], ["120.0", "150.0", "0.80", "<=", "1.50", "PASS"])
        self.assertEqual(rows[4].split()[-6:], ["0.40", "0.30", "1.33", "<=", "1.50", "PASS"])
        # Latency and CPU at each level in flight, for the three consumers.
        title, levels_header, *level_rows = lines[blank[1] + 1 : blank[2]]
        self.assertTrue(title.startswith("Each consumer alone: latency (ms)"))
        self.assertEqual(levels_header.split()[:5], ["in", "flight", "framework", "(floor", "2"])
        self.assertEqual([row.split()[0] for row in level_rows], ["1", "2", "4", "64"])
        self.assertEqual(
            level_rows[0].split()[1:],
            ["2.25", "2.25", "120.0", "0.40", "0.40", "110.0", "0.30", "0.30", "150.0"],
        )
        footer = lines[blank[2] + 1 :]
        self.assertEqual(
            footer[0],
            "Sleep rounds (s): 0.250, 0.220, 0.230; the median is compared with the target.",
        )
        self.assertIn("(median ratio 0.90 and 1.20)", footer[1])
        self.assertTrue(
            footer[1].endswith(
                "Ratio per round: 0.90, 1.20 "
                "(1 round(s) without a ratio: no baseline CPU time read)."
            )
        )
        self.assertTrue(footer[2].startswith("Alone: "))
        # A case started more than once shows each start; one started once does not.
        self.assertEqual(
            footer[3],
            "Idle, no database: started 3 times, one after the other (s to joined: 0.31, "
            "0.25, 0.20); the medians of start-up time and RSS are shown.",
        )
        self.assertTrue(footer[4].startswith("Idle RSS = VmRSS; the consumer's own = RssAnon"))
        self.assertEqual(len(footer), 5)
        # The consumer's own memory beneath each idle RSS: read for one case, not the other.
        own = [row.split()[-1] for row in rows if row.startswith("  of which the consumer's")]
        self.assertEqual(own, ["24.5", "-"])

    def test_quick_is_marked(self) -> None:
        lines = self.table(results([(45.0, 50.0)]), quick=True)
        self.assertTrue(lines[0].endswith("(--quick: small numbers, not for comparison)"))
        side_by_side = [line for line in lines if line.startswith("Side by side: ")]
        self.assertEqual(len(side_by_side), 1)
        self.assertTrue(side_by_side[0].endswith("Ratio per round: 0.90."))


class CellTest(unittest.TestCase):
    def test_cell_and_verdict(self) -> None:
        self.assertEqual(cell(12345.678), "12,345.7")
        self.assertEqual(cell(0.5, 2), "0.50")
        self.assertEqual(cell(None), "-")
        self.assertEqual((verdict(True), verdict(False)), ("PASS", "FAIL"))


class ProfileTest(unittest.TestCase):
    def test_figures_on_stdout_statistics_on_stderr(self) -> None:
        def step() -> None:
            """Stands for one request's work: two calls each."""

        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(600):
            step()
        profiler.disable()
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "run.prof"
            profiler.dump_stats(path)
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                print_profile(load(64, 300.0, 5.0, requests=300), path)
        lines = out.getvalue().splitlines()
        self.assertIn("300 Echo requests, 64 in flight: 300.0 us CPU per request", lines[0])
        self.assertIn("300 requests/s", lines[0])
        self.assertEqual(lines[1], f"profile statistics: {path} (python -m pstats {path})")
        figures = json.loads(lines[2])
        # 600 calls of `step` for 300 requests, and the profiler's own `disable` call.
        self.assertEqual(figures.pop("python_calls_per_req"), round(601 / 300, 2))
        self.assertGreaterEqual(figures.pop("profiled_own_us_per_req"), 0.0)
        self.assertIn("2.0 Python calls per request", lines[0])
        self.assertEqual(
            figures,
            {
                "bench": "py-service",
                "mode": "profile",
                "requests": 300,
                "in_flight": 64,
                "profiled_cpu_us_per_req": 300.0,
                "profile": str(path),
            },
        )
        self.assertIn("function calls", err.getvalue())


if __name__ == "__main__":
    unittest.main()
