"""The answers the framework gives itself: invalid requests, refusals and internal errors.

A caller of the hub sees only ``status`` and ``message``, and every error status as HTTP 400
(protocol page, section 5), so a program can branch on an error only by what the message
says. With ``ERROR_FORMAT=object`` (the default) the message is an error object::

    {"code": "INVALID_FIELDS", "error": "Invalid fields: times: ...", "retryable": false,
     "errors": [{"field": "times", "message": "...", "type": "greater_than_equal"}]}

``code`` is stable (the table in `CODES`), ``error`` a sentence for people, ``retryable``
whether the same request may succeed if sent again, and some codes carry details
(``errors`` and, past `MAX_LISTED_ERRORS` of them, ``more_errors``; ``error_id``). With
``ERROR_FORMAT=text`` the message is the sentence alone, as the seed sent it, and the object
travels in ``fields`` (which callers never receive).
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from pydantic import ValidationError

from core.model.errors import ActionError
from core.model.response import ActionResponse
from core.redaction import truncate
from core.settings import ERROR_FORMATS

INVALID_FIELDS: Final = "INVALID_FIELDS"
INVALID_REQUEST: Final = "INVALID_REQUEST"
UNKNOWN_ACTION: Final = "UNKNOWN_ACTION"
INTERNAL_ERROR: Final = "INTERNAL_ERROR"
SHUTTING_DOWN: Final = "SHUTTING_DOWN"
OVERLOADED: Final = "OVERLOADED"
TIMEOUT: Final = "TIMEOUT"
# The framework's codes: (status code, retryable, what it means).
CODES: Final = {
    INVALID_FIELDS: (400, False, "the fields failed validation; `errors` says which and why"),
    INVALID_REQUEST: (
        400,
        False,
        "the request is malformed (action or fields of a wrong type, or a frame that could not "
        "be decoded)",
    ),
    UNKNOWN_ACTION: (404, False, "the service has no action of that name"),
    INTERNAL_ERROR: (500, False, "the action failed; `error_id` finds the details in the log"),
    SHUTTING_DOWN: (503, True, "the replica was stopping; another one can take the request"),
    OVERLOADED: (
        503,
        True,
        "the replica had MAX_WAITING_REQUESTS requests waiting for a concurrency slot already",
    ),
    TIMEOUT: (504, True, "the action ran past its time limit (it may have run in part)"),
}


# An INVALID_FIELDS answer lists at most this many errors (and says how many more there were),
# each cut to the lengths below: a request of a few kilobytes can fail validation in thousands
# of places, and the answer must stay in proportion to it.
MAX_LISTED_ERRORS: Final = 20
MAX_FIELD_CHARS: Final = 200
MAX_MESSAGE_CHARS: Final = 300


class ErrorAnswers:
    """Builds the framework's error answers in the configured `ERROR_FORMAT`."""

    def __init__(self, error_format: str = "object") -> None:
        if error_format not in ERROR_FORMATS:
            raise ValueError(f"error_format must be one of {ERROR_FORMATS}, not {error_format!r}")
        self.objects = error_format == "object"

    def answer(
        self, status_code: int, code: str, error: str, retryable: bool, **details: Any
    ) -> ActionResponse:
        """An error answer: the object as the message, or the sentence with the object in
        `fields`."""
        body: dict[str, Any] = {"code": code, "error": error, "retryable": retryable, **details}
        if self.objects:
            return ActionResponse(status_code=status_code, message=body)
        return ActionResponse(status_code=status_code, message=error, fields=body)

    def framework(self, code: str, error: str, **details: Any) -> ActionResponse:
        """One of the framework's own errors (`CODES`)."""
        status_code, retryable, _ = CODES[code]
        return self.answer(status_code, code, error, retryable, **details)

    def invalid_fields(self, error: ValidationError) -> ActionResponse:
        """A 400 naming each invalid field and why, without echoing the input: the first
        `MAX_LISTED_ERRORS` errors, each cut to length, and ``more_errors``, the count of
        the others, when there were more."""
        items = error.errors(include_input=False, include_url=False, include_context=False)
        problems = [
            {
                "field": truncate(".".join(str(part) for part in item["loc"]), MAX_FIELD_CHARS)
                or "(fields)",
                "message": truncate(item["msg"], MAX_MESSAGE_CHARS),
                "type": truncate(item["type"], MAX_FIELD_CHARS),
            }
            for item in items[:MAX_LISTED_ERRORS]
        ]
        summary = "; ".join(f"{problem['field']}: {problem['message']}" for problem in problems)
        more = len(items) - len(problems)
        if not more:
            return self.framework(INVALID_FIELDS, f"Invalid fields: {summary}", errors=problems)
        return self.framework(
            INVALID_FIELDS,
            f"Invalid fields: {summary}; and {more} more",
            errors=problems,
            more_errors=more,
        )

    def internal_error(self) -> tuple[str, ActionResponse]:
        """A new error id and the 500 that names it (the log holds the details under it)."""
        error_id = uuid.uuid4().hex[:12]
        return error_id, self.framework(
            INTERNAL_ERROR, f"Internal error (error id {error_id})", error_id=error_id
        )

    def action_error(self, error: ActionError) -> ActionResponse:
        """The answer to an `ActionError` the action raised."""
        return self.answer(
            error.status_code, error.code, error.error, error.retryable, **error.details
        )
