"""`ActionResponse`: what an action returns and what the hub receives."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ActionResponse(BaseModel):
    """The result of an action: an HTTP-like status code, a message and any JSON value."""

    status_code: int = Field(default=200, description="HTTP-style status code")
    message: str | None = Field(default=None, description="A human-readable message")
    fields: Any = Field(default=None, description="The response data: any JSON value")

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
