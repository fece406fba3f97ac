"""The shipped examples as a remote caller uses them: through the real hub's front.

A replica serving the project's ``actions/`` (the examples and the notes, on a fresh SQLite
database) joins the real Phoenix hub in production's body mode (``HUB_HTTP_MODE=vera``:
``{"status", "message"}`` only), and every example is called through ``POST /``: what it
returns must be what the caller receives.
"""

from __future__ import annotations

import os
import unittest
from typing import Any, ClassVar
from unittest import mock

from core.database import database
from core.hub.client import PlugboardClient
from core.model.registry import discover
from core.model.runner import ActionRunner
from core.settings import PROJECT_ROOT
from tests.databases import fresh_sqlite_url
from tests.support import EVENTS, Consumer, fast_settings
from tests.support_phoenix import FrontCaller, PhoenixHub, skip_without_phoenix_hub


@skip_without_phoenix_hub
class ExamplesThroughTheRealHubTest(unittest.IsolatedAsyncioTestCase):
    actions: ClassVar[dict[str, type[ActionRunner]]]

    @classmethod
    def setUpClass(cls) -> None:
        patcher = mock.patch.dict(os.environ, {"ENVIRONMENT": "test"})
        patcher.start()
        cls.addClassCleanup(patcher.stop)
        database.dispose()
        cls.addClassCleanup(database.dispose)
        database.initialize(url=fresh_sqlite_url(cls))
        database.migrate()
        cls.actions = discover(PROJECT_ROOT / "actions", ActionRunner)

    async def asyncSetUp(self) -> None:
        hub = await self.enterAsyncContext(PhoenixHub(http_mode="vera"))
        settings = fast_settings(None, websocket_url=hub.websocket_url, token=hub.tokens[0])
        consumer = await Consumer(PlugboardClient(settings, self.actions, EVENTS)).joined()
        self.addAsyncCleanup(consumer.stop)
        self.front = await self.enterAsyncContext(FrontCaller(hub.http_url, hub.service_id))

    async def call(self, action: str, fields: dict[str, Any]) -> tuple[int, Any]:
        """Call `action`; the HTTP status and the message (the body has nothing else)."""
        status, body = await self.front.call(action, fields)
        self.assertEqual(set(body), {"status", "message"})
        return status, body["message"]

    async def test_each_example_returns_its_result_to_the_caller(self) -> None:
        self.assertEqual(await self.call("Echo", {"message": "hello"}), (200, "hello"))
        self.assertEqual(await self.call("Greet", {"name": "Ada"}), (200, "Hello, Ada!"))
        address = {"street": "1 Main St", "city": "Springfield", "postcode": "12345"}
        self.assertEqual(
            await self.call("FormatAddress", {"recipient": "Ada", "address": address}),
            (200, {"lines": ["Ada", "1 Main St", "12345 Springfield"]}),
        )
        self.assertEqual(await self.call("BlockingSum", {"numbers": [1, 2, 3]}), (200, 6.0))
        self.assertEqual(await self.call("Sleep", {"seconds": 0.01}), (200, 0.01))

    async def test_the_notes_examples_return_the_note(self) -> None:
        status, note = await self.call("CreateNote", {"title": "Milk", "body": "2 litres"})
        self.assertEqual(status, 200)  # the action's 201 is a success: the hub answers 200
        self.assertEqual((note["title"], note["body"]), ("Milk", "2 litres"))
        self.assertEqual(await self.call("GetNote", {"id": note["id"]}), (200, note))
        status, page = await self.call("ListNotes", {"limit": 5})
        self.assertIn(note, page["items"])
        self.assertEqual(
            await self.call("DeleteNote", {"id": note["id"]}),
            (200, {"id": note["id"], "deleted": True}),
        )
        self.assertEqual(
            await self.call("GetNote", {"id": note["id"]}),
            (
                400,
                {
                    "code": "NOT_FOUND",
                    "error": f"note {note['id']} not found",
                    "retryable": False,
                    "id": note["id"],
                },
            ),
        )


if __name__ == "__main__":
    unittest.main()
