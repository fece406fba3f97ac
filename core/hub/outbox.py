"""Responses on their way to the hub, kept until the hub has provably read them.

The hub never acknowledges a ``response``; it ignores one whose request it no longer waits
for, so sending a response twice is harmless; and it handles one socket's frames in order,
so a heartbeat reply proves that every frame written before that heartbeat reached it. Hence:

1. A response made while joined is encoded at once (one that cannot be encoded becomes a
   500 with an error id, and its request is accounted as a 500) and written with the others
   made in the same loop iteration, in one write.
2. Each written batch stays in a journal until a later heartbeat is answered; the socket
   probes with a heartbeat soon after a batch, so the journal stays short under load.
3. When the connection drops, the journal's responses and whatever was not written yet are
   kept; after the next join they are written again, before anything else, unless they
   are older than the hub's request lifetime (30 s).
4. A response the hub answers with "unmatched topic" (it arrived when the hub no longer had
   us joined: right after our leave, or after the hub's channel crashed) is kept and written
   again after the next join too. So is every response still in the journal when the hub's
   channel ends without our leave, or when our leave gets no reply: the hub's socket
   answers heartbeats itself and hands responses on to the channel's process, so a
   heartbeat reply does not prove that a channel which then crashed, or was closed by our
   next join on the same socket, had handled the responses queued for it.
5. While the hub does not read (the write buffer is over its high mark) responses are held
   here, and the hold is logged. What the outbox holds is bounded: at most `limit` kept
   responses, and at most `max_bytes` of encoded responses written and not yet confirmed, or
   kept. Past either, the oldest are dropped first: written batches awaiting confirmation
   before any response never written (those may still have reached the hub), counted in
   `dropped`, and logged once per burst, which ends when the outbox has half its room again.
   The bytes counted are the bytes held. orjson hands back its working buffer as the frame,
   sized for the worst case and never shrunk, so a frame as encoded can hold many times the
   bytes it counts: a written batch is journaled as one bytes object, its frames joined by
   newlines (which a compact JSON text never holds raw; one allocation per batch, not a copy
   per response), and a kept response as a copy of its own length. This loop iteration's
   batch is not counted: it leaves as soon as its answers' time comes.
6. A response is not written sooner than `min_delay` after its request arrived. The hub's
   HTTP front hands a request to its consumers before it registers itself as the one
   waiting for the answer, and drops an answer that arrives in between (Vera-Plugboard's
   PageController enqueues, then calls register_request); its caller then waits for a 408.
   The default (``RESPONSE_MIN_DELAY_SECONDS``) comes from how many answers the hub drops at
   each floor (docs/performance.md). A lone held answer leaves at its own time, on an alarm
   precise to well under a millisecond (`core.hub.timers.Alarm`); one whose request is older
   than the floor already leaves at the end of the loop iteration.
7. While more than one answer is held, they all leave on `HOLD_QUANTUM` boundaries (the one
   held alone until then included), and the hub's socket is read at most once per quantum:
   holding a second answer pauses reading until the next boundary. One wake-up then both
   reads what came in meanwhile and writes what is due, where reading at once, or waking
   for each answer's own time, would cost a system call and a pass through the event loop
   per request. Those wake-ups are asyncio's own timers: their millisecond granularity is
   the quantum's anyway. A request that arrives during a pause waits for the boundary (at
   most one quantum), and an answer held with others leaves up to one quantum after its own
   time. A replica answering one request at a time never pauses nor waits for a boundary,
   nor does one that holds nothing (``RESPONSE_MIN_DELAY_SECONDS=0``).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import deque
from typing import TYPE_CHECKING, Any

from core import json_codec
from core.execution.responses import ErrorAnswers
from core.hub.channel import State
from core.hub.phoenix import Message
from core.log import RateLimitedLog, shown

if TYPE_CHECKING:
    from core.hub.channel import Channel
    from core.hub.socket import PhoenixSocket, Wire
    from core.hub.timers import Cancellable

logger = logging.getLogger(__name__)

RESPONSE = "response"
# Overlapping held answers whose time comes within the same quantum leave in one write.
HOLD_QUANTUM = 0.001
# An answer due within this of now is due now: far below the alarm's own precision, and it
# keeps an answer that rounding put a hair after another's time in that one's write.
DUE_SLACK = 1e-6
JOINED = State.JOINED
INFINITY = float("inf")

# A response kept for a later join: (its frame as encoded, perhaps under an earlier join's
# ref, which the next write replaces; when it was made).
Kept = tuple[bytes, float]
# A written batch awaiting a heartbeat reply: (responses written up to it, when, its frames
# joined by SEPARATOR, how many).
Written = tuple[int, float, bytes, int]
# Between the frames of a journaled batch: a compact JSON text never holds a raw newline.
SEPARATOR = b"\n"


def _boundary(at: float) -> float:
    """The first `HOLD_QUANTUM` boundary at or after clock time `at` (0.0, at once, stays).
    A time within `DUE_SLACK` past a boundary is that boundary, so that a time made by this
    function stays where it is when passed through it again, whatever its rounding."""
    return math.ceil((at - DUE_SLACK) / HOLD_QUANTUM) * HOLD_QUANTUM if at else 0.0


def _exact(frame: bytes) -> bytes:
    """A copy of `frame` at its own length (point 5)."""
    return memoryview(frame).tobytes()


class ResponseOutbox:
    """See the module's docstring. One per client; it outlives connections."""

    def __init__(
        self,
        socket: PhoenixSocket,
        channel: Channel,
        *,
        max_age: float = 30.0,
        limit: int = 1000,
        max_bytes: int = 32 * 1024 * 1024,
        min_delay: float = 0.0,
        errors: ErrorAnswers | None = None,
    ) -> None:
        self._socket = socket
        # Builds the 500 sent in place of a payload that cannot be encoded.
        self._errors = errors if errors is not None else ErrorAnswers()
        self._channel = channel
        self._clock = socket.clock
        self._encode = socket.serializer.encode_parts
        self._decode_text = socket.serializer.decode
        self._topic = channel.topic
        self.max_age = max_age
        self.limit = limit
        self.max_bytes = max_bytes
        self.min_delay = min_delay
        # The bytes of the frames held: kept, and written but not yet confirmed.
        self._bytes = 0
        # Made while joined, written at the end of this loop iteration. Only the encoded
        # frames are kept on this path (and in the journal): bytes are not tracked by the
        # garbage collector, so holding them until a heartbeat reply costs it nothing. The
        # rare paths that need a response's ref or payload again decode its frame.
        self._batch: list[bytes] = []
        # When each batched frame may leave (clock time; 0.0 for at once), and the soonest
        # of those still in the future (`min_delay`; infinity when none is held).
        self._batch_due: list[float] = []
        self._next_due = INFINITY
        # True from the moment a second answer is held until none is (point 7).
        self._overlapping = False
        # The flush at the end of this loop iteration, if one is scheduled.
        self._soon: Cancellable | None = None
        # The wire whose reading is paused (point 7), and the boundary where it reads again.
        self._paused: Wire | None = None
        self._resume_at = INFINITY
        # Wakes the outbox at the sooner of `_next_due` and `_resume_at`; `_alarm_at` is the
        # time it is set for (infinity when it is not set).
        self._alarm = self._clock.alarm(self._wake)
        self._alarm_at = INFINITY
        # While reading is paused (answers overlap), the wake-up is asyncio's own timer
        # instead (point 7).
        self._pacer: Cancellable | None = None
        # Made while not joined, held while the hub does not read, or to be written again.
        self._kept: deque[Kept] = deque()
        self._resend_in_kept = 0
        # Written batches awaiting a heartbeat reply.
        self._journal: deque[Written] = deque()
        self._written = 0
        self._unconfirmed = 0
        self._heartbeat: tuple[str, int] | None = None
        self._holding_logged = False
        self._keeping_logged = False
        # Responses dropped since the burst of drops began (0: no burst).
        self._burst_dropped = 0
        # The lines the hub can bring about over and over, each with its own budget.
        self._hold_log = RateLimitedLog(logger)
        self._keep_log = RateLimitedLog(logger)
        self._drop_log = RateLimitedLog(logger, chars=400)
        self._expiry_log = RateLimitedLog(logger)
        # Counters for /metrics.
        self.resent = 0
        self.expired = 0
        self.dropped = 0

    # ------------------------------------------------------------------ reading the state

    @property
    def kept(self) -> int:
        """Responses waiting for a join (or for the hub to read) before they can be written."""
        return len(self._kept)

    @property
    def written(self) -> int:
        """Responses written so far (each time counts)."""
        return self._written

    @property
    def unconfirmed(self) -> int:
        """Responses written and not yet proven read by a heartbeat reply."""
        return self._unconfirmed

    @property
    def held_bytes(self) -> int:
        """The bytes of the encoded responses held, kept or written but not yet confirmed (at
        most `max_bytes`)."""
        return self._bytes

    @property
    def settled(self) -> bool:
        """True when every response made so far is proven read (or given up)."""
        return not self._kept and not self._batch and not self._journal

    # ------------------------------------------------------------------ responses in

    def send(
        self, response_ref: str, payload: dict[str, Any], age: float = float("inf")
    ) -> dict[str, Any] | None:
        """Queue a response whose request arrived `age` seconds ago. Returns None, or the 500
        payload sent instead of an unencodable one (the caller accounts for the status
        really sent)."""
        channel = self._channel
        replaced: dict[str, Any] | None = None
        try:
            frame = self._encode(self._topic, RESPONSE, payload, response_ref, channel.join_ref)
        except Exception:  # anything the encoder or a value's conversion raises
            replaced = self._unencodable(response_ref)
            payload = replaced
            frame = self._encode(self._topic, RESPONSE, payload, response_ref, channel.join_ref)
        if channel.state is JOINED:
            self._batch.append(frame)
            hold = self.min_delay - age
            if hold > 0:
                now = self._clock.time()
                due = now + hold
                if self._next_due != INFINITY:
                    # Another answer is held already: requests come in faster than one at a
                    # time, and the held answers leave together (point 7), the one held
                    # alone so far included, so that they share a wake-up and a write.
                    due = _boundary(due)
                    if not self._overlapping:
                        self._overlapping = True
                        self._batch_due = [_boundary(at) for at in self._batch_due]
                        self._next_due = min(at for at in self._batch_due if at)
                    if self._paused is None:
                        self._pause_reading(now)
                self._batch_due.append(due)
                self._next_due = min(self._next_due, due)
                self._set_alarm()
            else:
                self._batch_due.append(0.0)
                if self._soon is None:
                    self._soon = self._clock.call_soon(self._flush)
        else:
            if not self._keeping_logged:
                self._keeping_logged = True
                self._keep_log.info(
                    "not joined: keeping responses until the next join (the first for ref %s)",
                    shown(response_ref),
                )
            self._keep(_exact(frame), self._clock.time())
        return replaced

    # ------------------------------------------------------------------ what the link says

    def heartbeat_sent(self, ref: str) -> None:
        """A heartbeat left after every response written so far."""
        self._heartbeat = (ref, self._written)

    def heartbeat_answered(self, ref: str) -> None:
        """Its reply arrived: the responses written before it reached the hub."""
        if self._heartbeat is None or self._heartbeat[0] != ref:
            return
        mark = self._heartbeat[1]
        self._heartbeat = None
        journal = self._journal
        while journal and journal[0][0] <= mark:
            _, _, frames, count = journal.popleft()
            self._unconfirmed -= count
            self._bytes -= len(frames)
        if self._burst_dropped:
            self._check_room()

    def leave_acknowledged(self) -> None:
        """The hub answered our leave: it read every frame written before it, and nothing
        was written after it (responses made since are kept for a later join)."""
        self._heartbeat = None
        for _, _, frames, _ in self._journal:
            self._bytes -= len(frames)
        self._journal.clear()
        self._unconfirmed = 0
        self._check_room()

    def refused(self, response_ref: str) -> bool:
        """The hub answered a response with an error ("unmatched topic"): keep it for the
        next join. Returns False when no written or kept response has that ref."""
        # Only frames that hold the ref, as the encoder writes it, are decoded: the hub may
        # send such errors at will, and the journal may hold megabytes.
        forms = json_codec.written_forms(response_ref)

        def holds_ref(frame: bytes) -> bool:
            return any(form in frame for form in forms) and self._decode(frame).ref == response_ref

        journal = self._journal
        for position, (mark, written_at, frames, count) in enumerate(journal):
            if not any(form in frames for form in forms):
                continue
            split = frames.split(SEPARATOR)
            for index, frame in enumerate(split):
                if not holds_ref(frame):
                    continue
                del split[index]
                rest = SEPARATOR.join(split)
                if split:
                    journal[position] = (mark, written_at, rest, count - 1)
                else:
                    del journal[position]
                # The frame moves to the kept ones, and a separator goes.
                self._bytes -= len(frames) - len(rest) - len(frame)
                self._unconfirmed -= 1
                self._kept.appendleft((frame, written_at))
                self._resend_in_kept += 1
                return True
        # Already kept to be written again (they lead the kept ones): the channel ended
        # (point 4) before the hub's error for it came.
        return any(
            holds_ref(frame) for frame, _ in itertools.islice(self._kept, self._resend_in_kept)
        )

    def channel_joined(self) -> None:
        """Joined: write what was kept, before anything else."""
        self._holding_logged = False
        self._keeping_logged = False
        self._flush()

    def channel_lost(self) -> None:
        """Not joined any more, not by our leave: this iteration's batch, and what the hub's
        channel may not have handled (point 4), wait for the next join."""
        self._keep_batch()
        if self._socket.wire is not None:  # else the connection dropped: connection_lost
            self._unconfirm("the hub's channel ended")

    def leave_unacknowledged(self) -> None:
        """Our leave got no reply in time: it proves nothing of what was written before it,
        and the next join on this socket closes that channel (point 4)."""
        self._unconfirm("our leave had no reply")

    def connection_lost(self) -> None:
        """The connection dropped: what it may not have delivered is written again later."""
        self._resume_reading()
        self._keep_batch()
        self._unconfirm("the connection dropped")

    def writing_resumed(self) -> None:
        """The hub reads again: write what was held."""
        if self._kept and self._channel.joined:
            self._hold_log.info("the hub reads again: writing %d held response(s)", len(self._kept))
        self._holding_logged = False
        self._flush()

    def close(self) -> None:
        """The client stops: release the alarm (an answer made later sets it up again)."""
        if self._pacer is not None:
            self._pacer.cancel()
            self._pacer = None
        self._alarm.close()
        self._alarm_at = INFINITY

    # ------------------------------------------------------------------ internals

    def _unconfirm(self, why: str) -> None:
        """Move the journal's responses to the front of the kept ones, to be written again
        after the next join; the heartbeat under way can no longer confirm them."""
        self._heartbeat = None
        if not self._journal:
            return
        unconfirmed: list[Kept] = [
            (frame, written_at)
            for _, written_at, frames, _ in self._journal
            for frame in frames.split(SEPARATOR)
        ]
        self._bytes -= sum(count - 1 for _, _, _, count in self._journal)  # the separators
        self._journal.clear()
        self._unconfirmed = 0
        self._kept.extendleft(reversed(unconfirmed))
        self._resend_in_kept += len(unconfirmed)
        self._trim()
        logger.info(
            "%s with %d response(s) not yet confirmed: they will be sent again after the next join",
            why,
            len(unconfirmed),
        )

    def _set_alarm(self) -> None:
        """Wake at the sooner of the next held answer's time and the end of the pause (on the
        precise alarm for a lone answer, on asyncio's timer while answers overlap), or at neither
        when neither is ahead."""
        at = min(self._next_due, self._resume_at)
        paced = self._overlapping
        if at == self._alarm_at and paced == (self._pacer is not None):
            return
        if self._pacer is not None:
            self._pacer.cancel()
            self._pacer = None
        elif self._alarm_at != INFINITY:
            self._alarm.cancel()
        self._alarm_at = at
        if at == INFINITY:
            return
        if paced:
            self._pacer = self._clock.call_later(at - self._clock.time(), self._wake)
        else:
            self._alarm.set(at)

    def _wake(self) -> None:
        """The alarm: reading resumes at its boundary; the answers whose time has come leave."""
        self._alarm_at = INFINITY
        self._pacer = None
        now = self._clock.time()
        if now >= self._resume_at:
            self._resume_reading()
        if now + DUE_SLACK >= self._next_due:
            self._flush()
        self._set_alarm()

    def _pause_reading(self, now: float) -> None:
        """Leave what the hub sends in the socket until the next quantum boundary."""
        wire = self._socket.wire
        if wire is None:
            return
        wire.pause_reading()
        self._paused = wire
        self._resume_at = (math.floor(now / HOLD_QUANTUM) + 1) * HOLD_QUANTUM
        self._set_alarm()

    def _resume_reading(self) -> None:
        wire, self._paused = self._paused, None
        self._resume_at = INFINITY
        if wire is not None:
            wire.resume_reading()

    def _flush(self) -> None:
        """Write the kept responses, then the batch's frames whose time has come, in one
        write."""
        if self._soon is not None:
            self._soon.cancel()  # when called directly (joined, the hub reads again)
            self._soon = None
        wire = self._socket.wire
        if wire is None or not self._channel.joined:
            self._keep_batch()
            return
        if not wire.writable:
            self._keep_batch()
            if not self._holding_logged:
                self._holding_logged = True
                self._hold_log.warning(
                    "the hub is not reading: holding %d response(s) until it does",
                    len(self._kept),
                )
            return
        batch = self._take_batch() if self._next_due == INFINITY else self._due_frames()
        if self._kept:
            batch = self._kept_frames() + batch
        if not batch:
            return
        wire.send_frames(batch)
        self._written += len(batch)
        self._unconfirmed += len(batch)
        # Point 5: held at its own length (join hands back a lone frame itself).
        frames = SEPARATOR.join(batch) if len(batch) > 1 else _exact(batch[0])
        self._journal.append((self._written, self._clock.time(), frames, len(batch)))
        self._bytes += len(frames)
        if self._bytes > self.max_bytes:
            self._trim()
        self._socket.probe()

    def _take_batch(self) -> list[bytes]:
        batch, self._batch, self._batch_due = self._batch, [], []
        return batch

    def _due_frames(self) -> list[bytes]:
        """The batched frames whose time has come; the alarm comes back for the others."""
        now = self._clock.time() + DUE_SLACK
        due: list[bytes] = []
        waiting: list[bytes] = []
        waiting_due: list[float] = []
        for frame, at in zip(self._batch, self._batch_due, strict=True):
            if at <= now:
                due.append(frame)
            else:
                waiting.append(frame)
                waiting_due.append(at)
        self._batch, self._batch_due = waiting, waiting_due
        self._next_due = min(waiting_due, default=INFINITY)
        if not waiting:
            self._overlapping = False
        self._set_alarm()
        return due

    def _kept_frames(self) -> list[bytes]:
        """The kept responses still worth sending, encoded for the current join."""
        now = self._clock.time()
        join_ref = self._channel.join_ref
        written: list[bytes] = []
        kept, self._kept = self._kept, deque()
        resends, self._resend_in_kept = self._resend_in_kept, 0
        expired = 0
        for index, (frame, made_at) in enumerate(kept):
            self._bytes -= len(frame)  # counted again as written
            if now - made_at > self.max_age:
                expired += 1
                continue
            if index < resends:
                self.resent += 1
            message = self._decode(frame)
            written.append(
                self._encode(self._topic, RESPONSE, message.payload, message.ref, join_ref)
            )
        if expired:
            self.expired += expired
            self._expiry_log.warning(
                "dropped %d kept response(s) past the hub's %.0f s request lifetime: their "
                "callers have had 408 from the hub",
                expired,
                self.max_age,
            )
        return written

    def _keep_batch(self) -> None:
        if not self._batch:
            return
        now = self._clock.time()
        kept = [(_exact(frame), now) for frame in self._batch]
        self._kept.extend(kept)
        self._bytes += sum(len(frame) for frame, _ in kept)
        self._batch, self._batch_due, self._next_due = [], [], INFINITY
        self._overlapping = False
        self._set_alarm()
        self._trim()

    def _decode(self, frame: bytes) -> Message:
        """One of our own frames, decoded again."""
        return self._decode_text(frame.decode())

    def _keep(self, frame: bytes, made_at: float) -> None:
        self._kept.append((frame, made_at))
        self._bytes += len(frame)
        if len(self._kept) > self.limit or self._bytes > self.max_bytes:
            self._trim()

    def _trim(self) -> None:
        """Drop the oldest responses past `limit` kept ones or `max_bytes` held in all:
        written batches awaiting confirmation first, then kept responses."""
        kept = self._kept
        dropped = 0
        while len(kept) > self.limit:
            self._drop_kept()
            dropped += 1
        journal = self._journal
        while self._bytes > self.max_bytes and journal:
            _, _, frames, count = journal.popleft()
            self._bytes -= len(frames)
            self._unconfirmed -= count
            dropped += count
        while self._bytes > self.max_bytes and kept:
            self._drop_kept()
            dropped += 1
        if dropped:
            self._dropped(dropped)

    def _drop_kept(self) -> None:
        frame, _ = self._kept.popleft()
        self._bytes -= len(frame)
        if self._resend_in_kept:
            self._resend_in_kept -= 1

    def _dropped(self, count: int) -> None:
        """Count responses dropped to stay within the bounds; the first of a burst is logged."""
        self.dropped += count
        if self._burst_dropped:
            self._burst_dropped += count
            return
        self._burst_dropped = count
        self._drop_log.error(
            "outbox full: dropped the %d oldest response(s) to stay within OUTBOX_MAX_BYTES "
            "(%d bytes) and OUTBOX_LIMIT (%d responses kept); their callers may get 408 from "
            "the hub. Further drops are counted until it has room again",
            count,
            self.max_bytes,
            self.limit,
        )

    def _check_room(self) -> None:
        """End a burst of drops once the outbox has half its room again."""
        if (
            self._burst_dropped
            and self._bytes <= self.max_bytes // 2
            and len(self._kept) <= self.limit // 2
        ):
            self._drop_log.warning(
                "the outbox has room again: %d response(s) were dropped while it was full",
                self._burst_dropped,
            )
            self._burst_dropped = 0

    def _unencodable(self, response_ref: str) -> dict[str, Any]:
        error_id, fallback = self._errors.internal_error()
        logger.exception(
            "the response for ref %s cannot be encoded as JSON; answering 500 (error id %s)",
            shown(response_ref),
            error_id,
            extra={"ref": response_ref, "error_id": error_id},
        )
        return fallback.to_payload()
