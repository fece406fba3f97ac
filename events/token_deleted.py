"""`token_deleted`: a token of this service was deleted."""

from __future__ import annotations

from core.hub.client import PlugboardClient
from core.hub.event_handler import EventHandler, payload_item
from core.hub.phoenix import Message
from schemas.token import Token


class TokenDeletedEvent(EventHandler):
    """Warns when the deleted token is the one this replica uses."""

    event = "token_deleted"

    def handle(self, client: PlugboardClient, message: Message) -> None:
        """Read ``{"token": {...}}``."""
        token = payload_item(message, "token", Token)
        if token is None:
            return
        client.token_deleted(token)
