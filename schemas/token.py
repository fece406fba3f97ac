"""`Token`: a service API token's metadata, and its value when the hub sends one."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field, SecretStr

from core.model.schema import ActionSchema


class Token(ActionSchema):
    """A service API token. Every field defaults to None, so ``Token()`` is an empty token.

    The value is a `SecretStr`, so it never shows in a repr, a log line or a dump (the seed
    kept it as plain text); assigning a plain string stores it as a `SecretStr` too. Read it
    with ``token.value.get_secret_value()``.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    id: int | None = Field(default=None, description="The token's id on the hub")
    context: str | None = Field(default=None, description="What the token is for")
    value: SecretStr | None = Field(
        default=None, description="The token itself (only in token_created)"
    )
    service_id: int | None = Field(default=None, description="The service it belongs to")
    inserted_at: datetime | None = Field(default=None, description="When it was created")
    expires_at: datetime | None = Field(default=None, description="When it stops working")

    @classmethod
    def description(cls) -> str:
        """What this schema is."""
        return "An API token of a service on the Plugboard hub"
