"""Tests for `core.local_hub`: a raw WebSocket client and an HTTP client against a real socket."""

from __future__ import annotations

import asyncio
import json
import logging
import unittest
from typing import Any
from urllib.parse import urlencode

import aiohttp
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from core.dev.local_hub.hub import LocalHub

CATALOG: dict[str, Any] = {
    "Echo": {
        "description": "Echo the fields back",
        "fields": {"text": {"type": "string", "description": "The text"}},
    }
}
TOKEN = "local-dev-token"
RECV_TIMEOUT = 2.0


class _ListHandler(logging.Handler):
    """Collects log records in a list."""

    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class LocalHubTest(unittest.IsolatedAsyncioTestCase):
    """Drives the hub the way a consumer and an HTTP caller would."""

    async def asyncSetUp(self) -> None:
        self.secrets = {TOKEN}
        self.capture_hub_logs()
        self.hub = await self.start_hub()

    def capture_hub_logs(self) -> None:
        """Keep the hub's log lines (quietly) and check after the test that no secret leaked."""
        records: list[logging.LogRecord] = []
        hub_logger = logging.getLogger("core.local_hub")
        handler = _ListHandler(records)
        saved = hub_logger.level, hub_logger.propagate
        hub_logger.addHandler(handler)
        hub_logger.setLevel(logging.DEBUG)
        hub_logger.propagate = False

        def check_and_restore() -> None:
            hub_logger.removeHandler(handler)
            hub_logger.setLevel(saved[0])
            hub_logger.propagate = saved[1]
            for record in records:
                line = logging.Formatter().format(record)  # with any traceback
                for secret in self.secrets:
                    self.assertNotIn(secret, line, "a secret was logged")

        self.addCleanup(check_and_restore)

    async def start_hub(self, **options: Any) -> LocalHub:
        """Start a hub on a free port; it is stopped after the test (after its sockets)."""
        hub = LocalHub(**options)
        await hub.start()
        self.addAsyncCleanup(hub.stop)
        return hub

    def consumer_url(
        self,
        hub: LocalHub | None = None,
        *,
        token: str | None = TOKEN,
        catalog: Any = CATALOG,
        raw_actions: str | None = None,
        vsn: str | None = None,
    ) -> str:
        """The consumer socket URL with the given query parameters (None leaves one out)."""
        params: dict[str, str] = {}
        if token is not None:
            params["token"] = token
        if raw_actions is not None:
            params["actions"] = raw_actions
        elif catalog is not None:
            params["actions"] = json.dumps(catalog, separators=(",", ":"))
        if vsn is not None:
            params["vsn"] = vsn
        return f"{(hub or self.hub).websocket_url}?{urlencode(params)}"

    async def connect(self, url: str | None = None, **url_options: Any) -> ClientConnection:
        """Open a consumer socket (no client-side pings); closed after the test."""
        websocket = await connect(
            url or self.consumer_url(**url_options),
            ping_interval=None,
            proxy=None,
            open_timeout=RECV_TIMEOUT,
            close_timeout=1,
        )
        self.addAsyncCleanup(websocket.close)
        return websocket

    async def refused_status(self, url: str) -> tuple[int, bytes]:
        """Connect expecting a refused upgrade; return its status and body."""
        with self.assertRaises(InvalidStatus) as caught:
            websocket = await connect(url, proxy=None, open_timeout=RECV_TIMEOUT)
            self.addAsyncCleanup(websocket.close)
        response = caught.exception.response
        return response.status_code, bytes(response.body or b"")

    @staticmethod
    async def send(websocket: ClientConnection, message: Any) -> None:
        await websocket.send(json.dumps(message))

    @staticmethod
    async def recv(websocket: ClientConnection) -> Any:
        frame = await asyncio.wait_for(websocket.recv(), RECV_TIMEOUT)
        return json.loads(frame)

    async def join(self, websocket: ClientConnection, ref: str = "1") -> dict[str, Any]:
        """Join the service topic (v1) and return the reply."""
        await self.send(
            websocket, {"topic": "service", "event": "phx_join", "payload": {}, "ref": ref}
        )
        reply: dict[str, Any] = await self.recv(websocket)
        self.assertEqual(reply["event"], "phx_reply")
        self.assertEqual(reply["ref"], ref)
        return reply

    async def assert_closed_with(self, websocket: ClientConnection, code: int) -> None:
        """Read until the hub closes the socket and check the close code."""
        with self.assertRaises(ConnectionClosed) as caught:
            while True:
                await asyncio.wait_for(websocket.recv(), RECV_TIMEOUT)
        self.assertIsNotNone(caught.exception.rcvd)
        assert caught.exception.rcvd is not None
        self.assertEqual(caught.exception.rcvd.code, code)

    async def post(
        self, body: Any, *, raw: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """POST / on the hub; return the status and decoded JSON body."""
        async with aiohttp.ClientSession() as session:
            data = raw if raw is not None else json.dumps(body)
            async with session.post(
                self.hub.http_url + "/",
                data=data,
                headers={"Content-Type": "application/json", **(headers or {})},
            ) as response:
                return response.status, await response.json()

    # ------------------------------------------------------------ connecting

    async def test_bad_token_is_refused_with_empty_403(self) -> None:
        status, body = await self.refused_status(self.consumer_url(token="wrong"))
        self.assertEqual((status, body), (403, b""))
        status, body = await self.refused_status(self.consumer_url(token=None))
        self.assertEqual((status, body), (403, b""))
        self.assertEqual(self.hub.connection_count(), 0)

    async def test_missing_actions_is_403_and_invalid_json_is_500(self) -> None:
        status, _ = await self.refused_status(self.consumer_url(catalog=None))
        self.assertEqual(status, 403)
        status, _ = await self.refused_status(self.consumer_url(raw_actions="{not json"))
        self.assertEqual(status, 500)

    async def test_catalog_mismatch_is_refused_and_matching_catalog_accepted(self) -> None:
        first = await self.connect()
        await self.join(first)
        self.assertEqual(self.hub.catalog, CATALOG)

        other = {"Other": {"description": "", "fields": {}}}
        status, body = await self.refused_status(self.consumer_url(catalog=other))
        self.assertEqual((status, body), (403, b""))

        # Same catalog, different key order and spacing: equal once decoded.
        reordered = json.dumps(
            {"Echo": {"fields": CATALOG["Echo"]["fields"], "description": "Echo the fields back"}},
            indent=1,
        )
        second = await self.connect(self.consumer_url(raw_actions=reordered))
        await self.join(second, ref="7")
        self.assertEqual(self.hub.joined_count(), 2)

    async def test_catalog_is_dropped_after_the_last_consumer(self) -> None:
        websocket = await self.connect()
        await websocket.close()
        await self.hub.wait_for_connections(0)
        self.assertIsNone(self.hub.catalog)
        other = {"Other": {"description": "", "fields": {}}}
        await self.connect(catalog=other)
        self.assertEqual(self.hub.catalog, other)

    async def test_overlong_url_is_refused_without_logging_the_token(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.hub.port)
        self.addCleanup(writer.close)
        url = self.consumer_url(catalog={"A": "x" * 11_000})
        target = url.removeprefix(self.hub.websocket_url.removesuffix("/websocket"))
        writer.write(f"GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), RECV_TIMEOUT)
        self.assertIn(b" 400 ", status_line)
        self.assertEqual(self.hub.connection_count(), 0)

    # ------------------------------------------------------------ channel

    async def test_join_reply_shape(self) -> None:
        websocket = await self.connect()
        reply = await self.join(websocket)
        self.assertEqual(reply["topic"], "service")
        self.assertNotIn("join_ref", reply)  # v1 never carries join_ref
        self.assertEqual(reply["payload"]["status"], "ok")
        response = reply["payload"]["response"]
        self.assertEqual(set(response), {"service", "token", "num_consumers"})
        self.assertEqual(set(response["service"]), {"id", "name", "inserted_at", "updated_at"})
        self.assertEqual(response["service"]["id"], self.hub.service_id)
        self.assertEqual(
            set(response["token"]), {"id", "context", "service_id", "inserted_at", "expires_at"}
        )
        self.assertNotIn(TOKEN, json.dumps(reply))
        self.assertEqual(response["num_consumers"], 1)
        self.assertEqual(self.hub.joined_count(), 1)

    async def test_heartbeat_reply_and_disabled_heartbeats(self) -> None:
        websocket = await self.connect()
        heartbeat = {"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "5"}
        await self.send(websocket, heartbeat)
        self.assertEqual(
            await self.recv(websocket),
            {
                "topic": "phoenix",
                "event": "phx_reply",
                "payload": {"status": "ok", "response": {}},
                "ref": "5",
            },
        )
        self.hub.answer_heartbeats = False
        await self.send(websocket, {**heartbeat, "ref": "6"})
        with self.assertRaises(TimeoutError):
            await asyncio.wait_for(websocket.recv(), 0.3)
        self.assertEqual(self.hub.connection_count(), 1)

    async def test_unmatched_topic(self) -> None:
        websocket = await self.connect()
        await self.send(
            websocket, {"topic": "room:1", "event": "phx_join", "payload": {}, "ref": "1"}
        )
        unmatched = {"status": "error", "response": {"reason": "unmatched topic"}}
        reply = await self.recv(websocket)
        self.assertEqual((reply["topic"], reply["ref"]), ("room:1", "1"))
        self.assertEqual(reply["payload"], unmatched)
        # A message on "service" before joining it is unmatched too.
        await self.send(
            websocket, {"topic": "service", "event": "response", "payload": {}, "ref": "2"}
        )
        reply = await self.recv(websocket)
        self.assertEqual((reply["ref"], reply["payload"]), ("2", unmatched))

    async def test_illegal_event_gets_phx_error_and_leaves_rotation(self) -> None:
        watcher = await self.connect()
        await self.join(watcher, ref="1")
        websocket = await self.connect()
        await self.join(websocket, ref="3")
        self.assertEqual((await self.recv(watcher))["payload"], {"num_consumers": 2})

        await self.send(websocket, {"topic": "service", "event": "ping", "payload": {}, "ref": "4"})
        error = await self.recv(websocket)
        self.assertEqual(
            error, {"topic": "service", "event": "phx_error", "payload": {}, "ref": "3"}
        )
        await self.hub.wait_for_joined(1)
        # The leave is announced twice to the others.
        self.assertEqual((await self.recv(watcher))["payload"], {"num_consumers": 1})
        self.assertEqual((await self.recv(watcher))["payload"], {"num_consumers": 1})
        # The socket stays open and may rejoin.
        reply = await self.join(websocket, ref="5")
        self.assertEqual(reply["payload"]["response"]["num_consumers"], 2)

    async def test_leave_and_duplicate_join(self) -> None:
        websocket = await self.connect()
        await self.join(websocket, ref="1")
        # Joining again closes the first join.
        await self.send(
            websocket, {"topic": "service", "event": "phx_join", "payload": {}, "ref": "2"}
        )
        close = await self.recv(websocket)
        self.assertEqual((close["event"], close["ref"]), ("phx_close", "1"))
        reply = await self.recv(websocket)
        self.assertEqual((reply["event"], reply["ref"]), ("phx_reply", "2"))
        self.assertEqual(reply["payload"]["status"], "ok")

        await self.send(
            websocket, {"topic": "service", "event": "phx_leave", "payload": {}, "ref": "3"}
        )
        reply = await self.recv(websocket)
        self.assertEqual(
            (reply["event"], reply["ref"], reply["payload"]["status"]), ("phx_reply", "3", "ok")
        )
        close = await self.recv(websocket)
        self.assertEqual((close["event"], close["ref"]), ("phx_close", "2"))
        self.assertEqual(self.hub.joined_count(), 0)
        self.assertEqual(self.hub.connection_count(), 1)

    async def test_garbage_frames_close_with_1011(self) -> None:
        for frame in (
            "not json",
            '{"topic": "service"}',
            '[null, "1", "phoenix", "heartbeat", {}]',
        ):
            with self.subTest(frame=frame):
                websocket = await self.connect()
                await websocket.send(frame)
                await self.assert_closed_with(websocket, 1011)
        websocket = await self.connect()
        await websocket.send(b"\x00\x01")
        await self.assert_closed_with(websocket, 1011)
        websocket = await self.connect(vsn="2.0.0")
        await self.send(
            websocket, {"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "1"}
        )
        await self.assert_closed_with(websocket, 1011)

    async def test_num_consumers_pushes(self) -> None:
        first = await self.connect()
        await self.join(first)
        second = await self.connect()
        reply = await self.join(second)
        self.assertEqual(reply["payload"]["response"]["num_consumers"], 2)
        push = await self.recv(first)
        self.assertEqual(
            push,
            {
                "topic": "service",
                "event": "num_consumers",
                "payload": {"num_consumers": 2},
                "ref": None,
            },
        )
        # The joining consumer gets no push for its own join.
        with self.assertRaises(TimeoutError):
            await asyncio.wait_for(second.recv(), 0.2)
        await second.close()
        self.assertEqual((await self.recv(first))["payload"], {"num_consumers": 1})
        self.assertEqual((await self.recv(first))["payload"], {"num_consumers": 1})

    async def test_v2_framing(self) -> None:
        websocket = await self.connect(vsn="2.0.0")
        await websocket.send(json.dumps(["9", "9", "service", "phx_join", {}]))
        join_ref, ref, topic, event, payload = await self.recv(websocket)
        self.assertEqual((join_ref, ref, topic, event), ("9", "9", "service", "phx_reply"))
        self.assertEqual(payload["status"], "ok")
        await websocket.send(json.dumps([None, "10", "phoenix", "heartbeat", {}]))
        self.assertEqual(
            await self.recv(websocket),
            [None, "10", "phoenix", "phx_reply", {"status": "ok", "response": {}}],
        )

        call = asyncio.create_task(self.hub.request("Echo", {"text": "hi"}))
        join_ref, ref, topic, event, request = await self.recv(websocket)
        self.assertEqual((join_ref, ref, topic, event), ("9", None, "service", "request"))
        answer = {"status": "success", "status_code": 200, "message": None, "fields": "hi"}
        await websocket.send(
            json.dumps(["9", request["response_ref"], "service", "response", answer])
        )
        self.assertEqual((await call)[0], 200)

    async def test_idle_timeout_closes_with_1002(self) -> None:
        hub = await self.start_hub(idle_timeout=0.3)
        websocket = await self.connect(self.consumer_url(hub))
        await asyncio.sleep(0.2)
        await self.send(
            websocket, {"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "1"}
        )
        await self.recv(websocket)  # the frame reset the timer: still open after 0.3 s total
        await self.assert_closed_with(websocket, 1002)

    async def test_stop_closes_with_1012(self) -> None:
        websocket = await self.connect()
        await self.join(websocket)
        await self.hub.stop()
        await self.assert_closed_with(websocket, 1012)

    async def test_forced_disconnect_and_drop(self) -> None:
        websocket = await self.connect()
        await self.hub.close_connections(1011)
        await self.assert_closed_with(websocket, 1011)
        websocket = await self.connect()
        await self.join(websocket)
        await self.hub.drop_connections()
        with self.assertRaises(ConnectionClosed) as caught:
            await asyncio.wait_for(websocket.recv(), RECV_TIMEOUT)
        self.assertIsNone(caught.exception.rcvd)  # no close frame
        self.assertEqual((self.hub.joined_count(), self.hub.connection_count()), (0, 0))

    # ------------------------------------------------------------ requests

    async def answer_one(self, websocket: ClientConnection, answer: dict[str, Any]) -> Any:
        """Read one request push, answer it with `answer`, return the request payload."""
        push = await self.recv(websocket)
        self.assertEqual((push["topic"], push["event"], push["ref"]), ("service", "request", None))
        request = push["payload"]
        await self.send(
            websocket,
            {
                "topic": "service",
                "event": "response",
                "payload": answer,
                "ref": request["response_ref"],
            },
        )
        return request

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

    async def test_round_robin_and_response_from_any_socket(self) -> None:
        first = await self.connect()
        await self.join(first)
        second = await self.connect()
        await self.join(second)
        await self.recv(first)  # num_consumers 2

        calls = [asyncio.create_task(self.hub.request("Echo", {"n": n})) for n in range(4)]
        pushes_first = [await self.recv(first), await self.recv(first)]
        pushes_second = [await self.recv(second), await self.recv(second)]
        self.assertEqual([p["payload"]["fields"]["n"] for p in pushes_first], [0, 2])
        self.assertEqual([p["payload"]["fields"]["n"] for p in pushes_second], [1, 3])

        # Responses are routed by ref, whichever socket sends them.
        for push in pushes_first + pushes_second:
            n = push["payload"]["fields"]["n"]
            await self.send(
                second,
                {
                    "topic": "service",
                    "event": "response",
                    "ref": push["payload"]["response_ref"],
                    "payload": {"status": "success", "message": None, "fields": n},
                },
            )
        results = await asyncio.gather(*calls)
        self.assertEqual([body["fields"] for _, body in results], [0, 1, 2, 3])

    async def test_max_in_flight_queues_requests(self) -> None:
        self.hub = await self.start_hub(max_in_flight=1)
        websocket = await self.connect()
        await self.join(websocket)
        calls = [asyncio.create_task(self.hub.request("Echo", {"n": n})) for n in range(2)]
        first = await self.answer_one(websocket, {"status": "success", "message": None})
        second = await self.answer_one(websocket, {"status": "success", "message": None})
        self.assertEqual((first["fields"], second["fields"]), ({"n": 0}, {"n": 1}))
        self.assertEqual([status for status, _ in await asyncio.gather(*calls)], [200, 200])

    # ------------------------------------------------------------ test hooks

    async def test_service_and_token_pushes(self) -> None:
        websocket = await self.connect()
        await self.join(websocket)

        await self.hub.push_service_updated(name="renamed")
        push = await self.recv(websocket)
        self.assertEqual(push["event"], "service_updated")
        self.assertEqual(push["payload"]["service"]["name"], "renamed")

        token = await self.hub.create_token()
        self.secrets.add(token["value"])
        push = await self.recv(websocket)
        self.assertEqual((push["event"], push["payload"]["token"]), ("token_created", token))
        self.assertIn(token["value"], self.hub.tokens)
        await self.connect(token=token["value"])

        await self.hub.delete_token(token["id"])
        push = await self.recv(websocket)
        self.assertEqual(push["event"], "token_deleted")
        self.assertNotIn("value", push["payload"]["token"])
        status, _ = await self.refused_status(self.consumer_url(token=token["value"]))
        self.assertEqual(status, 403)
        self.assertEqual(self.hub.accept_token(token["value"])["value"], token["value"])
        await self.connect(token=token["value"])  # accepted again, without a push
        await self.hub.delete_token(token["value"])
        self.assertEqual((await self.recv(websocket))["event"], "token_deleted")

        await self.hub.push_service_deleted()
        push = await self.recv(websocket)
        self.assertEqual(push["event"], "service_deleted")
        status, _ = await self.refused_status(self.consumer_url())
        self.assertEqual(status, 403)

    async def test_received_and_send_raw(self) -> None:
        websocket = await self.connect()
        await self.join(websocket, ref="42")
        connection_id, message = self.hub.received[-1]
        self.assertEqual((message.event, message.ref), ("phx_join", "42"))
        self.assertIsInstance(connection_id, int)
        await self.hub.send_raw("hello")
        self.assertEqual(await asyncio.wait_for(websocket.recv(), RECV_TIMEOUT), "hello")


if __name__ == "__main__":
    unittest.main()
