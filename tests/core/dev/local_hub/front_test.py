"""Tests for `core.dev.local_hub.front`: POST / and the status codes it answers with."""

from __future__ import annotations

import asyncio
import unittest
from typing import Any

from tests.core.dev.local_hub.harness import LocalHubTestCase

# The real hub's words (checked against the Phoenix hub; the contract test compares them).
MISSING_PARAMS = "service_id, action and fields parameters are required"
NO_CONSUMERS = "No service consumers are available to handle the request"


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
        # Production's body: status and message only, whatever else the payload holds.
        self.assertEqual(await call, (200, {"status": "success", "message": "made"}))

    async def test_round_trip_via_request_and_error_mapping(self) -> None:
        websocket = await self.connect()
        await self.join(websocket)
        call = asyncio.create_task(self.hub.call("Echo", {}))
        payload = {"status": "error", "status_code": 404, "message": "no", "fields": None}
        await self.answer_one(websocket, payload)
        answer = await call
        self.assertEqual((answer.status, answer.body), (400, {"status": "error", "message": "no"}))
        # In-process callers (tests, the call command) get the consumer's payload too.
        self.assertEqual(answer.payload, payload)

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
                body: dict[str, Any] = {"service_id": service_id, "action": "Echo", "fields": {}}
                call = asyncio.create_task(self.post(body))
                await self.answer_one(websocket, {"status": "success", "message": "ok"})
                self.assertEqual((await call)[0], 200)
        # The real hub matches the id's text exactly: no other spelling reaches the service.
        for spelling in ("01", 1.0, " 1", True, None, 2, "abc"):
            with self.subTest(service_id=spelling):
                other: dict[str, Any] = {"service_id": spelling, "action": "Echo", "fields": {}}
                self.assertEqual((await self.post(other))[0], 422)

    async def test_missing_parameters_and_bodies_that_are_not_json(self) -> None:
        missing = (400, {"status": "error", "message": MISSING_PARAMS})
        for body in ({"action": "Echo"}, {"service_id": 1, "action": "Echo"}, {}, [1], "x"):
            with self.subTest(body=body):
                self.assertEqual(await self.post(body), missing)
        self.assertEqual(await self.post(None, raw=""), missing)
        # Phoenix's parser reads JSON only when the content type says so.
        complete = {"service_id": 1, "action": "Echo", "fields": {}}
        self.assertEqual(await self.post(complete, content_type="text/plain"), missing)
        self.assertEqual(
            await self.post(None, raw="{oops"), (400, {"errors": {"detail": "Bad Request"}})
        )

    async def test_parameters_from_the_query_string_and_a_form(self) -> None:
        websocket = await self.connect()
        await self.join(websocket)
        query = {"service_id": "1", "action": "Echo", "fields": "x"}
        call = asyncio.create_task(self.post(None, raw="", params=query))
        request = await self.answer_one(websocket, {"status": "success", "message": "q"})
        self.assertEqual((request["action"], request["fields"]), ("Echo", "x"))
        self.assertEqual((await call)[0], 200)
        # The body wins over the query string.
        form = "service_id=1&action=Form&fields=y"
        call = asyncio.create_task(
            self.post(
                None,
                raw=form,
                params={"action": "Query"},
                content_type="application/x-www-form-urlencoded",
            )
        )
        request = await self.answer_one(websocket, {"status": "success", "message": "f"})
        self.assertEqual((request["action"], request["fields"]), ("Form", "y"))
        self.assertEqual((await call)[0], 200)
        # Null values count as given.
        call = asyncio.create_task(self.post({"service_id": 1, "action": None, "fields": None}))
        request = await self.answer_one(websocket, {"status": "success", "message": None})
        self.assertEqual((request["action"], request["fields"]), (None, None))
        self.assertEqual((await call)[0], 200)

    async def test_no_consumer_or_unknown_service_is_422(self) -> None:
        no_consumer = (422, {"status": "error", "message": NO_CONSUMERS})
        body = {"service_id": self.hub.service_id, "action": "Echo", "fields": {}}
        self.assertEqual(await self.post(body), no_consumer)
        self.assertEqual(await self.post({**body, "service_id": 2}), no_consumer)
        websocket = await self.connect()
        await self.join(websocket)
        self.assertEqual(await self.post({**body, "service_id": "unknown"}), no_consumer)

    async def test_other_routes_are_404(self) -> None:
        not_found = (404, {"errors": {"detail": "Not Found"}})
        self.assertEqual(await self.post(None, raw="", method="GET"), not_found)
        self.assertEqual(await self.post({}, path="/other"), not_found)

    async def test_api_token_is_checked_when_configured(self) -> None:
        self.hub = await self.start_hub(api_token="secret-api")
        self.secrets.add("secret-api")
        body = {"service_id": self.hub.service_id, "action": "Echo", "fields": {}}
        unauthorised = (401, {"status": "error", "message": "Invalid or missing API token"})
        self.assertEqual(await self.post(body), unauthorised)
        self.assertEqual(
            await self.post(body, headers={"Authorization": "Bearer wrong"}), unauthorised
        )
        # Checked before the parameters, as a plug in front of the controller is.
        self.assertEqual(await self.post({}), unauthorised)
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
