"""The local hub's HTTP front: ``POST /`` calls an action of the hosted service.

The body is ``{"service_id", "action", "fields"}``. The front hands the request to a joined
consumer (see `routing`), waits for its response and answers the way the real hub does:

* 200 ``{"status": "success", "message"}`` when the consumer's payload has status
  ``"success"`` and a ``message``;
* 400 ``{"status": "error", "message"}`` when it has another status and a ``message``, and
  400 when a parameter is missing or the body is not JSON;
* 401 when the hub was given an ``api_token`` and the bearer token is wrong or missing;
* 408 when no response came within the request timeout;
* 422 when the service is unknown or has no joined consumer;
* 502 when the consumer's payload lacks ``status`` or ``message``.

As a developer extension the body also carries the consumer's ``status_code`` and
``fields`` when its payload had them (the real hub returns ``status`` and ``message``).
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

from aiohttp import web

from core import json_codec
from core.dev.local_hub.routing import Outcome, Router
from core.dev.local_hub.service import HostedService

MISSING_PARAMS = "service_id, action and fields parameters are required"


def error_body(message: str) -> dict[str, Any]:
    """The body of an error the hub itself reports."""
    return {"status": "error", "message": message}


def http_result(payload: Any) -> tuple[int, dict[str, Any]]:
    """Turn a consumer's response payload into the HTTP front's status and body."""
    if not (isinstance(payload, dict) and "status" in payload and "message" in payload):
        return 502, error_body("Invalid response format from service process")
    success = payload["status"] == "success"
    body: dict[str, Any] = {
        "status": "success" if success else "error",
        "message": payload["message"],
    }
    # Local-hub extension: the real hub only returns status and message.
    for key in ("status_code", "fields"):
        if key in payload:
            body[key] = payload[key]
    return (200 if success else 400), body


class HttpFront:
    """Calls actions for HTTP callers (and for `LocalHub.request`)."""

    def __init__(
        self,
        service: HostedService,
        router: Router,
        request_timeout: float,
        api_token: str | None = None,
    ) -> None:
        self.service = service
        self.router = router
        self.request_timeout = request_timeout
        self._api_token = api_token
        self.stopping = asyncio.Event()
        """Set when the hub stops: waiting callers get 503."""

    def start(self) -> None:
        """Make the loop-bound parts in the running loop."""
        self.stopping = asyncio.Event()

    async def call(
        self, service_id: Any, action: Any, fields: Any, timeout: float | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Call `action` of service `service_id`; return the HTTP status and JSON body."""
        if self.stopping.is_set():
            return 503, error_body("Hub is shutting down")
        if self.service.deleted or not self.service.matches(service_id):
            return 422, error_body(f"Service {service_id} not found")
        delivery = await self.router.call(
            action,
            fields,
            self.request_timeout if timeout is None else timeout,
            self.stopping,
        )
        if delivery.outcome is Outcome.ANSWERED:
            return http_result(delivery.payload)
        if delivery.outcome is Outcome.NO_CONSUMER:
            return 422, error_body(f"No consumers connected for service {service_id}")
        if delivery.outcome is Outcome.STOPPING:
            return 503, error_body("Hub is shutting down")
        return 408, error_body("Request timed out")

    async def handle(self, request: web.Request) -> web.Response:
        """``POST /``."""
        try:
            body = json_codec.loads(await request.text())
        except ValueError:
            return self._json(400, error_body("Malformed JSON body"))
        if not isinstance(body, dict) or not {"service_id", "action", "fields"} <= body.keys():
            return self._json(400, error_body(MISSING_PARAMS))
        if self._api_token is not None and not self._authorised(request):
            return self._json(401, error_body("Invalid or missing API token"))
        status, answer = await self.call(body["service_id"], body["action"], body["fields"])
        return self._json(status, answer)

    def _authorised(self, request: web.Request) -> bool:
        assert self._api_token is not None
        scheme, _, supplied = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            supplied.strip().encode(), self._api_token.encode()
        )

    @staticmethod
    def _json(status: int, body: dict[str, Any]) -> web.Response:
        return web.json_response(body, status=status, dumps=json_codec.dumps)
