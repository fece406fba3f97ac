"""JSON encoding and decoding used on the wire.

One place decides which JSON library the service uses, so the hot path (every frame in and
out) can use a fast encoder without the rest of the code knowing about it. orjson encodes
when it is installed (it is in requirements.txt), with the standard library as the fallback
for what orjson refuses (integers beyond 64 bits).

Decoding is pydantic-core's `from_json` (already installed with Pydantic), at under half the
standard library's cost per frame, with the standard library deciding whatever it refuses.
orjson is not used here: it silently turns integers beyond 64 bits into floats, and a
caller's big id must reach the action exactly. `from_json` keeps them exact, reads ``NaN``
and ``Infinity`` as the standard library does, and refuses rather than differs where the two
part ways (a lone surrogate escape, nesting deeper than its limit, a UTF-8 BOM or encoded
surrogates in bytes), so what `loads` accepts and returns is the standard library's.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic_core import from_json, to_jsonable_python

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


def loads(text: str | bytes) -> Any:
    """Decode JSON, raising `JSONDecodeFailure` for anything that is not JSON."""
    try:
        # Only dict keys are cached: a caller's values are not kept in a process-wide cache.
        return from_json(text, cache_strings="keys")
    except (ValueError, TypeError):
        pass  # refused: the standard library decodes it, or raises
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
