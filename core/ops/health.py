"""Health, readiness and metrics over HTTP (``HEALTH_PORT``), for orchestrators and Prometheus.

- ``/healthz``: the process and its event loop are responsive (200), or the loop has been
  stalled for longer than `max_loop_lag` seconds (503).
- ``/readyz``: joined to the hub and every extra check passes (the database, when one is
  configured): 200, else 503 with the reasons.
- ``/metrics``: Prometheus text format (see `core.metrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from aiohttp import web

from core import json_codec
from core.ops import metrics

if TYPE_CHECKING:
    from core.hub.client import PlugboardClient

logger = logging.getLogger(__name__)

# A readiness check returns None when fine, or a short reason when not.
ReadinessCheck = Callable[[], Awaitable[str | None]]

TICK_SECONDS = 0.5
CHECK_TIMEOUT = 2.0


class HealthServer:
    """Serves the three endpoints for one client on `host`:`port`."""

    def __init__(
        self,
        client: PlugboardClient,
        port: int,
        host: str = "0.0.0.0",
        checks: Sequence[tuple[str, ReadinessCheck]] = (),
        max_loop_lag: float = 5.0,
    ) -> None:
        self._client = client
        self._host = host
        self.port = port
        self._checks = list(checks)
        self._max_loop_lag = max_loop_lag
        self._last_tick = time.monotonic()
        self._ticker: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Bind the port (0 picks a free one, readable from `port` afterwards)."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self.port)
        await site.start()
        if self.port == 0 and self._runner.addresses:
            self.port = int(self._runner.addresses[0][1])
        self._ticker = asyncio.get_running_loop().create_task(self._tick())
        logger.info("health endpoints on port %d: /healthz /readyz /metrics", self.port)

    async def stop(self) -> None:
        """Release the port."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._runner is not None:
            await self._runner.cleanup()

    async def _tick(self) -> None:
        while True:
            self._last_tick = time.monotonic()
            await asyncio.sleep(TICK_SECONDS)

    async def _healthz(self, request: web.Request) -> web.Response:
        lag = max(0.0, time.monotonic() - self._last_tick - TICK_SECONDS)
        healthy = lag <= self._max_loop_lag
        return self._json(
            200 if healthy else 503,
            {"status": "ok" if healthy else "stalled", "loop_lag_seconds": round(lag, 3)},
        )

    async def _readyz(self, request: web.Request) -> web.Response:
        problems: list[str] = []
        if self._client.shutting_down:
            problems.append("shutting down")
        elif not self._client.joined:
            problems.append("not joined to the hub")
        for name, check in self._checks:
            try:
                reason = await asyncio.wait_for(check(), CHECK_TIMEOUT)
            except TimeoutError:
                reason = f"no answer within {CHECK_TIMEOUT:g} s"
            except Exception as error:  # a failing check means "not ready", never a crash
                reason = type(error).__name__
            if reason is not None:
                problems.append(f"{name}: {reason}")
        if problems:
            return self._json(503, {"status": "not ready", "problems": problems})
        return self._json(200, {"status": "ready"})

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=metrics.render(self._client), headers={"Content-Type": metrics.CONTENT_TYPE}
        )

    @staticmethod
    def _json(status: int, body: dict[str, object]) -> web.Response:
        return web.Response(
            status=status, text=json_codec.dumps(body), content_type="application/json"
        )
