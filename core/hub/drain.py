"""A replica's way out of the hub's rotation on shutdown, without I/O: what to do next.

What the hub does (plugboard-protocol.md, sections 4 and 6) decides the order:

- It routes requests round-robin to the joined consumers, and stops routing to one only once
  it has processed that consumer's ``phx_leave``. So the drain leaves first: a replica that
  stays joined while it finishes its work keeps being handed new requests, and every one it
  refuses reaches its caller as an HTTP 400 it cannot retry safely.
- Requests it pushed before it processed the leave still arrive; the replica serves them like
  any other.
- It handles one socket's frames in order, so its reply to the leave confirms every response
  written before the leave. A response sent after the leave is dropped, but joining again
  on the same socket and sending it then delivers it: answers made while not joined are
  kept, and the drain joins again just long enough to write them, then leaves at once.
- With no consumer joined it answers callers 422. So the service's last joined replica,
  when it is asked to hold, stays joined and keeps serving until another replica joins or
  the grace period ends, whichever comes first.

When the grace period (``SHUTDOWN_GRACE_SECONDS``) ends, a replica still joined (the last
one, holding) leaves first and serves what the hub sends until it has processed the leave;
then new requests get 503 and running ones are cancelled (answered 503). Those answers, and
any still kept, have `DELIVERY_SECONDS` more to be delivered: the joins that deliver them are
the only time a request can still reach the replica, and it is refused.

`Drain.next` looks at the link as it is (`Link`) and the time, and returns the next `Step`;
the client performs it, waits for what the step waits for (at most `Drain.time_left`), and
asks again. The client's loop is in `core.hub.client.PlugboardClient`; every decision is
here, tested with a fake clock (``tests/core/hub/drain_test.py``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from core.hub.timers import Clock

# After the grace period: a leave, the executor's wait of up to 1 s for the cancelled
# requests' answers, then a join and a leave again, each answered within a round trip by a
# live hub.
DELIVERY_SECONDS = 3.0


class Step(enum.Enum):
    """What the drain does next, and what the client then waits for."""

    HOLD = "hold"
    """The last joined replica: stay joined and serve; wait until the consumer count changes
    (another replica joined?) or the grace period ends."""
    LEAVE = "leave"
    """Send ``phx_leave``; wait for its reply (or its timeout)."""
    SERVE = "serve"
    """Out of the rotation: wait for the requests still running (their answers are kept)."""
    JOIN = "join"
    """Join again to write the kept answers; wait for the join (a leave follows at once)."""
    REFUSE = "refuse"
    """The grace period is over: answer new requests 503, cancel the running ones (503)."""
    DONE = "done"
    """Every answer is delivered, or the time is up: close and exit."""


@dataclass(frozen=True, slots=True)
class Link:
    """What the drain needs to know about the link at one moment."""

    joined: bool
    """The ``service`` channel is joined."""
    in_flight: int
    """Requests received and not yet answered."""
    settled: bool
    """Every answer made so far is proven read by the hub (`ResponseOutbox.settled`)."""
    consumers: int | None
    """Consumers joined to the service, by the hub's last count (None: never told)."""


class Drain:
    """One shutdown, from the signal to the exit; see the module's docstring.

    A drain leaves at once unless `starts_holding` is called first: the client calls it for
    the orchestrator's SIGTERM, and not for a person's Ctrl-C or a developer's reload, after
    which nobody is coming to take over.
    """

    def __init__(self, clock: Clock, grace: float, *, delivery: float = DELIVERY_SECONDS) -> None:
        self._clock = clock
        now = clock.time()
        self.grace = grace
        self.grace_ends = now + grace
        self.ends = self.grace_ends + delivery
        self.holding = False
        self.handed_over = False
        """True once a hold ended because another replica joined."""
        self.refusing = False

    def starts_holding(self, link: Link) -> bool:
        """Hold when this replica is the only one joined (the hub's count is 1: itself);
        returns whether it holds. An unknown count is not taken as "last": holding when
        another replica is joined would keep this one for its whole grace period."""
        self.holding = link.joined and link.consumers == 1
        return self.holding

    def next(self, link: Link) -> Step:
        """The next step, given the link as it is now."""
        now = self._clock.time()
        if now >= self.ends:
            return Step.DONE
        if not self.refusing and now >= self.grace_ends:
            self.holding = False
            if link.joined:
                return Step.LEAVE  # out of the rotation before refusing anything
            self.refusing = True
            return Step.REFUSE
        if self.holding:
            if link.consumers is None or link.consumers <= 1:
                return Step.HOLD
            self.holding = False
            self.handed_over = True
        if link.joined:
            return Step.LEAVE
        if link.in_flight:
            return Step.SERVE
        if link.settled:
            return Step.DONE
        return Step.JOIN

    def time_left(self) -> float:
        """Seconds until the current phase ends: the grace period, then the delivery time.
        A step's wait never goes past it, so the drain looks again when the phase changes."""
        now = self._clock.time()
        boundary = self.grace_ends if now < self.grace_ends else self.ends
        return max(0.0, boundary - now)
