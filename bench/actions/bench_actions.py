"""The two actions the benchmark calls, written as a user would: `Echo` and `Sleep`.

They stand alone (they do not reuse the shipped examples, which a project may delete), and
take the request context as every new action does, so the benchmark measures the framework's
cost around the smallest possible action, context included.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field
from typing_extensions import override

from core import ActionRunner, Context


class Echoed(BaseModel):
    """Echo's result: what the caller receives as the answer's message."""

    message: str


class Echo(ActionRunner):
    """Answers with the message it was given."""

    message: str = Field(description="The text to send back")

    @classmethod
    @override
    def description(cls) -> str:
        return "Sends the message back unchanged"

    @override
    async def run(self, ctx: Context) -> Echoed:
        return Echoed(message=self.message)


class Sleep(ActionRunner):
    """Waits on the event loop, then answers: many of them run at once."""

    seconds: float = Field(default=0.2, ge=0, le=20, description="How long to sleep")

    @classmethod
    @override
    def description(cls) -> str:
        return "Waits without blocking, then answers"

    @override
    async def run(self, ctx: Context) -> float:
        await asyncio.sleep(self.seconds)
        return self.seconds
