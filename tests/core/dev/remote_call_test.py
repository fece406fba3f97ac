"""Tests of ``call --hub`` (core/dev/remote_call.py): the command runs as a real subprocess
and calls, through the local hub's HTTP front, a real consumer serving fixture actions.

The hub requires an account bearer token, as production hubs do. The failures a hub's
surroundings cause (nothing listening, no answer, a proxy's HTML page, a redirect) come from
small servers on loopback that answer like those would.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import tempfile
import unittest
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import Field

from core.dev.remote_call import is_private_channel
from core.local_hub import LocalHub
from core.model.response import ActionResponse
from core.model.runner import ActionRunner
from tests.core.dev.cli_support import (
    ROOT,
    Result,
    assert_one_line_error,
    cli_command,
    cli_env,
    split_call_output,
)
from tests.support import start_consumer

ACCOUNT_TOKEN = "acct-token-0123456789abcdef"
HUB_WAIT_SECONDS = 0.5  # the local hub's 30 s, shortened


class Shout(ActionRunner):
    text: str = Field(min_length=1, description="What to shout")
    times: int = Field(default=1, ge=1, le=3, description="How many times")

    @classmethod
    def description(cls) -> str:
        return "Shouts the text"

    async def run(self, client: Any, websocket: Any) -> ActionResponse:
        return ActionResponse(message=" ".join([self.text.upper()] * self.times))


class Refuse(ActionRunner):
    @classmethod
    def description(cls) -> str:
        return "Always answers 409"

    async def run(self, client: Any, websocket: Any) -> ActionResponse:
        return ActionResponse(status_code=409, message="already done")


class Dawdle(ActionRunner):
    timeout_seconds = 5.0

    @classmethod
    def description(cls) -> str:
        return "Answers after the hub has given up"

    async def run(self, client: Any, websocket: Any) -> ActionResponse:
        await asyncio.sleep(HUB_WAIT_SECONDS * 3)
        return ActionResponse(message="late")


ACTIONS: dict[str, type[ActionRunner]] = {"Shout": Shout, "Refuse": Refuse, "Dawdle": Dawdle}


async def run_cli(*args: str, stdin: str = "", **env: str) -> Result:
    """``python entrypoint.py ARGS`` as a subprocess, without blocking the loop the hub runs in.

    The environment has no caller settings unless `env` gives them.
    """
    process = await asyncio.create_subprocess_exec(
        *cli_command(*args),
        cwd=ROOT,
        env=cli_env(Path(tempfile.gettempdir()), "remote_call_unused", **env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    assert process.returncode is not None
    return subprocess.CompletedProcess(list(args), process.returncode, out.decode(), err.decode())


async def run_all(**runs: Awaitable[Result]) -> dict[str, Result]:
    """The runs, started together; their results by name."""
    results = await asyncio.gather(*runs.values())
    return dict(zip(runs, results, strict=True))


class ThroughTheHubTest(unittest.IsolatedAsyncioTestCase):
    """A local hub that wants an account token, and one consumer serving `ACTIONS`."""

    async def asyncSetUp(self) -> None:
        self.hub = LocalHub(api_token=ACCOUNT_TOKEN, request_timeout=HUB_WAIT_SECONDS)
        await self.hub.start()
        self.addAsyncCleanup(self.hub.stop)
        consumer = start_consumer(self.hub, ACTIONS)
        self.addAsyncCleanup(consumer.stop)
        await consumer.joined()
        await self.hub.wait_for_joined(1)

    def call(self, *args: str, stdin: str = "", **env: str) -> Awaitable[Result]:
        """``call ARGS --hub <the hub> --service-id <its id>`` with the account token set."""
        env.setdefault("PLUGBOARD_API_TOKEN", ACCOUNT_TOKEN)
        hub = ("--hub", self.hub.http_url, "--service-id", str(self.hub.service_id))
        return run_cli("call", *args, *hub, stdin=stdin, **env)

    def assert_answer(self, result: Result, code: int, http: str) -> dict[str, Any]:
        """The run ended with `code`, printed a JSON answer and then ``HTTP <http>``."""
        self.assertEqual(result.returncode, code, result.stderr)
        answer, status = split_call_output(result.stdout)
        self.assertEqual(status, f"HTTP {http}")
        self.assertNotIn(ACCOUNT_TOKEN, result.stdout + result.stderr)
        self.assertIsInstance(answer, dict)
        return dict(answer)

    async def test_answers_from_the_service(self) -> None:
        results = await run_all(
            ok=self.call("Shout", '{"text": "hi", "times": 2}'),
            stdin=self.call("Shout", "-", stdin='{"text": "from stdin"}'),
            json_only=self.call("Shout", '{"text": "hi"}', "--json"),
            invalid=self.call("Shout", '{"times": 9}'),
            refused=self.call("Refuse"),
            unknown=self.call("Shuot", "{}"),
        )
        ok = self.assert_answer(results["ok"], 0, "200 (success)")
        self.assertEqual((ok["status"], ok["message"]), ("success", "HI HI"))
        self.assertEqual(
            self.assert_answer(results["stdin"], 0, "200 (success)")["message"], "FROM STDIN"
        )
        self.assertEqual(results["json_only"].returncode, 0, results["json_only"].stderr)
        self.assertEqual(json.loads(results["json_only"].stdout)["message"], "HI")
        # The service's errors reach the caller as the front's 400, with the service's message.
        invalid = self.assert_answer(results["invalid"], 1, "400 (error)")
        self.assertEqual(invalid["message"]["code"], "INVALID_FIELDS")
        self.assertIn("text", invalid["message"]["error"])
        self.assertIn("times", invalid["message"]["error"])
        refused = self.assert_answer(results["refused"], 1, "400 (error)")
        self.assertEqual(refused["message"], "already done")
        unknown = self.assert_answer(results["unknown"], 1, "400 (error)")
        self.assertIn("Shuot", unknown["message"]["error"])

    async def test_what_the_hub_itself_answers(self) -> None:
        hub = ("--hub", self.hub.http_url)
        wrong_service = "9" if self.hub.service_id != 9 else "8"
        results = await run_all(
            late=self.call("Dawdle"),
            no_service=run_cli(
                "call",
                "Shout",
                '{"text": "x"}',
                *hub,
                "--service-id",
                wrong_service,
                PLUGBOARD_API_TOKEN=ACCOUNT_TOKEN,
            ),
            env_service=run_cli(
                "call",
                "Shout",
                '{"text": "x"}',
                *hub,
                PLUGBOARD_API_TOKEN=ACCOUNT_TOKEN,
                PLUGBOARD_SERVICE_ID=str(self.hub.service_id),
            ),
        )
        late = self.assert_answer(results["late"], 1, "408 (error)")
        self.assertEqual(late["status"], "error")
        self.assert_answer(results["no_service"], 1, "422 (error)")
        self.assert_answer(results["env_service"], 0, "200 (success)")

    async def test_the_account_token(self) -> None:
        results = await run_all(
            missing=self.call("Shout", '{"text": "x"}', PLUGBOARD_API_TOKEN=""),
            wrong=self.call("Shout", '{"text": "x"}', PLUGBOARD_API_TOKEN="not-the-token-42"),
        )
        for name in ("missing", "wrong"):
            with self.subTest(name=name):
                answer = self.assert_answer(results[name], 1, "401 (error)")
                self.assertEqual(answer["status"], "error")
                self.assertIn("PLUGBOARD_API_TOKEN", results[name].stderr)
        self.assertIn("not set", results["missing"].stderr)
        self.assertIn("refused", results["wrong"].stderr)
        self.assertNotIn("not-the-token-42", results["wrong"].stdout + results["wrong"].stderr)


class StandIn:
    """A loopback HTTP server that reads one request and then does what `answer` says."""

    def __init__(self, answer: Callable[[asyncio.StreamWriter], Awaitable[None]]) -> None:
        self.answer = answer
        self.server: asyncio.Server | None = None
        self.requests: list[bytes] = []

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        self.requests.append(head + await reader.readexactly(length))
        try:
            await self.answer(writer)
        finally:
            writer.close()


def http_answer(status: str, headers: dict[str, str], body: bytes) -> Callable[..., Any]:
    """An `StandIn` answer: one HTTP/1.1 response."""

    async def answer(writer: asyncio.StreamWriter) -> None:
        lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items())]
        lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
        writer.write("\r\n".join(lines).encode() + body)
        await writer.drain()

    return answer


class AroundTheHubTest(unittest.IsolatedAsyncioTestCase):
    """What sits in front of a hub, and mistakes on the command line: one line each."""

    def remote(self, hub: str, *extra: str, **env: str) -> Awaitable[Result]:
        env.setdefault("PLUGBOARD_API_TOKEN", ACCOUNT_TOKEN)
        return run_cli(
            "call", "Shout", '{"text": "x"}', "--hub", hub, "--service-id", "1", *extra, **env
        )

    async def test_unreachable_silent_and_foreign_answers(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
        never = asyncio.Event()

        async def hang(writer: asyncio.StreamWriter) -> None:
            await never.wait()

        html = b"<html><body><h1>502 Bad Gateway</h1></body></html>\n"
        silent = StandIn(hang)
        proxy = StandIn(http_answer("502 Bad Gateway", {"Content-Type": "text/html"}, html))
        moved = StandIn(
            http_answer("301 Moved Permanently", {"Location": "https://hub.example/"}, b"")
        )
        async with silent as silent_url, proxy as proxy_url, moved as moved_url:
            try:
                results = await run_all(
                    closed=self.remote(closed),
                    silent=self.remote(silent_url, "--timeout", "0.5"),
                    proxy=self.remote(proxy_url),
                    moved=self.remote(moved_url),
                )
            finally:
                never.set()
        assert_one_line_error(self, results["closed"], 1, "cannot reach the hub", closed)
        assert_one_line_error(self, results["silent"], 1, "no answer from the hub", "0.5 s")
        assert_one_line_error(
            self, results["proxy"], 1, "HTTP 502", "not JSON", "502 Bad Gateway</h1>"
        )
        assert_one_line_error(self, results["moved"], 1, "HTTP 301", "https://hub.example/")
        for name, result in results.items():
            with self.subTest(name=name):
                self.assertEqual(result.stdout, "")
                self.assertNotIn(ACCOUNT_TOKEN, result.stderr)
        # The stand-ins saw the request a hub would: the bearer token and the JSON body.
        request = proxy.requests[0]
        self.assertIn(f"Authorization: Bearer {ACCOUNT_TOKEN}".encode(), request)
        body = json.loads(request.split(b"\r\n\r\n", 1)[1])
        self.assertEqual(body, {"service_id": 1, "action": "Shout", "fields": {"text": "x"}})
        self.assertEqual(len(moved.requests), 1)  # the redirect was not followed

    async def test_usage_errors(self) -> None:
        results = await run_all(
            websocket=self.remote("ws://127.0.0.1:4000/websocket"),
            no_scheme=self.remote("127.0.0.1:4000"),
            credentials=self.remote("http://user:pw@127.0.0.1:4000"),
            timeout=self.remote("http://127.0.0.1:4000", "--timeout", "0"),
            no_service=run_cli("call", "Shout", "--hub", "http://127.0.0.1:4000"),
            flag_alone=run_cli("call", "Shout", "{}", "--allow-plain-http"),
            bad_fields=run_cli(
                "call",
                "Shout",
                "-",
                "--hub",
                "http://127.0.0.1:4000",
                "--service-id",
                "1",
                stdin="[1]",
            ),
        )
        assert_one_line_error(self, results["websocket"], 2, "--hub", "WebSocket")
        assert_one_line_error(self, results["no_scheme"], 2, "--hub", "http://")
        assert_one_line_error(self, results["credentials"], 2, "PLUGBOARD_API_TOKEN")
        self.assertNotIn("pw", results["credentials"].stderr)
        assert_one_line_error(self, results["timeout"], 2, "--timeout")
        assert_one_line_error(self, results["no_service"], 2, "--service-id")
        assert_one_line_error(self, results["flag_alone"], 2, "--allow-plain-http go with --hub")
        # FIELDS are checked before anything is sent (there is no hub on port 4000 here).
        assert_one_line_error(self, results["bad_fields"], 2, "JSON object")


# What a hostile answer may hold for a terminal: clear the screen and home the cursor (CSI
# as ESC [ and as the C1 byte), a title change ended by BEL, a carriage return to overwrite
# the line, a bidirectional override, and a lone surrogate that no terminal can print.
TERMINAL_TRICKS = "\x1b[2J\x1b[H\x9b31m\x1b]0;owned\x07\rfake line\u202e\ud800"


def assert_nothing_for_the_terminal(test: unittest.TestCase, output: str) -> None:
    """Every character of `output` is printable, but the newlines ending its lines."""
    test.assertTrue(output.replace("\n", "").isprintable(), repr(output))


class HostileAnswerTest(unittest.IsolatedAsyncioTestCase):
    """Whatever answers, nothing reaches the terminal that a terminal would act on."""

    def remote(self, hub: str, *extra: str, **env: str) -> Awaitable[Result]:
        env.setdefault("PLUGBOARD_API_TOKEN", ACCOUNT_TOKEN)
        return run_cli(
            "call", "Shout", '{"text": "x"}', "--hub", hub, "--service-id", "1", *extra, **env
        )

    async def test_escapes_are_escaped_wherever_they_are_echoed(self) -> None:
        answer = {"status": f"success{TERMINAL_TRICKS}", "message": {TERMINAL_TRICKS: "\U0001f600"}}
        body = json.dumps(answer).encode()
        json_answer = StandIn(http_answer("200 OK", {"Content-Type": "application/json"}, body))
        # A header holds no CR or LF, but every other control character can be in it.
        location = "https://hub.example/\x1b[2J\x1b]0;owned\x07\x7f"
        moved = StandIn(http_answer("302 Found", {"Location": location}, b""))
        not_json = StandIn(
            http_answer(
                "502 Bad Gateway", {}, f"<h1>{TERMINAL_TRICKS}</h1>".encode("utf-8", "replace")
            )
        )

        async def broken_status(writer: asyncio.StreamWriter) -> None:
            writer.write(f"HTTP/1.1 2\x1b[2J00 OK{TERMINAL_TRICKS[:20]}\r\n\r\n".encode("latin-1"))
            await writer.drain()

        broken = StandIn(broken_status)
        async with (
            json_answer as json_url,
            moved as moved_url,
            not_json as html_url,
            broken as broken_url,
        ):
            results = await run_all(
                json=self.remote(json_url),
                json_only=self.remote(json_url, "--json"),
                moved=self.remote(moved_url),
                not_json=self.remote(html_url),
                broken=self.remote(broken_url),
            )
        for name, result in results.items():
            with self.subTest(name=name):
                assert_nothing_for_the_terminal(self, result.stdout)
                assert_nothing_for_the_terminal(self, result.stderr)
                self.assertNotIn(ACCOUNT_TOKEN, result.stdout + result.stderr)
        # The printed JSON is still the answer, escapes and all.
        printed, status = split_call_output(results["json"].stdout)
        self.assertEqual(printed, answer)
        self.assertEqual(json.loads(results["json_only"].stdout), answer)
        self.assertTrue(status.startswith("HTTP 200 (success\\x1b[2J"), status)
        assert_one_line_error(self, results["moved"], 1, "HTTP 302", "https://hub.example/\\x1b")
        assert_one_line_error(self, results["not_json"], 1, "HTTP 502", "not JSON")
        assert_one_line_error(self, results["broken"], 1, "broke off the answer")

    async def test_the_token_goes_over_plain_http_to_another_machine_only_when_allowed(
        self,
    ) -> None:
        ok = json.dumps({"status": "success", "message": "hi"}).encode()
        # A proxy on loopback stands for the road to a remote hub: urllib sends a plain
        # http:// request for any host to it (https:// would be a CONNECT tunnel instead).
        proxy = StandIn(http_answer("200 OK", {"Content-Type": "application/json"}, ok))
        remote_hub = "http://hub.example.test:4000"
        async with proxy as proxy_url:
            refused = await self.remote(remote_hub, http_proxy=proxy_url)
            self.assertEqual(proxy.requests, [])  # refused before anything left
            results = await run_all(
                allowed=self.remote(remote_hub, "--allow-plain-http", http_proxy=proxy_url),
                no_token=self.remote(remote_hub, http_proxy=proxy_url, PLUGBOARD_API_TOKEN=""),
            )
        assert_one_line_error(
            self,
            refused,
            2,
            "PLUGBOARD_API_TOKEN",
            "unencrypted to http://hub.example.test:4000/",
            "--allow-plain-http",
        )
        self.assertNotIn(ACCOUNT_TOKEN, refused.stderr)
        allowed = results["allowed"]
        self.assertEqual(allowed.returncode, 0, allowed.stderr)
        self.assertIn("warning: the account token travels unencrypted", allowed.stderr)
        self.assertEqual(results["no_token"].returncode, 0, results["no_token"].stderr)
        self.assertEqual(results["no_token"].stderr, "")
        sent = sorted(proxy.requests, key=len)
        self.assertEqual(len(sent), 2)
        self.assertNotIn(b"Authorization", sent[0])
        self.assertIn(f"Authorization: Bearer {ACCOUNT_TOKEN}".encode(), sent[1])
        self.assertTrue(sent[1].startswith(b"POST http://hub.example.test:4000/ HTTP/1.1"))


class PrivateChannelTest(unittest.TestCase):
    def test_only_https_or_this_machine_keeps_the_token_private(self) -> None:
        for url in (
            "https://hub.example.com",
            "http://localhost:4000",
            "http://127.0.0.2:4000",
            "http://[::1]:4000",
        ):
            with self.subTest(url=url):
                self.assertTrue(is_private_channel(url))
        for url in ("http://hub.example.com", "http://10.0.0.5:4000"):
            with self.subTest(url=url):
                self.assertFalse(is_private_channel(url))


if __name__ == "__main__":
    unittest.main()
