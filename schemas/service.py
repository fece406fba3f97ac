"""`Service`: the hub's record of the service this consumer serves."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class Service(BaseModel):
    """A service registered on the hub, as sent in the join reply and service events."""

    model_config = ConfigDict(extra="allow")

    id: int | str = Field(description="The service's id on the hub")
    name: str | None = Field(default=None, description="The service's name")
    inserted_at: datetime | None = Field(default=None, description="When it was created")
    updated_at: datetime | None = Field(default=None, description="When it last changed")
