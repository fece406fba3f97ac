"""What the local hub's tests share: a hub on a free port, raw consumer sockets, an HTTP client."""

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


class LocalHubTestCase(unittest.IsolatedAsyncioTestCase):
    """Drives the hub the way a consumer and an HTTP caller would; checks no secret is logged."""

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

    async def connect(
        self, url: str | None = None, *, origin: str | None = None, **url_options: Any
    ) -> ClientConnection:
        """Open a consumer socket (no client-side pings); closed after the test."""
        websocket = await connect(
            url or self.consumer_url(**url_options),
            ping_interval=None,
            proxy=None,
            open_timeout=RECV_TIMEOUT,
            close_timeout=1,
            additional_headers={"Origin": origin} if origin is not None else None,
        )
        self.addAsyncCleanup(websocket.close)
        return websocket

    async def refused_status(self, url: str, *, origin: str | None = None) -> tuple[int, bytes]:
        """Connect expecting a refused upgrade; return its status and body."""
        headers = {"Origin": origin} if origin is not None else None
        with self.assertRaises(InvalidStatus) as caught:
            websocket = await connect(
                url, proxy=None, open_timeout=RECV_TIMEOUT, additional_headers=headers
            )
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

    @staticmethod
    def frame(
        event: str, ref: str | None, *, topic: str = "service", join_ref: str | None = None
    ) -> dict[str, Any]:
        """A v1 frame with an empty payload (with ``join_ref`` only when given)."""
        message: dict[str, Any] = {"topic": topic, "event": event, "payload": {}, "ref": ref}
        if join_ref is not None:
            message["join_ref"] = join_ref
        return message

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
        self,
        body: Any,
        *,
        raw: str | None = None,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
        path: str = "/",
        method: str = "POST",
        params: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Send a request (POST / by default) to the hub; return the status and JSON body."""
        async with aiohttp.ClientSession() as session:
            data = raw if raw is not None else json.dumps(body)
            async with session.request(
                method,
                self.hub.http_url + path,
                data=data,
                params=params,
                headers={"Content-Type": content_type, **(headers or {})},
            ) as response:
                return response.status, await response.json()

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
