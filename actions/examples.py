"""Example actions: plain, optional and nested fields, a slow one and a blocking one.

Each `run()` takes the request's context (`core.Context`): its ref, deadline, a logger
bound to the request and the lifespan's resources. What it returns is what the caller
receives (the answer's ``message``), and its return annotation is the result's type: a
string, a number, a list or a Pydantic model, validated and encoded by the framework.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field
from typing_extensions import override

from core import ActionError, ActionRunner, ActionSchema, Context


class Echo(ActionRunner):
    """Returns its message: the smallest possible action."""

    message: str = Field(description="The text to send back")

    @classmethod
    @override
    def description(cls) -> str:
        return "Sends the message back unchanged"

    @override
    async def run(self, ctx: Context) -> str:
        return self.message


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
    async def run(self, ctx: Context) -> str:
        # Every line of ctx.logger carries the action and the request's ref.
        ctx.logger.debug("greeting %d characters", len(self.name))
        return f"{self.greeting}, {self.name}{self.punctuation or '!'}"


class Address(ActionSchema):
    """A nested schema: it appears inside another action's catalog entry."""

    street: str = Field(description="Street and number")
    city: str = Field(description="City")
    postcode: str | None = Field(default=None, description="Postal code, if known")

    @classmethod
    @override
    def description(cls) -> str:
        return "A postal address"


class FormattedAddress(BaseModel):
    """FormatAddress's result: a Pydantic model, so callers get an object with `lines`."""

    lines: list[str] = Field(description="The address, one line per item")


class FormatAddress(ActionRunner):
    """A nested `ActionSchema` field, and a Pydantic model as the result."""

    recipient: str = Field(description="The person or company")
    address: Address = Field(description="Where to send it")

    @classmethod
    @override
    def description(cls) -> str:
        return "Formats a postal address as lines of text"

    @override
    async def run(self, ctx: Context) -> FormattedAddress:
        city = (
            f"{self.address.postcode} {self.address.city}"
            if self.address.postcode
            else self.address.city
        )
        return FormattedAddress(lines=[self.recipient, self.address.street, city])


class Sleep(ActionRunner):
    """A slow asynchronous action: many of them run at once."""

    seconds: float = Field(default=0.2, ge=0, le=20, description="How long to sleep")

    @classmethod
    @override
    def description(cls) -> str:
        return "Waits without blocking, then answers"

    @override
    async def run(self, ctx: Context) -> float:
        # Past its time limit the service answers 504 and cancels this await.
        await asyncio.sleep(self.seconds)
        return self.seconds


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
    def run(self, ctx: Context) -> float:
        if self.delay and ctx.cancelled.wait(self.delay):
            # The service gave up on the request: nobody waits for this answer.
            raise ActionError(503, "given up", retryable=True)
        return sum(self.numbers)
