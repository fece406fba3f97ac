"""`Service`: the hub's record of the service this consumer serves."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field

from core.model.schema import ActionSchema


class Service(ActionSchema):
    """A service registered on the hub, as sent in the join reply and service events.

    An `ActionSchema`, as in the seed, so it describes itself (`to_dict()`). Keys the hub
    adds later are kept (``extra="allow"``).
    """

    model_config = ConfigDict(extra="allow")

    id: int = Field(description="The service's id on the hub")
    name: str = Field(description="The service's name")
    inserted_at: datetime = Field(description="When it was created")
    updated_at: datetime = Field(description="When it last changed")

    @classmethod
    def description(cls) -> str:
        """What this schema is."""
        return "A service registered on the Plugboard hub"
