"""The shutdown's decisions (`core.hub.drain.Drain`), with a fake clock and links made by hand."""

from __future__ import annotations

import unittest

from core.hub.drain import DELIVERY_SECONDS, Drain, Link, Step
from tests.fakes import FakeClock

GRACE = 25.0


def link(
    joined: bool = False, in_flight: int = 0, settled: bool = True, consumers: int | None = 3
) -> Link:
    return Link(joined=joined, in_flight=in_flight, settled=settled, consumers=consumers)


class DrainTest(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = FakeClock()
        self.drain = Drain(self.clock, GRACE)

    def test_it_leaves_first_even_with_requests_running(self) -> None:
        self.assertFalse(self.drain.starts_holding(link(joined=True, in_flight=4)))
        self.assertIs(self.drain.next(link(joined=True, in_flight=4, settled=False)), Step.LEAVE)

    def test_out_of_the_rotation_it_serves_then_joins_to_deliver_then_leaves(self) -> None:
        # The leave is answered; two requests still run (one pushed before the hub saw the
        # leave): serve them, whatever their answers are waiting for.
        self.assertIs(self.drain.next(link(in_flight=2, settled=False)), Step.SERVE)
        self.clock.advance(0.3)
        # Answered while not joined: kept, so join again to write them...
        self.assertIs(self.drain.next(link(settled=False)), Step.JOIN)
        # ...and leave as soon as the join is answered (it wrote them).
        self.assertIs(self.drain.next(link(joined=True, settled=False)), Step.LEAVE)
        # The hub answered that leave: every answer is confirmed.
        self.assertIs(self.drain.next(link(settled=True)), Step.DONE)
        self.assertFalse(self.drain.refusing)

    def test_a_request_that_arrives_during_the_rejoin_is_served_too(self) -> None:
        self.assertIs(self.drain.next(link(joined=True, in_flight=1)), Step.LEAVE)
        self.assertIs(self.drain.next(link(in_flight=1, settled=False)), Step.SERVE)
        self.assertIs(self.drain.next(link(settled=False)), Step.JOIN)

    def test_nothing_running_and_nothing_kept_is_done_at_once(self) -> None:
        self.assertIs(self.drain.next(link()), Step.DONE)

    def test_the_grace_period_ends_with_503s_and_then_a_short_delivery(self) -> None:
        self.assertIs(self.drain.next(link(in_flight=1, settled=False)), Step.SERVE)
        self.assertEqual(self.drain.time_left(), GRACE)
        self.clock.advance(GRACE - 0.001)
        self.assertIs(self.drain.next(link(in_flight=1, settled=False)), Step.SERVE)
        self.clock.advance(0.001)
        self.assertIs(self.drain.next(link(in_flight=1, settled=False)), Step.REFUSE)
        self.assertTrue(self.drain.refusing)
        # Refused once; the cancelled request's answer is then delivered like the others.
        self.assertEqual(self.drain.time_left(), DELIVERY_SECONDS)
        self.assertIs(self.drain.next(link(settled=False)), Step.JOIN)
        self.assertIs(self.drain.next(link(joined=True, settled=False)), Step.LEAVE)
        self.clock.advance(DELIVERY_SECONDS)
        self.assertEqual(self.drain.time_left(), 0.0)
        self.assertIs(self.drain.next(link(settled=False)), Step.DONE)

    def test_no_grace_leaves_then_refuses(self) -> None:
        drain = Drain(self.clock, 0.0)
        self.assertIs(drain.next(link(joined=True, in_flight=1)), Step.LEAVE)
        self.assertEqual(drain.time_left(), DELIVERY_SECONDS)  # time for the leave's reply
        self.assertIs(drain.next(link(in_flight=1, settled=False)), Step.REFUSE)
        self.assertIs(drain.next(link(settled=False)), Step.JOIN)

    def test_the_only_joined_replica_holds_until_another_joins(self) -> None:
        self.assertTrue(self.drain.starts_holding(link(joined=True, consumers=1)))
        self.assertIs(self.drain.next(link(joined=True, in_flight=3, consumers=1)), Step.HOLD)
        self.clock.advance(10.0)
        self.assertIs(self.drain.next(link(joined=True, consumers=1)), Step.HOLD)
        self.assertEqual(self.drain.time_left(), GRACE - 10.0)
        self.assertFalse(self.drain.handed_over)
        # The hub's num_consumers push: another replica joined.
        self.assertIs(self.drain.next(link(joined=True, in_flight=3, consumers=2)), Step.LEAVE)
        self.assertTrue(self.drain.handed_over)
        self.assertFalse(self.drain.holding)
        # Then as any other replica: it does not hold again if the count drops back.
        self.assertIs(self.drain.next(link(in_flight=3, consumers=1)), Step.SERVE)

    def test_the_only_joined_replica_leaves_when_the_grace_ends_then_refuses(self) -> None:
        self.assertTrue(self.drain.starts_holding(link(joined=True, consumers=1)))
        self.clock.advance(GRACE)
        # Out of the rotation first: what the hub sends until it sees the leave is served.
        self.assertIs(self.drain.next(link(joined=True, in_flight=1, consumers=1)), Step.LEAVE)
        self.assertFalse(self.drain.holding)
        self.assertFalse(self.drain.handed_over)
        self.assertFalse(self.drain.refusing)
        self.assertEqual(self.drain.time_left(), DELIVERY_SECONDS)
        self.clock.advance(0.001)
        # The leave is answered: only now are new requests refused, running ones cancelled.
        self.assertIs(self.drain.next(link(in_flight=2, settled=False, consumers=1)), Step.REFUSE)
        self.assertIs(self.drain.next(link(settled=False, consumers=1)), Step.JOIN)

    def test_a_holding_replica_that_lost_its_join_keeps_holding(self) -> None:
        # The connection dropped: the channel rejoins by itself, and the join reply's count
        # says whether another replica is there now.
        self.assertTrue(self.drain.starts_holding(link(joined=True, consumers=1)))
        self.assertIs(self.drain.next(link(joined=False, consumers=1)), Step.HOLD)

    def test_it_holds_only_when_the_hub_counts_it_alone(self) -> None:
        for state in (
            link(joined=True, consumers=2),
            link(joined=True, consumers=None),  # never told: another may well be joined
            link(joined=False, consumers=1),  # not in the rotation: holding serves no one
        ):
            with self.subTest(state=state):
                drain = Drain(self.clock, GRACE)
                self.assertFalse(drain.starts_holding(state))
                self.assertIsNot(drain.next(state), Step.HOLD)


if __name__ == "__main__":
    unittest.main()
