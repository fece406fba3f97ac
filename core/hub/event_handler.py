"""`EventHandler`: the base of the modules in `events/`, one per domain event of the hub.

The client routes each message on the ``service`` topic: ``request`` to the request executor
itself, the channel's own events (``phx_reply``, ``phx_error``, ``phx_close``) to the
channel, and every other event to the handler registered for it. A handler says only what is
special about its event, and acts through `Replica`, the small part of the client a domain
event may read and change. Handlers run on the event loop and must not block.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from core.hub.phoenix import Message
from core.log import RateLimitedLog
from schemas.service import Service
from schemas.token import Token

logger = logging.getLogger(__name__)
# The hub may send malformed events at will: the line has a budget.
_malformed = RateLimitedLog(logger)
ModelT = TypeVar("ModelT", bound=BaseModel)


class Replica(Protocol):
    """What an event handler may read of this replica and ask it to do."""

    @property
    def service(self) -> Service | None:
        """The service as the hub last described it (None before the join)."""

    @property
    def token(self) -> Token:
        """The token this replica connects with (its value is never logged)."""

    @property
    def num_consumers(self) -> int:
        """The service's consumers, this one included, as the hub last counted them."""

    def service_updated(self, service: Service) -> None:
        """The hub changed the service's record."""

    def consumers_counted(self, count: int) -> None:
        """The hub counted the service's consumers again."""

    def use_token(self, token: Token) -> None:
        """A new token for this service: connect with it from now on."""

    def token_deleted(self, token: Token) -> None:
        """A token of this service was deleted."""

    def stop(self, exit_code: int = 0) -> None:
        """Leave, close and exit without reconnecting."""


class EventHandler(ABC):
    """Handles one hub event; subclasses set `event` and implement `handle()`."""

    event: ClassVar[str]

    @abstractmethod
    def handle(self, replica: Replica, message: Message) -> None:
        """React to `message`, an event of this handler's kind."""


def payload_item(payload: Any, key: str, model: type[ModelT], event: str) -> ModelT | None:
    """``payload[key]`` validated as `model`, or None (logged) when it is malformed; `event`
    names the message it came in, for that line."""
    data = payload.get(key) if isinstance(payload, dict) else None
    try:
        return model.model_validate(data)
    except ValidationError:
        _malformed.warning("ignoring a malformed %r in a %s event", key, event)
        return None
