"""Health, readiness and metrics endpoints, end to end with a real client and hub."""

from __future__ import annotations

import asyncio
import threading
import unittest
from typing import Any, ClassVar

import aiohttp

from core import ActionResponse, ActionRunner, Context
from core.dev.local_hub.hub import LocalHub
from core.ops.health import HealthServer
from tests.support import start_consumer, wait_until


class OneAtATime(ActionRunner):
    """A bulkhead of one, held until the test opens the gate."""

    max_concurrency = 1
    gate: ClassVar[asyncio.Event]

    @classmethod
    def description(cls) -> str:
        return "One at a time"

    async def run(self, ctx: Context) -> ActionResponse:
        await OneAtATime.gate.wait()
        return ActionResponse()


class Overrun(ActionRunner):
    """A blocking action that outlives its time limit until the test lets it go."""

    timeout_seconds = 0.05
    release: ClassVar[threading.Event] = threading.Event()

    @classmethod
    def description(cls) -> str:
        return "Blocks past its limit"

    def run(self, ctx: Context) -> ActionResponse:
        Overrun.release.wait(10)
        return ActionResponse()


class HealthTest(unittest.IsolatedAsyncioTestCase):
    async def get(self, server: HealthServer, path: str) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{server.port}{path}") as response,
        ):
            body = await (response.json() if path != "/metrics" else response.text())
            return response.status, body

    async def test_ready_flips_when_the_hub_goes_away_and_back(self) -> None:
        hub = LocalHub()
        await hub.start()
        port, token = hub.port, next(iter(hub.tokens))
        consumer = start_consumer(hub)
        server = HealthServer(consumer.client, 0, host="127.0.0.1")
        await server.start()
        try:
            await consumer.joined()
            self.assertEqual(await self.get(server, "/readyz"), (200, {"status": "ready"}))
            status, body = await self.get(server, "/healthz")
            self.assertEqual((status, body["status"]), (200, "ok"))

            await hub.stop()
            await wait_until(lambda: not consumer.client.joined)
            status, body = await self.get(server, "/readyz")
            self.assertEqual((status, body["problems"]), (503, ["not joined to the hub"]))
            self.assertEqual((await self.get(server, "/healthz"))[0], 200)

            async with LocalHub(port=port, tokens=[token]) as again:
                await again.wait_for_joined(1)
                await wait_until(lambda: consumer.client.joined)
                self.assertEqual((await self.get(server, "/readyz"))[0], 200)
                await consumer.stop()
        finally:
            await server.stop()

    async def test_failing_check_makes_it_not_ready(self) -> None:
        async def broken() -> str | None:
            return "connection refused"

        async def slow() -> str | None:
            await asyncio.sleep(10)
            return None

        async with LocalHub() as hub:
            consumer = await start_consumer(hub).joined()
            server = HealthServer(
                consumer.client, 0, host="127.0.0.1", checks=[("database", broken), ("slow", slow)]
            )
            await server.start()
            try:
                status, body = await self.get(server, "/readyz")
            finally:
                await server.stop()
                await consumer.stop()
        self.assertEqual(status, 503)
        self.assertEqual(
            body["problems"], ["database: connection refused", "slow: no answer within 2 s"]
        )

    async def test_what_is_not_a_plain_get_of_a_route_gets_a_plain_error(self) -> None:
        async with LocalHub() as hub:
            consumer = start_consumer(hub)
            server = HealthServer(consumer.client, 0, host="127.0.0.1", request_timeout=0.3)
            await server.start()
            try:
                cases = {
                    b"GET /nope HTTP/1.1\r\n\r\n": b"HTTP/1.1 404 Not Found",
                    b"POST /healthz HTTP/1.1\r\n\r\n": b"HTTP/1.1 405 Method Not Allowed",
                    b"nonsense\r\n\r\n": b"HTTP/1.1 400 Bad Request",
                    b"GET /healthz HTTP/1.1\r\nX: " + b"y" * 20000: b"HTTP/1.1 431",
                    b"GET /healthz HTTP/1.1\r\n": b"HTTP/1.1 408 Request Timeout",
                    b"GET /healthz?probe=1 HTTP/1.0\r\n\r\n": b"HTTP/1.1 200 OK",
                }
                for request, expected in cases.items():
                    with self.subTest(request=request[:30]):
                        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                        writer.write(request)
                        answer = await asyncio.wait_for(reader.read(), 5)
                        writer.close()
                        self.assertTrue(answer.startswith(expected), answer[:80])
                        self.assertIn(b"Connection: close", answer)
            finally:
                await server.stop()
                await consumer.stop()

    async def test_metrics(self) -> None:
        async with LocalHub() as hub:
            consumer = await start_consumer(hub).joined()
            server = HealthServer(consumer.client, 0, host="127.0.0.1")
            await server.start()
            try:
                await hub.request("Echo", {"message": "a"})
                await hub.request("Echo", {"message": "b"})
                await hub.request("Greet", {})
                await hub.request("Nope", {})
                await hub.drop_connections()
                await wait_until(
                    lambda: consumer.client.joined and consumer.client.connections == 2
                )
                status, text = await self.get(server, "/metrics")
            finally:
                await server.stop()
                await consumer.stop()
        self.assertEqual(status, 200)
        self.assertIn('plugboard_requests_total{action="Echo",status="200"} 2.0', text)
        self.assertIn('plugboard_requests_total{action="Greet",status="400"} 1.0', text)
        self.assertIn('plugboard_requests_total{action="(unknown)",status="404"} 1.0', text)
        self.assertIn(
            'plugboard_request_duration_seconds_bucket{action="Echo",le="+Inf"} 2.0', text
        )
        self.assertIn('plugboard_request_duration_seconds_count{action="Echo"} 2.0', text)
        self.assertIn("plugboard_requests_in_flight 0.0", text)
        self.assertIn("plugboard_reconnects_total 1.0", text)
        self.assertIn("plugboard_consumers 1.0", text)
        self.assertIn("plugboard_joined 1.0", text)
        self.assertIn("plugboard_upgrade_refusals_total 0.0", text)
        self.assertRegex(text, r'plugboard_catalog_info\{hash="[0-9a-f]{12}"\} 1.0')

    async def test_metrics_show_waits_and_worker_threads(self) -> None:
        OneAtATime.gate = asyncio.Event()
        Overrun.release.clear()
        self.addCleanup(Overrun.release.set)
        actions: dict[str, type[ActionRunner]] = {"OneAtATime": OneAtATime, "Overrun": Overrun}
        async with LocalHub() as hub:
            consumer = await start_consumer(hub, actions, max_concurrency=7).joined()
            server = HealthServer(consumer.client, 0, host="127.0.0.1")
            await server.start()
            stats = consumer.client.executor.stats
            try:
                first = asyncio.ensure_future(hub.request("OneAtATime", {}))
                second = asyncio.ensure_future(hub.request("OneAtATime", {}))
                await wait_until(lambda: stats["OneAtATime"].waiting == 1)
                overrun = await hub.call("Overrun", {})
                _, during = await self.get(server, "/metrics")
                OneAtATime.gate.set()
                await asyncio.gather(first, second)
                Overrun.release.set()
                await wait_until(lambda: consumer.client.executor.threads.busy == 0)
                _, after = await self.get(server, "/metrics")
            finally:
                await server.stop()
                await consumer.stop()
        self.assertEqual(overrun.payload["status_code"], 504)
        self.assertIn('plugboard_requests_waiting{action="OneAtATime"} 1.0', during)
        self.assertIn("plugboard_worker_threads 7.0", during)
        self.assertIn("plugboard_worker_threads_busy 1.0", during)
        self.assertIn("plugboard_worker_threads_overrun 1.0", during)
        self.assertIn('plugboard_requests_waiting{action="OneAtATime"} 0.0', after)
        self.assertIn('plugboard_request_wait_seconds_count{action="OneAtATime"} 1.0', after)
        self.assertIn(
            'plugboard_request_wait_seconds_bucket{action="OneAtATime",le="+Inf"} 1.0', after
        )
        self.assertIn('plugboard_request_wait_seconds_count{action="Overrun"} 0.0', after)
        self.assertIn("plugboard_worker_threads_busy 0.0", after)
        self.assertIn("plugboard_worker_threads_overrun 0.0", after)


if __name__ == "__main__":
    unittest.main()
