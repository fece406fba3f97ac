"""The `Note` model behind the example notes actions (table ``notes``, migration 0001)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from core.database import Base

TITLE_MAX_LENGTH = 200
BODY_MAX_LENGTH = 10_000


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """A datetime in UTC; SQLite hands back naive values, which were stored as UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class Note(Base):
    """A note: a title, a body and when it was created."""

    __tablename__ = "notes"
    # Never reuse the id of a deleted note on SQLite: ids are the pagination cursor.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(TITLE_MAX_LENGTH))
    body: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utc_now, server_default=func.now()
    )

    def to_dict(self) -> dict[str, Any]:
        """The note as plain JSON values (``created_at`` in ISO 8601, UTC)."""
        return {
            "id": self.id,
            "title": self.title,
            "body": self.body,
            "created_at": as_utc(self.created_at).isoformat(),
        }
