"""`token_deleted`: a token of this service was deleted."""

from __future__ import annotations

from core.hub.event_handler import EventHandler, Replica, payload_item
from core.hub.phoenix import Message
from schemas.token import Token


class TokenDeletedEvent(EventHandler):
    """Warns when the deleted token is the one this replica uses."""

    event = "token_deleted"

    def handle(self, replica: Replica, message: Message) -> None:
        """Read ``{"token": {...}}``."""
        token = payload_item(message.payload, "token", Token, self.event)
        if token is not None:
            replica.token_deleted(token)
