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
import sys
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Salvaged:
    """What `salvage` read of a JSON text that `loads` refused: `value`, with each integer too
    long to read as None, and `problem`, a sentence saying what was left out."""

    value: Any
    problem: str


def salvage(text: str | bytes) -> Salvaged | None:
    """Read a JSON text that `loads` refused because of integers too long to convert.

    Python refuses to turn a string of more than ``sys.get_int_max_str_digits()`` digits (4,300
    by default) into an int (converting one costs time quadratic in its length), and
    pydantic-core refuses such numbers too, so a text holding one is refused whole. Here those
    integers become None and the rest is read, so that the frame's envelope (its topic, event
    and refs) can still be answered. Returns None when the text still does not decode, or held
    nothing of the kind. Only for the rare path after `loads` failed: it is the slow decoder.
    """
    lengths: list[int] = []

    def parse_int(digits: str) -> int | None:
        try:
            return int(digits)
        except ValueError:
            lengths.append(len(digits.lstrip("-")))
            return None

    try:
        value = json.loads(text, parse_int=parse_int)
    except (ValueError, RecursionError, TypeError):
        return None
    if not lengths:
        return None
    limit = sys.get_int_max_str_digits()
    count = f"{len(lengths)} integers" if len(lengths) > 1 else "an integer"
    return Salvaged(
        value,
        f"it holds {count} of up to {max(lengths):,} digits; at most {limit:,} digits are read",
    )


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


def written_forms(text: str) -> frozenset[bytes]:
    """Each form in which `dumps_bytes` may write the string `text` inside a value: orjson's,
    and the fallback encoder's (which escapes what is not ASCII)."""
    return frozenset((dumps_bytes(text), _encoder.encode(text).encode()))


def dumps(value: Any) -> str:
    """Encode a value as compact JSON (no spaces), converting Pydantic and stdlib types."""
    return dumps_bytes(value).decode()
