"""`token_created`: a new token for this service; the next connection uses it."""

from __future__ import annotations

from core.hub.event_handler import EventHandler, Replica, payload_item
from core.hub.phoenix import Message
from schemas.token import Token


class TokenCreatedEvent(EventHandler):
    """Hands the new token's value to the replica."""

    event = "token_created"

    def handle(self, replica: Replica, message: Message) -> None:
        """Read ``{"token": {..., "value"}}``."""
        token = payload_item(message.payload, "token", Token, self.event)
        if token is not None:
            replica.use_token(token)
