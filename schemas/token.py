"""`Token`: a service API token's metadata, and its value when the hub sends one."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class Token(BaseModel):
    """A service API token. The value is a `SecretStr`, so it never shows in a repr or log."""

    model_config = ConfigDict(extra="allow")

    id: int | str = Field(description="The token's id on the hub")
    value: SecretStr | None = Field(
        default=None, description="The token itself (only in token_created)"
    )
    context: str | None = Field(default=None, description="What the token is for")
    service_id: int | str | None = Field(default=None, description="The service it belongs to")
    inserted_at: datetime | None = Field(default=None, description="When it was created")
    expires_at: datetime | None = Field(default=None, description="When it stops working")
