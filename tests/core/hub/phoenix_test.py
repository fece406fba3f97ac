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
from core.json_codec import Salvaged


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


BIG = "9" * 5000  # more digits than Python converts to an int


class SalvageTest(unittest.TestCase):
    """A frame refused only for its too-long integers is read as far as its envelope."""

    def test_both_serializers_keep_the_envelope_and_wrap_the_payload(self) -> None:
        payload = f'{{"action":"Echo","fields":{{"n":{BIG}}},"response_ref":"r1"}}'
        frames = {
            V1Serializer(): f'{{"topic":"service","event":"request","payload":{payload},'
            f'"ref":null,"join_ref":"3"}}',
            V2Serializer(): f'["3",null,"service","request",{payload}]',
        }
        for serializer, frame in frames.items():
            with self.subTest(version=serializer.version):
                with self.assertRaises(FrameError):
                    serializer.decode(frame)
                message = serializer.salvage(frame)
                assert message is not None
                self.assertEqual(
                    (message.topic, message.event, message.ref, message.join_ref),
                    ("service", "request", None, "3"),
                )
                salvaged = message.payload
                self.assertIsInstance(salvaged, Salvaged)
                self.assertEqual(
                    salvaged.value, {"action": "Echo", "fields": {"n": None}, "response_ref": "r1"}
                )
                self.assertIn("an integer of up to 5,000 digits", salvaged.problem)

    def test_what_cannot_be_salvaged_is_none(self) -> None:
        cases = {
            V1Serializer(): (
                "not json",
                "[" * 100_000 + "]" * 100_000,
                f"[{BIG}]",
                f'{{"topic":{BIG},"event":"e"}}',
                '{"topic":"t","event":"e","payload":{}}',  # decodes: nothing to salvage
                f'{{"topic":"t","event":"e","payload":{BIG}'.encode(),
            ),
            V2Serializer(): (f'{{"a":{BIG}}}', f"[null,null,{BIG},{BIG}]"),
        }
        for serializer, frames in cases.items():
            for frame in frames:
                with self.subTest(version=serializer.version, frame=frame[:30]):
                    self.assertIsNone(serializer.salvage(frame))


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
