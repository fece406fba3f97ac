"""`phx_error`: the hub's channel process crashed; rejoin."""

from __future__ import annotations

from core.hub.client import SERVICE_TOPIC, PlugboardClient
from core.hub.event_handler import EventHandler
from core.hub.phoenix import PHX_ERROR, Message


class PhxErrorEvent(EventHandler):
    """Marks the channel lost and rejoins on the phoenix.js schedule."""

    event = PHX_ERROR

    def handle(self, client: PlugboardClient, message: Message) -> None:
        """Rejoin unless the error is about an earlier join."""
        if message.topic == SERVICE_TOPIC and client.is_current_join(message):
            client.channel_lost(self.event)
