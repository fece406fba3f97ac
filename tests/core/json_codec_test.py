"""Tests of the wire JSON codec (orjson with a standard-library fallback)."""

from __future__ import annotations

import datetime
import unittest
import uuid

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


if __name__ == "__main__":
    unittest.main()
