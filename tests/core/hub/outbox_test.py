"""The response outbox: batching, confirmation by heartbeat, and writing again after a drop.

Driven by a fake clock and a recording wire; the end-to-end tests with real hubs are in
``chaos_test.py``."""

from __future__ import annotations

import logging
import sys
import unittest
from typing import Any

from core.hub.backoff import REJOIN_DELAYS, Backoff
from core.hub.outbox import HOLD_QUANTUM, ResponseOutbox
from core.hub.phoenix import Message, V2Serializer
from core.hub.socket import PhoenixSocket
from tests.core.hub.channel_test import Listener
from tests.fakes import FakeClock, FakeWire, LinkEvents


def ok(value: Any) -> dict[str, Any]:
    return {"status": "success", "status_code": 200, "message": None, "fields": value}


class OutboxTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = FakeClock()
        self.serializer = V2Serializer()
        self.link = LinkEvents()
        self.socket = PhoenixSocket(self.clock, self.serializer, self.link, heartbeat_interval=30.0)
        self.channel = self.socket.channel(
            "service", Listener(), rejoin=Backoff(REJOIN_DELAYS, rand=lambda: 0.0)
        )
        self.outbox = ResponseOutbox(self.socket, self.channel, max_age=30.0, limit=100)
        self.link.outbox = self.outbox
        self.channel.join()
        self.connect_and_join()

    def connect_and_join(self) -> str:
        self.wire = FakeWire(self.serializer)
        self.socket.connection_made(self.wire)
        join = self.wire.last("phx_join")
        self.reply("service", join.ref)
        self.outbox.channel_joined()  # what the client does on channel_joined
        assert join.ref is not None
        return join.ref

    def reply(self, topic: str, ref: str | None, status: str = "ok", response: Any = None) -> None:
        payload = {"status": status, "response": response or {}}
        frame = self.serializer.encode(Message(topic, "phx_reply", payload, ref, ref))
        self.socket.frame_received(frame)

    def responses(self) -> list[Message]:
        return [m for m in self.wire.sent if m.event == "response"]

    def answer_heartbeat(self) -> None:
        self.reply("phoenix", self.wire.last("heartbeat").ref)


class BatchTest(OutboxTestCase):
    def test_one_iterations_responses_leave_in_one_write_with_the_join_ref(self) -> None:
        writes = len(self.wire.writes)
        for index in range(3):
            self.assertIsNone(self.outbox.send(f"r{index}", ok(index)))
        self.assertEqual(len(self.wire.writes), writes, "written at the end of the iteration")
        self.clock.run_ready()
        batch = self.wire.writes[writes]
        self.assertEqual([m.ref for m in batch], ["r0", "r1", "r2"])
        self.assertEqual({m.join_ref for m in batch}, {self.channel.join_ref})
        self.assertEqual(self.outbox.unconfirmed, 3)

    def test_an_unencodable_payload_becomes_a_500_alone(self) -> None:
        with self.assertLogs("core.hub.outbox", logging.ERROR):
            replaced = self.outbox.send("bad", ok(object()))
        self.outbox.send("good", ok(1))
        self.clock.run_ready()
        assert replaced is not None
        self.assertEqual(replaced["status_code"], 500)
        bad, good = self.responses()
        self.assertEqual(bad.payload["status_code"], 500)
        self.assertEqual(bad.payload["message"]["code"], "INTERNAL_ERROR")
        self.assertIn("error id", bad.payload["message"]["error"])
        self.assertEqual(good.payload["fields"], 1)


class MinimumDelayTest(OutboxTestCase):
    def test_a_quick_answer_leaves_at_its_own_time_not_at_a_millisecond_boundary(self) -> None:
        self.outbox.min_delay = 0.002
        self.clock.advance(0.0003)  # 0.3 ms past a quantum boundary
        self.outbox.send("slow", ok(1), age=0.5)  # its request arrived long ago: at once
        self.outbox.send("quick", ok(2), age=0.0004)  # 1.6 ms to go
        self.clock.run_ready()
        self.assertEqual([m.ref for m in self.responses()], ["slow"])
        self.assertFalse(self.outbox.settled)
        self.clock.advance(0.0016 - 1e-5)
        self.assertEqual([m.ref for m in self.responses()], ["slow"], "not before its time")
        self.clock.advance(2e-5)
        self.assertEqual([m.ref for m in self.responses()], ["slow", "quick"])

    def test_a_lone_held_answer_takes_one_alarm_and_one_wake_up(self) -> None:
        self.outbox.min_delay = 0.002
        self.clock.advance(0.0003)
        (alarm,) = self.clock.alarms  # the one the outbox asked the clock for
        self.outbox.send("only", ok(1), age=0.0001)
        self.clock.run_ready()
        self.assertAlmostEqual(self.clock.pending()[0], 0.0019, 9, "the alarm, at its own time")
        self.assertEqual(self.clock.scheduled(self.outbox._wake), 1)
        self.clock.advance(0.0019 + 1e-9)
        self.assertEqual([m.ref for m in self.responses()], ["only"])
        self.assertEqual(alarm.settings, 1, "set once, never moved")
        self.assertEqual(self.clock.scheduled(self.outbox._wake), 0, "no second wake-up")
        self.assertEqual(self.wire.pauses, 0)
        # Nothing is held any more: the next answer is a lone one again, on the alarm.
        self.outbox.send("next", ok(2), age=0.0)
        self.assertEqual((alarm.settings, self.wire.pauses), (2, 0))

    def test_an_answer_whose_action_took_longer_than_the_floor_leaves_at_once(self) -> None:
        self.outbox.min_delay = 0.002
        self.outbox.send("late", ok(1), age=0.0021)
        self.assertEqual(self.clock.scheduled(self.outbox._wake), 0, "no alarm")
        self.clock.run_ready()
        self.assertEqual([m.ref for m in self.responses()], ["late"])
        self.assertEqual([alarm.settings for alarm in self.clock.alarms], [0])

    def test_answers_one_at_a_time_each_leave_at_their_own_time(self) -> None:
        self.outbox.min_delay = 0.002
        for index in range(10):  # a request every 2.37 ms, answered 0.1 ms after it arrived
            self.clock.advance(0.0001)
            sent = self.clock.now
            self.outbox.send(str(index), ok(index), age=0.0001)
            self.clock.advance(0.0019)
            self.assertEqual(len(self.responses()), index + 1, f"{index} at {sent + 0.0019}")
            self.clock.advance(0.00037)
        self.assertEqual(self.wire.pauses, 0)

    def test_under_steady_load_held_answers_leave_within_a_millisecond_more(self) -> None:
        self.outbox.min_delay = 0.001
        for index in range(20):  # a new quick answer every 0.2 ms
            self.outbox.send(str(index), ok(index), age=0.0)
            self.clock.advance(0.0002)
            # Everything made 2 ms ago or earlier has left (1 ms, and at most one quantum
            # more), in order.
            written = [m.ref for m in self.responses()]
            self.assertGreaterEqual(len(written), index + 1 - 11)
            self.assertEqual(written, [str(n) for n in range(len(written))])
        self.clock.advance(0.002)
        self.assertEqual(len(self.responses()), 20)
        self.assertLess(len(self.wire.writes), 20, "held answers leave together")

    def test_one_alarm_is_set_for_the_held_answers_however_many_iterations_add_to_them(
        self,
    ) -> None:
        self.outbox.min_delay = 0.002
        wake = self.outbox._wake  # the alarm's callback
        for index in range(8):  # four loop iterations, two quick answers in each
            self.outbox.send(f"q{index}", ok(index), age=0.0)
            if index % 2:
                self.clock.advance(0.0001)
            self.assertEqual(self.clock.scheduled(wake), 1)
        self.assertEqual(self.responses(), [])
        # An answer whose request is old enough leaves at the end of the iteration, alone;
        # the alarm stays set for the held ones.
        self.outbox.send("old", ok(0), age=1.0)
        self.assertEqual(self.clock.pending()[0], 0.0)
        self.clock.run_ready()
        self.assertEqual([m.ref for m in self.responses()], ["old"])
        self.assertEqual(self.clock.scheduled(wake), 1)
        writes = len(self.wire.writes)
        self.clock.advance(0.003)
        self.assertEqual(
            [m.ref for m in self.responses()], ["old"] + [f"q{index}" for index in range(8)]
        )
        self.assertLessEqual(len(self.wire.writes) - writes, 2, "one write per millisecond")
        self.assertEqual(self.clock.scheduled(wake), 0)

    def test_held_answers_are_kept_when_the_channel_is_lost(self) -> None:
        self.outbox.min_delay = 0.001
        self.outbox.send("held", ok(1), age=0.0)
        self.clock.run_ready()
        self.socket.connection_lost()
        self.assertEqual(self.outbox.kept, 1)
        self.assertEqual(self.clock.scheduled(self.outbox._wake), 0, "the alarm is called off")
        self.connect_and_join()
        self.assertEqual([m.ref for m in self.responses()], ["held"])


class ReadPacingTest(OutboxTestCase):
    """While more than one answer is held, reading pauses until the next quantum boundary."""

    def setUp(self) -> None:
        super().setUp()
        self.outbox.min_delay = 0.002
        self.clock.advance(0.0003)  # 0.3 ms past a quantum boundary

    def test_one_held_answer_leaves_reading_alone(self) -> None:
        self.outbox.send("only", ok(1), age=0.0)
        self.assertTrue(self.wire.reading)
        self.clock.advance(0.003)
        self.assertEqual([m.ref for m in self.responses()], ["only"])
        self.assertEqual(self.wire.pauses, 0)

    def test_a_second_held_answer_pauses_reading_until_the_next_boundary(self) -> None:
        self.outbox.send("a", ok(1), age=0.0)
        self.outbox.send("b", ok(2), age=0.0)
        self.assertFalse(self.wire.reading)
        self.outbox.send("c", ok(3), age=0.0)
        self.assertEqual(self.wire.pauses, 1, "paused once, however many answers follow")
        self.clock.advance(0.0006)
        self.assertFalse(self.wire.reading, "0.1 ms before the boundary")
        self.clock.advance(0.0001)
        self.assertTrue(self.wire.reading)
        # Overlapping, all three leave together at the first boundary after their time (the
        # first one's own time, 2 ms after its request, has passed by then: no write of its
        # own).
        self.clock.advance(0.0013 + 1e-9)
        self.assertEqual(self.responses(), [], "past the first one's own time")
        self.clock.advance(0.0006)
        self.assertEqual(self.responses(), [], "0.1 ms before the boundary")
        self.clock.advance(0.0001 + 1e-9)  # the boundary, whatever the sum's rounding
        self.assertEqual([m.ref for m in self.responses()], ["a", "b", "c"])
        writes = [[m.ref for m in write if m.event == "response"] for write in self.wire.writes]
        self.assertEqual([refs for refs in writes if refs], [["a", "b", "c"]], "in one write")

    def test_under_steady_load_reading_and_writing_share_one_wake_up_a_quantum(self) -> None:
        # The hub has three requests waiting whenever the replica reads; it reads as soon as
        # reading is not paused, and answers each at once. Every call the clock makes is a
        # wake-up: record when reading resumed and when answers were written.
        sent_at: dict[str, float] = {}
        written_at: dict[str, float] = {}
        resumed: list[float] = []
        writes: list[float] = []
        step = 0.0001
        for _ in range(200):  # 20 ms
            if self.wire.reading:
                for _ in range(3):
                    ref = f"r{len(sent_at)}"
                    sent_at[ref] = self.clock.now
                    self.outbox.send(ref, ok(ref), age=0.0)
            before = (self.wire.reading, len(self.wire.writes))
            self.clock.advance(step)
            if not before[0] and self.wire.reading:
                resumed.append(round(self.clock.now, 7))
            if len(self.wire.writes) > before[1]:
                writes.append(round(self.clock.now, 7))
                for message in self.responses():
                    written_at.setdefault(message.ref or "", self.clock.now)
        self.assertEqual(len(resumed), 20, "reading resumed once per millisecond")
        self.assertGreaterEqual(len(writes), 17)
        # Every write shared a wake-up with the reading, the first answer's included (it was
        # held alone only until the second came).
        self.assertLessEqual(set(writes), set(resumed), "each write shared a wake-up")
        (alarm,) = self.clock.alarms
        self.assertEqual(alarm.settings, 1, "the precise alarm only for the first, lone answer")
        for ref, at in written_at.items():
            self.assertGreaterEqual(at - sent_at[ref], 0.002 - 1e-9, ref)
            self.assertLess(at - sent_at[ref], 0.003 + step, ref)

    def test_nothing_held_never_pauses(self) -> None:
        self.outbox.min_delay = 0.0
        for index in range(5):
            self.outbox.send(str(index), ok(index), age=0.0)
        self.clock.run_ready()
        self.assertEqual(len(self.responses()), 5)
        self.assertEqual(self.wire.pauses, 0)

    def test_a_pause_ends_when_the_connection_drops(self) -> None:
        self.outbox.send("a", ok(1), age=0.0)
        self.outbox.send("b", ok(2), age=0.0)
        old = self.wire
        self.socket.connection_lost()
        self.assertTrue(old.reading)
        self.connect_and_join()
        self.assertTrue(self.wire.reading, "a new connection reads")
        # The new connection is paced in turn.
        self.outbox.send("c", ok(3), age=0.0)
        self.outbox.send("d", ok(4), age=0.0)
        self.assertFalse(self.wire.reading)
        self.clock.advance(HOLD_QUANTUM)
        self.assertTrue(self.wire.reading)


class ConfirmationTest(OutboxTestCase):
    def test_a_heartbeat_reply_confirms_what_was_written_before_it(self) -> None:
        self.outbox.send("a", ok(1))
        self.clock.run_ready()
        self.clock.advance(0.05)  # the probe
        probe = self.wire.last("heartbeat")
        self.outbox.send("b", ok(2))  # written after the probe left
        self.clock.run_ready()
        self.reply("phoenix", probe.ref)
        self.assertEqual(self.outbox.unconfirmed, 1)
        self.assertFalse(self.outbox.settled)
        self.clock.advance(0.05)
        self.answer_heartbeat()
        self.assertEqual(self.outbox.unconfirmed, 0)
        self.assertTrue(self.outbox.settled)

    def test_probes_follow_batches_at_most_every_50_ms(self) -> None:
        answered: set[str | None] = set()
        for index in range(20):  # a response every 10 ms for 200 ms; the hub answers at once
            self.outbox.send(str(index), ok(index))
            self.clock.advance(0.01)
            for heartbeat in [m for m in self.wire.sent if m.event == "heartbeat"]:
                if heartbeat.ref not in answered:
                    answered.add(heartbeat.ref)
                    self.reply("phoenix", heartbeat.ref)
        self.assertIn(len(answered), (4, 5))
        self.assertLess(self.outbox.unconfirmed, 6, "the journal stays short under load")

    def test_a_leave_reply_confirms_everything_written_before_the_leave(self) -> None:
        self.outbox.send("a", ok(1))
        self.clock.run_ready()
        self.channel.leave()
        self.outbox.send("late", ok(2))  # made after the leave left: kept
        self.clock.run_ready()
        self.reply("service", self.wire.last("phx_leave").ref)
        self.outbox.leave_acknowledged()  # what the client does on channel_left(True)
        self.assertEqual(self.outbox.unconfirmed, 0)
        self.assertEqual(self.outbox.kept, 1)
        self.assertFalse(self.outbox.settled)


class DropTest(OutboxTestCase):
    def test_unconfirmed_responses_are_written_again_first_after_the_next_join(self) -> None:
        for ref in ("a", "b"):
            self.outbox.send(ref, ok(ref))
        self.clock.run_ready()
        first_join = self.channel.join_ref
        self.socket.connection_lost()
        self.outbox.send("c", ok("c"))  # made while disconnected
        self.assertEqual(self.outbox.kept, 3)
        self.outbox.send("d", ok("d"))
        join_ref = self.connect_and_join()
        self.outbox.send("e", ok("e"))
        self.clock.run_ready()
        self.assertEqual([m.ref for m in self.responses()], ["a", "b", "c", "d", "e"])
        self.assertEqual(
            {m.join_ref for m in self.responses()}, {join_ref}, "encoded for the new join"
        )
        self.assertNotEqual(join_ref, first_join)
        self.assertEqual(self.outbox.resent, 2)

    def test_kept_responses_past_the_request_lifetime_are_dropped(self) -> None:
        self.outbox.send("old", ok(1))
        self.clock.run_ready()
        self.socket.connection_lost()
        self.clock.advance(31)
        with self.assertLogs("core.hub.outbox", logging.WARNING) as logs:
            self.connect_and_join()
        self.assertEqual(self.responses(), [])
        self.assertEqual(self.outbox.expired, 1)
        self.assertIn("past the hub's 30 s request lifetime", logs.output[0])

    def test_a_response_the_hub_refused_is_written_after_the_next_join(self) -> None:
        self.outbox.send("x", ok(1))
        self.clock.run_ready()
        self.reply("service", "x", "error", {"reason": "unmatched topic"})
        self.assertTrue(self.outbox.refused("x"))  # what the client does with that reply
        self.assertFalse(self.outbox.refused("never-written"))
        self.assertEqual(self.outbox.kept, 1)
        self.assertEqual(self.outbox.unconfirmed, 0)
        ref = self.channel.join_ref
        self.reply("service", ref, "ok")  # ignored: no push awaits it
        self.socket.frame_received(
            self.serializer.encode(Message("service", "phx_error", {}, ref, ref))
        )
        self.outbox.channel_lost()
        self.clock.advance(1.0)
        join = self.wire.last("phx_join")
        self.reply("service", join.ref)
        self.outbox.channel_joined()
        self.assertEqual([m.ref for m in self.responses()], ["x", "x"])
        self.assertEqual(self.outbox.resent, 1)

    def test_what_a_crashed_channel_may_not_have_handled_is_written_after_the_next_join(
        self,
    ) -> None:
        for ref in ("a", "b"):
            self.outbox.send(ref, ok(ref))
        self.clock.run_ready()
        self.clock.advance(0.05)
        probe = self.wire.last("heartbeat")
        ref = self.channel.join_ref
        self.socket.frame_received(
            self.serializer.encode(Message("service", "phx_error", {}, ref, ref))
        )
        with self.assertLogs("core.hub.outbox", logging.INFO) as logs:
            self.outbox.channel_lost()  # what the client does on channel_lost
        self.assertIn("channel ended with 2 response(s) not yet confirmed", logs.output[0])
        # The socket answers the probe, which proves nothing of what the channel handled.
        self.reply("phoenix", probe.ref)
        self.assertEqual((self.outbox.kept, self.outbox.unconfirmed), (2, 0))
        # The hub's error for one of them, come after the crash: it is kept already, once.
        self.assertTrue(self.outbox.refused("b"))
        self.assertEqual(self.outbox.kept, 2)
        self.clock.advance(1.0)
        self.reply("service", self.wire.last("phx_join").ref)
        self.outbox.channel_joined()
        self.assertEqual([m.ref for m in self.responses()], ["a", "b", "a", "b"])
        self.assertEqual(self.outbox.resent, 2)

    def test_a_leave_without_a_reply_confirms_nothing(self) -> None:
        self.outbox.send("a", ok(1))
        self.clock.run_ready()
        self.channel.leave()
        self.clock.advance(1.0)  # the leave's timeout
        self.outbox.leave_unacknowledged()  # what the client does on channel_left(False)
        self.assertEqual((self.outbox.kept, self.outbox.unconfirmed), (1, 0))
        self.channel.join()  # the drain joins again on the same socket to deliver it
        self.reply("service", self.wire.last("phx_join").ref)
        self.outbox.channel_joined()
        self.assertEqual([m.ref for m in self.responses()], ["a", "a"])

    def test_the_kept_queue_is_bounded(self) -> None:
        self.socket.connection_lost()
        with self.assertLogs("core.hub.outbox", logging.ERROR) as logs:
            for index in range(105):
                self.outbox.send(str(index), ok(index))
        self.assertEqual(self.outbox.kept, 100)
        self.assertEqual(self.outbox.dropped, 5)
        self.assertIn("outbox full", logs.output[0])


class ByteBudgetTest(OutboxTestCase):
    """At most `max_bytes` of encoded responses are held, oldest dropped first."""

    def setUp(self) -> None:
        super().setUp()
        self.outbox.limit = 10_000
        self.outbox.max_bytes = 10_000

    def big(self) -> dict[str, Any]:
        return ok("x" * 1000)

    def size(self, ref: str, join_ref: str | None) -> int:
        """The bytes of a `big()` response's frame."""
        return len(self.serializer.encode_parts("service", "response", self.big(), ref, join_ref))

    def assert_within_budget(self) -> None:
        self.assertLessEqual(self.outbox.held_bytes, self.outbox.max_bytes)

    def test_kept_responses_are_bounded_by_bytes_oldest_dropped_first(self) -> None:
        self.socket.connection_lost()
        with self.assertLogs("core.hub.outbox", logging.INFO):
            for index in range(30):
                self.outbox.send(f"{index:02}", self.big())
                self.assert_within_budget()
        kept = self.outbox.max_bytes // self.size("00", None)
        self.assertEqual(self.outbox.kept, kept)
        self.assertEqual(self.outbox.dropped, 30 - kept)
        self.connect_and_join()
        self.assertEqual(
            [m.ref for m in self.responses()], [f"{n:02}" for n in range(30 - kept, 30)]
        )

    def test_written_unconfirmed_responses_go_first_then_kept_ones(self) -> None:
        join_ref = self.channel.join_ref
        for index in range(6):  # written; the hub never answers the heartbeat
            self.outbox.send(f"w{index}", self.big())
            self.clock.run_ready()
        self.assertEqual(self.outbox.unconfirmed, 6)
        self.wire.writable = False  # the hub stops reading: the next ones are kept
        with self.assertLogs("core.hub.outbox", logging.INFO):
            for index in range(10):
                self.outbox.send(f"k{index}", self.big())
                self.clock.run_ready()
                self.assert_within_budget()
        self.assertEqual(self.outbox.unconfirmed, 0, "the written ones went first")
        kept = self.outbox.max_bytes // self.size("k0", join_ref)
        self.assertEqual(self.outbox.kept, kept)
        self.assertEqual(self.outbox.dropped, 6 + 10 - kept)
        self.socket.connection_lost()
        self.assert_within_budget()
        self.connect_and_join()
        self.assertEqual([m.ref for m in self.responses()], [f"k{n}" for n in range(10 - kept, 10)])

    def test_the_held_bytes_fall_as_answers_are_confirmed(self) -> None:
        join_ref = self.channel.join_ref
        for index in range(5):
            self.outbox.send(str(index), self.big())
        self.clock.run_ready()
        # Five frames, and the four newlines between them in the journal.
        self.assertEqual(self.outbox.held_bytes, 5 * self.size("0", join_ref) + 4)
        self.clock.advance(0.05)
        self.answer_heartbeat()
        self.assertEqual(self.outbox.held_bytes, 0)
        self.assertTrue(self.outbox.settled)

    def test_a_burst_of_drops_is_logged_once_and_its_end_once(self) -> None:
        self.socket.connection_lost()
        with self.assertLogs("core.hub.outbox", logging.INFO) as logs:
            for index in range(500):
                self.outbox.send(str(index), self.big())
            self.connect_and_join()
            self.clock.advance(0.05)
            self.answer_heartbeat()
        self.assertEqual(self.outbox.held_bytes, 0)
        lines = [line for line in logs.output if "drop" in line]
        self.assertEqual(len(lines), 2, lines)
        self.assertIn("outbox full", lines[0])
        self.assertIn(f"{self.outbox.dropped} response(s) were dropped", lines[1])
        self.assertGreater(self.outbox.dropped, 480)
        keeping = [line for line in logs.output if "keeping" in line]
        self.assertEqual(len(keeping), 1, "one line while not joined, not one per response")

    def test_frames_are_held_at_their_own_length(self) -> None:
        # The encoder hands back a buffer larger than the frame; what is held is not.
        join_ref = self.channel.join_ref
        for ref in ("a", "b"):
            self.outbox.send(ref, ok(1))
        self.clock.run_ready()
        [(_, _, written, count)] = self.outbox._journal
        frame = self.serializer.encode_parts("service", "response", ok(1), "a", join_ref)
        self.assertEqual((count, len(written)), (2, 2 * len(frame) + 1))
        self.assertLess(sys.getsizeof(written), 2 * len(frame) + 64)
        self.outbox.send("alone", ok(1))
        self.clock.run_ready()
        (_, _, alone, _) = self.outbox._journal[-1]
        self.assertLess(sys.getsizeof(alone), len(alone) + 64)
        self.socket.connection_lost()
        with self.assertLogs("core.hub.outbox", logging.INFO):
            self.outbox.send("c", ok(1))
        held = [frame for frame, _ in self.outbox._kept]
        self.assertEqual(len(held), 4)
        self.assertEqual(self.outbox.held_bytes, sum(map(len, held)))
        self.assertTrue(all(sys.getsizeof(frame) < len(frame) + 64 for frame in held))


class RefusedThenDroppedTest(OutboxTestCase):
    def test_refused_responses_are_kept_once_whatever_follows(self) -> None:
        self.outbox.send("alone", ok("alone"))
        self.clock.run_ready()
        for ref in ("a", "b", "c"):
            self.outbox.send(ref, ok(ref))
        self.clock.run_ready()
        held = self.outbox.held_bytes
        self.assertTrue(self.outbox.refused("alone"))
        self.assertTrue(self.outbox.refused("b"))
        self.assertEqual((self.outbox.kept, self.outbox.unconfirmed), (2, 2))
        self.assertEqual(self.outbox.held_bytes, held - 1, "one separator fewer")
        with self.assertLogs("core.hub.outbox", logging.INFO):
            self.socket.connection_lost()
        self.assertEqual(self.outbox.kept, 4)
        self.assertEqual(self.outbox.held_bytes, sum(len(frame) for frame, _ in self.outbox._kept))
        self.connect_and_join()
        self.assertEqual([m.ref for m in self.responses()], ["a", "c", "b", "alone"])


class BackpressureTest(OutboxTestCase):
    def test_responses_are_held_while_the_hub_does_not_read(self) -> None:
        self.wire.writable = False
        with self.assertLogs("core.hub.outbox", logging.WARNING) as logs:
            for index in range(3):
                self.outbox.send(str(index), ok(index))
                self.clock.run_ready()
        self.assertEqual(len(logs.records), 1, "the hold is logged once")
        self.assertEqual(self.responses(), [])
        self.assertEqual(self.outbox.kept, 3)
        self.wire.writable = True
        self.socket.writing_resumed()
        self.assertEqual([m.ref for m in self.responses()], ["0", "1", "2"])
        self.assertEqual(len(self.wire.writes[-1]), 3, "in one write")


if __name__ == "__main__":
    unittest.main()
