"""The seed's import path for `ActionRegistry` (it lives in `core.model.registry`)."""

from core.model.registry import ActionRegistry

__all__ = ["ActionRegistry"]
