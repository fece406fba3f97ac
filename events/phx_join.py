"""`phx_join`: the outcome of joining topic ``service``.

The hub never sends ``phx_join`` to a consumer; its answer to ours is a ``phx_reply`` that
carries the join's ref, which the `phx_reply` handler passes here.
"""

from __future__ import annotations

from core.hub.client import PlugboardClient
from core.hub.event_handler import EventHandler, payload_item
from core.hub.phoenix import Message, reply_status
from schemas.service import Service
from schemas.token import Token


class PhxJoinEvent(EventHandler):
    """Records the service, token and consumer count, or schedules a rejoin on error."""

    event = "phx_join"

    def handle(self, client: PlugboardClient, message: Message) -> None:
        """Apply the join reply ``{"status", "response"}``."""
        status, response = reply_status(message)
        if status != "ok":
            reason = response.get("reason") if isinstance(response, dict) else None
            client.join_failed(str(reason if reason is not None else response))
            return
        details = Message(
            message.topic, message.event, response if isinstance(response, dict) else {}
        )
        consumers = details.payload.get("num_consumers")
        client.joined_ok(
            payload_item(details, "service", Service),
            payload_item(details, "token", Token),
            consumers if isinstance(consumers, int) and not isinstance(consumers, bool) else None,
        )
