"""Tests for `bench.load`: the figures of a batch, and load sent through a real local hub to
the benchmark's baseline consumer in its own process."""

from __future__ import annotations

import secrets
import sys
import tempfile
import unittest
from pathlib import Path
from typing import Any

from bench.common import ECHO_FIELDS, IN_FLIGHT, BenchError
from bench.consumers import baseline_consumer, bench_connection_url
from bench.load import (
    SLEEP_REQUESTS,
    Load,
    drive,
    echo_answered,
    echo_load,
    sleep_answered,
    sleep_round,
    warm_up,
)
from core.dev.local_hub.hub import LocalHub


class LoadFiguresTest(unittest.TestCase):
    def test_per_request_figures(self) -> None:
        load = Load(
            requests=4,
            in_flight=2,
            wall_seconds=2.0,
            latencies=[0.004, 0.001, 0.003, 0.002],
            failures=0,
            cpu_seconds=0.002,
            cpu_system_seconds=0.0004,
            hub_cpu_seconds=0.008,
        )
        self.assertEqual(load.rps, 2.0)
        self.assertAlmostEqual(load.p50_ms, 2.0)
        self.assertAlmostEqual(load.p99_ms, 4.0)
        self.assertAlmostEqual(load.cpu_us_per_request or 0, 500.0)
        self.assertAlmostEqual(load.cpu_system_us_per_request or 0, 100.0)
        self.assertAlmostEqual(load.hub_cpu_us_per_request, 2000.0)

    def test_without_the_consumers_cpu_time_there_is_no_cpu_figure(self) -> None:
        load = Load(requests=1, in_flight=1, wall_seconds=0.0, latencies=[0.5], failures=0)
        self.assertIsNone(load.cpu_us_per_request)
        self.assertIsNone(load.cpu_system_us_per_request)
        self.assertIsNone(load.rps)  # no wall time measured: no rate


class ChecksTest(unittest.TestCase):
    def test_echo_needs_status_200_and_the_fields_sent_back(self) -> None:
        self.assertTrue(echo_answered(200, {"message": dict(ECHO_FIELDS)}))
        self.assertFalse(echo_answered(400, {"message": dict(ECHO_FIELDS)}))
        self.assertFalse(echo_answered(200, {"message": {"message": "other"}}))

    def test_sleep_needs_status_200_and_success(self) -> None:
        self.assertTrue(sleep_answered(200, {"status": "success"}))
        self.assertFalse(sleep_answered(200, {"status": "error"}))
        self.assertFalse(sleep_answered(504, {"status": "success"}))


@unittest.skipUnless(sys.platform.startswith("linux"), "the benchmark reads /proc")
class DriveTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        token = secrets.token_urlsafe(12)
        self.hub = LocalHub(tokens=(token,))
        await self.hub.start()
        self.addAsyncCleanup(self.hub.stop)
        scratch = tempfile.TemporaryDirectory()
        self.addCleanup(scratch.cleanup)
        url = bench_connection_url(self.hub, token)
        self.consumer = baseline_consumer(url, Path(scratch.name) / "baseline.log")
        self.addAsyncCleanup(self.consumer.stop, self.hub)
        await self.consumer.start(self.hub)

    async def test_echo_load_times_every_request_and_reads_the_consumers_cpu(self) -> None:
        load = await echo_load(self.hub, self.consumer, 150, 8)
        self.assertEqual((load.requests, load.in_flight, load.failures), (150, 8, 0))
        self.assertEqual(len(load.latencies), 150)
        self.assertGreater(load.wall_seconds, 0)
        self.assertLessEqual(max(load.latencies), load.wall_seconds)
        assert load.cpu_seconds is not None and load.cpu_system_seconds is not None
        self.assertGreater(load.cpu_seconds, 0)
        self.assertGreaterEqual(load.cpu_seconds, load.cpu_system_seconds)
        self.assertGreater(load.hub_cpu_seconds, 0)

    async def test_answers_the_check_refuses_are_counted_as_failures(self) -> None:
        seen: list[tuple[int, dict[str, Any]]] = []

        def refuse(status: int, body: dict[str, Any]) -> bool:
            seen.append((status, body))
            return False

        load = await drive(self.hub, "Echo", {"message": "x"}, 10, 3, refuse)
        self.assertEqual(load.failures, 10)
        self.assertEqual(len(seen), 10)
        self.assertEqual(seen[0][0], 200)
        self.assertEqual(seen[0][1]["message"], {"message": "x"})
        self.assertIsNone(load.cpu_seconds)  # no consumer given

    async def test_fewer_requests_than_in_flight(self) -> None:
        load = await drive(self.hub, "Echo", ECHO_FIELDS, 3, IN_FLIGHT, echo_answered)
        self.assertEqual((load.requests, load.failures, len(load.latencies)), (3, 0, 3))

    async def test_warm_up_and_sleep_round_pass_on_good_answers(self) -> None:
        await warm_up(self.hub, 20)
        # The baseline answers Sleep at once: the wall time is the round trip of the batch.
        self.assertGreater(await sleep_round(self.hub), 0)


@unittest.skipUnless(sys.platform.startswith("linux"), "the benchmark reads /proc")
class FailureTest(unittest.IsolatedAsyncioTestCase):
    async def test_requests_that_fail_stop_the_run(self) -> None:
        # No consumer joined: the hub answers every request with 422.
        async with LocalHub() as hub:
            with self.assertRaisesRegex(BenchError, "5 of 5 warm-up requests failed"):
                await warm_up(hub, 5)
            with self.assertRaisesRegex(
                BenchError, f"{SLEEP_REQUESTS} of {SLEEP_REQUESTS} Sleep requests failed"
            ):
                await sleep_round(hub)


if __name__ == "__main__":
    unittest.main()
