"""/metrics beside the service's own families: the standard collectors, the build, and what
actions register on prometheus_client's default registry; one scrape of a real replica."""

from __future__ import annotations

import logging
import math
import platform
import re
import shutil
import tempfile
import tomllib
import unittest
from pathlib import Path

import aiohttp

from core.dev.local_hub.hub import LocalHub
from core.model.registry import discover
from core.model.runner import ActionRunner
from core.ops.health import HealthServer
from core.settings import PROJECT_ROOT
from core.version import VERSION
from tests.fixtures.observed import FOLDER as OBSERVED_FOLDER
from tests.support import LogCapture, start_consumer


async def scrape(server: HealthServer) -> str:
    """One GET /metrics."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{server.port}/metrics") as response,
    ):
        assert response.status == 200, response.status
        return await response.text()


def sample(text: str, name: str, labels: str = "") -> float:
    """The value of one sample in an exposition."""
    match = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.MULTILINE)
    if match is None:
        raise AssertionError(f"no sample {name}{labels} in:\n{text}")
    return float(match.group(1))


class MetricsTest(unittest.IsolatedAsyncioTestCase):
    async def test_one_scrape_shows_the_process_the_build_and_an_actions_own_counter(
        self,
    ) -> None:
        served = discover(OBSERVED_FOLDER, ActionRunner)
        async with LocalHub() as hub:
            consumer = await start_consumer(hub, served).joined()
            server = HealthServer(consumer.client, 0, host="127.0.0.1")
            await server.start()
            try:
                before = await scrape(server)
                await hub.request("Charge", {"customer_id": 1})
                await hub.request("ChargeInThread", {"customer_id": 2})
                after = await scrape(server)
                catalog_hash = consumer.client.catalog_hash
            finally:
                await server.stop()
                await consumer.stop()
        self.assertGreater(sample(after, "process_resident_memory_bytes"), 10 * 2**20)
        self.assertGreater(sample(after, "process_open_fds"), 0)
        self.assertIn("python_info{", after)
        self.assertIn("python_gc_collections_total{", after)
        self.assertEqual(
            sample(
                after,
                "plugboard_build_info",
                f'{{catalog_hash="{catalog_hash}",python="{platform.python_version()}",'
                f'version="{VERSION}"}}',
            ),
            1.0,
        )
        # The action's own counter moved by the two charges, beside the service's families.
        self.assertEqual(
            sample(after, "fixture_charges_total") - sample(before, "fixture_charges_total"), 2.0
        )
        self.assertEqual(
            sample(after, "plugboard_requests_total", '{action="Charge",status="200"}'), 1.0
        )
        # Every family once.
        families = re.findall(r"^# TYPE (\S+) ", after, re.MULTILINE)
        self.assertEqual(len(families), len(set(families)))

    def test_a_default_registry_metric_named_like_the_services_is_left_out(self) -> None:
        from prometheus_client import REGISTRY, Gauge

        from core.hub.client import PlugboardClient
        from core.ops import metrics
        from core.settings import Settings

        impostor = Gauge("plugboard_joined", "Not the service's")
        self.addCleanup(REGISTRY.unregister, impostor)
        impostor.set(42)
        client = PlugboardClient(Settings().with_hub("ws://localhost/websocket", "t"), {}, {})
        exposition = metrics.Exposition(client)
        capture = LogCapture()
        with capture.installed():
            first = exposition.render().decode()
            second = exposition.render().decode()
        for text in (first, second):
            self.assertEqual(text.count("# TYPE plugboard_joined "), 1)
            self.assertEqual(sample(text, "plugboard_joined"), 0.0)
        self.assertEqual(capture.text().count("leaves out the metric plugboard_joined"), 1)
        self.assertTrue(all(line.startswith("WARNING") for line in capture.lines))
        logging.getLogger(metrics.__name__).debug("checked")

    def test_the_memory_limit_is_read_from_the_cgroup(self) -> None:
        from core.ops.metrics import memory_limit

        folder = Path(tempfile.mkdtemp(prefix="cgroup_"))
        self.addCleanup(shutil.rmtree, folder, True)
        v2, v1, missing = folder / "memory.max", folder / "limit_in_bytes", folder / "none"
        cases = [
            ("268435456\n", None, 268435456.0),
            ("max\n", None, math.inf),
            (None, "536870912\n", 536870912.0),
            (None, "9223372036854771712\n", math.inf),  # v1's "no limit"
            ("garbage", "1024", 1024.0),
            (None, None, math.inf),
        ]
        for v2_text, v1_text, expected in cases:
            with self.subTest(v2=v2_text, v1=v1_text):
                for path, content in ((v2, v2_text), (v1, v1_text)):
                    path.unlink(missing_ok=True)
                    if content is not None:
                        path.write_text(content)
                self.assertEqual(memory_limit((v2, v1, missing)), expected)

    def test_the_version_is_the_projects(self) -> None:
        with (PROJECT_ROOT / "pyproject.toml").open("rb") as handle:
            self.assertEqual(tomllib.load(handle)["project"]["version"], VERSION)


if __name__ == "__main__":
    unittest.main()
