"""What callers see while the fleet is replaced: ``python -m bench.catalog_switch``.

Reproduces, with processes on this machine, the two ways the Kubernetes manifests roll out a
release (deploy/kubernetes, docs/deploying.md "Releases"), under a steady load of HTTP calls:

* ``recreate`` (the catalog-change overlay, ``strategy: Recreate``): N replicas serving
  catalog A get SIGTERM together; once all have exited, N replicas serving catalog B start.
  The hub has no consumer in between and answers callers 422: the gap. A replica that finds
  itself the only one joined when its SIGTERM arrives (always so with ``--replicas 1``)
  serves until its grace period (``--grace``) ends before it leaves, since nobody else can
  join meanwhile.
* ``rolling`` (the default RollingUpdate, same catalog): N new replicas start and become
  ready (``/readyz``) before the N old ones get SIGTERM, which leave the hub's rotation at
  once and serve what still reaches them. Callers should see no failure.
  ``python -m bench.deploys`` replaces replicas one at a time, as the manifests' surge does.

The hub is the local hub, in this process, unless ``--hub-http``, ``--hub-websocket``,
``--token`` and ``--service-id`` name another one (for example the real Phoenix hub), which
must accept a catalog change once its last consumer has left. Each replica is
``python entrypoint.py`` in its own working folder (its own SQLite file, unless
``DATABASE_URL`` or ``POSTGRES_*`` are set in the environment, which all replicas then
share), with ``ACTIONS_PATH`` pointing at a generated folder holding one ``Echo`` action
whose description differs between catalogs A and B. The load is ``--concurrency`` callers
posting ``Echo`` to the hub's ``POST /`` in a loop, for a bounded time; a call with no answer
within ``--call-timeout`` seconds is counted as "no answer" (lost: the hub would answer 408
after 30 s). ``--keep-logs DIR`` keeps the replicas' folders and logs.

Printed: the timeline (signal sent, old replicas gone, new ones started, first new one
ready), the outcomes of the calls with their counts, the gap (the longest stretch with no
successful call, and the span from the first to the last 422) and one JSON line. Kubernetes
adds its own time to a Recreate (deleting the pods, scheduling, pulling the image, starting
the container), which this does not measure.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.replicas import Hub, Replica, outcome, start_replica, terminate, wait_ready, work_folder
from core.dev.local_hub.hub import LocalHub

ACTION_MODULE = '''
from core.model.response import ActionResponse
from core.model.runner import ActionRunner
from pydantic import Field


class Echo(ActionRunner):
    """Catalog {version}."""

    message: str = Field(description="The text to send back")

    @classmethod
    def description(cls) -> str:
        return "Sends the message back (catalog {version})"

    async def run(self, client, websocket) -> ActionResponse:
        return ActionResponse(status_code=200, message=self.message)
'''


def write_catalog(folder: Path, version: str) -> Path:
    """A folder with one Echo action whose description names `version`."""
    actions = folder / f"actions_{version}"
    actions.mkdir()
    (actions / "echo.py").write_text(ACTION_MODULE.format(version=version))
    return actions


async def stop(replicas: list[Replica], signum: int = signal.SIGTERM) -> None:
    """Signal every replica and wait until all have exited (as Recreate waits for pods)."""
    await terminate(replicas, signum)
    codes = [replica.process.returncode for replica in replicas]
    if any(codes):
        raise RuntimeError(f"replicas exited with {codes} after {signal.Signals(signum).name}")


async def load(
    session: aiohttp.ClientSession,
    hub: Hub,
    stop_at: asyncio.Event,
    start: float,
    call_timeout: float,
) -> list[tuple[float, float, str]]:
    """One caller: post Echo until `stop_at` is set; (sent, answered, outcome) per call.

    A call with no answer within `call_timeout` is given up as lost ("no answer"): the hub
    would answer it 408 only after 30 s, and the caller moves on.
    """
    calls: list[tuple[float, float, str]] = []
    body = {"service_id": hub.service_id, "action": "Echo", "fields": {"message": "hi"}}
    timeout = aiohttp.ClientTimeout(total=call_timeout)
    while not stop_at.is_set():
        sent = time.monotonic() - start
        try:
            async with session.post(hub.http_url + "/", json=body, timeout=timeout) as response:
                result = outcome(response.status, await response.json(content_type=None))
        except TimeoutError:
            result = "no answer"
        except aiohttp.ClientError as error:
            result = type(error).__name__
        calls.append((sent, time.monotonic() - start, result))
        if result != "200":
            await asyncio.sleep(0.005)  # a refused call comes back at once: do not spin
    return calls


def longest_failure(calls: list[tuple[float, float, str]]) -> float:
    """The longest stretch between two successful answers that saw a failed call."""
    ordered = sorted(calls, key=lambda call: call[1])
    longest, last_ok, failed_since = 0.0, 0.0, False
    for _, answered, result in ordered:
        if result == "200":
            if failed_since:
                longest = max(longest, answered - last_ok)
            last_ok, failed_since = answered, False
        else:
            failed_since = True
    return longest


async def switch(args: argparse.Namespace, hub: Hub, work: Path) -> dict[str, Any]:
    """Run one switch under load; return the figures."""
    old_catalog = write_catalog(work, "A")
    new_catalog = old_catalog if args.mode == "rolling" else write_catalog(work, "B")
    timeline: dict[str, float] = {}  # moments of the switch, in s from the start of the load
    old: list[Replica] = []
    new: list[Replica] = []
    calls: list[tuple[float, float, str]] = []

    # DATABASE_URL or POSTGRES_*, when set, reach every replica: they share that database.
    env = {**os.environ, "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING")}

    async def start_all(replicas: list[Replica], catalog: Path, prefix: str) -> None:
        for index in range(args.replicas):
            name = f"{prefix}{index}"
            replicas.append(await start_replica(hub, work, name, catalog, args.grace, env))

    async with aiohttp.ClientSession() as session:
        try:
            await start_all(old, old_catalog, "old")
            await wait_ready(session, old, every=True)
            start = time.monotonic()

            def mark(name: str) -> None:
                timeline[name] = round(time.monotonic() - start, 3)

            stop_at = asyncio.Event()
            callers = [
                asyncio.create_task(load(session, hub, stop_at, start, args.call_timeout))
                for _ in range(args.concurrency)
            ]
            try:
                await asyncio.sleep(args.settle)
                if args.mode == "recreate":
                    mark("SIGTERM to the old replicas")
                    await stop(old)
                    mark("old replicas exited")
                    await start_all(new, new_catalog, "new")
                    mark("new replicas started")
                    await wait_ready(session, new, every=False)
                    mark("first new replica ready")
                    await wait_ready(session, new, every=True)
                    mark("every new replica ready")
                else:
                    mark("new replicas started")
                    await start_all(new, new_catalog, "new")
                    await wait_ready(session, new, every=True)
                    mark("every new replica ready; SIGTERM to the old ones")
                    await stop(old)
                    mark("old replicas exited")
                await asyncio.sleep(args.settle)
            finally:
                stop_at.set()
                calls = [call for caller in await asyncio.gather(*callers) for call in caller]
        finally:
            # Never leave a replica behind, whatever failed above. SIGINT: they leave at once
            # (on SIGTERM the last one would serve until its grace ends).
            await stop(old + new, signal.SIGINT)
    counts = collections.Counter(result for _, _, result in calls)
    refused = [answered for _, answered, result in calls if result == "422"]
    return {
        "mode": args.mode,
        "replicas": args.replicas,
        "concurrency": args.concurrency,
        "calls": len(calls),
        "outcomes": dict(sorted(counts.items())),
        "timeline_s": timeline,
        "first_to_last_422_s": round(refused[-1] - refused[0], 3) if refused else 0.0,
        "other_failures_sent_at_s": [
            round(sent, 3) for sent, _, result in calls if result not in ("200", "422")
        ],
        "longest_without_success_s": round(longest_failure(calls), 3),
        "slowest_calls_s": sorted(
            (round(answered - sent, 3) for sent, answered, _ in calls), reverse=True
        )[:10],
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    """Set up the hub (local unless given) and a scratch folder, then switch once."""
    with work_folder(args.keep_logs, "catalog-switch-") as work:
        if args.hub_http:
            hub = Hub(args.hub_http, args.hub_websocket, args.token, args.service_id)
            return await switch(args, hub, work)
        async with LocalHub(tokens=("catalog-switch",)) as local:
            hub = Hub(local.http_url, local.websocket_url, "catalog-switch", local.service_id)
            return await switch(args, hub, work)


def main() -> None:
    """Parse the options, run the switch, print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.catalog_switch", description=__doc__)
    parser.add_argument("--mode", choices=("recreate", "rolling"), default="recreate")
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4, help="callers posting at once")
    parser.add_argument(
        "--settle", type=float, default=2.0, help="seconds of load before and after"
    )
    parser.add_argument(
        "--grace", type=float, default=25.0, help="the replicas' SHUTDOWN_GRACE_SECONDS (25)"
    )
    parser.add_argument(
        "--call-timeout", type=float, default=5.0, help="seconds before a call counts as lost"
    )
    parser.add_argument(
        "--keep-logs", metavar="DIR", help="run the replicas in DIR (new) and keep their logs"
    )
    parser.add_argument("--hub-http", help="an external hub's HTTP front, http://host:port")
    parser.add_argument("--hub-websocket", help="its consumer socket, ws://host:port/websocket")
    parser.add_argument("--token", help="a consumer token the external hub accepts")
    parser.add_argument("--service-id", help="the service that token belongs to")
    args = parser.parse_args()
    external = (args.hub_http, args.hub_websocket, args.token, args.service_id)
    if any(external) and not all(external):
        parser.error("--hub-http, --hub-websocket, --token and --service-id go together")
    figures = asyncio.run(main_async(args))
    for name, moment in figures["timeline_s"].items():
        print(f"{moment:8.3f} s  {name}")
    for result, count in figures["outcomes"].items():
        print(f"{count:8d}  calls: {result}")
    print(f"first to last 422: {figures['first_to_last_422_s']:.3f} s")
    print(f"longest stretch without a successful call: {figures['longest_without_success_s']} s")
    failed = figures["other_failures_sent_at_s"]
    if failed:
        print(f"calls neither 200 nor 422 were sent at (s): {', '.join(map(str, failed))}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
