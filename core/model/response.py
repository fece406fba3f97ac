"""`ActionResponse`: an action's answer with its status code, and its wire payload."""

from __future__ import annotations

from typing import Any, Generic

from pydantic import Field
from typing_extensions import TypeVar

from core.model.schema import ActionSchema

# What `message` holds: any JSON value unless the class is parametrized
# (``ActionResponse[Note]``), in which case a successful answer's message is a `Note`.
MessageT = TypeVar("MessageT", default=Any)


class ActionResponse(ActionSchema, Generic[MessageT]):
    """An action's answer: an HTTP-like status code, a message and the seed's `fields`.

    The hub's HTTP front forwards ``status`` (from the status code) and ``message`` to the
    caller, and nothing else (protocol page, section 5): `message` is the only channel
    through which data reaches a caller, and it may be any JSON value. `fields` keeps the
    seed's wire format for seed-style actions; callers never see it. Most actions return
    their result directly instead (``async def run(self, ctx) -> Note``) and need this class
    only for a status code of their own: ``ActionResponse[Note](status_code=201,
    message=note)``.
    """

    status_code: int = Field(default=200, description="HTTP-style status code")
    message: MessageT | None = Field(
        default=None, description="What the caller receives: any JSON value"
    )
    fields: Any = Field(
        default=None, description="Data kept in the seed's wire format; never sent to callers"
    )

    @classmethod
    def description(cls) -> str:
        """What this schema is."""
        return "The answer an action's run() returns: a status code, a message and fields"

    @property
    def status(self) -> str:
        """``"success"`` for a 2xx status code, ``"error"`` otherwise (read by the hub)."""
        return "success" if 200 <= self.status_code < 300 else "error"

    def to_payload(self) -> dict[str, Any]:
        """The payload of the ``response`` message sent to the hub."""
        code = self.status_code
        return {
            "status": "success" if 200 <= code < 300 else "error",
            "status_code": code,
            "message": self.message,
            "fields": self.fields,
        }
