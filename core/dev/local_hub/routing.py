"""Requests on the local hub: who gets the next one, and which caller gets each response.

The joined consumers form a rotation: each request goes to the next one (round robin), as a
``request`` push ``{"action", "fields", "response_ref"}``. A consumer answers with event
``response`` and ``ref`` = that ``response_ref``; the answer is routed by the ref alone, so
any socket of the service may send it (after a reconnect, say). A response whose ref
matches no waiting request is ignored. Optionally at most `max_in_flight` requests are
pushed and unanswered at a time; the others wait for a slot, within their time limit.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.dev.local_hub.consumer import Consumer

logger = logging.getLogger("core.local_hub")


class Outcome(enum.Enum):
    """How a request ended."""

    ANSWERED = "answered"
    NO_CONSUMER = "no consumer"
    TIMED_OUT = "timed out"
    STOPPING = "stopping"


@dataclass(frozen=True, slots=True)
class Delivery:
    """A request's outcome and, when answered, the consumer's response payload."""

    outcome: Outcome
    payload: Any = None


class Router:
    """The rotation of joined consumers and the requests waiting for their responses."""

    def __init__(
        self, max_in_flight: int | None = None, on_pushed: Callable[[], None] = lambda: None
    ) -> None:
        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1 (or None for no cap)")
        self.max_in_flight = max_in_flight
        # Requests written to a consumer so far; `on_pushed` is called after each.
        self.pushed = 0
        self._on_pushed = on_pushed
        self.joined: list[Consumer] = []
        self._round_robin = 0
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._slots: asyncio.Semaphore | None = None

    def start(self) -> None:
        """Make the loop-bound parts (the in-flight cap) in the running loop."""
        if self.max_in_flight is not None:
            self._slots = asyncio.Semaphore(self.max_in_flight)

    def add(self, consumer: Consumer) -> None:
        """Put a consumer that joined into the rotation."""
        self.joined.append(consumer)

    def remove(self, consumer: Consumer) -> None:
        """Take a consumer out of the rotation (no-op when it is not in it)."""
        if consumer in self.joined:
            self.joined.remove(consumer)

    def resolve(self, ref: Any, payload: Any) -> bool:
        """Hand a response to the request waiting on `ref`; False when none is waiting."""
        answer = self._pending.get(ref) if isinstance(ref, str) else None
        if answer is None or answer.done():
            return False
        answer.set_result(payload)
        return True

    async def call(
        self, action: Any, fields: Any, timeout: float, stopping: asyncio.Event
    ) -> Delivery:
        """Push a request to the next joined consumer and wait up to `timeout` s for its answer."""
        if not self.joined:
            return Delivery(Outcome.NO_CONSUMER)
        response_ref = str(uuid.uuid4())
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[response_ref] = answer
        request = {"action": action, "fields": fields, "response_ref": response_ref}
        deliver = asyncio.create_task(self._deliver(request, answer))
        stopped = asyncio.create_task(stopping.wait())
        try:
            done, _ = await asyncio.wait(
                {deliver, stopped}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            deliver.cancel()
            stopped.cancel()
            self._pending.pop(response_ref, None)

        if deliver in done:
            return deliver.result()
        if stopped in done:
            return Delivery(Outcome.STOPPING)
        logger.info("request %s (%s) timed out", response_ref, action)
        return Delivery(Outcome.TIMED_OUT)

    async def _deliver(self, request: dict[str, Any], answer: asyncio.Future[Any]) -> Delivery:
        """Wait for a slot, push the request to the next consumer and wait for its answer."""
        if self._slots is not None:
            async with self._slots:
                return await self._push_and_wait(request, answer)
        return await self._push_and_wait(request, answer)

    async def _push_and_wait(
        self, request: dict[str, Any], answer: asyncio.Future[Any]
    ) -> Delivery:
        if not self.joined:
            return Delivery(Outcome.NO_CONSUMER)
        consumer = self.joined[self._round_robin % len(self.joined)]
        self._round_robin += 1
        logger.debug(
            "request %s (%s) to consumer %d",
            request["response_ref"],
            request["action"],
            consumer.id,
        )
        # Like the real hub, a request whose push is lost simply times out.
        await consumer.push("request", request)
        self.pushed += 1
        self._on_pushed()
        return Delivery(Outcome.ANSWERED, await answer)
