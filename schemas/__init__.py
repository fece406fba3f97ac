"""Models of the hub's objects: the service this consumer serves and its API tokens."""

from schemas.service import Service
from schemas.token import Token

__all__ = ["Service", "Token"]
