"""Tests of the test client for users (core/testing.py): real hub, real client, in-process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from collections.abc import AsyncIterator
from pathlib import Path
from unittest import mock

from pydantic import Field

from core import ActionResponse, ActionRunner, Context, State, lifespan
from core.testing import SyncTestClient, TestClient, request_context
from tests.fixtures.lifespan import FOLDER as LIFESPAN_FOLDER
from tests.support import FIXTURE_ACTIONS, FIXTURE_ACTIONS_FOLDER


class Fails(ActionRunner):
    @classmethod
    def description(cls) -> str:
        return "Raises"

    async def run(self, ctx: Context) -> ActionResponse:
        raise RuntimeError("internal detail")


class UsesState(ActionRunner):
    key: str = Field(description="What to read from the state")

    @classmethod
    def description(cls) -> str:
        return "Reads the state"

    async def run(self, ctx: Context) -> dict[str, object]:
        return {"value": getattr(ctx.state, self.key)}


class TestClientTest(unittest.IsolatedAsyncioTestCase):
    async def test_answers_as_the_hub_answers_its_caller(self) -> None:
        async with TestClient([FIXTURE_ACTIONS["Echo"], FIXTURE_ACTIONS["Greet"], Fails]) as client:
            echo = await client.call("Echo", {"message": "hi"})
            invalid = await client.call("Greet", {"name": ""})
            unknown = await client.call("Nope")
            failed = await client.call("Fails")
        self.assertEqual(
            (echo.http_status, echo.status, echo.message, echo.body),
            (
                200,
                "success",
                {"message": "hi"},
                {"status": "success", "message": {"message": "hi"}},
            ),
        )
        self.assertTrue(echo.ok)
        # What the replica sent, which the caller does not see.
        self.assertEqual(
            echo.action_response, ActionResponse(status_code=200, message={"message": "hi"})
        )
        self.assertEqual(invalid.http_status, 400)
        self.assertFalse(invalid.ok)
        self.assertEqual(invalid.message["code"], "INVALID_FIELDS")
        self.assertIn("name: String should have at least 1 character", invalid.message["error"])
        self.assertEqual(set(invalid.body), {"status", "message"})
        assert invalid.action_response is not None and unknown.action_response is not None
        self.assertEqual(invalid.action_response.status_code, 400)
        self.assertEqual((unknown.http_status, unknown.message["code"]), (400, "UNKNOWN_ACTION"))
        self.assertEqual(unknown.action_response.status_code, 404)
        self.assertEqual((failed.http_status, failed.message["code"]), (400, "INTERNAL_ERROR"))
        self.assertNotIn("internal detail", str(failed.body))

    async def test_settings_apply_to_the_service(self) -> None:
        async with TestClient(FIXTURE_ACTIONS, action_timeout_seconds=0.05) as client:
            late = await client.call("Sleep", {"seconds": 5})
            self.assertEqual(client.client.settings.action_timeout_seconds, 0.05)
        self.assertEqual((late.http_status, late.message["code"]), (400, "TIMEOUT"))
        assert late.action_response is not None
        self.assertEqual(late.action_response.status_code, 504)

    async def test_a_folder_brings_its_lifespan(self) -> None:
        folder = tempfile.mkdtemp(prefix="test_client_")
        self.addCleanup(shutil.rmtree, folder)
        steps = Path(folder) / "steps.log"
        with mock.patch.dict(os.environ, {"LIFESPAN_LOG": str(steps)}):
            async with TestClient(LIFESPAN_FOLDER) as client:
                first = await client.call("Count")
                second = await client.call("Count")
                self.assertEqual(steps.read_text().splitlines()[0], "open")
        self.assertEqual((first.message, second.message), ({"count": 1}, {"count": 2}))
        self.assertEqual(steps.read_text().splitlines()[-1], "closed")

    async def test_actions_path_is_the_default(self) -> None:
        with mock.patch.dict(os.environ, {"ACTIONS_PATH": str(FIXTURE_ACTIONS_FOLDER)}):
            async with TestClient() as client:
                self.assertEqual(sorted(client.client.actions), sorted(FIXTURE_ACTIONS))
                answer = await client.call("Echo", {"message": "default"})
        self.assertEqual(answer.message, {"message": "default"})

    async def test_lifespans_and_state_can_be_replaced_with_fakes(self) -> None:
        closed: list[str] = []

        @lifespan
        async def fake(state: State) -> AsyncIterator[None]:
            state.token = "fake"
            yield
            closed.append("fake")

        async with TestClient([UsesState], lifespans=[fake], state=State(given=1)) as client:
            token = await client.call("UsesState", {"key": "token"})
            given = await client.call("UsesState", {"key": "given"})
            self.assertEqual(client.state.token, "fake")
        self.assertEqual((token.message, given.message), ({"value": "fake"}, {"value": 1}))
        self.assertEqual(closed, ["fake"])

    async def test_used_outside_its_block_it_says_how_to_start_it(self) -> None:
        client = TestClient([UsesState])
        with self.assertRaisesRegex(RuntimeError, "async with TestClient"):
            await client.call("UsesState", {"key": "x"})

    async def test_a_client_that_cannot_join_fails_the_start(self) -> None:
        class Mute(ActionRunner):
            @classmethod
            def description(cls) -> str:
                return "x" * 20_000  # the catalog makes a request line the hub refuses

            async def run(self, ctx: Context) -> None:
                return None

        with mock.patch("core.testing.START_TIMEOUT", 1.0), self.assertRaises(TimeoutError):
            async with TestClient([Mute]):
                pass


class SyncTestClientTest(unittest.TestCase):
    def test_a_plain_test_case_calls_actions(self) -> None:
        with SyncTestClient([FIXTURE_ACTIONS["Echo"], UsesState], state=State(x=2)) as client:
            echo = client.call("Echo", {"message": "sync"})
            state = client.call("UsesState", {"key": "x"})
            self.assertEqual(client.state.x, 2)
        self.assertEqual((echo.http_status, echo.message), (200, {"message": "sync"}))
        self.assertEqual(state.message, {"value": 2})
        with self.assertRaisesRegex(RuntimeError, "with SyncTestClient"):
            client.call("Echo", {"message": "after"})


class RequestContextTest(unittest.TestCase):
    def test_a_context_for_calling_run_directly(self) -> None:
        ctx = request_context("Thing", ref="r9", timeout=10, state=State(db="fake"))
        self.assertEqual((ctx.action, ctx.ref, ctx.state.db), ("Thing", "r9", "fake"))
        self.assertGreater(ctx.remaining(), 9)
        self.assertFalse(ctx.is_cancelled())


class ImportCostTest(unittest.TestCase):
    def test_importing_it_loads_neither_the_hub_nor_the_client(self) -> None:
        probe = (
            "import sys, core.testing; "
            "print(sorted(m for m in sys.modules if m.startswith(('aiohttp', 'websockets', "
            "'core.hub', 'core.dev', 'sqlalchemy'))))"
        )
        result = subprocess.run(
            [sys.executable, "-c", probe],
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "[]")


if __name__ == "__main__":
    unittest.main()
