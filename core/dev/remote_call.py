"""``call NAME [FIELDS|-] --hub URL``: call an action through a hub's HTTP front.

The request takes the path a real caller's takes: ``POST /`` on the hub with
``{"service_id", "action", "fields"}``, the hub hands it to one replica and answers with
the replica's status and message. Operators use it as a smoke test after a rollout.

The account token comes from ``PLUGBOARD_API_TOKEN``, never from the command line (where
the process list and the shell history would show it), and is never printed. It is sent
over ``https://``, or to this machine; over plain ``http://`` to any other host only with
``--allow-plain-http``. The answer is printed as indented JSON, then the HTTP status; the
exit code is 0 when the hub answered 200 with ``"status": "success"``, 1 otherwise, 2 for a
usage error. An unreachable hub, a timeout or an answer that is not JSON is one ``error:``
line.

Whatever the hub (or whatever answers in its place) sends is shown with every character a
terminal could act on escaped: ``\\uXXXX`` inside the JSON (still the same JSON), Python's
escapes in an ``error:`` line. A hostile answer cannot clear the screen, rewrite earlier
lines or set the terminal's title.

Only the standard library is used (``urllib``), so the command runs wherever the service does.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import sys
import urllib.error
import urllib.request
from typing import Any, Final
from urllib.parse import SplitResult, urlsplit, urlunsplit

from core.dev.command import (
    EXIT_FAILED,
    EXIT_OK,
    SERVICE_ID_VARIABLE,
    TOKEN_VARIABLE,
    CommandError,
    pretty,
    read_fields,
)
from core.redaction import printable, truncate
from core.settings import Settings, is_loopback_host

# The hub answers 408 after 30 s; wait a little longer so that its answer is the one seen.
DEFAULT_TIMEOUT_SECONDS: Final = 35.0
# An answer larger than this is not the hub's (its bodies are a status and a message).
MAX_ANSWER_BYTES: Final = 16 * 1024 * 1024
# How much of an answer that is not JSON the error line shows.
EXCERPT_LENGTH: Final = 80
# How much of a redirect's Location or an error's text a message shows.
MAX_SHOWN: Final = 200
USER_AGENT: Final = "py-service-call"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: following one would resend the request, token included, elsewhere."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        """Never follow: the 3xx then reaches the caller as an `HTTPError`."""
        return None


def run(args: argparse.Namespace, settings: Settings) -> int:
    """``call NAME [FIELDS|-] --hub URL``: call the action through the hub and print the answer."""
    url = hub_endpoint(args.hub)
    service_id = request_service_id(args.service_id)
    timeout: float = DEFAULT_TIMEOUT_SECONDS if args.timeout is None else args.timeout
    if not (timeout > 0 and math.isfinite(timeout)):
        raise CommandError(f"--timeout must be a positive number of seconds, not {timeout:g}")
    fields = read_fields(args.fields)
    token = os.environ.get(TOKEN_VARIABLE) or None
    if token and not is_private_channel(url):
        if not args.allow_plain_http:
            raise CommandError(
                f"the account token in {TOKEN_VARIABLE} would travel unencrypted to "
                f"{_shown(urlsplit(url))}: use https://, or --allow-plain-http to send it anyway"
            )
        sys.stderr.write(
            f"warning: the account token travels unencrypted to {_shown(urlsplit(url))}\n"
        )
    body = {"service_id": service_id, "action": args.name, "fields": fields}
    status, answer = post_json(url, body, token, timeout)
    text = pretty(answer)
    if token:
        text = text.replace(token, "[redacted]")
    out = sys.stdout
    out.write(escaped_json(text) + "\n")
    said = answer.get("status") if isinstance(answer, dict) else None
    if not args.json:
        out.write(f"HTTP {status} ({printable(truncate(str(said), EXCERPT_LENGTH))})\n")
    if status == 401:
        hint = (
            f"the hub refused the account token in {TOKEN_VARIABLE}"
            if token
            else f"{TOKEN_VARIABLE} is not set; this hub wants an account token"
        )
        sys.stderr.write(f"note: {hint}\n")
    return EXIT_OK if status == 200 and said == "success" else EXIT_FAILED


def hub_endpoint(hub: str) -> str:
    """The URL to POST to for the hub front at `hub` (``http(s)://host[:port][/path]``)."""
    try:
        parts = urlsplit(hub)
        parts.port  # noqa: B018  # raises ValueError for a port that is not a number
    except ValueError as error:
        raise CommandError(f"--hub is not a valid URL: {error}") from None
    if parts.scheme in ("ws", "wss"):
        raise CommandError(
            "--hub takes the hub's HTTP address (e.g. http://localhost:4000), not its WebSocket URL"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CommandError(
            f"--hub must be an http:// or https:// URL with a host, not {_shown(parts)!r}"
        )
    if parts.username is not None or parts.password is not None:
        raise CommandError(
            f"--hub must not carry credentials; the account token comes from {TOKEN_VARIABLE}"
        )
    return urlunsplit(parts._replace(path=parts.path or "/", fragment=""))


def is_private_channel(url: str) -> bool:
    """Whether a request to `url` is safe from eavesdroppers: HTTPS, or this machine."""
    parts = urlsplit(url)
    return parts.scheme == "https" or is_loopback_host(parts.hostname or "")


def escaped_json(text: str) -> str:
    """JSON `text` with every character that is not printable (control characters, the
    C1 set a terminal may read as escapes, bidirectional overrides, lone surrogates) written
    as a ``\\uXXXX`` escape. The layout's newlines stay; the JSON means the same."""
    if text.replace("\n", "").isprintable():
        return text
    return "".join(char if char == "\n" or char.isprintable() else _u_escape(char) for char in text)


def _u_escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # beyond the BMP: JSON writes it as a UTF-16 surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def request_service_id(given: str | None) -> int | str:
    """The ``service_id`` to send: --service-id or $PLUGBOARD_SERVICE_ID.

    Hub ids are integers, so digits are sent as a JSON number; anything else is sent as a
    string (the hub compares ids as text).
    """
    value = given if given is not None else os.environ.get(SERVICE_ID_VARIABLE)
    if value is None or not value.strip():
        raise CommandError(f"--hub needs --service-id ID (or {SERVICE_ID_VARIABLE})")
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() else value


def post_json(url: str, body: Any, token: str | None, timeout: float) -> tuple[int, Any]:
    """POST `body` as JSON to `url`; the HTTP status and the decoded JSON answer.

    Any answer with a JSON body is returned, whatever its status; everything else (no
    connection, a timeout, a redirect, a body that is not JSON) is a `CommandError`.
    """
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
    }
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    where = _shown(urlsplit(url))
    opener = urllib.request.build_opener(_NoRedirects())
    try:
        with opener.open(request, timeout=timeout) as response:
            status: int = response.status
            raw: bytes = response.read(MAX_ANSWER_BYTES + 1)
    except urllib.error.HTTPError as error:
        with error:
            status = error.code
            if 300 <= status < 400:
                target = printable(truncate(error.headers.get("Location", "?"), MAX_SHOWN))
                raise CommandError(
                    f"the hub at {where} answered HTTP {status}, a redirect to {target}; "
                    "give that address to --hub",
                    EXIT_FAILED,
                ) from None
            raw = error.read(MAX_ANSWER_BYTES + 1)
    except urllib.error.URLError as error:
        if isinstance(error.reason, TimeoutError):
            raise _timed_out(where, timeout) from None
        reason = printable(truncate(str(error.reason), MAX_SHOWN))
        raise CommandError(f"cannot reach the hub at {where}: {reason}", EXIT_FAILED) from None
    except TimeoutError:
        raise _timed_out(where, timeout) from None
    except (http.client.HTTPException, OSError) as error:
        reason = printable(truncate(str(error) or type(error).__name__, MAX_SHOWN))
        raise CommandError(
            f"the hub at {where} broke off the answer: {reason}", EXIT_FAILED
        ) from None
    if len(raw) > MAX_ANSWER_BYTES:
        raise CommandError(
            f"the hub at {where} answered HTTP {status} with more than "
            f"{MAX_ANSWER_BYTES:,} bytes; that is not a hub answer",
            EXIT_FAILED,
        )
    try:
        return status, json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        excerpt = raw[:EXCERPT_LENGTH].decode("utf-8", "replace")
        if token:
            excerpt = excerpt.replace(token, "[redacted]")
        shown = f": {excerpt!r}" if excerpt else " (empty)"
        raise CommandError(
            f"the hub at {where} answered HTTP {status} with a body that is not JSON{shown}",
            EXIT_FAILED,
        ) from None


def _timed_out(where: str, timeout: float) -> CommandError:
    return CommandError(f"no answer from the hub at {where} within {timeout:g} s", EXIT_FAILED)


def _shown(parts: SplitResult) -> str:
    """A URL for messages: scheme, host, port and path; never credentials or a query."""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        port = ""
    return urlunsplit((parts.scheme, host + port, parts.path, "", ""))
