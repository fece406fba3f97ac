"""`EventHandler`: the base of the modules in `events/`, one per hub event.

The client decodes every frame into a `core.phoenix.Message` and hands it to the handler
registered for its event, so a handler module says only what is special about its event.
Handlers run on the event loop and must not block; long work belongs in a task.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar, TypeVar

from pydantic import BaseModel, ValidationError

from core.hub.phoenix import Message
from core.log import RateLimitedLog

if TYPE_CHECKING:
    from core.hub.client import PlugboardClient

logger = logging.getLogger(__name__)
# The hub may send malformed events at will: the line has a budget.
_malformed = RateLimitedLog(logger)
ModelT = TypeVar("ModelT", bound=BaseModel)


class EventHandler(ABC):
    """Handles one hub event; subclasses set `event` and implement `handle()`."""

    event: ClassVar[str]

    @abstractmethod
    def handle(self, client: PlugboardClient, message: Message) -> None:
        """React to `message`, an event of this handler's kind."""


def payload_item(message: Message, key: str, model: type[ModelT]) -> ModelT | None:
    """``message.payload[key]`` validated as `model`, or None (logged) when it is malformed."""
    payload = message.payload
    data = payload.get(key) if isinstance(payload, dict) else None
    try:
        return model.model_validate(data)
    except ValidationError:
        _malformed.warning("ignoring a malformed %r in a %s event", key, message.event)
        return None
