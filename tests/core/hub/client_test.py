"""End-to-end tests: the real client against the local hub over real sockets."""

from __future__ import annotations

import asyncio
import time
import unittest
from typing import Any

import aiohttp
from pydantic import Field

from core.dev.local_hub.hub import LocalHub
from core.model.response import ActionResponse
from core.model.runner import ActionRunner
from tests.support import (
    FIXTURE_ACTIONS,
    LogCapture,
    hub_and_consumer,
    start_consumer,
    wait_until,
)


class WhoAmI(ActionRunner):
    @classmethod
    def description(cls) -> str:
        return "Says which consumer answered"

    async def run(self, client: Any, websocket: Any) -> int:
        await asyncio.sleep(0.01)
        return id(client)


class Crash(ActionRunner):
    @classmethod
    def description(cls) -> str:
        return "Raises"

    async def run(self, client: Any, websocket: Any) -> ActionResponse:
        raise ValueError("internal detail")


class Hang(ActionRunner):
    timeout_seconds = 0.2
    seconds: float = Field(default=5.0, description="How long")

    @classmethod
    def description(cls) -> str:
        return "Sleeps past its limit"

    async def run(self, client: Any, websocket: Any) -> ActionResponse:
        await asyncio.sleep(self.seconds)
        return ActionResponse(status_code=200)


class Unencodable(ActionRunner):
    kind: str = Field(description="object or surrogate")

    @classmethod
    def description(cls) -> str:
        return "Returns fields that orjson refuses"

    async def run(self, client: Any, websocket: Any) -> ActionResponse:
        await asyncio.sleep(0.01)  # finish together with the Echo requests sent alongside
        if self.kind == "object":
            return ActionResponse(status_code=200, fields={"value": object()})
        return ActionResponse(status_code=200, fields={"text": "\ud800", "big": 2**70})


ACTIONS: dict[str, type[ActionRunner]] = {
    **FIXTURE_ACTIONS,
    "WhoAmI": WhoAmI,
    "Crash": Crash,
    "Hang": Hang,
    "Unencodable": Unencodable,
}


class JoinTest(unittest.IsolatedAsyncioTestCase):
    async def test_join_keeps_service_token_and_count(self) -> None:
        async with hub_and_consumer(ACTIONS) as (hub, consumer):
            client = consumer.client
            self.assertTrue(client.joined)
            self.assertIsNotNone(client.service)
            assert client.service is not None
            self.assertEqual(client.service.id, hub.service_id)
            # The join reply's token, with the value the client connected with (the hub
            # never sends it back).
            self.assertEqual(client.token.id, 1)
            assert client.token.value is not None
            self.assertEqual(client.token.value.get_secret_value(), next(iter(hub.tokens)))
            self.assertEqual(client.num_consumers, 1)
            self.assertTrue(client.connected)
            self.assertEqual(hub.catalog, client.catalog)

    async def test_v2_serializer(self) -> None:
        async with hub_and_consumer(ACTIONS, phoenix_vsn="2.0.0") as (hub, _):
            status, body = await hub.request("Echo", {"message": "v2"})
            self.assertEqual((status, body["message"]), (200, {"message": "v2"}))

    async def test_each_status_code_through_the_hub(self) -> None:
        async with hub_and_consumer(ACTIONS) as (hub, _):
            cases = [
                ("Greet", {"name": "Ada"}, 200, 200, None),
                ("Greet", {"name": ""}, 400, 400, "INVALID_FIELDS"),
                ("Missing", {}, 404, 400, "UNKNOWN_ACTION"),
                ("Crash", {}, 500, 400, "INTERNAL_ERROR"),
                ("Hang", {}, 504, 400, "TIMEOUT"),
            ]
            for action, fields, code, http_status, error_code in cases:
                with self.subTest(action=action, code=code):
                    answer = await hub.call(action, fields)
                    self.assertEqual(answer.status, http_status)
                    self.assertEqual(answer.payload["status_code"], code)
                    # The caller tells the errors apart by the code in the message.
                    message = answer.body["message"]
                    if error_code is not None:
                        self.assertEqual(message["code"], error_code)
            _, body = await hub.request("Crash", {})
            self.assertNotIn("internal detail", str(body))
            self.assertRegex(body["message"]["error"], r"error id [0-9a-f]{12}")

    async def test_a_response_that_is_not_json_costs_only_its_own_request(self) -> None:
        with LogCapture().installed() as logs:
            async with hub_and_consumer(ACTIONS) as (hub, _):
                requests = [hub.call("Unencodable", {"kind": "object"})]
                requests += [hub.call("Unencodable", {"kind": "surrogate"})]
                requests += [hub.call("Echo", {"message": str(n)}) for n in range(20)]
                async with asyncio.timeout(10):
                    answers = await asyncio.gather(*requests)
        broken, surrogate, *echoes = (answer.payload for answer in answers)
        self.assertEqual(broken["status_code"], 500)
        self.assertIn(broken["message"]["error_id"], logs.text())
        self.assertEqual(surrogate["status_code"], 200)
        self.assertEqual(surrogate["fields"], {"text": "\ud800", "big": 2**70})
        self.assertEqual(
            [payload["message"]["message"] for payload in echoes], [str(n) for n in range(20)]
        )

    async def test_post_through_the_http_front(self) -> None:
        async with hub_and_consumer(ACTIONS) as (hub, _), aiohttp.ClientSession() as session:
            body = {
                "service_id": hub.service_id,
                "action": "FormatAddress",
                "fields": {"recipient": "Ada", "address": {"street": "1 Main St", "city": "X"}},
            }
            async with session.post(hub.http_url + "/", json=body) as response:
                self.assertEqual(response.status, 200)
                answer = await response.json()
            self.assertEqual(answer, {"status": "success", "message": ["Ada", "1 Main St", "X"]})

    async def test_sync_action_in_a_thread(self) -> None:
        async with hub_and_consumer(ACTIONS) as (hub, _):
            status, body = await hub.request("BlockingSum", {"numbers": [1, 2, 3.5]})
            self.assertEqual((status, body["message"]), (200, 6.5))

    async def test_the_seed_signature_gets_the_connected_client_and_websocket(self) -> None:
        async with hub_and_consumer(ACTIONS) as (hub, _):
            answer = await hub.call("SeedEcho", {"message": "old"})
            self.assertEqual(answer.status, 200)
            self.assertEqual(answer.payload["fields"], {"message": "old", "connected": True})

    async def test_one_log_line_per_request_without_the_token(self) -> None:
        with LogCapture().installed() as logs:
            async with hub_and_consumer(ACTIONS) as (hub, consumer):
                await hub.request("Echo", {"message": "x"})
                token = next(iter(hub.tokens))
        request_lines = [line for line in logs.lines if line.startswith("INFO core.requests")]
        self.assertEqual(len(request_lines), 1)
        self.assertRegex(request_lines[0], r"action=Echo status=200 duration_ms=[\d.]+ ref=\S+")
        self.assertNotIn(token, logs.text())
        self.assertIn(token, consumer.client.connection_url())

    async def test_warns_when_the_url_nears_the_request_line_limit(self) -> None:
        class Wordy(ActionRunner):
            text: str = Field(description="x" * 9000)

            @classmethod
            def description(cls) -> str:
                return "An action with a very long field description"

            async def run(self, client: Any, websocket: Any) -> ActionResponse:
                return ActionResponse(status_code=200)

        with LogCapture().installed() as logs:
            async with LocalHub() as hub:
                consumer = start_consumer(hub, {"Wordy": Wordy})
                await wait_until(lambda: "connection URL is" in logs.text())
                await consumer.stop()
        self.assertIn("8,000 bytes", logs.text())


class ConcurrencyTest(unittest.IsolatedAsyncioTestCase):
    async def test_fifty_slow_requests_take_about_as_long_as_one(self) -> None:
        async with hub_and_consumer(ACTIONS) as (hub, _):
            started = time.perf_counter()
            results = await asyncio.gather(
                *(hub.request("Sleep", {"seconds": 0.5}) for _ in range(50))
            )
            elapsed = time.perf_counter() - started
        self.assertEqual([status for status, _ in results], [200] * 50)
        # Serially this would take 25 s; concurrently about 0.5 s (generous bound for CI).
        self.assertLess(elapsed, 5.0)

    async def test_two_replicas_share_the_load(self) -> None:
        async with LocalHub() as hub:
            first = start_consumer(hub, ACTIONS)
            second = start_consumer(hub, ACTIONS)
            await first.joined()
            await second.joined()
            await hub.wait_for_joined(2)
            await wait_until(lambda: first.client.num_consumers == 2)
            results = await asyncio.gather(*(hub.request("WhoAmI", {}) for _ in range(20)))
            answered_by = [body["message"] for _, body in results]
            self.assertEqual(
                sorted(set(answered_by)), sorted({id(first.client), id(second.client)})
            )
            self.assertEqual(answered_by.count(id(first.client)), 10)
            await first.stop()
            await second.stop()


class RefusalTest(unittest.IsolatedAsyncioTestCase):
    async def test_catalog_mismatch_is_refused_with_403_and_explained(self) -> None:
        with LogCapture().installed() as logs:
            async with hub_and_consumer(ACTIONS) as (hub, _):
                other = start_consumer(hub, {"Echo": FIXTURE_ACTIONS["Echo"]})
                await wait_until(lambda: "HTTP 403" in logs.text())
                self.assertFalse(other.client.joined)
                self.assertEqual(hub.joined_count(), 1)
                self.assertEqual(await other.stop(), 0)
        self.assertIn("catalog", logs.text())
        self.assertIn("TOKEN", logs.text())

    async def test_bad_token_is_refused_and_not_logged(self) -> None:
        with LogCapture().installed() as logs:
            async with LocalHub() as hub:
                consumer = start_consumer(hub, ACTIONS, token="wrong-token-value")
                await wait_until(lambda: "HTTP 403" in logs.text())
                await consumer.stop()
        self.assertNotIn("wrong-token-value", logs.text())


if __name__ == "__main__":
    unittest.main()
