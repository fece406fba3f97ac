"""Tests for `core.dev.local_hub.hub`: who may connect, lifecycle, and the test hooks."""

from __future__ import annotations

import asyncio
import json
import unittest

from websockets.exceptions import ConnectionClosed

from tests.core.dev.local_hub.harness import CATALOG, RECV_TIMEOUT, LocalHubTestCase


class LocalHubTest(LocalHubTestCase):
    """Through real sockets, as a consumer and an HTTP caller see it."""

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

    async def test_service_and_token_pushes(self) -> None:
        websocket = await self.connect()
        await self.join(websocket)

        await self.hub.push_service_updated(name="renamed")
        push = await self.recv(websocket)
        self.assertEqual(push["event"], "service_updated")
        self.assertEqual(push["payload"]["service"]["name"], "renamed")
        self.assertEqual(push["payload"]["service"]["id"], 1)

        token = await self.hub.create_token()
        self.secrets.add(token["value"])
        push = await self.recv(websocket)
        self.assertEqual((push["event"], push["payload"]["token"]), ("token_created", token))
        self.assertEqual((token["id"], token["service_id"]), (2, 1))  # after the first token
        self.assertIn(token["value"], self.hub.tokens)
        await self.connect(token=token["value"])

        await self.hub.delete_token(token["id"])
        push = await self.recv(websocket)
        self.assertEqual(push["event"], "token_deleted")
        self.assertNotIn("value", push["payload"]["token"])
        self.assertEqual(push["payload"]["token"]["id"], 2)
        status, _ = await self.refused_status(self.consumer_url(token=token["value"]))
        self.assertEqual(status, 403)
        again = self.hub.accept_token(token["value"])
        self.assertEqual((again["value"], again["id"]), (token["value"], 3))
        await self.connect(token=token["value"])  # accepted again, without a push
        await self.hub.delete_token(token["value"])
        self.assertEqual((await self.recv(websocket))["event"], "token_deleted")

        await self.hub.push_service_deleted()
        push = await self.recv(websocket)
        self.assertEqual((push["event"], push["payload"]["service"]["id"]), ("service_deleted", 1))
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
