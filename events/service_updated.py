"""`service_updated`: the service's record changed on the hub."""

from __future__ import annotations

import logging

from core.hub.client import PlugboardClient
from core.hub.event_handler import EventHandler, payload_item
from core.hub.phoenix import Message
from core.log import RateLimitedLog, truncate
from schemas.service import Service

logger = logging.getLogger(__name__)
# The hub may send this at will: the line has a budget.
_updates = RateLimitedLog(logger)


class ServiceUpdatedEvent(EventHandler):
    """Keeps the client's copy of the service current."""

    event = "service_updated"

    def handle(self, client: PlugboardClient, message: Message) -> None:
        """Store ``{"service": {...}}``."""
        service = payload_item(message, "service", Service)
        if service is not None:
            client.service = service
            _updates.info("service updated: %s (id %s)", truncate(service.name, 100), service.id)
