"""The seed's import path for `ActionRunner` (it lives in `core.model.runner`)."""

from core.model.runner import ActionRunner

__all__ = ["ActionRunner"]
