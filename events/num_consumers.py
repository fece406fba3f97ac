"""`num_consumers`: how many consumers the service has, pushed when one joins or leaves."""

from __future__ import annotations

import logging

from core.hub.client import PlugboardClient
from core.hub.event_handler import EventHandler
from core.hub.phoenix import Message
from core.log import RateLimitedLog

logger = logging.getLogger(__name__)
# The hub may send this at will: the line has a budget.
_changes = RateLimitedLog(logger)


class NumConsumersEvent(EventHandler):
    """Keeps the consumer count the hub reports."""

    event = "num_consumers"

    def handle(self, client: PlugboardClient, message: Message) -> None:
        """Store ``{"num_consumers": N}``."""
        payload = message.payload
        count = payload.get("num_consumers") if isinstance(payload, dict) else None
        if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
            if count != client.num_consumers:
                _changes.info("the service now has %d consumer(s)", count)
            client.num_consumers = count
