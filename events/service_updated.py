"""`service_updated`: the service's record changed on the hub."""

from __future__ import annotations

from core.hub.event_handler import EventHandler, Replica, payload_item
from core.hub.phoenix import Message
from schemas.service import Service


class ServiceUpdatedEvent(EventHandler):
    """Keeps the replica's copy of the service current."""

    event = "service_updated"

    def handle(self, replica: Replica, message: Message) -> None:
        """Read ``{"service": {...}}``."""
        service = payload_item(message.payload, "service", Service, self.event)
        if service is not None:
            replica.service_updated(service)
