"""The ``service`` channel of the local hub: joining, leaving, and what crashes it.

What a consumer's messages do once its socket is up (heartbeats aside, which the socket
answers itself):

* ``phx_join`` on ``service``: the consumer enters the rotation. The reply carries the
  service record, the token's record (without its value) and ``num_consumers``; the other
  joined consumers get a ``num_consumers`` push. The first consumer to join registers its
  catalog (the ``actions`` it connected with); it is dropped when the last one leaves. A
  consumer whose ``actions`` is not a JSON object cannot join: the reply is an error
  ``join crashed`` (the socket stays open). Joining again on the same socket replaces the
  first join: the reply, then ``phx_close`` with the old join ref.
* ``response`` on the joined topic: handed to the request waiting on its ``ref``.
* ``phx_leave`` on the joined topic: an ok reply, then ``phx_close``; out of the rotation.
  A leave whose ``join_ref`` names another join is ignored (a v1 join without a join_ref
  matches any). A leave on a topic that is not joined gets an ok reply and nothing else.
* any other event on the joined topic crashes the channel, as on the real hub:
  ``phx_error`` with the join ref, out of the rotation, the socket stays open.
* anything else on a topic the socket has not joined: an error reply ``unmatched topic``.

Join refs, as the real hub sets them: the join's ``join_ref`` is kept as sent (None when
the client sent none); ``phx_close`` and ``phx_error`` carry it as their ref and join_ref,
and a leave must name it. The channel's pushes (``request``, ``num_consumers``, events) and
its reply to a leave carry the channel's join ref: the join's ``join_ref``, or the join's
``ref`` when it had none. A join's reply echoes its ``join_ref``; heartbeat and
``unmatched topic`` replies carry none. (v1 frames never show a join_ref.)

On the real hub the channel is a process of its own, so ``phx_error``, the reply to a leave
and the ``phx_close`` after a second join may come after the replies to frames sent later
(a heartbeat, say); the local hub answers strictly in order.

Each leave is announced twice to the remaining consumers, as the real hub does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from core import json_codec
from core.dev.local_hub.consumer import SERVICE_TOPIC, Consumer
from core.dev.local_hub.routing import Router
from core.dev.local_hub.service import HostedService, public_token
from core.hub.phoenix import PHX_CLOSE, PHX_ERROR, PHX_JOIN, PHX_LEAVE, Message

logger = logging.getLogger("core.local_hub")


class ServiceChannel:
    """The conversation on topic ``service`` for every consumer of the hosted service."""

    def __init__(
        self, service: HostedService, router: Router, on_change: Callable[[], None]
    ) -> None:
        self.service = service
        self.router = router
        self._on_change = on_change
        self.catalog: dict[str, Any] | None = None
        """The catalog registered by the first consumer that joined, while any is joined."""

    def joined_count(self) -> int:
        """How many consumers are joined."""
        return len(self.router.joined)

    async def handle(self, consumer: Consumer, message: Message) -> None:
        """Act on one message from `consumer` (anything but a heartbeat)."""
        if message.topic == SERVICE_TOPIC and message.event == PHX_JOIN:
            await self.join(consumer, message)
            return
        if message.topic != SERVICE_TOPIC or not consumer.joined:
            if message.event == PHX_LEAVE:
                # Phoenix answers a leave of a topic without a channel: nothing to close.
                await consumer.reply(message, "ok", {}, message.join_ref)
            else:
                await consumer.reply(message, "error", {"reason": "unmatched topic"})
            return
        if message.event == "response":
            if not self.router.resolve(message.ref, message.payload):
                logger.debug("consumer %d: response for unknown ref ignored", consumer.id)
            return
        join_ref = consumer.join_ref
        if message.event == PHX_LEAVE:
            if join_ref is not None and message.join_ref != join_ref:
                # A leave for an earlier join (it raced a close): Phoenix drops it silently.
                logger.debug("consumer %d: leave for another join ignored", consumer.id)
                return
            await consumer.reply(message, "ok", {}, consumer.channel_ref)
            await consumer.send(Message(SERVICE_TOPIC, PHX_CLOSE, {}, join_ref, join_ref))
            await self.leave(consumer)
            logger.info("consumer %d left", consumer.id)
            return
        logger.warning(
            "consumer %d sent illegal event %r on the service topic: phx_error",
            consumer.id,
            message.event,
        )
        await consumer.send(Message(SERVICE_TOPIC, PHX_ERROR, {}, join_ref, join_ref))
        await self.leave(consumer)

    async def join(self, consumer: Consumer, message: Message) -> None:
        """Join `consumer` (replacing its earlier join, if any) and tell the others.

        The join's ``join_ref`` is kept as sent (None for a client that sends none) for
        ``phx_close`` and ``phx_error``; the channel's pushes carry that ``join_ref``, or the
        join's ``ref`` when it had none.
        """
        try:
            catalog = json_codec.loads(consumer.actions)
        except json_codec.JSONDecodeFailure:
            catalog = None
        if not isinstance(catalog, dict):
            logger.warning(
                "consumer %d cannot join: its actions parameter is not a JSON object", consumer.id
            )
            await consumer.reply(message, "error", {"reason": "join crashed"}, message.join_ref)
            return
        rejoined = consumer.joined
        old_ref = consumer.join_ref
        if rejoined:
            # The old join ends first; the others hear of it once (not twice as for a leave).
            self._remove(consumer)
            await self.announce(exclude=consumer)
        consumer.joined = True
        consumer.join_ref = message.join_ref
        consumer.channel_ref = message.join_ref if message.join_ref is not None else message.ref
        if not self.router.joined:
            self.catalog = catalog
        self.router.add(consumer)
        count = len(self.router.joined)
        await consumer.reply(message, "ok", self.join_response(consumer, count), message.join_ref)
        if rejoined:
            await consumer.send(Message(SERVICE_TOPIC, PHX_CLOSE, {}, old_ref, old_ref))
        logger.info("consumer %d joined (%d joined)", consumer.id, count)
        await self.announce(exclude=consumer)
        self._on_change()

    def join_response(self, consumer: Consumer, count: int) -> dict[str, Any]:
        """The ``response`` of an ok join reply."""
        return {
            "service": dict(self.service.record),
            "token": public_token(consumer.token),
            "num_consumers": count,
        }

    async def leave(self, consumer: Consumer) -> None:
        """Take a consumer out of the rotation and tell the others (twice, like the hub)."""
        if not consumer.joined:
            return
        self._remove(consumer)
        self._on_change()
        await self.announce(exclude=consumer)
        await self.announce(exclude=consumer)

    def _remove(self, consumer: Consumer) -> None:
        """Out of the rotation; the catalog goes with the last joined consumer."""
        consumer.joined = False
        consumer.join_ref = None
        consumer.channel_ref = None
        self.router.remove(consumer)
        if not self.router.joined:
            self.catalog = None

    async def announce(self, exclude: Consumer) -> None:
        """Push ``num_consumers`` to every joined consumer but `exclude`."""
        payload = {"num_consumers": len(self.router.joined)}
        for other in list(self.router.joined):
            if other is not exclude:
                await other.push("num_consumers", payload)
