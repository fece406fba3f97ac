"""The answers the framework gives itself: invalid fields (400), refusals and internal errors."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError

from core.model.response import ActionResponse


def validation_response(error: ValidationError) -> ActionResponse:
    """A 400 response naming each invalid field and why, without echoing the input."""
    problems = [
        {
            "field": ".".join(str(part) for part in item["loc"]) or "(fields)",
            "message": item["msg"],
            "type": item["type"],
        }
        for item in error.errors(include_input=False, include_url=False, include_context=False)
    ]
    summary = "; ".join(f"{problem['field']}: {problem['message']}" for problem in problems)
    return ActionResponse(
        status_code=400, message=f"Invalid fields: {summary}", fields={"errors": problems}
    )


def error_response(status_code: int, message: str, **fields: Any) -> ActionResponse:
    """A response for a request the framework answers itself."""
    return ActionResponse(status_code=status_code, message=message, fields=fields or None)


def internal_error() -> tuple[str, ActionResponse]:
    """A new error id and the 500 that names it (the log holds the details under that id)."""
    error_id = uuid.uuid4().hex[:12]
    return error_id, error_response(500, f"Internal error (error id {error_id})", error_id=error_id)
