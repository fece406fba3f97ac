"""Tests of the Phoenix framing (no sockets)."""

from __future__ import annotations

import json
import unittest

from core.hub.channel import reply_parts
from core.hub.phoenix import (
    FrameError,
    Message,
    RefCounter,
    V1Serializer,
    V2Serializer,
    serializer_for,
)


class V1SerializerTest(unittest.TestCase):
    def setUp(self) -> None:
        self.serializer = V1Serializer()

    def test_encodes_an_object_with_the_four_keys(self) -> None:
        frame = self.serializer.encode(Message("service", "phx_join", {}, ref="1"))
        self.assertEqual(
            json.loads(frame), {"topic": "service", "event": "phx_join", "payload": {}, "ref": "1"}
        )
        self.assertNotIn(" ", frame)

    def test_join_ref_is_sent_only_when_set(self) -> None:
        frame = self.serializer.encode(Message("service", "response", {}, "abc", join_ref="3"))
        self.assertEqual(json.loads(frame)["join_ref"], "3")

    def test_round_trip(self) -> None:
        message = Message("service", "request", {"action": "Echo", "fields": {"a": [1]}}, None)
        self.assertEqual(self.serializer.decode(self.serializer.encode(message)), message)

    def test_integer_refs_become_strings(self) -> None:
        decoded = self.serializer.decode('{"topic":"t","event":"e","payload":{},"ref":7}')
        self.assertEqual(decoded.ref, "7")

    def test_rejects_what_is_not_a_v1_message(self) -> None:
        for frame in (
            "not json",
            "[1,2,3,4,5]",
            '"a string"',
            "null",
            '{"event":"e"}',
            '{"topic":"t"}',
            '{"topic":1,"event":"e"}',
            '{"topic":"t","event":"e","ref":{}}',
            '{"topic":"t","event":"e","ref":true}',
            b'{"topic":"t","event":"e"}',
            "[" * 100_000 + "]" * 100_000,
        ):
            with self.subTest(frame=frame[:40]), self.assertRaises(FrameError):
                self.serializer.decode(frame)


class V2SerializerTest(unittest.TestCase):
    def setUp(self) -> None:
        self.serializer = V2Serializer()

    def test_encodes_a_five_element_array(self) -> None:
        frame = self.serializer.encode(Message("phoenix", "heartbeat", {}, ref="4"))
        self.assertEqual(json.loads(frame), [None, "4", "phoenix", "heartbeat", {}])

    def test_round_trip_keeps_join_ref(self) -> None:
        message = Message("service", "response", {"status": "success"}, "r", join_ref="1")
        self.assertEqual(self.serializer.decode(self.serializer.encode(message)), message)

    def test_rejects_objects_and_wrong_lengths(self) -> None:
        for frame in ('{"topic":"t","event":"e"}', "[1,2,3,4]", '[null,null,"t","e",{},1]'):
            with self.subTest(frame=frame), self.assertRaises(FrameError):
                self.serializer.decode(frame)


class HelpersTest(unittest.TestCase):
    def test_serializer_for_versions(self) -> None:
        self.assertIsInstance(serializer_for("1.0.0"), V1Serializer)
        self.assertIsInstance(serializer_for("2.0.0"), V2Serializer)
        with self.assertRaises(ValueError):
            serializer_for("3.0.0")

    def test_encode_bytes_is_the_utf8_of_encode(self) -> None:
        message = Message("service", "response", {"text": "café", "odd": "\ud800"}, "7", "1")
        for serializer in (V1Serializer(), V2Serializer()):
            with self.subTest(version=serializer.version):
                frame = serializer.encode_bytes(message)
                self.assertEqual(frame, serializer.encode(message).encode())
                self.assertEqual(serializer.decode(frame.decode()), message)

    def test_refs_increase(self) -> None:
        refs = RefCounter()
        self.assertEqual([refs.next() for _ in range(3)], ["1", "2", "3"])

    def test_reply_parts(self) -> None:
        ok = Message("service", "phx_reply", {"status": "ok", "response": {"a": 1}}, "1")
        self.assertEqual(reply_parts(ok), ("ok", {"a": 1}))
        self.assertEqual(reply_parts(Message("s", "phx_reply", [1], "1")), (None, None))
        self.assertEqual(reply_parts(Message("s", "phx_reply", {"status": 3}, "1")), (None, None))


if __name__ == "__main__":
    unittest.main()
