"""The seed's import path for `ActionSchema` (it lives in `core.model.schema`)."""

from core.model.schema import ActionSchema

__all__ = ["ActionSchema"]
