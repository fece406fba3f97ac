"""The seed's import path for `PlugboardClient` (it lives in `core.hub.client`)."""

from core.hub.client import PlugboardClient

__all__ = ["PlugboardClient"]
