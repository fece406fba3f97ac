"""Example actions backed by the database: a small notes store.

They show the recommended pattern for database work: a plain (synchronous) ``run()``, which
the framework runs in a worker thread, using ``database.transaction()``. The database is
initialized and migrated at start-up; should an action run first (a test, a script),
``transaction()`` initializes it on first use.

Invalid fields never reach ``run()``: Pydantic rejects them when the request is validated,
and the service answers 400. A missing note is answered 404 with ``{"code": "NOT_FOUND"}``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints
from sqlalchemy import delete, select
from typing_extensions import override

from actions.notes_model import BODY_MAX_LENGTH, TITLE_MAX_LENGTH, Note
from core import ActionResponse, ActionRunner, Context
from core.database import database

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20

NoteId = Annotated[int, Field(ge=1, description="The note's id, as returned by CreateNote")]


def not_found(note_id: int) -> ActionResponse:
    """The 404 answer for a note that does not exist."""
    return ActionResponse(
        status_code=404,
        message=f"note {note_id} not found",
        fields={"code": "NOT_FOUND", "id": note_id},
    )


class CreateNote(ActionRunner):
    """Stores a new note and returns it with its id."""

    title: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX_LENGTH),
    ] = Field(description=f"The title: 1 to {TITLE_MAX_LENGTH} characters, trimmed")
    body: str = Field(
        default="",
        max_length=BODY_MAX_LENGTH,
        description=f"The text of the note, up to {BODY_MAX_LENGTH} characters",
    )

    @classmethod
    @override
    def description(cls) -> str:
        return "Creates a note and returns it, with its id and creation time"

    @override
    def run(self, ctx: Context) -> ActionResponse:
        with database.transaction() as session:
            note = Note(title=self.title, body=self.body)
            session.add(note)
            session.flush()
            fields = note.to_dict()
        ctx.logger.info("created note %d", fields["id"])
        return ActionResponse(status_code=201, message="note created", fields=fields)


class GetNote(ActionRunner):
    """Returns one note by id."""

    id: NoteId

    @classmethod
    @override
    def description(cls) -> str:
        return "Returns the note with the given id (404 when there is none)"

    @override
    def run(self, ctx: Context) -> ActionResponse:
        with database.session() as session:
            note = session.get(Note, self.id)
            if note is None:
                return not_found(self.id)
            return ActionResponse(status_code=200, message="ok", fields=note.to_dict())


class ListNotes(ActionRunner):
    """Lists notes newest first, one page at a time.

    Pagination is by cursor (keyset): pass the previous page's ``next_cursor`` to get the next
    page. Unlike an offset, a cursor neither skips nor repeats notes when other replicas create
    or delete notes between two pages.
    """

    limit: int = Field(
        default=DEFAULT_PAGE_SIZE,
        ge=1,
        le=MAX_PAGE_SIZE,
        description=f"How many notes per page, 1 to {MAX_PAGE_SIZE}",
    )
    cursor: int = Field(
        default=0,
        ge=0,
        description="The next_cursor of the previous page; 0 (the default) for the first page",
    )

    @classmethod
    @override
    def description(cls) -> str:
        return "Lists notes newest first; returns items and the next page's cursor (or null)"

    @override
    def run(self, ctx: Context) -> ActionResponse:
        query = select(Note).order_by(Note.id.desc()).limit(self.limit + 1)
        if self.cursor:
            query = query.where(Note.id < self.cursor)
        with database.session() as session:
            notes = list(session.scalars(query))
        page = notes[: self.limit]
        next_cursor = page[-1].id if len(notes) > self.limit else None
        return ActionResponse(
            status_code=200,
            message="ok",
            fields={"items": [note.to_dict() for note in page], "next_cursor": next_cursor},
        )


class DeleteNote(ActionRunner):
    """Deletes one note by id."""

    id: NoteId

    @classmethod
    @override
    def description(cls) -> str:
        return "Deletes the note with the given id (404 when there is none)"

    @override
    def run(self, ctx: Context) -> ActionResponse:
        # One DELETE statement: two replicas deleting the same note cannot both succeed.
        with database.transaction() as session:
            deleted = session.execute(
                delete(Note).where(Note.id == self.id).returning(Note.id)
            ).scalar_one_or_none()
        if deleted is None:
            return not_found(self.id)
        return ActionResponse(
            status_code=200, message="note deleted", fields={"id": self.id, "deleted": True}
        )
