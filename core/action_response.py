"""The seed's import path for `ActionResponse` (it lives in `core.model.response`)."""

from core.model.response import ActionResponse

__all__ = ["ActionResponse"]
