"""`phx_reply`: the hub answers a message we sent (join, heartbeat, leave)."""

from __future__ import annotations

import logging

from core.hub.client import PlugboardClient
from core.hub.event_handler import EventHandler
from core.hub.phoenix import PHOENIX_TOPIC, PHX_JOIN, Message, reply_status

logger = logging.getLogger(__name__)


class PhxReplyEvent(EventHandler):
    """Routes a reply by its ref: heartbeat acknowledgements, the join, the leave."""

    event = "phx_reply"

    def handle(self, client: PlugboardClient, message: Message) -> None:
        """Acknowledge heartbeats, pass the join reply on, log error replies to the rest."""
        if message.topic == PHOENIX_TOPIC:
            client.heartbeat_acknowledged(message.ref)
            return
        if message.ref is not None and message.ref == client.join_ref:
            client.dispatch(PHX_JOIN, message)
            return
        if message.ref is not None and message.ref == client.leave_ref:
            return
        status, response = reply_status(message)
        if status != "ok":
            logger.warning(
                "the hub answered ref %s on topic %r with %s: %.200s",
                message.ref,
                message.topic,
                status,
                response,
            )
