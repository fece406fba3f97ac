"""Example actions backed by the database: a small notes store.

They show the recommended pattern for database work: a plain (synchronous) ``run()``, which
the framework runs in a worker thread, using ``database.transaction()``. The database is
initialized and migrated at start-up; should an action run first (a test, a script),
``transaction()`` initializes it on first use.

Invalid fields never reach ``run()``: Pydantic rejects them when the request is validated,
and the service answers 400. Each action's result is a Pydantic model (what callers receive);
a missing note is answered 404 by raising ``ActionError``, which callers receive as
``{"code": "NOT_FOUND", "error": "note 7 not found", "retryable": false, "id": 7}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy import delete, select
from typing_extensions import override

from actions.notes_model import BODY_MAX_LENGTH, TITLE_MAX_LENGTH, Note
from core import ActionError, ActionResponse, ActionRunner, Context
from core.database import database

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20

NoteId = Annotated[int, Field(ge=1, description="The note's id, as returned by CreateNote")]


class NoteView(BaseModel):
    """A note as callers receive it."""

    id: int = Field(description="The note's id")
    title: str = Field(description="The title")
    body: str = Field(description="The text of the note")
    created_at: datetime = Field(description="When it was created (UTC)")

    @classmethod
    def of(cls, note: Note) -> NoteView:
        """The view of a stored note."""
        return cls.model_validate(note.to_dict())


class NotesPage(BaseModel):
    """One page of ListNotes."""

    items: list[NoteView] = Field(description="The notes, newest first")
    next_cursor: int | None = Field(description="The cursor of the next page; null on the last")


class DeletedNote(BaseModel):
    """DeleteNote's result."""

    id: int = Field(description="The deleted note's id")
    deleted: bool = Field(description="Always true: a missing note is answered 404")


def not_found(note_id: int) -> ActionError:
    """The 404 error for a note that does not exist."""
    return ActionError(404, f"note {note_id} not found", id=note_id)


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
    def run(self, ctx: Context) -> ActionResponse[NoteView]:
        with database.transaction() as session:
            note = Note(title=self.title, body=self.body)
            session.add(note)
            session.flush()
            view = NoteView.of(note)
        ctx.logger.info("created note %d", view.id)
        # A status code of its own (201): the result travels in an ActionResponse.
        return ActionResponse(status_code=201, message=view)


class GetNote(ActionRunner):
    """Returns one note by id."""

    id: NoteId

    @classmethod
    @override
    def description(cls) -> str:
        return "Returns the note with the given id (404 when there is none)"

    @override
    def run(self, ctx: Context) -> NoteView:
        with database.session() as session:
            note = session.get(Note, self.id)
            if note is None:
                raise not_found(self.id)
            return NoteView.of(note)


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
    def run(self, ctx: Context) -> NotesPage:
        query = select(Note).order_by(Note.id.desc()).limit(self.limit + 1)
        if self.cursor:
            query = query.where(Note.id < self.cursor)
        with database.session() as session:
            notes = list(session.scalars(query))
            page = notes[: self.limit]
            next_cursor = page[-1].id if len(notes) > self.limit else None
            return NotesPage(items=[NoteView.of(note) for note in page], next_cursor=next_cursor)


class DeleteNote(ActionRunner):
    """Deletes one note by id."""

    id: NoteId

    @classmethod
    @override
    def description(cls) -> str:
        return "Deletes the note with the given id (404 when there is none)"

    @override
    def run(self, ctx: Context) -> DeletedNote:
        # One DELETE statement: two replicas deleting the same note cannot both succeed.
        with database.transaction() as session:
            deleted = session.execute(
                delete(Note).where(Note.id == self.id).returning(Note.id)
            ).scalar_one_or_none()
        if deleted is None:
            raise not_found(self.id)
        return DeletedNote(id=self.id, deleted=True)
