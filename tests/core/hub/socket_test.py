"""The socket's heartbeat and routing, with a fake clock and a recording wire."""

from __future__ import annotations

import logging
import unittest

from core.hub.phoenix import Message, V1Serializer
from core.hub.socket import PhoenixSocket
from core.json_codec import Salvaged
from tests.core.hub.channel_test import Listener
from tests.fakes import FakeClock, FakeWire, LinkEvents


class SocketTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = FakeClock()
        self.serializer = V1Serializer()
        self.link = LinkEvents()
        self.socket = PhoenixSocket(
            self.clock, self.serializer, self.link, heartbeat_interval=30.0, probe_interval=0.05
        )
        self.wire = FakeWire(self.serializer)
        self.socket.connection_made(self.wire)

    def heartbeats(self) -> list[Message]:
        return [m for m in self.wire.sent if m.event == "heartbeat"]

    def answer(self, ref: str | None) -> None:
        reply = Message("phoenix", "phx_reply", {"status": "ok", "response": {}}, ref)
        self.socket.frame_received(self.serializer.encode(reply))


class HeartbeatTest(SocketTestCase):
    def test_a_heartbeat_every_interval_on_topic_phoenix(self) -> None:
        self.clock.advance(29.9)
        self.assertEqual(self.heartbeats(), [])
        self.clock.advance(0.1)
        (first,) = self.heartbeats()
        self.assertEqual((first.topic, first.payload), ("phoenix", {}))
        self.answer(first.ref)
        self.clock.advance(30)
        self.assertEqual(len(self.heartbeats()), 2)
        self.assertIsNone(self.wire.aborted)

    def test_no_reply_within_an_interval_means_the_link_is_dead(self) -> None:
        self.clock.advance(30)
        self.clock.advance(29.9)
        self.assertIsNone(self.wire.aborted)
        self.clock.advance(0.1)
        self.assertEqual(self.wire.aborted, "no heartbeat reply within 30 s")
        self.assertEqual(len(self.heartbeats()), 1, "no second heartbeat while one is unanswered")

    def test_a_reply_to_another_ref_does_not_count(self) -> None:
        self.clock.advance(30)
        self.answer("not-it")
        self.clock.advance(30)
        self.assertIsNotNone(self.wire.aborted)

    def test_probes_are_rate_limited_and_never_overlap(self) -> None:
        self.socket.probe()
        self.clock.run_ready()
        self.assertEqual(len(self.heartbeats()), 1)
        self.socket.probe()  # one is pending: the probe waits for its reply
        self.clock.advance(1)
        self.assertEqual(len(self.heartbeats()), 1)
        self.answer(self.heartbeats()[0].ref)  # the wanted probe follows, rate-limited
        self.clock.run_ready()
        self.assertEqual(len(self.heartbeats()), 2, "1 s passed since the last: at once")
        self.answer(self.heartbeats()[1].ref)
        self.socket.probe()
        self.clock.advance(0.049)
        self.assertEqual(len(self.heartbeats()), 2)
        self.clock.advance(0.001)
        self.assertEqual(len(self.heartbeats()), 3)

    def test_losing_the_connection_stops_the_heartbeat(self) -> None:
        self.socket.connection_lost()
        self.clock.advance(120)
        self.assertEqual(self.heartbeats(), [])
        self.assertIsNone(self.wire.aborted)
        self.assertEqual(self.clock.pending(), [])

    def test_the_listener_hears_what_happens_to_the_link(self) -> None:
        self.clock.advance(30.0)
        (heartbeat,) = self.heartbeats()
        self.answer(heartbeat.ref)
        self.socket.writing_resumed()
        self.socket.connection_lost()
        self.socket.connection_lost()  # told once per connection
        self.assertEqual(
            self.link.events,
            [
                ("heartbeat_sent", heartbeat.ref),
                ("heartbeat_answered", heartbeat.ref),
                ("link_writable", None),
                ("link_lost", None),
            ],
        )


class RoutingTest(SocketTestCase):
    def test_frames_that_are_not_phoenix_messages_are_logged_and_ignored(self) -> None:
        with self.assertLogs("core.hub.socket", logging.WARNING) as logs:
            for frame in ["not json", "[1,2]", '{"topic": 1}', b"\x00\x01"]:
                self.socket.frame_received(frame)
            self.socket.frame_received(self.serializer.encode(Message("elsewhere", "x", {})))
        self.assertEqual(len(logs.records), 5)
        self.assertIn("not a joined topic", logs.output[-1])

    def test_an_event_decoded_only_in_part_reaches_its_channel_marked(self) -> None:
        received: list[Message] = []
        listener = Listener()
        channel = self.socket.channel("service", listener)
        channel.handle = received.append  # type: ignore[method-assign]  # record, not route
        big = "9" * 5000
        with self.assertLogs("core.hub.socket", logging.WARNING) as logs:
            self.socket.frame_received(
                f'{{"topic":"service","event":"request","payload":{{"n":{big}}},"ref":null}}'
            )
            # A reply is no reply without its payload; another topic is nobody's.
            self.socket.frame_received(
                f'{{"topic":"service","event":"phx_reply","payload":{{"n":{big}}},"ref":"1"}}'
            )
            self.socket.frame_received(f'{{"topic":"other","event":"x","payload":{big}}}')
        [message] = received
        self.assertEqual(message.event, "request")
        self.assertEqual(message.payload, Salvaged({"n": None}, message.payload.problem))
        self.assertIn("could not be decoded in full", logs.output[0])
        self.assertEqual(len(logs.output), 3)


if __name__ == "__main__":
    unittest.main()
