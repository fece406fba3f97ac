"""JSON written byte for byte as the real hub's HTTP front writes it.

The hub decodes a consumer's payload into Elixir terms and encodes its answer again with
Jason, so what a caller receives is not the consumer's text but Jason's rendering of it:

* object keys in Erlang's term order, which for binaries is byte order, for objects of up
  to 32 keys (a larger Elixir map iterates in its internal hash order, which this module
  does not reproduce: it sorts those too);
* no spaces; strings as UTF-8 with only ``"``, ``\\`` and control characters escaped
  (``\\n`` and the like by name, others as ``\\u00XX`` in upper case), ``/`` and non-ASCII
  left as they are;
* floats as Erlang's shortest round-trip form: ``1.0``, ``0.1``, ``1.0e16``, ``1.0e-7``
  (whichever of the plain and the exponent form is shorter, the exponent form from 2**53),
  and integers of any size as they are.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f"}
_ESCAPES["\r"] = "\\r"
for _code in range(0x20):
    _ESCAPES.setdefault(chr(_code), f"\\u{_code:04X}")
_TRANSLATION = str.maketrans(_ESCAPES)
# Beyond this magnitude Erlang writes every float with an exponent.
_EXACT_INTEGERS = float(2**53)


def dumps(value: Any) -> bytes:
    """`value` (what a JSON decoder returns) as the hub's front encodes it."""
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts).encode()


def _write(value: Any, parts: list[str]) -> None:
    if value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif isinstance(value, str):
        parts.append(f'"{value.translate(_TRANSLATION)}"')
    elif isinstance(value, int):
        parts.append(str(value))
    elif isinstance(value, float):
        parts.append(erlang_float(value))
    elif isinstance(value, dict):
        parts.append("{")
        for index, key in enumerate(sorted(value, key=lambda key: str(key).encode())):
            if index:
                parts.append(",")
            _write(str(key), parts)
            parts.append(":")
            _write(value[key], parts)
        parts.append("}")
    elif isinstance(value, list | tuple):
        parts.append("[")
        for index, item in enumerate(value):
            if index:
                parts.append(",")
            _write(item, parts)
        parts.append("]")
    else:
        raise TypeError(f"not a JSON value: {type(value).__name__}")


def erlang_float(number: float) -> str:
    """`number` in the shortest form that reads back exactly, as the hub's Erlang/OTP
    writes it for Jason (``io_lib_format:fwrite_g``)."""
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError("JSON has no NaN or infinity")
    if number == 0:
        return "-0.0" if str(number).startswith("-") else "0.0"
    sign = "-" if number < 0 else ""
    # Python's repr is the shortest round-trip form too: the same digits, and the position
    # of the decimal point relative to them, are what Erlang's formatting starts from.
    exact = Decimal(repr(abs(number))).normalize().as_tuple()
    digits = "".join(str(digit) for digit in exact.digits)
    point = int(exact.exponent) + len(digits)
    return sign + _insert_decimal(point, digits, abs(number))


def _insert_decimal(point: int, digits: str, magnitude: float) -> str:
    """The digits with the decimal point placed `point` digits from their start, written
    plainly or with an exponent, whichever is shorter."""
    length = len(digits)
    if point == 0:
        return "0." + digits
    if 0 < point < length:
        return f"{digits[:point]}.{digits[point:]}"
    exponent_text = str(point - 1)
    exponent_cost = len(exponent_text) + 1 + (2 if length == 1 else 1)
    if point < 0:
        if 2 - point <= exponent_cost:
            return "0." + "0" * -point + digits
    elif point - length + 2 <= exponent_cost and magnitude < _EXACT_INTEGERS:
        return digits + "0" * (point - length) + ".0"
    if length == 1:
        return f"{digits}.0e{exponent_text}"
    return f"{digits[0]}.{digits[1:]}e{exponent_text}"
