"""`phx_close`: the hub closed the channel (after our leave, or a duplicate join)."""

from __future__ import annotations

from core.hub.client import SERVICE_TOPIC, PlugboardClient
from core.hub.event_handler import EventHandler
from core.hub.phoenix import PHX_CLOSE, Message


class PhxCloseEvent(EventHandler):
    """Rejoins unless we asked to leave; ignores closes of earlier joins."""

    event = PHX_CLOSE

    def handle(self, client: PlugboardClient, message: Message) -> None:
        """Mark the channel closed."""
        if message.topic == SERVICE_TOPIC and client.is_current_join(message):
            client.channel_lost(self.event)
