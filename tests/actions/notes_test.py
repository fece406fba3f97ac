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
from core import ActionError, ActionResponse, ActionRunner
from core.database import database
from core.execution.responses import ErrorAnswers
from core.testing import TestClient, request_context
from tests.databases import fresh_postgres_url, fresh_sqlite_url

NOTE_ACTIONS: dict[str, type[ActionRunner]] = {
    action.discriminator(): action for action in (CreateNote, GetNote, ListNotes, DeleteNote)
}


def call(action: ActionRunner) -> Any:
    """Run a synchronous action directly, as the framework's worker thread would, and return
    its result as the caller receives it (JSON values)."""
    result = action.run(request_context(action.discriminator()))
    if isinstance(result, ActionResponse):
        result = result.message
    return result.model_dump(mode="json")


def create(title: str, body: str = "") -> dict[str, Any]:
    """Create a note and return it as the caller receives it."""
    response = CreateNote(title=title, body=body).run(request_context("CreateNote"))
    assert response.status_code == 201, response
    note: dict[str, Any] = response.message.model_dump(mode="json")
    return note


def refused(action: ActionRunner) -> ActionError:
    """The error a synchronous action raised."""
    try:
        action.run(request_context(action.discriminator()))
    except ActionError as error:
        return error
    raise AssertionError(f"{action!r} answered without an error")


class NotesValidationTest(unittest.TestCase):
    """Field validation (answered 400 by the framework) and the catalog; no database needed."""

    def assert_invalid(self, action: type[ActionRunner], fields: dict[str, Any], name: str) -> None:
        with self.assertRaises(ValidationError) as caught:
            action.model_validate(fields)
        response = ErrorAnswers().invalid_fields(caught.exception)
        self.assertEqual(response.status_code, 400)
        self.assertIn(name, [problem["field"] for problem in response.message["errors"]])

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
            entry = action.catalog_entry()
            self.assertTrue(entry["description"], name)
            for field, info in entry["fields"].items():
                with self.subTest(action=name, field=field):
                    self.assertTrue(info["description"])
                    self.assertIn(info["type"], ("string", "integer"))

    def test_discovery_finds_the_actions_but_not_the_model(self) -> None:
        from core.model.registry import discover
        from core.settings import PROJECT_ROOT

        found = discover(PROJECT_ROOT / "actions", ActionRunner)
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
            response = CreateNote(title="  Shopping ", body="milk, eggs").run(
                request_context("CreateNote")
            )
            self.assertEqual((response.status_code, response.status), (201, "success"))
            note = response.message.model_dump(mode="json")
            self.assertIsInstance(note["id"], int)
            self.assertEqual((note["title"], note["body"]), ("Shopping", "milk, eggs"))
            created = datetime.fromisoformat(note["created_at"])
            self.assertEqual(created.utcoffset(), timedelta(0))
            self.assertLess(abs(created - before), timedelta(seconds=5))

        def test_get_returns_what_create_returned(self) -> None:
            note = create("Read me", "body text")
            self.assertEqual(call(GetNote(id=note["id"])), note)

        def test_get_missing_is_404(self) -> None:
            error = refused(GetNote(id=999_999))
            self.assertEqual((error.status_code, error.code), (404, "NOT_FOUND"))
            self.assertEqual(error.details, {"id": 999_999})
            self.assertIn("999999", error.error)

        def test_delete_removes_the_note_once(self) -> None:
            note = create("Temporary")
            first = call(DeleteNote(id=note["id"]))
            self.assertEqual(first, {"id": note["id"], "deleted": True})
            self.assertEqual(refused(GetNote(id=note["id"])).status_code, 404)
            self.assertEqual(refused(DeleteNote(id=note["id"])).status_code, 404)

        def test_list_pages_newest_first_without_gaps_or_repeats(self) -> None:
            ids = [create(f"note {number}")["id"] for number in range(7)]
            seen: list[int] = []
            cursor = 0
            pages = 0
            while True:
                page = call(ListNotes(limit=3, cursor=cursor))
                items = page["items"]
                self.assertLessEqual(len(items), 3)
                seen.extend(item["id"] for item in items)
                pages += 1
                if page["next_cursor"] is None:
                    break
                cursor = page["next_cursor"]
                self.assertEqual(cursor, items[-1]["id"])
            self.assertEqual(seen, sorted(ids, reverse=True))
            self.assertEqual(pages, 3)

        def test_list_edges(self) -> None:
            empty = call(ListNotes())
            self.assertEqual(empty, {"items": [], "next_cursor": None})
            for number in range(4):
                create(f"note {number}")
            first = call(ListNotes(limit=2))
            second = call(ListNotes(limit=2, cursor=first["next_cursor"]))
            self.assertEqual(len(second["items"]), 2)
            self.assertIsNone(second["next_cursor"])  # an exactly full last page
            everything = call(ListNotes(limit=100))
            self.assertEqual(len(everything["items"]), 4)
            self.assertIsNone(everything["next_cursor"])

        def test_deleting_between_pages_does_not_skip_notes(self) -> None:
            ids = [create(f"note {number}")["id"] for number in range(5)]
            first = call(ListNotes(limit=2))
            call(DeleteNote(id=first["items"][0]["id"]))
            rest = call(ListNotes(limit=10, cursor=first["next_cursor"]))
            self.assertEqual([item["id"] for item in rest["items"]], ids[2::-1])

        def test_concurrent_creates_from_worker_threads(self) -> None:
            with ThreadPoolExecutor(max_workers=8) as pool:
                notes = list(pool.map(lambda number: create(f"parallel {number}"), range(24)))
            self.assertEqual(len({note["id"] for note in notes}), 24)
            self.assertEqual(len(call(ListNotes(limit=100))["items"]), 24)

        def test_end_to_end_through_the_local_hub(self) -> None:
            async def scenario() -> None:
                async with TestClient(NOTE_ACTIONS) as client:
                    created = await client.call("CreateNote", {"title": "Via the hub"})
                    self.assertEqual(created.http_status, 200)
                    assert created.action_response is not None
                    self.assertEqual(created.action_response.status_code, 201)
                    note_id = created.message["id"]
                    fetched = await client.call("GetNote", {"id": note_id})
                    self.assertEqual(fetched.message, created.message)
                    listed = await client.call("ListNotes", {"limit": 5})
                    self.assertEqual([item["id"] for item in listed.message["items"]], [note_id])
                    invalid = await client.call("CreateNote", {"title": ""})
                    self.assertEqual(invalid.http_status, 400)
                    self.assertEqual(invalid.message["errors"][0]["field"], "title")
                    deleted = await client.call("DeleteNote", {"id": note_id})
                    self.assertEqual(deleted.message, {"id": note_id, "deleted": True})
                    missing = await client.call("GetNote", {"id": note_id})
                    self.assertEqual(missing.http_status, 400)
                    self.assertEqual(
                        missing.message,
                        {
                            "code": "NOT_FOUND",
                            "error": f"note {note_id} not found",
                            "retryable": False,
                            "id": note_id,
                        },
                    )

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
