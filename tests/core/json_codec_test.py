"""Tests of the wire JSON codec: orjson encodes, pydantic-core decodes, and the standard
library takes over from both wherever they refuse."""

from __future__ import annotations

import datetime
import json
import unittest
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from core import json_codec
from core.model.response import ActionResponse


class CodecTest(unittest.TestCase):
    def test_compact_and_unicode(self) -> None:
        self.assertEqual(json_codec.dumps({"a": [1, "é"]}), '{"a":[1,"é"]}')

    def test_pydantic_and_stdlib_values(self) -> None:
        value = {
            "response": ActionResponse(status_code=201, message="m"),
            "when": datetime.date(2026, 1, 2),
            "id": uuid.UUID(int=1),
            "tags": {"x"},
        }
        decoded = json_codec.loads(json_codec.dumps(value))
        self.assertEqual(decoded["response"]["status_code"], 201)
        self.assertEqual(decoded["when"], "2026-01-02")
        self.assertEqual(decoded["id"], "00000000-0000-0000-0000-000000000001")
        self.assertEqual(decoded["tags"], ["x"])

    def test_values_beyond_orjson_fall_back(self) -> None:
        big = 2**70
        self.assertEqual(json_codec.loads(json_codec.dumps({"n": big})), {"n": big})
        self.assertEqual(
            json_codec.loads("[123456789012345678901234567890]"), [123456789012345678901234567890]
        )

    def test_a_lone_surrogate_is_escaped_so_the_text_encodes_as_utf8(self) -> None:
        text = json_codec.dumps({"t": "\ud800", "é": 1})
        self.assertEqual(json_codec.loads(text.encode()), {"t": "\ud800", "é": 1})

    def test_whitespace_around_the_value_is_allowed(self) -> None:
        for text in (' {"a": 1}', '{"a": 1}\n', '\t{"a": 1} \r\n', b'{"a": 1} '):
            with self.subTest(text=text):
                self.assertEqual(json_codec.loads(text), {"a": 1})

    def test_not_json(self) -> None:
        texts = ("", " ", "{", "nope", "[" * 100_000, b"\xff\xfe", "1 2", '{"a":1}x', "{}{}")
        for text in texts:
            with self.subTest(text=text[:10]), self.assertRaises(json_codec.JSONDecodeFailure):
                json_codec.loads(text)


def _standard(text: str | bytes) -> str:
    """What the standard library makes of `text`: the repr of its value, or "refused"."""
    try:
        return repr(json.loads(text))
    except (ValueError, RecursionError):
        return "refused"


def _ours(text: str | bytes) -> str:
    try:
        return repr(json_codec.loads(text))
    except json_codec.JSONDecodeFailure:
        return "refused"


# JSON values with what sets decoders apart: integers beyond 64 bits, NaN and the infinities,
# floats near the edges, any text (lone surrogates included), empty and nested containers.
_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


class SalvageTest(unittest.TestCase):
    def test_integers_too_long_to_read_become_none_and_are_named(self) -> None:
        text = '{"a": -' + "1" * 4301 + ', "b": [' + "2" * 6000 + '], "c": 3, "d": 1e999}'
        with self.assertRaises(json_codec.JSONDecodeFailure):
            json_codec.loads(text)
        salvaged = json_codec.salvage(text)
        assert salvaged is not None
        self.assertEqual(salvaged.value, {"a": None, "b": [None], "c": 3, "d": float("inf")})
        self.assertEqual(
            salvaged.problem,
            "it holds 2 integers of up to 6,000 digits; at most 4,300 digits are read",
        )

    def test_nothing_to_salvage(self) -> None:
        for text in ('{"a": 1}', "not json", "[" * 100_000, '{"a": 1' + "1" * 5000):
            with self.subTest(text=text[:20]):
                self.assertIsNone(json_codec.salvage(text))

    def test_written_forms_are_what_the_encoders_write_inside_a_value(self) -> None:
        for text in ("ref-1", 'q"\\x', "café", "\x7f", "\ud800"):
            with self.subTest(text=text):
                forms = json_codec.written_forms(text)
                for frame in (
                    json_codec.dumps_bytes({"ref": text}),
                    json_codec.dumps_bytes({"ref": text, "big": 2**70}),  # the fallback
                ):
                    self.assertTrue(any(form in frame for form in forms), (forms, frame))


class DecodesAsTheStandardLibraryTest(unittest.TestCase):
    """`loads` is fast, but accepts exactly what `json.loads` accepts, with the same values."""

    @settings(max_examples=300, deadline=None)
    @given(_values, st.booleans(), st.sampled_from([(",", ":"), (", ", ": ")]))
    def test_any_value_as_any_encoder_writes_it(
        self, value: object, ascii_only: bool, separators: tuple[str, str]
    ) -> None:
        text = json.dumps(value, ensure_ascii=ascii_only, separators=separators)
        self.assertEqual(_ours(text), _standard(text))
        if ascii_only:  # otherwise a lone surrogate cannot be encoded as UTF-8
            self.assertEqual(_ours(text.encode()), _standard(text.encode()))

    @settings(max_examples=300, deadline=None)
    @given(st.text(alphabet='{}[]",:0123456789.eE+-tfnrulasNIiy \t\n\\ud800xé'))
    def test_any_text_is_refused_or_read_alike(self, text: str) -> None:
        self.assertEqual(_ours(text), _standard(text))

    def test_where_the_fast_decoder_parts_ways_the_standard_library_decides(self) -> None:
        texts: list[str | bytes] = [
            '"\\ud800"',  # a lone surrogate escape
            '{"\\ud800":1}',
            "[" * 600 + "]" * 600,  # deeper than pydantic-core's limit, within Python's
            b'\xef\xbb\xbf{"a":1}',  # bytes with a UTF-8 byte order mark
            b'"\xed\xa0\x80"',  # an encoded surrogate in bytes
            '{"\ufeff":1}',
            "\ufeff{}",  # a byte order mark in text: refused by both
            "NaN",
            "-Infinity",
            "1" * 4301,  # beyond the standard library's digit limit: refused by both
            "1e400",
            "[1,]",
            "",
        ]
        for text in texts:
            with self.subTest(text=text[:20]):
                self.assertEqual(_ours(text), _standard(text))
        self.assertEqual(json_codec.loads('"\\ud800"'), "\ud800")
        self.assertEqual(json_codec.loads("[" * 600 + "]" * 600), json.loads("[" * 600 + "]" * 600))


if __name__ == "__main__":
    unittest.main()
