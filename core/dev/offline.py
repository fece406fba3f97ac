"""An unconnected `PlugboardClient`, for the local ``call`` command: it hands one to a
seed-style action (``run(self, client, websocket)``), as the service would between two
connections."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from core.hub.client import PlugboardClient
from core.model.runner import ActionRunner
from core.settings import Settings

# Stand-ins for the hub settings when they are not set: the client never connects.
PLACEHOLDER_WEBSOCKET_URL: Final = "ws://localhost:4000/websocket"


def offline_client(
    settings: Settings, actions: Mapping[str, type[ActionRunner]]
) -> PlugboardClient:
    """An unconnected client for `actions`."""
    hub_settings = settings.with_hub(
        settings.websocket_url or PLACEHOLDER_WEBSOCKET_URL, settings.token
    )
    return PlugboardClient(hub_settings, actions, events={})
