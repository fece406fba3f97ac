"""The two actions the benchmark calls: a trivial echo and a non-blocking sleep.

`Echo` matches ``actions/examples.py``'s `Echo` field for field, so the benchmark measures
the framework's cost around the smallest possible action.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from pydantic import Field
from typing_extensions import override

from core.action_response import ActionResponse
from core.action_runner import ActionRunner

if TYPE_CHECKING:
    from core.plugboard_client import PlugboardClient


class Echo(ActionRunner):
    """Answers with the message it was given."""

    message: str = Field(description="The text to send back")

    @classmethod
    @override
    def description(cls) -> str:
        return "Sends the message back unchanged"

    @override
    async def run(self, client: PlugboardClient, websocket: Any) -> ActionResponse:
        return ActionResponse(status_code=200, message="ok", fields={"message": self.message})


class Sleep(ActionRunner):
    """Waits on the event loop, then answers: many run at once."""

    seconds: float = Field(default=0.2, ge=0, le=20, description="How long to sleep")

    @classmethod
    @override
    def description(cls) -> str:
        return "Waits without blocking, then answers"

    @override
    async def run(self, client: PlugboardClient, websocket: Any) -> ActionResponse:
        await asyncio.sleep(self.seconds)
        return ActionResponse(status_code=200, message="slept", fields={"seconds": self.seconds})
