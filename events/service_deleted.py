"""`service_deleted`: the service is gone and its tokens with it; stop for good."""

from __future__ import annotations

import logging

from core.hub.event_handler import EventHandler, Replica
from core.hub.phoenix import Message
from core.log import truncate

logger = logging.getLogger(__name__)


class ServiceDeletedEvent(EventHandler):
    """Leaves, closes and exits with code 0; reconnecting would be refused anyway."""

    event = "service_deleted"

    def handle(self, replica: Replica, message: Message) -> None:
        """Log the deletion and stop the replica."""
        payload = message.payload
        service = payload.get("service") if isinstance(payload, dict) else None
        name = service.get("name") if isinstance(service, dict) else None
        logger.warning(
            "the service %s was deleted on the hub: leaving and exiting without reconnecting",
            truncate(name, 100) if isinstance(name, str) else "(unknown)",
        )
        replica.stop(exit_code=0)
