"""Tests for `core.dev.local_hub.hub`: who may connect, lifecycle, and the test hooks."""

from __future__ import annotations

import asyncio
import json
import unittest

from websockets.exceptions import ConnectionClosed

from core.dev.local_hub.hub import MISDIRECTED, LocalHub
from tests.core.dev.local_hub.harness import CATALOG, RECV_TIMEOUT, TOKEN, LocalHubTestCase


class LocalHubTest(LocalHubTestCase):
    """Through real sockets, as a consumer and an HTTP caller see it."""

    async def test_bad_token_is_refused_with_empty_403(self) -> None:
        status, body = await self.refused_status(self.consumer_url(token="wrong"))
        self.assertEqual((status, body), (403, b""))
        status, body = await self.refused_status(self.consumer_url(token=None))
        self.assertEqual((status, body), (403, b""))
        self.assertEqual(self.hub.connection_count(), 0)

    async def test_missing_actions_or_unsupported_vsn_is_403(self) -> None:
        status, body = await self.refused_status(self.consumer_url(catalog=None))
        self.assertEqual((status, body), (403, b""))
        status, body = await self.refused_status(self.consumer_url(vsn="3.0.0"))
        self.assertEqual((status, body), (403, b""))

    async def test_first_consumer_with_actions_not_json_is_accepted_and_its_join_crashes(
        self,
    ) -> None:
        for vsn in (None, "2.0.0"):
            for raw in ("{not json", "", "[1]", "null"):
                with self.subTest(vsn=vsn, actions=raw):
                    websocket = await self.connect(raw_actions=raw, vsn=vsn)
                    join = ["1", "1", "service", "phx_join", {}]
                    if vsn is None:
                        reply = await self.join(websocket)
                        payload = reply["payload"]
                    else:
                        await self.send(websocket, join)
                        payload = (await self.recv(websocket))[4]
                    self.assertEqual(
                        payload, {"status": "error", "response": {"reason": "join crashed"}}
                    )
                    self.assertEqual(self.hub.joined_count(), 0)
                    self.assertIsNone(self.hub.catalog)
                    await websocket.close()
                    await self.hub.wait_for_connections(0)

    async def test_actions_not_json_beside_a_joined_consumer_is_500(self) -> None:
        first = await self.connect()
        await self.join(first)
        for vsn in (None, "2.0.0"):
            with self.subTest(vsn=vsn):
                url = self.consumer_url(raw_actions="{not json", vsn=vsn)
                status, body = await self.refused_status(url)
                self.assertEqual(status, 500)
                self.assertEqual(json.loads(body), {"errors": {"detail": "Internal Server Error"}})
        # The serializer is chosen before the catalog is read: an unknown vsn is still 403.
        url = self.consumer_url(raw_actions="{not json", vsn="9")
        self.assertEqual((await self.refused_status(url))[0], 403)
        # Valid JSON that is not an object is just a different catalog.
        self.assertEqual((await self.refused_status(self.consumer_url(raw_actions="[1]")))[0], 403)

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

    async def test_catalog_is_registered_by_the_first_join_and_dropped_with_the_last(
        self,
    ) -> None:
        other = {"Other": {"description": "", "fields": {}}}
        first = await self.connect()
        self.assertIsNone(self.hub.catalog)  # connected is not joined: nothing registered
        second = await self.connect(catalog=other)
        await self.join(second)
        self.assertEqual(self.hub.catalog, other)
        # A consumer let in before the first join may still join with its own catalog.
        await self.join(first, ref="2")
        self.assertEqual((self.hub.joined_count(), self.hub.catalog), (2, other))
        await self.refused_status(self.consumer_url())

        await self.send(
            second, {"topic": "service", "event": "phx_leave", "payload": {}, "ref": "3"}
        )
        await self.hub.wait_for_joined(1)
        self.assertEqual(self.hub.catalog, other)  # still one joined: kept
        await first.close()
        await self.hub.wait_for_joined(0)
        self.assertIsNone(self.hub.catalog)
        self.assertEqual(self.hub.connection_count(), 1)  # second is still open
        await self.connect()  # any catalog again

    async def test_origin_must_name_localhost_or_the_hubs_host(self) -> None:
        port = self.hub.port
        for origin in ("http://localhost", f"http://localhost:{port}", "https://localhost:1"):
            with self.subTest(origin=origin):
                await self.connect(origin=origin)
        await self.connect(origin=f"http://127.0.0.1:{port}")  # the host the hub serves on
        await self.connect()  # no Origin header: not a browser, accepted
        for origin in (
            "http://evil.example",
            "http://LOCALHOST",
            "null",
            "garbage",
            "http://[::1]",
        ):
            with self.subTest(origin=origin):
                status, body = await self.refused_status(self.consumer_url(), origin=origin)
                self.assertEqual((status, body), (403, b""))
        hub = await self.start_hub(origin_hosts=["app.example"])
        await self.connect(self.consumer_url(hub), origin="https://app.example:8443")

    async def answer_to(self, hub: LocalHub, request: str) -> bytes:
        """Send `request` by hand and return the whole answer (the hub closes after it)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", hub.port)
        self.addCleanup(writer.close)
        writer.write(request.encode())
        await writer.drain()
        return await asyncio.wait_for(reader.read(), RECV_TIMEOUT)

    def post(self, host: str | None) -> str:
        """``POST /`` without parameters (the front answers 400), with `host` as Host."""
        host_line = "" if host is None else f"Host: {host}\r\n"
        return f"POST / HTTP/1.1\r\n{host_line}Content-Length: 0\r\nConnection: close\r\n\r\n"

    async def test_only_a_host_header_naming_this_machine_is_answered(self) -> None:
        port = self.hub.port
        answered = (
            "localhost",
            f"localhost:{port}",
            "LocalHost.",
            f"127.0.0.1:{port}",
            "127.0.0.2",
            f"[::1]:{port}",
            "[::1]",
        )
        for host in answered:
            with self.subTest(host=host):
                answer = await self.answer_to(self.hub, self.post(host))
                self.assertTrue(answer.startswith(b"HTTP/1.1 400 "), answer[:80])
        # What a page on attacker.example sends once the name points at 127.0.0.1.
        refused = (
            "attacker.example",
            f"attacker.example:{port}",
            "localhost.attacker.example",
            "127.0.0.1.nip.io",
            "0.0.0.0",
            "[::1]x",
            "localhost:x",
            "[::1]:80:1",
            "",
        )
        for host in refused:
            with self.subTest(host=host):
                answer = await self.answer_to(self.hub, self.post(host))
                self.assertTrue(answer.startswith(b"HTTP/1.1 421 Misdirected Request"), answer)
                self.assertTrue(answer.endswith(b"\r\n\r\n" + MISDIRECTED.encode()), answer)
        no_host = await self.answer_to(self.hub, self.post(None).replace("HTTP/1.1", "HTTP/1.0"))
        self.assertTrue(no_host.startswith(b"HTTP/1.0 421 "), no_host[:80])
        # The consumer socket too: a page could otherwise open one in a developer's name.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        self.addCleanup(writer.close)
        writer.write(
            f"GET /websocket?token={TOKEN} HTTP/1.1\r\nHost: attacker.example:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode()
        )
        upgrade = await asyncio.wait_for(reader.readline(), RECV_TIMEOUT)
        self.assertEqual(upgrade, b"HTTP/1.1 421 Misdirected Request\r\n")
        self.assertEqual(self.hub.connection_count(), 0)

    async def test_hosts_allowed_explicitly_and_the_bound_address(self) -> None:
        hub = await self.start_hub(host="0.0.0.0", allowed_hosts=["hub", "Py-Service.test."])
        for host in ("hub", "hub:4000", "py-service.test", "localhost"):
            with self.subTest(host=host):
                answer = await self.answer_to(hub, self.post(host))
                self.assertTrue(answer.startswith(b"HTTP/1.1 400 "), answer[:80])
        for host in ("0.0.0.0", "0.0.0.0:4000", "hub.example"):  # every interface names none
            with self.subTest(host=host):
                answer = await self.answer_to(hub, self.post(host))
                self.assertTrue(answer.startswith(b"HTTP/1.1 421 "), answer[:80])

    async def status_line(self, target: str) -> bytes:
        """Send ``GET target`` by hand and return the status line of the answer."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.hub.port)
        self.addCleanup(writer.close)
        writer.write(f"GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), RECV_TIMEOUT)

    async def test_overlong_request_line_is_414_without_logging_the_token(self) -> None:
        # Bandit's limit: 10,000 bytes with the CRLF, so 9,998 without ("GET ", " HTTP/1.1").
        longest = "/websocket?token=local-dev-token&actions=" + "x" * (9_998 - 13 - 41)
        self.assertEqual(len(f"GET {longest} HTTP/1.1"), 9_998)
        self.assertNotIn(b" 414 ", await self.status_line(longest))
        self.assertIn(b" 414 ", await self.status_line(longest + "x"))
        url = self.consumer_url(catalog={"A": "x" * 50_000})
        target = url.removeprefix(self.hub.websocket_url.removesuffix("/websocket"))
        self.assertIn(b" 414 ", await self.status_line(target))
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
