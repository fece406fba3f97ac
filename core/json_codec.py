"""JSON encoding and decoding used on the wire.

One place decides which JSON library the service uses, so the hot path (every frame in and
out) can use a fast encoder without the rest of the code knowing about it.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic_core import to_jsonable_python


class JSONDecodeFailure(ValueError):
    """Raised when a text is not JSON, or nests deeper than the decoder allows."""


def _fallback(value: Any) -> Any:
    # Pydantic models, datetimes, UUIDs, sets and the like become plain JSON values.
    return to_jsonable_python(value)


def dumps(value: Any) -> str:
    """Encode a value as compact JSON (no spaces), converting Pydantic and stdlib types."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_fallback)


def loads(text: str | bytes) -> Any:
    """Decode JSON, raising `JSONDecodeFailure` for anything that is not JSON."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError, TypeError) as error:
        raise JSONDecodeFailure(str(error)[:200]) from None
