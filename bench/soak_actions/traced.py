"""`Traced`: an echo that appends each message it answers to a file, so the soak test can
tell a request the replica answered (and the hub then lost) from one that never reached it."""

from __future__ import annotations

import os
from typing import Any

from pydantic import Field

from core import ActionRunner

# One line per answered message; opened once, line-buffered.
_answered = open(os.environ.get("SOAK_ANSWERED_FILE", os.devnull), "a", buffering=1)  # noqa: SIM115


class Traced(ActionRunner):
    """Answers with its message after writing it down."""

    message: str = Field(description="What to send back")

    @classmethod
    def description(cls) -> str:
        return "Sends the message back, and notes that it did"

    async def run(self, client: Any, websocket: Any) -> str:
        _answered.write(self.message + "\n")
        return self.message
