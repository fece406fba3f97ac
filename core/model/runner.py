"""`ActionRunner`: an action the hub can call."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, ClassVar

from core.model.response import ActionResponse
from core.model.schema import ActionSchema

if TYPE_CHECKING:
    from core.hub.client import PlugboardClient


class ActionRunner(ActionSchema):
    """An action: validated fields plus a `run()` that returns an `ActionResponse`.

    Implement ``async def run(self, client, websocket)``; a plain ``def run(...)`` is allowed
    too and runs in a worker thread, so blocking work (a database call) never stalls the
    event loop. Set ``timeout_seconds`` on a subclass to override the service-wide time limit.
    """

    timeout_seconds: ClassVar[float | None] = None

    @abstractmethod
    def run(
        self, client: PlugboardClient, websocket: Any
    ) -> Awaitable[ActionResponse] | ActionResponse:
        """Execute the action and return its response."""
