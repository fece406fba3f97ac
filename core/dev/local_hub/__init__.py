"""A local stand-in for the Plugboard hub: ``python -m core.local_hub``."""

from core.dev.local_hub.hub import LocalHub

__all__ = ["LocalHub"]
