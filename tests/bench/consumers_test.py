"""Tests for `bench.consumers`: real consumer processes against a real local hub."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import secrets
import sys
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from bench.common import BENCH_ACTIONS, BenchError
from bench.consumers import (
    CONSUMER_VARIABLES,
    FRAMEWORK_MAX_CONCURRENCY,
    ConsumerProcess,
    baseline_consumer,
    bench_connection_url,
    compile_service,
    framework_consumer,
    framework_env,
    profiled_framework_consumer,
)
from core.dev.local_hub.hub import LocalHub


class CompileServiceTest(unittest.TestCase):
    def test_every_module_of_the_service_folders_gets_bytecode(self) -> None:
        with tempfile.TemporaryDirectory() as scratch:
            root = Path(scratch)
            modules = [root / "core" / "a.py", root / "core" / "sub" / "b.py"]
            for module in [*modules, root / "elsewhere" / "c.py"]:
                module.parent.mkdir(parents=True, exist_ok=True)
                module.write_text("VALUE = 1\n")
            with mock.patch.object(sys, "dont_write_bytecode", True):  # as in the image
                compile_service(root)
            for module in modules:
                self.assertTrue(Path(importlib.util.cache_from_source(str(module))).exists())
            other = root / "elsewhere" / "c.py"
            self.assertFalse(Path(importlib.util.cache_from_source(str(other))).exists())

    def test_a_module_that_does_not_compile_stops_the_benchmark(self) -> None:
        with tempfile.TemporaryDirectory() as scratch:
            broken = Path(scratch) / "events" / "broken.py"
            broken.parent.mkdir()
            broken.write_text("def (\n")
            printed = io.StringIO()
            with self.assertRaises(BenchError), contextlib.redirect_stdout(printed):
                compile_service(Path(scratch))
            self.assertIn("broken.py", printed.getvalue())


@unittest.skipUnless(sys.platform.startswith("linux"), "the benchmark reads /proc")
class ConsumerProcessTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        self.token = secrets.token_urlsafe(12)
        self.hub = LocalHub(tokens=(self.token,))
        await self.hub.start()
        self.addAsyncCleanup(self.hub.stop)
        scratch = tempfile.TemporaryDirectory()
        self.addCleanup(scratch.cleanup)
        self.tmp = Path(scratch.name)

    async def test_baseline_joins_with_the_frameworks_url_is_measured_and_stops(self) -> None:
        consumer = baseline_consumer(bench_connection_url(self.hub, self.token), self.tmp / "b")
        self.addAsyncCleanup(consumer.stop, self.hub)
        seconds = await consumer.start(self.hub)
        self.assertGreater(seconds, 0)
        self.assertEqual(self.hub.joined_count(), 1)
        # The hub accepted the catalog: a request reaches the consumer and is answered.
        status, body = await self.hub.request("Echo", {"message": "hi"}, timeout=10)
        self.assertEqual((status, body["message"]), (200, {"message": "hi"}))
        total, system = consumer.cpu_times()
        self.assertGreater(total, 0)
        self.assertGreaterEqual(total, system)
        self.assertGreater(consumer.rss_bytes(), 1024 * 1024)
        own = consumer.anonymous_rss_bytes()
        self.assertGreater(own, 1024 * 1024)
        self.assertLess(own, consumer.rss_bytes())

        await consumer.stop(self.hub)
        assert consumer.process is not None
        self.assertEqual(consumer.process.returncode, 0)  # SIGTERM is a graceful stop
        self.assertEqual(self.hub.connection_count(), 0)
        self.assertEqual(consumer.log_lines(), 0)

    async def test_a_consumer_that_exits_before_joining_is_an_error_with_its_stderr(self) -> None:
        consumer = ConsumerProcess(
            "broken",
            [sys.executable, "-c", "import sys; sys.stderr.write('no luck\\n'); sys.exit(3)"],
            dict(os.environ),
            self.tmp / "broken.log",
        )
        self.addAsyncCleanup(consumer.stop, self.hub)
        with self.assertRaises(BenchError) as caught:
            await consumer.start(self.hub)
        self.assertIn("broken consumer exited with 3 before joining", str(caught.exception))
        self.assertIn("no luck", str(caught.exception))
        self.assertEqual(consumer.log_tail(), "no luck")
        self.assertEqual(consumer.log_lines(), 1)

    async def test_start_refuses_when_another_consumer_is_connected(self) -> None:
        url = bench_connection_url(self.hub, self.token)
        first = baseline_consumer(url, self.tmp / "first")
        self.addAsyncCleanup(first.stop, self.hub)
        await first.start(self.hub)
        second = baseline_consumer(url, self.tmp / "second")
        with self.assertRaisesRegex(BenchError, "another consumer is still connected"):
            await second.start(self.hub)
        self.assertIsNone(second.process)
        with self.assertRaisesRegex(BenchError, "baseline consumer is not running"):
            second.pid  # noqa: B018


class CommandTest(unittest.TestCase):
    def test_framework_env_sets_every_setting_and_inherits_none_from_the_shell(self) -> None:
        hub = LocalHub(port=4321)
        shell = dict.fromkeys(CONSUMER_VARIABLES, "from the shell")
        with mock.patch.dict(os.environ, {**shell, "BENCH_TEST_OTHER": "kept"}):
            env = framework_env(hub, "t0ken", Path("/tmp/x.sqlite3"), None)
            with_actions = framework_env(hub, "t0ken", Path("/tmp/x.sqlite3"), BENCH_ACTIONS)
        self.assertEqual(env["BENCH_TEST_OTHER"], "kept")
        self.assertEqual(env["WEBSOCKET_URL"], hub.websocket_url)
        self.assertEqual(env["TOKEN"], "t0ken")
        self.assertEqual(env["DATABASE_URL"], "sqlite:////tmp/x.sqlite3")
        self.assertEqual(env["MAX_CONCURRENCY"], str(FRAMEWORK_MAX_CONCURRENCY))
        self.assertEqual((env["LOG_LEVEL"], env["LOG_FORMAT"]), ("INFO", "text"))
        self.assertNotIn("ACTIONS_PATH", env)  # the default: the project's actions/
        self.assertEqual(with_actions["ACTIONS_PATH"], str(BENCH_ACTIONS))
        inherited = [name for name in CONSUMER_VARIABLES if env.get(name) == "from the shell"]
        self.assertEqual(inherited, [])

    def test_commands(self) -> None:
        env = {"A": "1"}
        framework = framework_consumer("idle", env, Path("f.log"))
        self.assertEqual(framework.argv, [sys.executable, "entrypoint.py"])
        self.assertEqual((framework.name, framework.env), ("idle", env))
        profiled = profiled_framework_consumer(env, Path("/tmp/out.prof"), Path("p.log"))
        self.assertEqual(
            profiled.argv, [sys.executable, "-m", "bench.profiled_consumer", "/tmp/out.prof"]
        )
        baseline = baseline_consumer("ws://x/socket/websocket?token=t", Path("b.log"))
        self.assertEqual(
            baseline.argv,
            [sys.executable, "-m", "bench.bare_consumer", "ws://x/socket/websocket?token=t"],
        )


if __name__ == "__main__":
    unittest.main()
