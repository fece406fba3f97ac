"""``python -m core.local_hub``: run the local hub on its own until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from core.dev.local_hub.hub import LocalHub

logger = logging.getLogger("core.local_hub")

DESCRIPTION = """\
A stand-in for the Plugboard hub (a Phoenix Channels server), hosting one service, for any
consumer written for the real hub. On one port it serves:

  GET  /websocket?token=T&actions=JSON[&vsn=2.0.0]
       the consumer socket: Phoenix Channels, v1 JSON objects (default) or v2 arrays
       (vsn=2.0.0). Join topic "service"; the reply carries the service, the token's record
       and num_consumers. Requests arrive as "request" {action, fields, response_ref};
       answer with event "response" and ref = response_ref. Heartbeat on topic "phoenix".
       The upgrade is refused (403, empty body) for a bad token, missing actions, a catalog
       that differs from the joined consumers', an unknown vsn, or an Origin header naming
       a host other than localhost, --host or an --origin-host (no Origin is accepted).
  POST /  {"service_id", "action", "fields"}
       calls an action through a joined consumer (round robin) and answers like the real
       hub: 200 / 400 {"status", "message"} from the consumer's payload, 400 for a missing
       parameter, 408 after --request-timeout, 422 with no consumer, 502 for a payload
       without status and message (and 401 without --api-token's bearer token, if set).
       The body also carries the payload's status_code and fields (a local extension).

Every request is answered 421 unless its Host header names localhost, a loopback address,
--host (unless it is 0.0.0.0 or ::) or an --allow-host, with any port: a web page cannot
reach the hub through DNS rebinding.

Ids are integers as on the real hub: the service is --service-id, tokens are 1, 2, ... in
the order given. A socket silent for --idle-timeout seconds is closed (1002)."""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0 to 65535, got {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m core.local_hub``."""
    parser = argparse.ArgumentParser(
        prog="python -m core.local_hub",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument(
        "--port",
        type=_port,
        default=4000,
        help="port to bind, 0 for any free (default %(default)s)",
    )
    parser.add_argument(
        "--token",
        action="append",
        metavar="VALUE",
        help="a token consumers may connect with (repeatable; default local-dev-token)",
    )
    parser.add_argument("--service-name", default="local", help="default %(default)s")
    parser.add_argument(
        "--service-id", type=_positive_int, default=1, help="the service's id (default %(default)s)"
    )
    parser.add_argument("--api-token", help="require this bearer token on POST /")
    parser.add_argument(
        "--request-timeout",
        type=_seconds,
        default=30.0,
        help="seconds POST / waits for the consumer before 408 (default %(default)s)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=_seconds,
        default=60.0,
        help="seconds of silence before a socket is closed (default %(default)s)",
    )
    parser.add_argument(
        "--max-in-flight",
        type=_positive_int,
        default=None,
        help="at most this many requests pushed and unanswered (default: no cap)",
    )
    parser.add_argument(
        "--origin-host",
        action="append",
        default=[],
        metavar="HOST",
        help="also accept upgrades whose Origin names HOST (repeatable)",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST",
        help="also answer requests whose Host header names HOST (repeatable; localhost, "
        "loopback addresses and --host are always answered)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        help="default %(default)s",
    )
    return parser


async def _serve_forever(hub: LocalHub) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows has no signal handlers
            loop.add_signal_handler(signum, stop.set)
    async with hub:
        logger.info("consumer websocket URL: %s", hub.websocket_url)
        logger.info("HTTP front: POST %s/", hub.http_url)
        logger.info("service id: %s (name %r)", hub.service_id, hub.service["name"])
        logger.info("%d token(s) accepted", len(hub.tokens))
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    """Run a local hub until SIGINT or SIGTERM (``--help`` says what it serves)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    hub = LocalHub(
        host=args.host,
        port=args.port,
        tokens=args.token or ("local-dev-token",),
        service_name=args.service_name,
        service_id=args.service_id,
        request_timeout=args.request_timeout,
        idle_timeout=args.idle_timeout,
        max_in_flight=args.max_in_flight,
        api_token=args.api_token,
        origin_hosts=args.origin_host,
        allowed_hosts=args.allow_host,
    )
    asyncio.run(_serve_forever(hub))


if __name__ == "__main__":
    main()
