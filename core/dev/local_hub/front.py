"""The local hub's HTTP front: ``POST /`` calls an action of the hosted service.

The parameters are ``service_id``, ``action`` and ``fields``, read as Phoenix reads them:
from a JSON body (content type ``application/json``), a form, or the query string. The
service id is ``1`` or ``"1"`` (the id as a number or as its decimal text). The front
hands the request to a joined consumer (see `routing`), waits for its response and answers
with the real hub's status codes and ``{"status", "message"}`` bodies:

* 200, status ``"success"``, when the consumer's payload has status ``"success"`` and a
  ``message`` (the message is passed on as it is, whatever its type);
* 400, status ``"error"``, when the payload has another status and a ``message``;
* 400 ``service_id, action and fields parameters are required`` when one is missing
  (null counts as given), and 400 ``{"errors": {"detail": "Bad Request"}}`` for a JSON
  body that does not parse;
* 401 when the hub was given an ``api_token`` and the bearer token is wrong or missing
  (the production hub checks an account token; the shared test hub checks none);
* 408 ``Request timed out`` when no response came within the request timeout;
* 422 ``No service consumers are available to handle the request`` when the service is
  unknown or has no joined consumer;
* 502 ``Invalid response format from service process`` when the consumer's payload is not
  an object with ``status`` and ``message``;
* 404 ``{"errors": {"detail": "Not Found"}}`` for any other route;
* 503 while the hub is stopping (a local-hub case: the real hub closes its sockets).

The body is the production hub's, byte for byte (`phoenix_json`): ``{"status", "message"}``
only, so a developer sees exactly what a production caller gets. The consumer's whole payload
(its ``status_code`` and ``fields`` too) is handed to in-process callers beside the answer
(`FrontAnswer`), for tests and the ``call`` command.
"""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from core import json_codec
from core.dev.local_hub import phoenix_json
from core.dev.local_hub.routing import Outcome, Router
from core.dev.local_hub.service import HostedService

MISSING_PARAMS = "service_id, action and fields parameters are required"
NO_CONSUMERS = "No service consumers are available to handle the request"
REQUIRED = frozenset({"service_id", "action", "fields"})
_FORMS = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def error_body(message: str) -> dict[str, Any]:
    """The body of an error the hub itself reports."""
    return {"status": "error", "message": message}


def _is_json(content_type: str) -> bool:
    kind, _, subtype = content_type.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


async def read_params(request: web.Request) -> dict[str, Any]:
    """The request's parameters as Phoenix gathers them; ValueError for a malformed JSON body.

    The query string, then the body over it: a JSON object's keys (a JSON body that is not
    an object becomes ``_json``), or a form's fields. A body of any other content type, or
    none, is not read.
    """
    params: dict[str, Any] = dict(request.query)
    if _is_json(request.content_type):
        text = await request.text()
        if text:
            body = json_codec.loads(text)
            params.update(body if isinstance(body, dict) else {"_json": body})
    elif request.content_type in _FORMS:
        form = await request.post()
        params.update({key: value for key, value in form.items() if isinstance(value, str)})
    return params


def http_result(payload: Any) -> tuple[int, dict[str, Any]]:
    """Turn a consumer's response payload into the HTTP front's status and body."""
    if not (isinstance(payload, dict) and "status" in payload and "message" in payload):
        return 502, error_body("Invalid response format from service process")
    success = payload["status"] == "success"
    body = {"status": "success" if success else "error", "message": payload["message"]}
    return (200 if success else 400), body


@dataclass(frozen=True, slots=True)
class FrontAnswer:
    """What the front answered one call: the caller's HTTP status and body, and the
    consumer's whole payload (None when no consumer answered)."""

    status: int
    body: dict[str, Any]
    payload: Any = None


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
    ) -> FrontAnswer:
        """Call `action` of service `service_id`: the caller's answer and the payload."""
        if self.stopping.is_set():
            return FrontAnswer(503, error_body("Hub is shutting down"))
        if self.service.deleted or not self.service.matches(service_id):
            return FrontAnswer(422, error_body(NO_CONSUMERS))
        delivery = await self.router.call(
            action,
            fields,
            self.request_timeout if timeout is None else timeout,
            self.stopping,
        )
        if delivery.outcome is Outcome.ANSWERED:
            status, body = http_result(delivery.payload)
            return FrontAnswer(status, body, delivery.payload)
        if delivery.outcome is Outcome.NO_CONSUMER:
            return FrontAnswer(422, error_body(NO_CONSUMERS))
        if delivery.outcome is Outcome.STOPPING:
            return FrontAnswer(503, error_body("Hub is shutting down"))
        return FrontAnswer(408, error_body("Request timed out"))

    async def handle(self, request: web.Request) -> web.Response:
        """``POST /``: read the parameters, check the caller, call the action."""
        try:
            params = await read_params(request)
        except ValueError:
            return self._json(400, {"errors": {"detail": "Bad Request"}})
        if self._api_token is not None and not self._authorised(request):
            return self._json(401, error_body("Invalid or missing API token"))
        if not params.keys() >= REQUIRED:
            return self._json(400, error_body(MISSING_PARAMS))
        answer = await self.call(params["service_id"], params["action"], params["fields"])
        return self._json(answer.status, answer.body)

    async def not_found(self, request: web.Request) -> web.Response:
        """Any other route, as Phoenix answers it."""
        return self._json(404, {"errors": {"detail": "Not Found"}})

    def _authorised(self, request: web.Request) -> bool:
        assert self._api_token is not None
        scheme, _, supplied = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            supplied.strip().encode(), self._api_token.encode()
        )

    @staticmethod
    def _json(status: int, body: dict[str, Any]) -> web.Response:
        return web.Response(
            body=phoenix_json.dumps(body),
            status=status,
            content_type="application/json",
            charset="utf-8",
        )
