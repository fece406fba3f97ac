"""`Work`: answers its message, after `seconds` of waiting, and notes every message it
answered in a file, so the deploy benchmark can tell a request a replica answered (and that
was then lost) from one that never reached any replica."""

from __future__ import annotations

import asyncio
import os

from pydantic import Field

from core import ActionRunner, Context

# One line per answered message; opened once, line-buffered.
_answered = open(os.environ.get("DEPLOY_ANSWERED_FILE", os.devnull), "a", buffering=1)  # noqa: SIM115


class Work(ActionRunner):
    """Waits `seconds` (so that some requests are running when a replica is stopped), then
    answers with its message."""

    message: str = Field(description="What to send back")
    seconds: float = Field(default=0.0, ge=0, le=5, description="How long to work first")

    @classmethod
    def description(cls) -> str:
        return "Sends the message back, after a while"

    async def run(self, ctx: Context) -> str:
        if self.seconds:
            await asyncio.sleep(self.seconds)
        _answered.write(self.message + "\n")
        return self.message
