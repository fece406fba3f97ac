"""`RequestEvent`: the shape of a ``request`` message, as the seed models it.

The service reads requests on its hot path without building this model (the request
executor checks the few things it needs); this is the typed description of the same frame
for code that wants one: tests, tools, and code written against the seed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from core.model.schema import ActionSchema


class RequestEvent(ActionSchema):
    """A caller's request, routed by the hub to this consumer (protocol page, section 4)."""

    class Payload(ActionSchema):
        """What the request carries: the action, its fields and where to send the answer."""

        action: str = Field(description="The name of the action to run")
        fields: dict[str, Any] = Field(description="The fields to validate and pass to it")
        response_ref: str | None = Field(
            default=None, description="The ref the response must carry"
        )

        @classmethod
        def description(cls) -> str:
            """What this schema is."""
            return "The payload of a request event"

    ref: str | None = Field(default=None, description="The message's ref (null for a push)")
    topic: str = Field(description="The topic it arrived on")
    event: Literal["request"] = Field(default="request", description='Always "request"')
    payload: Payload = Field(description="The request itself")

    @classmethod
    def discriminator(cls) -> str:
        """The event's name."""
        return "request"

    @classmethod
    def description(cls) -> str:
        """What this schema is."""
        return "A request for one of the service's actions, routed by the hub"
