"""Run a local hub until interrupted: ``python -m core.local_hub [--port 4000]``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from core.dev.local_hub.hub import LocalHub

logger = logging.getLogger("core.local_hub")


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
    """Run a local hub until interrupted: ``python -m core.local_hub [--port 4000]``."""
    parser = argparse.ArgumentParser(
        prog="python -m core.local_hub", description="Run a local Plugboard hub stand-in."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4000)
    parser.add_argument(
        "--token",
        action="append",
        help="a token consumers may connect with (repeatable; default local-dev-token)",
    )
    parser.add_argument("--service-name", default="local")
    parser.add_argument("--api-token", help="require this bearer token on POST /")
    parser.add_argument("--request-timeout", type=float, default=30.0)
    parser.add_argument("--idle-timeout", type=float, default=60.0)
    parser.add_argument("--max-in-flight", type=int, default=None)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    hub = LocalHub(
        host=args.host,
        port=args.port,
        tokens=args.token or ("local-dev-token",),
        service_name=args.service_name,
        request_timeout=args.request_timeout,
        idle_timeout=args.idle_timeout,
        max_in_flight=args.max_in_flight,
        api_token=args.api_token,
    )
    asyncio.run(_serve_forever(hub))


if __name__ == "__main__":
    main()
