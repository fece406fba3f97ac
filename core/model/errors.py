"""`ActionError`: how an action answers with an error its caller can act on."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Final


class ActionError(Exception):
    """Raise from ``run()`` to answer the caller with an error instead of a result.

    ``raise ActionError(404, "note 7 not found")`` answers with status code 404; the caller
    receives ``{"code": "NOT_FOUND", "error": "note 7 not found", "retryable": false}`` as
    the message (the code is the status's name unless given), or the plain sentence when
    the service runs with ``ERROR_FORMAT=text``. `retryable` tells the caller whether the
    same request may succeed if sent again; `details` are added to the error object (JSON
    values; never put secrets there: the caller sees them).
    """

    def __init__(
        self,
        status_code: int,
        error: str,
        *,
        code: str | None = None,
        retryable: bool = False,
        **details: Any,
    ) -> None:
        if not 400 <= status_code <= 599:
            raise ValueError(f"an ActionError's status code is 400 to 599, not {status_code}")
        super().__init__(error)
        self.status_code = status_code
        self.error = error
        self.code = code if code is not None else status_name(status_code)
        self.retryable = retryable
        self.details = details


# RFC 9110 renamed these statuses; Python's `HTTPStatus` follows the new names only from 3.13.
# A code is part of the answer a caller's program reads, so it must not depend on the
# interpreter that runs the replica: the RFC 9110 name is used on every version.
RFC_9110_NAMES: Final = {
    413: "CONTENT_TOO_LARGE",
    414: "URI_TOO_LONG",
    416: "RANGE_NOT_SATISFIABLE",
    422: "UNPROCESSABLE_CONTENT",
}


def status_name(status_code: int) -> str:
    """The RFC 9110 name of a status code in upper snake case (``NOT_FOUND``), or ``ERROR``."""
    if status_code in RFC_9110_NAMES:
        return RFC_9110_NAMES[status_code]
    try:
        return HTTPStatus(status_code).name
    except ValueError:
        return "ERROR"
