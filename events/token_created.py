"""`token_created`: a new token for this service; the next connection uses it."""

from __future__ import annotations

from core.hub.client import PlugboardClient
from core.hub.event_handler import EventHandler, payload_item
from core.hub.phoenix import Message
from schemas.token import Token


class TokenCreatedEvent(EventHandler):
    """Hands the new token's value to the client."""

    event = "token_created"

    def handle(self, client: PlugboardClient, message: Message) -> None:
        """Read ``{"token": {..., "value"}}``."""
        token = payload_item(message, "token", Token)
        if token is None:
            return
        client.use_token(token)
