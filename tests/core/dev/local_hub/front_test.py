"""Tests for `core.dev.local_hub.front`: POST / and the status codes it answers with."""

from __future__ import annotations

import asyncio
import unittest

from tests.core.dev.local_hub.harness import LocalHubTestCase


class HttpFrontTest(LocalHubTestCase):
    """Through real sockets, as a consumer and an HTTP caller see it."""

    async def test_round_trip_via_post(self) -> None:
        websocket = await self.connect()
        await self.join(websocket)
        body = {"service_id": self.hub.service_id, "action": "Echo", "fields": {"text": "hi"}}
        call = asyncio.create_task(self.post(body))
        answer = {"status": "success", "status_code": 201, "message": "made", "fields": ["x"]}
        request = await self.answer_one(websocket, answer)
        self.assertEqual((request["action"], request["fields"]), ("Echo", {"text": "hi"}))
        self.assertEqual(
            await call,
            (200, {"status": "success", "message": "made", "status_code": 201, "fields": ["x"]}),
        )

    async def test_round_trip_via_request_and_error_mapping(self) -> None:
        websocket = await self.connect()
        await self.join(websocket)
        call = asyncio.create_task(self.hub.request("Echo", {}))
        await self.answer_one(
            websocket, {"status": "error", "status_code": 404, "message": "no", "fields": None}
        )
        status, body = await call
        self.assertEqual((status, body["status"], body["status_code"]), (400, "error", 404))

        call = asyncio.create_task(self.hub.request("Echo", {}))
        await self.answer_one(websocket, {"unexpected": True})
        self.assertEqual(
            await call,
            (502, {"status": "error", "message": "Invalid response format from service process"}),
        )

        # A response for an unknown ref is ignored, and the socket stays usable.
        await self.send(
            websocket, {"topic": "service", "event": "response", "payload": {}, "ref": "nope"}
        )
        call = asyncio.create_task(self.hub.request("Echo", {}))
        await self.answer_one(websocket, {"status": "success", "message": None})
        self.assertEqual((await call)[0], 200)

    async def test_service_id_is_the_number_or_its_decimal_string(self) -> None:
        websocket = await self.connect()
        await self.join(websocket)
        for service_id in (1, "1"):
            with self.subTest(service_id=service_id):
                body = {"service_id": service_id, "action": "Echo", "fields": {}}
                call = asyncio.create_task(self.post(body))
                await self.answer_one(websocket, {"status": "success", "message": "ok"})
                self.assertEqual((await call)[0], 200)
        # The real hub matches the id's text exactly: no other spelling reaches the service.
        for service_id in ("01", 1.0, " 1", True, None, 2, "abc"):
            with self.subTest(service_id=service_id):
                body = {"service_id": service_id, "action": "Echo", "fields": {}}
                self.assertEqual((await self.post(body))[0], 422)

    async def test_http_validation_and_no_consumer(self) -> None:
        status, body = await self.post({"action": "Echo"})
        self.assertEqual(
            (status, body),
            (
                400,
                {
                    "status": "error",
                    "message": "service_id, action and fields parameters are required",
                },
            ),
        )
        status, _ = await self.post(None, raw="{oops")
        self.assertEqual(status, 400)
        status, body = await self.post(
            {"service_id": self.hub.service_id, "action": "Echo", "fields": {}}
        )
        self.assertEqual((status, body["status"]), (422, "error"))
        status, _ = await self.post({"service_id": "unknown", "action": "Echo", "fields": {}})
        self.assertEqual(status, 422)

    async def test_api_token_is_checked_when_configured(self) -> None:
        self.hub = await self.start_hub(api_token="secret-api")
        self.secrets.add("secret-api")
        body = {"service_id": self.hub.service_id, "action": "Echo", "fields": {}}
        status, answer = await self.post(body)
        self.assertEqual((status, answer["status"]), (401, "error"))
        status, _ = await self.post(body, headers={"Authorization": "Bearer wrong"})
        self.assertEqual(status, 401)
        status, _ = await self.post(body, headers={"Authorization": "Bearer secret-api"})
        self.assertEqual(status, 422)  # authorised; no consumer joined

    async def test_request_timeout_is_408(self) -> None:
        self.hub = await self.start_hub(request_timeout=0.2)
        websocket = await self.connect()
        await self.join(websocket)
        body = {"service_id": self.hub.service_id, "action": "Echo", "fields": {}}
        status, answer = await self.post(body)
        self.assertEqual(
            (status, answer), (408, {"status": "error", "message": "Request timed out"})
        )
        push = await self.recv(websocket)  # the request was pushed, just never answered
        self.assertEqual(push["event"], "request")


if __name__ == "__main__":
    unittest.main()
