"""The channel state machine, driven by frames and a fake clock: no sockets, no sleeps."""

from __future__ import annotations

import unittest
from typing import Any

from core.hub.backoff import HEALTHY_AFTER_SECONDS, REJOIN_DELAYS, Backoff
from core.hub.channel import State
from core.hub.phoenix import Message, V2Serializer
from core.hub.socket import PhoenixSocket
from tests.fakes import FakeClock, FakeWire, LinkEvents

TOPIC = "service"


class Listener:
    """Records what the channel reports."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def channel_joined(self, response: Any) -> None:
        self.calls.append(("joined", response))

    def channel_join_refused(self, reason: str, rejoin_in: float | None) -> None:
        self.calls.append(("refused", (reason, rejoin_in)))

    def channel_lost(self, why: str, rejoin_in: float | None) -> None:
        self.calls.append(("lost", (why, rejoin_in)))

    def channel_left(self, acknowledged: bool) -> None:
        self.calls.append(("left", acknowledged))

    def channel_message(self, message: Message) -> None:
        self.calls.append(("message", message.event))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.calls]


class ChannelTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = FakeClock()
        self.serializer = V2Serializer()
        # The heartbeat is far away in these tests: only the channel's own timers matter.
        self.socket = PhoenixSocket(
            self.clock, self.serializer, LinkEvents(), heartbeat_interval=3600
        )
        self.listener = Listener()
        self.channel = self.socket.channel(
            TOPIC,
            self.listener,
            join_timeout=10.0,
            leave_timeout=1.0,
            rejoin=Backoff(REJOIN_DELAYS, rand=lambda: 0.0),
        )
        self.wire = FakeWire(self.serializer)

    def connect(self) -> None:
        self.wire = FakeWire(self.serializer)
        self.socket.connection_made(self.wire)

    def hub_says(self, event: str, payload: Any = None, ref: str | None = None, **kw: Any) -> None:
        message = Message(TOPIC, event, {} if payload is None else payload, ref, kw.get("join_ref"))
        self.socket.frame_received(self.serializer.encode(message))

    def reply(self, ref: str | None, status: str = "ok", response: Any = None) -> None:
        self.hub_says(
            "phx_reply", {"status": status, "response": response or {}}, ref, join_ref=ref
        )

    def joins_sent(self) -> list[Message]:
        return [m for m in self.wire.sent if m.event == "phx_join"]

    def join_and_accept(self) -> str:
        self.channel.join()
        self.connect()
        ref = self.joins_sent()[-1].ref
        assert ref is not None
        self.reply(ref, response={"num_consumers": 1})
        return ref


class JoinTest(ChannelTestCase):
    def test_join_waits_for_a_connection_then_joins_with_ref_as_join_ref(self) -> None:
        self.channel.join()
        self.assertEqual(self.wire.writes, [])
        self.assertEqual(self.channel.state, State.CLOSED)
        self.connect()
        (join,) = self.joins_sent()
        self.assertEqual((join.topic, join.ref), (TOPIC, join.join_ref))
        self.assertEqual(self.channel.state, State.JOINING)
        self.reply(join.ref, response={"num_consumers": 3})
        self.assertTrue(self.channel.joined)
        self.assertEqual(self.listener.calls, [("joined", {"num_consumers": 3})])

    def test_refused_join_rejoins_on_the_phoenix_schedule(self) -> None:
        self.channel.join()
        self.connect()
        delays = []
        for _ in range(5):
            self.reply(self.joins_sent()[-1].ref, "error", {"reason": "join crashed"})
            self.assertEqual(self.channel.state, State.ERRORED)
            delays.append(self.listener.calls[-1][1][1])
            sent = len(self.joins_sent())
            self.clock.advance(delays[-1] - 0.001)
            self.assertEqual(len(self.joins_sent()), sent, "rejoined too early")
            self.clock.advance(0.001)
            self.assertEqual(len(self.joins_sent()), sent + 1)
        self.assertEqual(delays, [1.0, 2.0, 5.0, 10.0, 10.0])
        self.assertEqual(self.listener.calls[0], ("refused", ("join crashed", 1.0)))

    def test_a_join_that_lasts_starts_the_rejoin_schedule_over(self) -> None:
        self.channel.join()
        self.connect()
        for _ in range(3):
            self.reply(self.joins_sent()[-1].ref, "error", {"reason": "no"})
            self.clock.advance(10)
        self.reply(self.joins_sent()[-1].ref)
        self.assertTrue(self.channel.joined)
        self.clock.advance(HEALTHY_AFTER_SECONDS)
        self.hub_says("phx_error", ref=self.channel.join_ref, join_ref=self.channel.join_ref)
        self.assertEqual(self.listener.calls[-1], ("lost", ("the hub sent phx_error", 1.0)))

    def test_joins_the_hub_ends_at_once_are_retried_on_the_growing_schedule(self) -> None:
        self.channel.join()
        self.connect()
        delays = []
        for _ in range(5):
            self.reply(self.joins_sent()[-1].ref)
            self.assertTrue(self.channel.joined)
            self.clock.advance(HEALTHY_AFTER_SECONDS - 0.01)
            self.hub_says("phx_error", ref=self.channel.join_ref, join_ref=self.channel.join_ref)
            delays.append(self.listener.calls[-1][1][1])
            self.clock.advance(delays[-1])
        self.assertEqual(delays, [1.0, 2.0, 5.0, 10.0, 10.0])

    def test_join_timeout_leaves_that_join_and_rejoins(self) -> None:
        self.channel.join()
        self.connect()
        first = self.joins_sent()[0]
        self.clock.advance(9.999)
        self.assertEqual(self.channel.state, State.JOINING)
        self.clock.advance(0.001)
        self.assertEqual(self.channel.state, State.ERRORED)
        leave = self.wire.last("phx_leave")
        self.assertEqual(leave.join_ref, first.ref)
        self.assertEqual(self.listener.calls[-1][0], "lost")
        self.assertIn("no reply to the join within 10 s", self.listener.calls[-1][1][0])
        # A late reply to the join given up on does not count.
        self.reply(first.ref)
        self.assertFalse(self.channel.joined)
        self.clock.advance(1.0)
        second = self.joins_sent()[-1]
        self.assertNotEqual(second.ref, first.ref)
        self.reply(second.ref)
        self.assertTrue(self.channel.joined)


class HubEndsTheChannelTest(ChannelTestCase):
    def test_phx_error_for_the_current_join_rejoins_after_a_second(self) -> None:
        ref = self.join_and_accept()
        self.hub_says("phx_error", ref=ref, join_ref=ref)
        self.assertEqual(self.channel.state, State.ERRORED)
        self.assertEqual(self.listener.calls[-1], ("lost", ("the hub sent phx_error", 1.0)))
        self.clock.advance(1.0)
        self.assertEqual(len(self.joins_sent()), 2)

    def test_phx_close_of_the_current_join_rejoins_too(self) -> None:
        ref = self.join_and_accept()
        self.hub_says("phx_close", ref=ref, join_ref=ref)
        self.assertEqual(self.channel.state, State.ERRORED)
        self.clock.advance(1.0)
        self.assertEqual(len(self.joins_sent()), 2)

    def test_lifecycle_events_of_an_earlier_join_are_ignored(self) -> None:
        ref = self.join_and_accept()
        self.hub_says("phx_close", ref="999", join_ref="999")
        self.hub_says("phx_error", ref="998", join_ref="998")
        self.assertTrue(self.channel.joined)
        self.assertEqual(self.channel.join_ref, ref)

    def test_an_error_naming_no_join_is_taken_as_the_current_one(self) -> None:
        self.join_and_accept()
        self.hub_says("phx_error")
        self.assertEqual(self.channel.state, State.ERRORED)

    def test_domain_events_and_unmatched_replies_go_to_the_listener(self) -> None:
        self.join_and_accept()
        self.hub_says("request", {"action": "X"})
        self.reply("12345", "error", {"reason": "unmatched topic"})
        self.assertEqual(self.listener.kinds()[-2:], ["message", "message"])


class ConnectionTest(ChannelTestCase):
    def test_a_dropped_connection_rejoins_at_once_on_the_next_one(self) -> None:
        self.join_and_accept()
        self.socket.connection_lost()
        self.assertEqual(self.channel.state, State.ERRORED)
        self.assertEqual(self.listener.calls[-1], ("lost", ("the connection closed", None)))
        self.assertEqual(self.clock.pending(), [], "no timer while disconnected")
        self.connect()
        self.assertEqual(len(self.joins_sent()), 1)
        self.assertEqual(self.channel.state, State.JOINING)

    def test_no_rejoin_while_disconnected(self) -> None:
        self.channel.join()
        self.connect()
        self.reply(self.joins_sent()[-1].ref, "error", {"reason": "no"})
        self.socket.connection_lost()
        self.clock.advance(60)
        self.assertEqual(self.channel.state, State.ERRORED)


class LeaveTest(ChannelTestCase):
    def test_leave_sends_phx_leave_and_reports_the_ok(self) -> None:
        ref = self.join_and_accept()
        self.assertTrue(self.channel.leave())
        leave = self.wire.last("phx_leave")
        self.assertEqual(leave.join_ref, ref)
        self.assertEqual(self.channel.state, State.LEAVING)
        self.reply(leave.ref)
        self.hub_says("phx_close", ref=ref, join_ref=ref)
        self.assertEqual(self.channel.state, State.CLOSED)
        self.assertEqual(self.listener.calls[-1], ("left", True))
        self.clock.advance(60)
        self.assertEqual(len(self.joins_sent()), 1, "a left channel does not rejoin")

    def test_leave_without_a_reply_times_out(self) -> None:
        self.join_and_accept()
        self.channel.leave()
        self.clock.advance(1.0)
        self.assertEqual(self.channel.state, State.CLOSED)
        self.assertEqual(self.listener.calls[-1], ("left", False))

    def test_a_close_while_leaving_completes_the_leave(self) -> None:
        ref = self.join_and_accept()
        self.channel.leave()
        self.hub_says("phx_close", ref=ref, join_ref=ref)
        self.assertEqual(self.channel.state, State.CLOSED)
        self.assertEqual(self.listener.calls[-1], ("left", True))

    def test_a_crash_while_leaving_ends_the_leave_unconfirmed(self) -> None:
        ref = self.join_and_accept()
        self.channel.leave()
        self.hub_says("phx_error", ref=ref, join_ref=ref)
        self.assertEqual(self.channel.state, State.CLOSED)
        self.assertEqual(self.listener.calls[-1], ("left", False))
        self.clock.advance(60)
        self.assertEqual(len(self.joins_sent()), 1, "a left channel does not rejoin")

    def test_leave_when_not_joined_closes_at_once(self) -> None:
        self.channel.join()
        self.assertFalse(self.channel.leave())
        self.connect()
        self.assertEqual(self.joins_sent(), [])

    def test_connection_lost_while_leaving_completes_the_leave(self) -> None:
        self.join_and_accept()
        self.channel.leave()
        self.socket.connection_lost()
        self.assertEqual(self.listener.calls[-1], ("left", False))
        self.connect()
        self.assertEqual(self.joins_sent(), [])

    def test_join_after_leave_joins_again_on_the_same_connection(self) -> None:
        self.join_and_accept()
        self.channel.leave()
        self.reply(self.wire.last("phx_leave").ref)
        self.channel.join()
        self.assertEqual(len(self.joins_sent()), 2)
        self.reply(self.joins_sent()[-1].ref)
        self.assertTrue(self.channel.joined)


if __name__ == "__main__":
    unittest.main()
