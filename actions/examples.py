"""Example actions: plain, optional and nested fields, a slow one and a blocking one.

Each `run()` takes the request's context (`core.Context`): its ref, deadline, a logger
bound to the request and the lifespan's resources.
"""

from __future__ import annotations

import asyncio

from pydantic import Field
from typing_extensions import override

from core import ActionResponse, ActionRunner, ActionSchema, Context


class Echo(ActionRunner):
    """Returns its message: the smallest possible action."""

    message: str = Field(description="The text to send back")

    @classmethod
    @override
    def description(cls) -> str:
        return "Sends the message back unchanged"

    @override
    async def run(self, ctx: Context) -> ActionResponse:
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
    async def run(self, ctx: Context) -> ActionResponse:
        text = f"{self.greeting}, {self.name}{self.punctuation or '!'}"
        # Every line of ctx.logger carries the action and the request's ref.
        ctx.logger.debug("greeting %d characters", len(self.name))
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
    async def run(self, ctx: Context) -> ActionResponse:
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
    async def run(self, ctx: Context) -> ActionResponse:
        # Past its time limit the service answers 504 and cancels this await.
        await asyncio.sleep(self.seconds)
        return ActionResponse(status_code=200, message="slept", fields={"seconds": self.seconds})


class BlockingSum(ActionRunner):
    """A plain def run(): it blocks, so the framework runs it in a worker thread.

    A thread cannot be stopped from outside: past the time limit the caller gets 504, and the
    thread is free again only when run() returns, so blocking waits go through ctx.cancelled,
    which wakes up as soon as the service gives up on the request.
    """

    numbers: list[float] = Field(description="The numbers to add", max_length=10_000)
    delay: float = Field(default=0.0, ge=0, le=5, description="Seconds to block first")

    @classmethod
    @override
    def description(cls) -> str:
        return "Adds numbers in a worker thread (an example of a blocking action)"

    @override
    def run(self, ctx: Context) -> ActionResponse:
        if self.delay and ctx.cancelled.wait(self.delay):
            return ActionResponse(status_code=503, message="given up")  # nobody waits for it
        return ActionResponse(status_code=200, message="summed", fields={"sum": sum(self.numbers)})
