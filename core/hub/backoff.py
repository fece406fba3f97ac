"""Retry schedules with jitter: reconnecting the socket and rejoining the channel.

The delays follow phoenix.js; jitter spreads them so that many replicas that lost the hub at
the same moment do not all come back in the same millisecond.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

# phoenix.js: reconnectAfterMs and rejoinAfterMs, in seconds.
RECONNECT_DELAYS = (0.01, 0.05, 0.1, 0.15, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0)
REJOIN_DELAYS = (1.0, 2.0, 5.0, 10.0)
# A refused upgrade (403) will not be fixed by hammering: slower, capped.
REFUSED_DELAYS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0)
# A connection or a join counts as a success, which starts its schedule over, only once it has
# lasted this long: a hub that accepts and then drops each one at once (a frame over
# MAX_MESSAGE_BYTES, a channel that crashes on join) is retried on the growing schedule
# instead of at its first, shortest delay every time.
HEALTHY_AFTER_SECONDS = 10.0


class Backoff:
    """Delays from a schedule (its last value repeats), each with up to `jitter` added.

    ``jitter=0.2`` adds a random 0-20 % to each delay.
    """

    def __init__(
        self,
        delays: Sequence[float],
        jitter: float = 0.2,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if not delays:
            raise ValueError("a backoff schedule needs at least one delay")
        self._delays = tuple(delays)
        self._jitter = jitter
        self._rand = rand
        self.attempts = 0

    def next(self) -> float:
        """The delay before the next attempt."""
        base = self._delays[min(self.attempts, len(self._delays) - 1)]
        self.attempts += 1
        return base * (1.0 + self._jitter * self._rand())

    def reset(self) -> None:
        """Start the schedule over (after a success)."""
        self.attempts = 0
