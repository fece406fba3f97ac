"""`num_consumers`: how many consumers the service has, pushed when one joins or leaves."""

from __future__ import annotations

from core.hub.event_handler import EventHandler, Replica
from core.hub.phoenix import Message


class NumConsumersEvent(EventHandler):
    """Keeps the consumer count the hub reports."""

    event = "num_consumers"

    def handle(self, replica: Replica, message: Message) -> None:
        """Read ``{"num_consumers": N}``."""
        payload = message.payload
        count = payload.get("num_consumers") if isinstance(payload, dict) else None
        if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
            replica.consumers_counted(count)
