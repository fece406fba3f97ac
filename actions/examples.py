"""Example actions: plain, optional, nested and synchronous fields."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from pydantic import Field
from typing_extensions import override

from core import ActionResponse, ActionRunner, ActionSchema

if TYPE_CHECKING:
    from core.plugboard_client import PlugboardClient


class Echo(ActionRunner):
    """Returns its message: the smallest possible action."""

    message: str = Field(description="The text to send back")

    @classmethod
    @override
    def description(cls) -> str:
        return "Sends the message back unchanged"

    @override
    async def run(self, client: PlugboardClient, websocket: Any) -> ActionResponse:
        return ActionResponse(status_code=200, message="ok", fields={"message": self.message})


class Greet(ActionRunner):
    """A required field, a field with a default and an optional one."""

    name: str = Field(description="Who to greet", min_length=1, max_length=100)
    greeting: str = Field(default="Hello", description="The greeting word")
    punctuation: str | None = Field(default=None, description="Ends the sentence (default: !)")

    @classmethod
    @override
    def description(cls) -> str:
        return "Greets someone by name"

    @override
    async def run(self, client: PlugboardClient, websocket: Any) -> ActionResponse:
        text = f"{self.greeting}, {self.name}{self.punctuation or '!'}"
        return ActionResponse(status_code=200, message=text, fields={"greeting": text})


class Address(ActionSchema):
    """A nested schema: it appears inside another action's catalog entry."""

    street: str = Field(description="Street and number")
    city: str = Field(description="City")
    postcode: str | None = Field(default=None, description="Postal code, if known")

    @classmethod
    @override
    def description(cls) -> str:
        return "A postal address"


class FormatAddress(ActionRunner):
    """A nested `ActionSchema` field."""

    recipient: str = Field(description="The person or company")
    address: Address = Field(description="Where to send it")

    @classmethod
    @override
    def description(cls) -> str:
        return "Formats a postal address as lines of text"

    @override
    async def run(self, client: PlugboardClient, websocket: Any) -> ActionResponse:
        lines = [self.recipient, self.address.street]
        city = (
            f"{self.address.postcode} {self.address.city}"
            if self.address.postcode
            else (self.address.city)
        )
        lines.append(city)
        return ActionResponse(status_code=200, message="formatted", fields={"lines": lines})


class Sleep(ActionRunner):
    """A slow asynchronous action: many of them run at once."""

    seconds: float = Field(default=0.2, ge=0, le=20, description="How long to sleep")

    @classmethod
    @override
    def description(cls) -> str:
        return "Waits without blocking, then answers"

    @override
    async def run(self, client: PlugboardClient, websocket: Any) -> ActionResponse:
        await asyncio.sleep(self.seconds)
        return ActionResponse(status_code=200, message="slept", fields={"seconds": self.seconds})


class BlockingSum(ActionRunner):
    """A synchronous run(): it blocks, so the framework runs it in a worker thread."""

    numbers: list[float] = Field(description="The numbers to add", max_length=10_000)
    delay: float = Field(default=0.0, ge=0, le=5, description="Seconds to block first")

    @classmethod
    @override
    def description(cls) -> str:
        return "Adds numbers in a worker thread (an example of a blocking action)"

    @override
    def run(self, client: PlugboardClient, websocket: Any) -> ActionResponse:
        time.sleep(self.delay)
        return ActionResponse(status_code=200, message="summed", fields={"sum": sum(self.numbers)})
