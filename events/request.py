"""`request`: the hub routes a caller's request to this consumer."""

from __future__ import annotations

from core.hub.client import SERVICE_TOPIC, PlugboardClient
from core.hub.event_handler import EventHandler
from core.hub.phoenix import Message


class RequestEvent(EventHandler):
    """Runs the requested action as its own task; the executor answers it."""

    event = "request"

    def handle(self, client: PlugboardClient, message: Message) -> None:
        """Submit ``{"action", "fields", "response_ref"}`` to the request executor."""
        if message.topic == SERVICE_TOPIC:
            client.executor.submit(message.payload)
