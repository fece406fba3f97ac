"""Tests of the example notes actions (actions/notes.py) on SQLite and on the real PostgreSQL.

The actions use the process-wide ``core.database.database``; each backend's test class points
it at a fresh database (see ``tests/databases.py`` for the PostgreSQL rules: skipped
when the server is unreachable, failed under ``CI=true``).
"""

from __future__ import annotations

import asyncio
import os
import unittest
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from unittest import mock

from pydantic import ValidationError
from sqlalchemy import URL, delete

from actions.notes import CreateNote, DeleteNote, GetNote, ListNotes
from actions.notes_model import BODY_MAX_LENGTH, TITLE_MAX_LENGTH, Note
from core import ActionResponse, ActionRunner
from core.database import database
from core.execution.responses import validation_response
from core.testing import TestClient, request_context
from tests.databases import fresh_postgres_url, fresh_sqlite_url

NOTE_ACTIONS: dict[str, type[ActionRunner]] = {
    action.discriminator(): action for action in (CreateNote, GetNote, ListNotes, DeleteNote)
}


def call(action: ActionRunner) -> ActionResponse:
    """Run a synchronous action directly, as the framework's worker thread would."""
    response = action.run(request_context(action.discriminator()))
    assert isinstance(response, ActionResponse)
    return response


def create(title: str, body: str = "") -> dict[str, Any]:
    """Create a note and return its fields."""
    response = call(CreateNote(title=title, body=body))
    assert response.status_code == 201, response
    fields: dict[str, Any] = response.fields
    return fields


class NotesValidationTest(unittest.TestCase):
    """Field validation (answered 400 by the framework) and the catalog; no database needed."""

    def assert_invalid(self, action: type[ActionRunner], fields: dict[str, Any], name: str) -> None:
        with self.assertRaises(ValidationError) as caught:
            action.model_validate(fields)
        response = validation_response(caught.exception)
        self.assertEqual(response.status_code, 400)
        self.assertIn(name, [problem["field"] for problem in response.fields["errors"]])

    def test_invalid_fields_are_rejected(self) -> None:
        cases: list[tuple[type[ActionRunner], dict[str, Any], str]] = [
            (CreateNote, {}, "title"),
            (CreateNote, {"title": ""}, "title"),
            (CreateNote, {"title": "   "}, "title"),
            (CreateNote, {"title": "x" * (TITLE_MAX_LENGTH + 1)}, "title"),
            (CreateNote, {"title": "ok", "body": "x" * (BODY_MAX_LENGTH + 1)}, "body"),
            (CreateNote, {"title": 42}, "title"),
            (GetNote, {}, "id"),
            (GetNote, {"id": 0}, "id"),
            (GetNote, {"id": "seven"}, "id"),
            (DeleteNote, {"id": -1}, "id"),
            (ListNotes, {"limit": 0}, "limit"),
            (ListNotes, {"limit": 101}, "limit"),
            (ListNotes, {"cursor": -1}, "cursor"),
        ]
        for action, fields, name in cases:
            with self.subTest(action=action.__name__, fields=str(fields)[:40]):
                self.assert_invalid(action, fields, name)

    def test_valid_fields_are_normalised(self) -> None:
        self.assertEqual(CreateNote(title="  Groceries  ").title, "Groceries")
        self.assertEqual(CreateNote(title="x" * TITLE_MAX_LENGTH).body, "")
        listing = ListNotes()
        self.assertEqual((listing.limit, listing.cursor), (20, 0))
        self.assertEqual(ListNotes(limit=100).limit, 100)

    def test_every_field_is_described_in_the_catalog(self) -> None:
        for name, action in NOTE_ACTIONS.items():
            entry = action.to_dict()
            self.assertTrue(entry["description"], name)
            for field, info in entry["fields"].items():
                with self.subTest(action=name, field=field):
                    self.assertTrue(info["description"])
                    self.assertIn(info["type"], ("string", "integer"))

    def test_discovery_finds_the_actions_but_not_the_model(self) -> None:
        from core.model.registry import ActionRegistry
        from core.settings import PROJECT_ROOT

        found = ActionRegistry.discover(PROJECT_ROOT / "actions", ActionRunner)
        for name, action in NOTE_ACTIONS.items():
            self.assertIs(found.get(name), action)
        self.assertNotIn("Note", found)


class Behaviours:
    """Holds the abstract test case, so unittest does not collect it on its own."""

    class NotesCase(unittest.TestCase):
        """The notes actions on one backend; subclasses say where the database is."""

        url: ClassVar[URL]

        @classmethod
        def database_url(cls) -> URL:
            """A fresh, empty database for the class."""
            raise NotImplementedError

        @classmethod
        def setUpClass(cls) -> None:
            patcher = mock.patch.dict(os.environ, {"ENVIRONMENT": "test"})
            patcher.start()
            cls.addClassCleanup(patcher.stop)
            cls.url = cls.database_url()
            database.dispose()
            cls.addClassCleanup(database.dispose)
            database.initialize(url=cls.url)
            database.migrate()

        def setUp(self) -> None:
            with database.transaction() as session:
                session.execute(delete(Note))

        def test_create_returns_the_note(self) -> None:
            before = datetime.now(UTC)
            response = call(CreateNote(title="  Shopping ", body="milk, eggs"))
            self.assertEqual((response.status_code, response.status), (201, "success"))
            note = response.fields
            self.assertIsInstance(note["id"], int)
            self.assertEqual((note["title"], note["body"]), ("Shopping", "milk, eggs"))
            created = datetime.fromisoformat(note["created_at"])
            self.assertEqual(created.utcoffset(), timedelta(0))
            self.assertLess(abs(created - before), timedelta(seconds=5))

        def test_get_returns_what_create_returned(self) -> None:
            note = create("Read me", "body text")
            response = call(GetNote(id=note["id"]))
            self.assertEqual(response.status_code, 200)
            self.assertEqual(response.fields, note)

        def test_get_missing_is_404(self) -> None:
            response = call(GetNote(id=999_999))
            self.assertEqual((response.status_code, response.status), (404, "error"))
            self.assertEqual(response.fields, {"code": "NOT_FOUND", "id": 999_999})
            self.assertIn("999999", response.message or "")

        def test_delete_removes_the_note_once(self) -> None:
            note = create("Temporary")
            first = call(DeleteNote(id=note["id"]))
            self.assertEqual(first.status_code, 200)
            self.assertEqual(first.fields, {"id": note["id"], "deleted": True})
            self.assertEqual(call(GetNote(id=note["id"])).status_code, 404)
            self.assertEqual(call(DeleteNote(id=note["id"])).status_code, 404)

        def test_list_pages_newest_first_without_gaps_or_repeats(self) -> None:
            ids = [create(f"note {number}")["id"] for number in range(7)]
            seen: list[int] = []
            cursor = 0
            pages = 0
            while True:
                response = call(ListNotes(limit=3, cursor=cursor))
                self.assertEqual(response.status_code, 200)
                items = response.fields["items"]
                self.assertLessEqual(len(items), 3)
                seen.extend(item["id"] for item in items)
                pages += 1
                if response.fields["next_cursor"] is None:
                    break
                cursor = response.fields["next_cursor"]
                self.assertEqual(cursor, items[-1]["id"])
            self.assertEqual(seen, sorted(ids, reverse=True))
            self.assertEqual(pages, 3)

        def test_list_edges(self) -> None:
            empty = call(ListNotes())
            self.assertEqual(empty.fields, {"items": [], "next_cursor": None})
            for number in range(4):
                create(f"note {number}")
            first = call(ListNotes(limit=2))
            second = call(ListNotes(limit=2, cursor=first.fields["next_cursor"]))
            self.assertEqual(len(second.fields["items"]), 2)
            self.assertIsNone(second.fields["next_cursor"])  # an exactly full last page
            everything = call(ListNotes(limit=100))
            self.assertEqual(len(everything.fields["items"]), 4)
            self.assertIsNone(everything.fields["next_cursor"])

        def test_deleting_between_pages_does_not_skip_notes(self) -> None:
            ids = [create(f"note {number}")["id"] for number in range(5)]
            first = call(ListNotes(limit=2))
            call(DeleteNote(id=first.fields["items"][0]["id"]))
            rest = call(ListNotes(limit=10, cursor=first.fields["next_cursor"]))
            self.assertEqual([item["id"] for item in rest.fields["items"]], ids[2::-1])

        def test_concurrent_creates_from_worker_threads(self) -> None:
            with ThreadPoolExecutor(max_workers=8) as pool:
                notes = list(pool.map(lambda number: create(f"parallel {number}"), range(24)))
            self.assertEqual(len({note["id"] for note in notes}), 24)
            self.assertEqual(len(call(ListNotes(limit=100)).fields["items"]), 24)

        def test_end_to_end_through_the_local_hub(self) -> None:
            async def scenario() -> None:
                async with TestClient(NOTE_ACTIONS) as client:
                    created = await client.call("CreateNote", {"title": "Via the hub"})
                    self.assertEqual((created.http_status, created.status_code), (200, 201))
                    note_id = created.fields["id"]
                    fetched = await client.call("GetNote", {"id": note_id})
                    self.assertEqual(fetched.fields["title"], "Via the hub")
                    listed = await client.call("ListNotes", {"limit": 5})
                    self.assertEqual([item["id"] for item in listed.fields["items"]], [note_id])
                    invalid = await client.call("CreateNote", {"title": ""})
                    self.assertEqual((invalid.http_status, invalid.status_code), (400, 400))
                    self.assertIn("title", invalid.message)
                    deleted = await client.call("DeleteNote", {"id": note_id})
                    self.assertEqual(deleted.status_code, 200)
                    missing = await client.call("GetNote", {"id": note_id})
                    self.assertEqual((missing.http_status, missing.status_code), (400, 404))
                    self.assertEqual(missing.fields["code"], "NOT_FOUND")

            asyncio.run(scenario())


class SqliteNotesTest(Behaviours.NotesCase):
    """The notes actions on an SQLite file."""

    @classmethod
    def database_url(cls) -> URL:
        return fresh_sqlite_url(cls)


class PostgresNotesTest(Behaviours.NotesCase):
    """The notes actions on a fresh PostgreSQL database."""

    @classmethod
    def database_url(cls) -> URL:
        return fresh_postgres_url(cls)


if __name__ == "__main__":
    unittest.main()
