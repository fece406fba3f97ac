"""JSON encoding and decoding used on the wire.

One place decides which JSON library the service uses, so the hot path (every frame in and
out) can use a fast encoder without the rest of the code knowing about it. orjson encodes
when it is installed (it is in requirements.txt), with the standard library as the fallback
for what orjson refuses (integers beyond 64 bits). Decoding stays with the standard library:
orjson silently turns integers beyond 64 bits into floats, and a caller's big id must reach
the action exactly.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic_core import to_jsonable_python

try:
    import orjson
except ImportError:  # pragma: no cover - exercised only where orjson is not installed
    orjson = None  # type: ignore[assignment]  # the fallback below needs no orjson


class JSONDecodeFailure(ValueError):
    """Raised when a text is not JSON, or nests deeper than the decoder allows."""


def _fallback(value: Any) -> Any:
    # Pydantic models, datetimes, UUIDs, sets and the like become plain JSON values.
    return to_jsonable_python(value)


# ASCII-only: text orjson refuses (a lone surrogate, from a caller's "\\ud800") is escaped
# rather than left in a string that cannot be encoded as UTF-8 for the socket.
_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, default=_fallback)


_raw_decode = json.JSONDecoder().raw_decode


def loads(text: str | bytes) -> Any:
    """Decode JSON, raising `JSONDecodeFailure` for anything that is not JSON."""
    if type(text) is str:
        # The common case, a frame with nothing around the value, skips json.loads' two
        # whitespace regexes (about 1.5 us a frame); anything else takes json.loads below.
        try:
            value, end = _raw_decode(text)
        except (ValueError, RecursionError):
            pass
        else:
            if end == len(text):
                return value
    try:
        return json.loads(text)
    except (ValueError, RecursionError, TypeError) as error:
        raise JSONDecodeFailure(str(error)[:200]) from None


if orjson is not None:
    _orjson_dumps = orjson.dumps

    def dumps_bytes(value: Any) -> bytes:
        """`dumps` as UTF-8 bytes, as a text frame carries it (orjson makes bytes directly)."""
        try:
            return _orjson_dumps(value, default=_fallback)
        except TypeError:
            return _encoder.encode(value).encode()

else:  # pragma: no cover - exercised only where orjson is not installed

    def dumps_bytes(value: Any) -> bytes:
        """`dumps` as UTF-8 bytes, as a text frame carries it (orjson makes bytes directly)."""
        return _encoder.encode(value).encode()


def dumps(value: Any) -> str:
    """Encode a value as compact JSON (no spaces), converting Pydantic and stdlib types."""
    return dumps_bytes(value).decode()
