"""Health, readiness and metrics endpoints, end to end with a real client and hub."""

from __future__ import annotations

import asyncio
import socket
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
        self.assertIn("plugboard_requests_overloaded_total 0.0", text)
        self.assertRegex(text, r"\nplugboard_responses_held_bytes \d+\.0\n")
        self.assertIn("plugboard_responses_dropped_total 0.0", text)
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


PARTIAL_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"  # never finished: a slow client


class ConnectionCapTest(unittest.IsolatedAsyncioTestCase):
    """Whoever reaches the port holds at most `max_connections` connections, and slow ones
    never keep a probe out."""

    CAP = 16

    async def asyncSetUp(self) -> None:
        self.hub = LocalHub()
        await self.hub.start()
        self.addAsyncCleanup(self.hub.stop)
        self.consumer = await start_consumer(self.hub).joined()
        self.addAsyncCleanup(self.consumer.stop)

    async def serve(self, **options: Any) -> HealthServer:
        # A long request timeout: a connection that ends here was closed by the cap.
        server = HealthServer(
            self.consumer.client,
            0,
            host="127.0.0.1",
            max_connections=self.CAP,
            request_timeout=60,
            **options,
        )
        await server.start()
        self.addAsyncCleanup(server.stop)
        return server

    async def open(self, server: HealthServer, count: int, request: bytes) -> list[Any]:
        """`count` connections that sent `request`, each with a task reading until EOF."""
        connections = []
        for _ in range(count):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            self.addCleanup(writer.close)
            writer.write(request)
            connections.append(asyncio.ensure_future(reader.read()))
        return connections

    async def test_500_slow_connections_hold_no_more_than_the_cap(self) -> None:
        server = await self.serve()
        slow = await self.open(server, 500, PARTIAL_REQUEST)
        # Each connection past the cap took the place of the oldest one still waiting.
        await wait_until(lambda: sum(task.done() for task in slow) == 500 - self.CAP)
        self.assertEqual(server.open_connections, self.CAP)
        self.assertTrue(all(task.done() for task in slow[: 500 - self.CAP]))
        self.assertEqual({task.result() for task in slow if task.done()}, {b""})
        # A probe still gets its answer at once, in the place of the oldest slow client.
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /healthz HTTP/1.1\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        self.assertTrue(answer.startswith(b"HTTP/1.1 200 OK"), answer[:80])
        self.assertTrue(slow[500 - self.CAP].done())
        self.assertLessEqual(server.open_connections, self.CAP)
        for task in slow:
            task.cancel()

    async def test_with_every_connection_being_answered_a_new_one_is_closed_at_once(
        self,
    ) -> None:
        gate, entered = asyncio.Event(), []

        async def held() -> str | None:
            entered.append(1)
            await gate.wait()
            return None

        server = await self.serve(checks=[("held", held)])
        busy = await self.open(server, self.CAP, b"GET /readyz HTTP/1.1\r\n\r\n")
        await wait_until(lambda: len(entered) == self.CAP)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        self.addCleanup(writer.close)
        # Closed without an answer, well before the 60 s a request may take to arrive.
        self.assertEqual(await asyncio.wait_for(reader.read(), 5), b"")
        self.assertEqual(server.open_connections, self.CAP)
        gate.set()
        answers = await asyncio.wait_for(asyncio.gather(*busy), 5)
        self.assertTrue(all(answer.startswith(b"HTTP/1.1 200 OK") for answer in answers))
        await wait_until(lambda: server.open_connections == 0)


def ipv6_loopback() -> bool:
    """Whether this machine can listen on and reach ::1."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


class BindAddressTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        self.hub = LocalHub()
        await self.hub.start()
        self.addAsyncCleanup(self.hub.stop)
        self.consumer = start_consumer(self.hub)
        self.addAsyncCleanup(self.consumer.stop)

    async def status(self, host: str, port: int) -> bytes:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET /healthz HTTP/1.1\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return answer.split(b"\r\n", 1)[0]

    async def test_by_default_one_port_answers_on_ipv4_and_ipv6(self) -> None:
        server = HealthServer(self.consumer.client, 0)
        await server.start()
        self.addAsyncCleanup(server.stop)
        self.assertEqual(await self.status("127.0.0.1", server.port), b"HTTP/1.1 200 OK")
        if ipv6_loopback():
            self.assertEqual(await self.status("::1", server.port), b"HTTP/1.1 200 OK")

    async def test_a_host_binds_that_address_only(self) -> None:
        server = HealthServer(self.consumer.client, 0, host="127.0.0.1")
        await server.start()
        self.addAsyncCleanup(server.stop)
        self.assertEqual(await self.status("127.0.0.1", server.port), b"HTTP/1.1 200 OK")
        if ipv6_loopback():
            with self.assertRaises(OSError):
                await self.status("::1", server.port)


if __name__ == "__main__":
    unittest.main()
