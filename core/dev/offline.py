"""An unconnected `PlugboardClient`, for the commands that work without a hub.

``actions`` uses one to build the catalog and size the connection URL; the local ``call``
hands one to the action it runs, as the service would between two connections.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from core.hub.client import PlugboardClient
from core.model.runner import ActionRunner
from core.settings import Settings

# Stand-ins for the hub settings when they are not set, so `actions` can size the URL.
PLACEHOLDER_WEBSOCKET_URL: Final = "ws://localhost:4000/websocket"
PLACEHOLDER_TOKEN: Final = "x" * 32


def offline_client(
    settings: Settings, actions: Mapping[str, type[ActionRunner]]
) -> tuple[PlugboardClient, list[str]]:
    """An unconnected client for `actions`, and the stand-ins used for unset hub settings."""
    assumed: list[str] = []
    if not settings.websocket_url:
        assumed.append(f"WEBSOCKET_URL={PLACEHOLDER_WEBSOCKET_URL}")
    if not settings.token:
        assumed.append(f"a {len(PLACEHOLDER_TOKEN)}-character TOKEN")
    hub_settings = settings.with_hub(
        settings.websocket_url or PLACEHOLDER_WEBSOCKET_URL, settings.token or PLACEHOLDER_TOKEN
    )
    return PlugboardClient(hub_settings, actions, events={}), assumed
