"""The local hub against the real one: the same frames to both, the same answers back.

Each scenario runs once against the real Phoenix hub (``../shared/phoenix-hub``, see
`tests.support_phoenix`) and once against `LocalHub`, through raw ``websockets`` and
``aiohttp`` connections (not our client), in both serializers where a socket is involved.
What comes back is compared after `normalize` sets aside what legitimately differs: ids
(only their type is kept), timestamps (their format is checked) and the hub's own refs.

A step that expects no answer is followed by a heartbeat, and what arrives before its reply
is the answer (both hubs handle one socket's frames in order), so no test waits on a timer.

The HTTP front's answers are compared byte for byte (status, content type and body), for
raw payloads and for the service's own answers (`ServiceAnswersTest`: the service's client
against each hub, its invalid fields, unknown action and failure). The 408 is compared too,
with both hubs waiting at once so that the real hub's 30 s are paid once.

Not compared here (too slow or not reachable from outside): the 1002 after 60 s of silence,
and a well-formed v2 binary push (see `LocalHub`'s notes).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import unittest
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

import aiohttp
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from core import ActionRunner, Context
from core.dev.local_hub.hub import LocalHub
from core.hub.client import PlugboardClient
from tests.support import EVENTS, FIXTURE_ACTIONS, Consumer, fast_settings
from tests.support_phoenix import PhoenixHub, skip_without_phoenix_hub

TOKEN = "contract-token"
SERVICE_NAME = "contract"
CATALOG = {"Echo": {"description": "Echo the fields back", "fields": {}}}
OTHER_CATALOG = {"Other": {"description": "Something else", "fields": {}}}
RECV_TIMEOUT = 5.0
V1, V2 = None, "2.0.0"

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def normalize(value: Any, key: str | None = None) -> Any:
    """`value` with ids, timestamps and hub-made refs replaced by what they must look like."""
    if isinstance(value, dict):
        return {k: normalize(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(item) for item in value]
    if key in ("inserted_at", "updated_at", "expires_at"):
        return "<timestamp>" if isinstance(value, str) and TIMESTAMP.match(value) else value
    if key == "response_ref":
        return "<uuid>" if isinstance(value, str) and UUID.match(value) else value
    if key in ("id", "service_id") and type(value) is int:
        return "<int>"
    if key == "value" and isinstance(value, str):  # a new token's secret
        return "<token>"
    return value


@dataclass
class Target:
    """One hub as the scenarios see it."""

    name: str
    websocket_url: str
    http_url: str
    joined_count: Callable[[], Awaitable[int]]


class Socket:
    """A raw consumer socket speaking v1 or v2, with a heartbeat barrier."""

    def __init__(self, websocket: ClientConnection, vsn: str | None) -> None:
        self.websocket = websocket
        self.vsn = vsn
        self._barriers = itertools.count(1)

    def frame(
        self,
        event: str,
        ref: Any,
        *,
        topic: Any = "service",
        join_ref: Any = None,
        payload: Any = None,
    ) -> Any:
        """A frame in this socket's serializer (v1 carries join_ref only when given)."""
        body = {} if payload is None else payload
        if self.vsn == V2:
            return [join_ref, ref, topic, event, body]
        message = {"topic": topic, "event": event, "payload": body, "ref": ref}
        if join_ref is not None:
            message["join_ref"] = join_ref
        return message

    async def send(self, *frames: Any) -> None:
        for frame in frames:
            await self.websocket.send(
                frame if isinstance(frame, str | bytes) else json.dumps(frame)
            )

    async def recv(self) -> Any:
        return json.loads(await asyncio.wait_for(self.websocket.recv(), RECV_TIMEOUT))

    async def exchange(self, *frames: Any, until: tuple[str, ...] = ()) -> list[Any]:
        """Send `frames`; read until each event in `until` came, then a heartbeat's reply.

        On the real hub the channel is a process of its own: what it sends (``phx_error``,
        a leave's reply and ``phx_close``, the ``phx_close`` after a second join) may come
        after the reply to a later heartbeat, so those are awaited by name first. A socket
        the hub closes ends the list with ``["closed", code]``.
        """
        await self.send(*frames)
        seen: list[Any] = []
        try:
            waiting = list(until)
            while waiting:
                frame = await self.recv()
                seen.append(frame)
                event = frame[3] if isinstance(frame, list) else frame.get("event")
                if event in waiting:
                    waiting.remove(event)
            ref = f"barrier-{next(self._barriers)}"
            await self.send(self.frame("heartbeat", ref, topic="phoenix"))
            while True:
                frame = await self.recv()
                seen.append(frame)
                reply_ref = frame[1] if isinstance(frame, list) else frame.get("ref")
                if reply_ref == ref:
                    return seen
        except ConnectionClosed as closed:
            seen.append(["closed", closed.rcvd.code if closed.rcvd else None])
            return seen

    async def until_closed(self) -> list[Any]:
        """Everything until the hub closes the socket, and the close code."""
        seen: list[Any] = []
        try:
            while True:
                seen.append(await self.recv())
        except ConnectionClosed as closed:
            seen.append(["closed", closed.rcvd.code if closed.rcvd else None])
        return seen

    async def read(self, count: int) -> list[Any]:
        """Exactly `count` frames (pushes from the hub caused by another socket)."""
        return [await self.recv() for _ in range(count)]


@skip_without_phoenix_hub
class ContractTest(unittest.IsolatedAsyncioTestCase):
    """Every scenario against both hubs; the transcripts must be equal once normalized."""

    phoenix: PhoenixHub

    @classmethod
    def setUpClass(cls) -> None:
        # Production's body mode: {"status", "message"} only.
        cls.phoenix = PhoenixHub((TOKEN,), service_name=SERVICE_NAME, http_mode="vera")
        cls.phoenix.start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.phoenix.stop()

    async def asyncSetUp(self) -> None:
        self.local = await self.enterAsyncContext(
            LocalHub(tokens=(TOKEN,), service_name=SERVICE_NAME)
        )
        self.targets = [self.phoenix_target(self.phoenix), self.local_target(self.local)]
        self._sockets: list[ClientConnection] = []

    @staticmethod
    def phoenix_target(hub: PhoenixHub) -> Target:
        async def joined() -> int:
            return await asyncio.to_thread(hub.joined_count)

        return Target("phoenix", hub.websocket_url, hub.http_url, joined)

    @staticmethod
    def local_target(hub: LocalHub) -> Target:
        async def joined() -> int:
            return hub.joined_count()

        return Target("local", hub.websocket_url, hub.http_url, joined)

    # ------------------------------------------------------------------ helpers

    def url(
        self,
        target: Target,
        *,
        vsn: str | None = V1,
        token: str | None = TOKEN,
        actions: str | None = json.dumps(CATALOG),
    ) -> str:
        params = {"token": token, "actions": actions, "vsn": vsn}
        query = urlencode({key: value for key, value in params.items() if value is not None})
        return f"{target.websocket_url}?{query}"

    async def open(
        self, target: Target, *, vsn: str | None = V1, origin: str | None = None, **url: Any
    ) -> Socket:
        websocket = await connect(
            self.url(target, vsn=vsn, **url),
            proxy=None,
            ping_interval=None,
            open_timeout=RECV_TIMEOUT,
            close_timeout=2,
            additional_headers={"Origin": origin} if origin else None,
        )
        self._sockets.append(websocket)
        return Socket(websocket, vsn)

    async def settle(self, target: Target) -> None:
        """Wait until the hub counts no joined consumer (its catalog is then dropped)."""
        async with asyncio.timeout(RECV_TIMEOUT):
            while await target.joined_count():
                await asyncio.sleep(0.02)  # the real hub is another process: poll its count

    async def close_all(self, target: Target) -> None:
        """Close the sockets a scenario opened and let the hub forget them."""
        sockets, self._sockets = self._sockets, []
        await asyncio.gather(*(websocket.close() for websocket in sockets))
        await self.settle(target)

    async def upgrade(self, target: Target, *, origin: str | None = None, **url: Any) -> list[Any]:
        """Try an upgrade: ``["refused", status, body]``, or ``["accepted"]`` (then closed)."""
        try:
            websocket = await connect(
                self.url(target, **url),
                proxy=None,
                open_timeout=RECV_TIMEOUT,
                additional_headers={"Origin": origin} if origin else None,
            )
        except InvalidStatus as refused:
            body = bytes(refused.response.body or b"")
            return ["refused", refused.response.status_code, json.loads(body) if body else ""]
        await websocket.close()
        return ["accepted"]

    async def compare(
        self,
        scenario: Callable[[Target], Awaitable[Any]],
        targets: list[Target] | None = None,
    ) -> Any:
        """Run `scenario` against both hubs; fail unless the normalized results are equal.

        The scenario's sockets are closed after each run, so each starts with none joined.
        """
        results = []
        for target in targets or self.targets:
            try:
                results.append(normalize(await scenario(target)))
            finally:
                await self.close_all(target)
        real, local = results
        if local != real:
            lines = ["the local hub differs from the real one (step by step):"]
            for number, (want, got) in enumerate(itertools.zip_longest(real, local)):
                mark = "  " if want == got else "!="
                lines.append(f"{mark} {number}: phoenix {json.dumps(want)}")
                lines.append(f"{mark} {number}: local   {json.dumps(got)}")
            self.fail("\n".join(lines))
        return real

    # ------------------------------------------------------------------ the conversation

    async def test_the_channel_conversation(self) -> None:
        for vsn in (V1, V2):
            with self.subTest(vsn=vsn or "1.0.0"):

                async def scenario(target: Target, vsn: str | None = vsn) -> list[Any]:
                    socket = await self.open(target, vsn=vsn)
                    f = socket.frame
                    closes, errors = ("phx_close",), ("phx_error",)
                    steps = [
                        await socket.exchange(f("phx_join", "1", join_ref="1")),
                        # a response nobody waits for gets no answer: the leave's reply is next
                        await socket.exchange(
                            f("response", "no-such-ref", join_ref="1"),
                            f("phx_leave", "2", join_ref="1"),
                            until=closes,
                        ),
                        await socket.exchange(f("phx_join", "3", join_ref="3")),
                        # a second join on the same socket closes the first
                        await socket.exchange(f("phx_join", "4", join_ref="4"), until=closes),
                        # only response and phx_leave may be sent on the joined topic
                        await socket.exchange(f("ping", "5", join_ref="4"), until=errors),
                        await socket.exchange(f("phx_join", "6", join_ref="6")),
                        # a leave for an earlier join is ignored, the current one is not
                        await socket.exchange(f("phx_leave", "7", join_ref="4")),
                        await socket.exchange(f("phx_leave", "8", join_ref="6"), until=closes),
                        # the topic is no longer joined
                        await socket.exchange(f("response", "9", join_ref="6")),
                        await socket.exchange(f("phx_join", "10", topic="room:1")),
                        await socket.exchange(f("phx_leave", "11", topic="room:1", join_ref="x")),
                        await socket.exchange(f("phx_join", "12", topic="phoenix")),
                        # a join without join_ref: its close and error carry none
                        await socket.exchange(f("phx_join", "13")),
                        await socket.exchange(f("ping", "14"), until=errors),
                        await socket.exchange(f("phx_join", "15")),
                        await socket.exchange(f("phx_leave", "16"), until=closes),
                        # refs and topics of other JSON types come back as sent
                        await socket.exchange(f("heartbeat", 17, topic="phoenix")),
                        await socket.exchange(f("heartbeat", None, topic="phoenix")),
                        await socket.exchange(f("phx_join", "18", topic=5)),
                    ]
                    return steps

                transcript = await self.compare(scenario)
                self.assertEqual(transcript[0][0][-1 if vsn else "payload"]["status"], "ok")

    async def test_undecodable_frames_close_the_socket_with_1011(self) -> None:
        frames: dict[str | None, list[Any]] = {
            V1: [
                "not json",
                "",
                '{"topic": "service"}',
                '{"topic": "phoenix", "event": "heartbeat", "ref": "1"}',
                '{"topic": "phoenix", "event": "heartbeat", "payload": {}}',
                '[null, "1", "phoenix", "heartbeat", {}]',
                b"\x00\x01",
            ],
            V2: [
                "not json",
                '{"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "1"}',
                '[null, "1", "phoenix", "heartbeat"]',
                b"\x00\x01",
            ],
        }
        for vsn, cases in frames.items():
            for frame in cases:
                with self.subTest(vsn=vsn or "1.0.0", frame=frame):

                    async def scenario(
                        target: Target, vsn: str | None = vsn, frame: Any = frame
                    ) -> list[Any]:
                        socket = await self.open(target, vsn=vsn)
                        await socket.send(frame)
                        return await socket.until_closed()

                    self.assertEqual(await self.compare(scenario), [["closed", 1011]])

        async def extra_items(target: Target) -> list[Any]:
            socket = await self.open(target, vsn=V2)
            return await socket.exchange([None, "1", "phoenix", "heartbeat", {}, "extra"])

        await self.compare(extra_items)

    # ------------------------------------------------------------------ upgrades

    async def test_upgrades_refused_and_accepted(self) -> None:
        async def scenario(target: Target) -> list[Any]:
            return [
                await self.upgrade(target, token="wrong"),
                await self.upgrade(target, token=None),
                await self.upgrade(target, actions=None),
                await self.upgrade(target, vsn="3.0.0"),
                await self.upgrade(target, origin="http://evil.example"),
                await self.upgrade(target, origin="http://LOCALHOST"),
                await self.upgrade(target, origin="null"),
                await self.upgrade(target, origin="http://localhost:1234"),
                await self.upgrade(target, origin="https://localhost"),
            ]

        transcript = await self.compare(scenario)
        self.assertEqual(transcript[0], ["refused", 403, ""])
        self.assertEqual(transcript[-1], ["accepted"])

    async def test_request_line_limit(self) -> None:
        async def status(target: Target, request_target: str) -> int:
            port = int(target.http_url.rpartition(":")[2])
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(f"GET {request_target} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
                await writer.drain()
                line = await asyncio.wait_for(reader.readline(), RECV_TIMEOUT)
            finally:
                writer.close()
            return int(line.split()[1])

        async def scenario(target: Target) -> list[int]:
            prefix = f"/websocket?token={TOKEN}&actions="
            fill = 9_998 - len("GET ") - len(" HTTP/1.1") - len(prefix)
            return [
                await status(target, prefix + "x" * fill),
                await status(target, prefix + "x" * (fill + 1)),
                await status(target, prefix + "x" * 50_000),
            ]

        self.assertEqual((await self.compare(scenario))[1:], [414, 414])

    async def test_catalogs_and_actions_that_are_not_json(self) -> None:
        for vsn in (V1, V2):
            with self.subTest(vsn=vsn or "1.0.0"):

                async def scenario(target: Target, vsn: str | None = vsn) -> list[Any]:
                    steps: list[Any] = []
                    # No consumer joined: any actions gets in; not JSON (or not an object)
                    # makes the join fail.
                    for raw in ("{not json", "[1]"):
                        socket = await self.open(target, vsn=vsn, actions=raw)
                        steps.append(await socket.exchange(socket.frame("phx_join", "1")))
                        await socket.websocket.close()
                    first = await self.open(target, vsn=vsn, actions=json.dumps(OTHER_CATALOG))
                    steps.append(await first.exchange(first.frame("phx_join", "1")))
                    # One joined: its catalog decides.
                    steps += [
                        await self.upgrade(target, vsn=vsn),
                        await self.upgrade(target, vsn=vsn, actions="{not json"),
                        await self.upgrade(target, vsn="9", actions="{not json"),
                        await self.upgrade(target, vsn=vsn, actions="[1]"),
                        await self.upgrade(
                            target, vsn=vsn, actions=json.dumps(OTHER_CATALOG, indent=2)
                        ),
                    ]
                    # Left again: any catalog gets in.
                    steps.append(
                        await first.exchange(first.frame("phx_leave", "2"), until=("phx_close",))
                    )
                    await self.settle(target)
                    steps.append(await self.upgrade(target, vsn=vsn))
                    return steps

                await self.compare(scenario)

    # ------------------------------------------------------------------ other consumers

    async def test_num_consumers_as_others_join_and_leave(self) -> None:
        async def scenario(target: Target) -> list[Any]:
            watcher = await self.open(target, vsn=V2)
            await watcher.exchange(watcher.frame("phx_join", "w", join_ref="w"))
            other = await self.open(target)
            f = other.frame
            steps: list[Any] = []
            for frame, until, pushes in (
                (f("phx_join", "1", join_ref="1"), (), 1),
                # a crash is a leave, announced twice
                (f("ping", "2", join_ref="1"), ("phx_error",), 2),
                (f("phx_join", "3", join_ref="3"), (), 1),
                # a second join: one leave, one join
                (f("phx_join", "4", join_ref="4"), ("phx_close",), 2),
                (f("phx_leave", "5", join_ref="4"), ("phx_close",), 2),
                (f("phx_join", "6", join_ref="6"), (), 1),
            ):
                steps.append(await other.exchange(frame, until=until))
                steps.append(await watcher.read(pushes))
            await other.websocket.close()
            steps.append(await watcher.read(2))
            steps.append(await watcher.exchange())  # and nothing more
            return steps

        await self.compare(scenario)

    async def test_events_the_hub_pushes(self) -> None:
        # A hub of its own: these events change its tokens.
        phoenix = await self.enterAsyncContext(PhoenixHub((TOKEN,), service_name=SERVICE_NAME))

        async def scenario(target: Target) -> list[Any]:
            socket = await self.open(target, vsn=V2)
            steps = [await socket.exchange(socket.frame("phx_join", "1", join_ref="1"))]
            for event in ("service_updated", "token_created", "token_deleted", "service_deleted"):
                if target.name == "phoenix":
                    await asyncio.to_thread(phoenix.push, event)
                elif event == "service_updated":
                    await self.local.push_service_updated()
                elif event == "token_created":
                    await self.local.create_token()
                elif event == "token_deleted":
                    await self.local.delete_token(1)  # the oldest, as the hub's admin push
                else:
                    await self.local.push_service_deleted()
                steps.append(await socket.read(1))
            return steps

        transcript = await self.compare(
            scenario, [self.phoenix_target(phoenix), self.local_target(self.local)]
        )
        self.assertEqual(
            [step[0][3] for step in transcript[1:]],
            ["service_updated", "token_created", "token_deleted", "service_deleted"],
        )

    # ------------------------------------------------------------------ the HTTP front

    async def post(
        self, target: Target, body: Any = None, *, raw: str | None = None, **options: Any
    ) -> list[Any]:
        """A request to the front: ``[status, content type, body]``, the body as the text
        the hub sent (so that the comparison is byte for byte)."""
        return await front_answer(target.http_url, body, raw=raw, **options)

    async def test_http_front(self) -> None:
        for vsn in (V1, V2):
            with self.subTest(vsn=vsn or "1.0.0"):

                async def scenario(target: Target, vsn: str | None = vsn) -> list[Any]:
                    call = {"service_id": 1, "action": "Echo", "fields": {"n": 1}}
                    steps = [
                        await self.post(target, call),  # no consumer
                        await self.post(target, {"action": "Echo", "fields": {}}),
                        await self.post(target, raw="{oops"),
                        await self.post(target, raw="", method="GET"),
                    ]
                    socket = await self.open(target, vsn=vsn)
                    await socket.exchange(socket.frame("phx_join", "1", join_ref="1"))
                    for service_id, answer in (
                        (1, {"status": "success", "message": "done", "status_code": 201}),
                        ("1", {"status": "success", "message": None}),
                        (1, {"status": "error", "message": "nope", "status_code": 404}),
                        (1, {"status": "weird", "message": 5}),
                        (1, {"status": "success"}),
                        (1, {"message": "no status"}),
                        (1, ["not", "an", "object"]),
                        (1, {"status": "success", "message": TRICKY_VALUES, "fields": [1]}),
                        (1, {"status": "error", "message": {"b": {"z": 1, "a": 2}, "A": None}}),
                    ):
                        request = asyncio.create_task(
                            self.post(target, {**call, "service_id": service_id})
                        )
                        push = await socket.recv()
                        payload = push[4] if vsn else push["payload"]
                        ref = payload["response_ref"]
                        await socket.send(
                            socket.frame("response", ref, join_ref="1", payload=answer)
                        )
                        steps.append([push, await request])
                    steps.append(await self.post(target, {**call, "service_id": 2}))
                    steps.append(await self.post(target, {**call, "service_id": "01"}))
                    return steps

                transcript = await self.compare(scenario)
                self.assertEqual(
                    transcript[0],
                    [
                        422,
                        "application/json; charset=utf-8",
                        '{"message":"No service consumers are available to handle the '
                        'request","status":"error"}',
                    ],
                )

    async def test_a_request_nobody_answers_is_408(self) -> None:
        async def unanswered(target: Target) -> list[Any]:
            websocket = await connect(self.url(target), proxy=None, open_timeout=RECV_TIMEOUT)
            try:
                socket = Socket(websocket, V1)
                await socket.exchange(socket.frame("phx_join", "1", join_ref="1"))
                return await self.post(target, {"service_id": 1, "action": "Echo", "fields": {}})
            finally:
                await websocket.close()

        # Both hubs wait at once (30 s each): the real hub's wait is paid once.
        phoenix, local = await asyncio.gather(*(unanswered(target) for target in self.targets))
        self.assertEqual(local, phoenix)
        self.assertEqual(
            phoenix,
            [
                408,
                "application/json; charset=utf-8",
                '{"message":"Request timed out","status":"error"}',
            ],
        )


# Values whose JSON text the hub writes its own way (key order, floats, escapes).
TRICKY_VALUES: Final = {
    "z": [0.1, 1e100, 1e-7, 123456789012345.0, 1e16, -0.0, 1 / 3, 6.0, 100.0, 1000.0, 0.0001],
    "a": 'tab\tnew line\n control\u0001 quote" slash/ \u00e9 \u2028 \U0001f600',
    "m": {"beta": 2**70, "Alpha": True, "alpha": None, "_": []},
}


async def front_answer(
    http_url: str,
    body: Any = None,
    *,
    raw: str | None = None,
    method: str = "POST",
    path: str = "/",
) -> list[Any]:
    """One request to a hub's front: ``[status, content type, body text]``."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            http_url + path,
            data=raw if raw is not None else json.dumps(body),
            headers={"Content-Type": "application/json"},
        ) as response,
    ):
        return [response.status, response.headers.get("Content-Type"), await response.text()]


class Raises(ActionRunner):
    """An action that fails: its caller gets the 500's error object."""

    @classmethod
    def description(cls) -> str:
        return "Raises"

    async def run(self, ctx: Context) -> None:
        raise RuntimeError("internal detail")


@skip_without_phoenix_hub
class ServiceAnswersTest(unittest.IsolatedAsyncioTestCase):
    """The service's own client behind each hub: what a caller gets, byte for byte equal."""

    async def test_results_and_errors_reach_the_caller_alike(self) -> None:
        phoenix = await self.enterAsyncContext(
            PhoenixHub((TOKEN,), service_name=SERVICE_NAME, http_mode="vera")
        )
        local = await self.enterAsyncContext(LocalHub(tokens=(TOKEN,), service_name=SERVICE_NAME))
        calls = [
            ("Greet", {"name": "Ada"}),
            ("FormatAddress", {"recipient": "Ada", "address": {"street": "1 Main", "city": "X"}}),
            ("BlockingSum", {"numbers": [1, 2, 3.5]}),
            ("Greet", {"name": "", "greeting": 5}),
            ("NoSuchAction", {}),
            ("Raises", {}),
            ("SeedEcho", {"message": "old"}),
        ]
        answers: dict[str, list[list[Any]]] = {}
        for name, websocket_url, http_url in (
            ("phoenix", phoenix.websocket_url, phoenix.http_url),
            ("local", local.websocket_url, local.http_url),
        ):
            settings = fast_settings(None, websocket_url=websocket_url, token=TOKEN)
            consumer = await Consumer(
                PlugboardClient(settings, {**FIXTURE_ACTIONS, "Raises": Raises}, EVENTS)
            ).joined()
            try:
                call = {"service_id": 1}
                answers[name] = [
                    await front_answer(http_url, {**call, "action": action, "fields": fields})
                    for action, fields in calls
                ]
            finally:
                await consumer.stop()
        # The error ids differ from run to run; the rest must be the same bytes.
        ids = re.compile(r"[0-9a-f]{12}")
        self.assertEqual(
            [[status, kind, ids.sub("<id>", text)] for status, kind, text in answers["local"]],
            [[status, kind, ids.sub("<id>", text)] for status, kind, text in answers["phoenix"]],
        )
        bodies = [json.loads(text) for _, _, text in answers["phoenix"]]
        self.assertEqual(bodies[0], {"status": "success", "message": {"greeting": "Hello, Ada!"}})
        self.assertEqual(bodies[1]["message"], ["Ada", "1 Main", "X"])
        self.assertEqual(bodies[2]["message"], 6.5)
        codes = [body["message"]["code"] for body in bodies[3:6]]
        self.assertEqual(codes, ["INVALID_FIELDS", "UNKNOWN_ACTION", "INTERNAL_ERROR"])
        self.assertEqual(
            [error["field"] for error in bodies[3]["message"]["errors"]], ["name", "greeting"]
        )
        # A seed-style action's data stays in `fields`: the caller never gets it.
        self.assertEqual(bodies[6], {"status": "success", "message": None})


if __name__ == "__main__":
    unittest.main()
