"""What callers see during routine deploys: ``python -m bench.deploys``.

Replicas (``python entrypoint.py`` processes, each in its own folder with its own SQLite
file) serve one action, `Work` (``bench/deploy_actions``), to callers that post to the hub's
``POST /`` in a loop; two requests in three answer at once, one waits 0.3 s first, so that
requests are running whenever a replica is stopped. Meanwhile, one of two deploys:

* ``rolling`` (a Deployment's rolling update, one replica at a time, ``--rounds`` times):
  for each replica, a new one starts and becomes ready (``/readyz``), then the old one gets
  SIGTERM and is waited for.
* ``scale-down`` (``kubectl scale`` from N to 1): all replicas but one get SIGTERM at once.

The hub is the local hub in this process (``--hub local``) or the real Phoenix hub
(``--hub phoenix``: the release in ``../shared/phoenix-hub``, started on a free port), and
the replicas speak ``--vsn`` 1.0.0 or 2.0.0. A call with no answer within 35 s counts as "no
answer" (the real hub answers 408 after 30 s).

Printed: the callers' answers by kind (the HTTP status; for a 400 also the replica's status
code, which the real hub's default body carries), how many calls no replica answered and how
many a replica answered that never reached their caller (lost), what the replicas logged
(one line per request, by status), each stopped replica's exit code, its time from SIGTERM
to exit and how often it joined again to deliver answers, the verdict and one JSON line. The
verdict (exit code 0) asks what a caller must never notice: no HTTP 400 and no 5xx, every
request a replica logged answered 200, no answer lost, every stopped replica exiting 0.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import platform
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import ROOT, progress
from bench.replicas import Hub, Replica, outcome, start_replica, terminate, wait_ready, work_folder
from core.dev.local_hub.hub import LocalHub

DEPLOY_ACTIONS = ROOT / "bench" / "deploy_actions"
CALL_TIMEOUT = 35.0
REQUEST_LINE = re.compile(r" core\.requests: action=\S* status=(\d+) ")
REJOINS_LINE = re.compile(r"joined again (\d+) time")


@dataclass
class Calls:
    """What the callers saw."""

    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    unanswered: list[str] = field(default_factory=list)  # 408 or no answer: the messages
    wrong: int = 0


async def caller(
    session: aiohttp.ClientSession, hub: Hub, number: int, stop: asyncio.Event, calls: Calls
) -> None:
    """Post Work until `stop`: two calls in three answer at once, the third after 0.3 s."""
    timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT)
    sent = 0
    while not stop.is_set():
        sent += 1
        ident = f"{number}-{sent}"
        fields: dict[str, Any] = {"message": ident}
        if sent % 3 == 0:
            fields["seconds"] = 0.3
        body = {"service_id": hub.service_id, "action": "Work", "fields": fields}
        try:
            async with session.post(hub.http_url + "/", json=body, timeout=timeout) as answer:
                data = await answer.json(content_type=None)
                result = outcome(answer.status, data)
        except TimeoutError:
            result, data = "no answer", None
        except aiohttp.ClientError as error:
            result, data = type(error).__name__, None
        calls.outcomes[result] += 1
        if result in ("408", "no answer"):
            calls.unanswered.append(ident)
        if result == "200" and isinstance(data, dict) and data.get("message") != ident:
            calls.wrong += 1
        if result != "200":
            await asyncio.sleep(0.01)  # an error comes back at once: do not spin


async def deploy(args: argparse.Namespace, hub: Hub, work: Path) -> dict[str, Any]:
    """Start the replicas, run the load and the deploy, stop everything; the figures."""
    answered_file = work / "answered.txt"
    replicas: list[Replica] = []
    stopped: list[Replica] = []
    calls = Calls()
    numbers = iter(range(1_000_000))

    # Each replica with its own SQLite file; INFO logs one line per request.
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "DATABASE_URL" and not key.startswith("POSTGRES_")
    }
    env.update(LOG_LEVEL="INFO", PHOENIX_VSN=args.vsn, DEPLOY_ANSWERED_FILE=str(answered_file))

    async def start(prefix: str) -> Replica:
        name = f"{prefix}{next(numbers)}"
        replica = await start_replica(hub, work, name, DEPLOY_ACTIONS, args.grace, env)
        replicas.append(replica)
        return replica

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        try:
            serving = [await start("replica-") for _ in range(args.replicas)]
            await wait_ready(session, serving)
            stop = asyncio.Event()
            callers = [
                asyncio.ensure_future(caller(session, hub, number, stop, calls))
                for number in range(args.callers)
            ]
            began = time.monotonic()
            try:
                await asyncio.sleep(args.settle)
                if args.scenario == "rolling":
                    for round_number in range(args.rounds):
                        progress(f"rolling restart {round_number + 1} of {args.rounds}")
                        for index, old in enumerate(list(serving)):
                            new = await start("replica-")
                            await wait_ready(session, [new])
                            await terminate([old])
                            stopped.append(old)
                            serving[index] = new
                else:
                    progress(f"scale down from {len(serving)} to 1")
                    leaving, serving = serving[1:], serving[:1]
                    await terminate(leaving)
                    stopped.extend(leaving)
                await asyncio.sleep(args.settle)
            finally:
                stop.set()
                loaded_s = time.monotonic() - began
                await asyncio.gather(*callers)
        finally:
            # The replicas left serving: SIGINT leaves at once (on SIGTERM the last one
            # would serve until its grace ends); their request lines are written at exit.
            await terminate(replicas, signal.SIGINT)
    answered = set(answered_file.read_text().split()) if answered_file.exists() else set()
    lost = [ident for ident in calls.unanswered if ident in answered]
    logged: collections.Counter[int] = collections.Counter()
    for replica in replicas:
        logged.update(
            int(match.group(1)) for line in replica.lines() if (match := REQUEST_LINE.search(line))
        )
    stops = [
        {
            "replica": replica.name,
            "exit_code": replica.process.returncode,
            "stopped_after_s": replica.stopped_after_s,
            "joined_again": sum(
                int(match.group(1))
                for line in replica.lines()
                if (match := REJOINS_LINE.search(line))
            ),
            "held_as_last": any("only joined replica" in line for line in replica.lines()),
        }
        for replica in stopped
    ]
    return figures(args, calls, logged, lost, stops, loaded_s)


def figures(
    args: argparse.Namespace,
    calls: Calls,
    logged: collections.Counter[int],
    lost: list[str],
    stops: list[dict[str, Any]],
    loaded_s: float,
) -> dict[str, Any]:
    """The figures of one run, with the verdict."""
    outcomes = calls.outcomes
    errors = {
        kind: count
        for kind, count in outcomes.items()
        if kind.startswith("400") or kind.startswith("5")
    }
    verdict = {
        "no_400_or_5xx": not errors,
        "every_logged_request_200": set(logged) <= {200},
        "no_answer_lost": not lost and not calls.wrong,
        "every_stopped_replica_exit_0": all(stop["exit_code"] == 0 for stop in stops),
    }
    return {
        "hub": args.hub,
        "vsn": args.vsn,
        "scenario": args.scenario,
        "rounds": args.rounds if args.scenario == "rolling" else None,
        "replicas": args.replicas,
        "callers": args.callers,
        "grace_s": args.grace,
        "python": platform.python_version(),
        "load_s": round(loaded_s, 1),
        "calls": sum(outcomes.values()),
        "outcomes": dict(sorted(outcomes.items())),
        "unanswered_never_reached_a_replica": len(calls.unanswered) - len(lost),
        "lost": len(lost),
        "wrong_answers": calls.wrong,
        "logged_by_status": {str(code): count for code, count in sorted(logged.items())},
        "stops": stops,
        "verdict": verdict,
        "pass": all(verdict.values()),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    """The hub (this process's local hub, or the real one started here), then the deploy."""
    with work_folder(args.keep_logs, "deploys-") as work:
        if args.hub == "phoenix":
            from tests.support_phoenix import PhoenixHub

            async with PhoenixHub() as phoenix:
                hub = Hub(
                    phoenix.http_url, phoenix.websocket_url, phoenix.tokens[0], phoenix.service_id
                )
                return await deploy(args, hub, work)
        async with LocalHub(tokens=("deploys",), request_timeout=30.0) as local:
            hub = Hub(local.http_url, local.websocket_url, "deploys", local.service_id)
            return await deploy(args, hub, work)


def main() -> int:
    """Parse the options, run one deploy under load, print the figures; 0 when it passed."""
    parser = argparse.ArgumentParser(prog="python -m bench.deploys", description=__doc__)
    parser.add_argument("--hub", choices=("local", "phoenix"), default="local")
    parser.add_argument("--vsn", choices=("1.0.0", "2.0.0"), default="1.0.0")
    parser.add_argument("--scenario", choices=("rolling", "scale-down"), default="rolling")
    parser.add_argument("--rounds", type=int, default=3, help="rolling restarts (3)")
    parser.add_argument("--replicas", type=int, default=3, help="replicas serving (3)")
    parser.add_argument("--callers", type=int, default=32, help="callers in a loop (32)")
    parser.add_argument("--grace", type=float, default=25.0, help="SHUTDOWN_GRACE_SECONDS (25)")
    parser.add_argument("--settle", type=float, default=2.0, help="load before and after (2 s)")
    parser.add_argument("--keep-logs", metavar="DIR", help="run the replicas in DIR (new)")
    args = parser.parse_args()
    if args.replicas < 2 and args.scenario == "scale-down":
        parser.error("scale-down needs at least 2 replicas")
    result = asyncio.run(main_async(args))
    out = sys.stdout
    out.write(
        f"{result['scenario']} ({result['replicas']} replicas"
        + (f", {result['rounds']} rounds" if result["rounds"] else "")
        + f"), {result['hub']} hub, vsn {result['vsn']}, {result['callers']} callers, "
        f"{result['load_s']} s of load, Python {result['python']}\n"
    )
    for kind, count in result["outcomes"].items():
        out.write(f"{count:8d}  calls answered {kind}\n")
    out.write(
        f"no replica received: {result['unanswered_never_reached_a_replica']}; "
        f"lost (answered, never delivered): {result['lost']}; wrong answers: "
        f"{result['wrong_answers']}\n"
        f"replicas logged by status: {result['logged_by_status']}\n"
    )
    for stop in result["stops"]:
        out.write(
            f"  {stop['replica']}: exit {stop['exit_code']} after {stop['stopped_after_s']} s, "
            f"joined again {stop['joined_again']} time(s)"
            + (", held as the last replica" if stop["held_as_last"] else "")
            + "\n"
        )
    out.write(f"{'PASS' if result['pass'] else 'FAIL'} {result['verdict']}\n")
    out.write(json.dumps(result) + "\n")
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
