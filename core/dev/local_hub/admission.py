"""Who may open a consumer socket on the local hub: the checks on the HTTP upgrade.

``GET /websocket?token=...&actions=...[&vsn=2.0.0]`` is checked in the real hub's order:

1. ``Origin``: a request that carries one must name an allowed host (``localhost``, the
   host the hub serves on, or one given in ``origin_hosts``), compared as written, any
   scheme or port. Browsers send it; other clients send none, which is accepted.
2. ``vsn``: 1.x selects the v1 serializer (also the default), 2.x the v2 one; anything
   else is refused.
3. ``token`` must be one of the service's accepted tokens, and ``actions`` must be present.
4. While consumers are joined, ``actions`` must decode to the catalog the first of them
   registered (compared as JSON values, so key order and spacing do not matter).
   ``actions`` that is not JSON is then an internal error (HTTP 500); with no consumer
   joined it is let through unread, and the join fails instead (see `channel`).

Every refusal is HTTP 403 with an empty body, so a consumer cannot tell a bad token from a
catalog mismatch; only the not-JSON case above differs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from core import json_codec
from core.dev.local_hub.channel import ServiceChannel
from core.dev.local_hub.service import HostedService
from core.hub.phoenix import Serializer, serializer_for

logger = logging.getLogger("core.local_hub")

ALWAYS_ALLOWED_ORIGIN = "localhost"
"""The origin host the local hub always accepts, as the real test hub does."""


@dataclass(frozen=True, slots=True)
class Admitted:
    """A consumer allowed in: its token's record, its serializer, its raw catalog."""

    token: dict[str, Any]
    serializer: Serializer
    actions: str


def origin_host(origin: str) -> str | None:
    """The host an ``Origin`` header names, as written (no case folding), or None."""
    netloc = urlsplit(origin).netloc
    host = netloc.rpartition("@")[2]
    if host.startswith("["):  # an IPv6 literal
        end = host.find("]")
        return (host[1:end] or None) if end > 0 else None
    return host.partition(":")[0] or None


class Gate:
    """Decides whether an upgrade request may become a consumer socket."""

    def __init__(
        self, service: HostedService, channel: ServiceChannel, origin_hosts: Iterable[str]
    ) -> None:
        self.service = service
        self.channel = channel
        self.origin_hosts = frozenset(origin_hosts) | {ALWAYS_ALLOWED_ORIGIN}

    def check(self, request: web.Request) -> Admitted | web.Response:
        """The admitted consumer, or the response that refuses it."""
        origin = request.headers.get("Origin")
        if origin is not None and origin_host(origin) not in self.origin_hosts:
            return self._refuse("its Origin names a host this hub does not serve")
        try:
            serializer = serializer_for(request.query.get("vsn", "1.0.0"))
        except ValueError:
            return self._refuse("unsupported vsn")
        token = self.service.token(request.query.get("token", ""))
        if token is None:
            return self._refuse("unknown or revoked token")
        actions = request.query.get("actions")
        if actions is None:
            return self._refuse("no actions parameter")
        if self.channel.joined_count():
            try:
                catalog = json_codec.loads(actions)
            except json_codec.JSONDecodeFailure:
                logger.warning("consumer refused (500): actions parameter is not JSON")
                return web.json_response(
                    {"errors": {"detail": "Internal Server Error"}}, status=500
                )
            if catalog != self.channel.catalog:
                return self._refuse(
                    "its action catalog differs from the one registered by the "
                    f"{self.channel.joined_count()} joined consumer(s)"
                )
        return Admitted(token, serializer, actions)

    @staticmethod
    def _refuse(reason: str) -> web.Response:
        logger.warning("consumer refused (403): %s", reason)
        return web.Response(status=403)
