"""`TestClient`: call actions in tests the way the hub's callers do, in-process.

::

    from core.testing import TestClient

    class SendEmailTest(unittest.IsolatedAsyncioTestCase):
        async def test_sends(self) -> None:
            async with TestClient([SendEmail]) as client:
                response = await client.call("SendEmail", {"to": "ada@example.com"})
            self.assertEqual(response.http_status, 200)
            self.assertEqual(response.message, {"sent": True})

Nothing is faked: the client starts the local hub (`core.dev.local_hub.LocalHub`) on a free
loopback port and the service's own `PlugboardClient`, which connects, announces the
catalog and joins; `call` goes through the hub's HTTP front, so validation (400), unknown
actions (404), errors (500), time limits (504) and the response's encoding are the ones the
service gives in production, and the answer is the one a production caller receives, byte for
byte. `SyncTestClient` is the same for `unittest.TestCase`, and
`request_context` makes the `Context` a unit test hands to ``run()`` directly.

This module is cheap to import: the hub and the client are loaded when a client starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from core.execution.context import Context, State
from core.execution.lifespan import Lifespan, discover_lifespans, open_lifespans
from core.model.response import ActionResponse
from core.model.runner import ActionRunner

if TYPE_CHECKING:
    from core.dev.local_hub.hub import LocalHub
    from core.hub.client import PlugboardClient
    from core.settings import Settings

__all__ = ["Response", "SyncTestClient", "TestClient", "request_context"]

T = TypeVar("T")
# How long a client may take to connect and join before the test fails.
START_TIMEOUT = 30.0

Actions = Mapping[str, type[ActionRunner]] | Iterable[type[ActionRunner]] | str | Path | None


def request_context(
    action: str = "Test",
    *,
    ref: str = "test",
    timeout: float = 25.0,
    state: State | None = None,
) -> Context:
    """A `Context` for calling an action's ``run(ctx)`` directly in a unit test (no hub, no
    validation, no time limit enforced): `timeout` only sets its deadline."""
    deadline = time.monotonic() + timeout
    return Context(ref, action, deadline, state if state is not None else State(), "tests")


@dataclass(frozen=True)
class Response:
    """What the hub's caller gets for one call, and what the replica sent.

    `http_status` is the hub's HTTP answer (200 when the action succeeded, 400 when it
    answered an error, 422 with no consumer joined, 408 after the hub's wait); `body` is the
    JSON body, `status` (``"success"`` or ``"error"``) and `message` are its two keys: a
    production caller gets exactly these. `action_response` is the `ActionResponse` the
    replica sent the hub, with the `status_code` and `fields` that callers never see (None
    when the hub answered by itself).
    """

    http_status: int
    status: str
    message: Any
    body: dict[str, Any]
    action_response: ActionResponse | None

    @property
    def ok(self) -> bool:
        """True when the action succeeded (a 2xx status code)."""
        return self.status == "success"


class TestClient:
    """A local hub and the service's client in this process, for calling actions in tests.

    `actions`: which actions to serve. None (the default) discovers them under
    ``ACTIONS_PATH``, a path discovers them under that folder, and a mapping
    (``{name: class}``) or a list of classes serves just those.

    `lifespans`: the ``@lifespan`` functions to open first. By default, those of the folder
    the actions were discovered from (none for a mapping or a list); pass a list to replace
    them, such as one that puts fakes on the state. `state` is the `State` they fill (and
    that every request's ``ctx.state`` is): pass one with resources already on it to skip a
    lifespan altogether.

    `settings`: keyword overrides of `core.settings.Settings` (``action_timeout_seconds``,
    ``max_concurrency``, ...); the rest are the defaults, not the environment's.
    """

    __test__ = False  # not a test case, whatever its name says to test collectors

    def __init__(
        self,
        actions: Actions = None,
        *,
        lifespans: Iterable[Lifespan] | None = None,
        state: State | None = None,
        **settings: Any,
    ) -> None:
        self._actions_argument = actions
        self._lifespans_argument = lifespans
        self._overrides = settings
        self.state = state if state is not None else State()
        self._stack: contextlib.AsyncExitStack | None = None
        self._hub: LocalHub | None = None
        self._client: PlugboardClient | None = None

    @property
    def hub(self) -> LocalHub:
        """The local hub (started): for what a test wants to make the hub do."""
        if self._hub is None:
            raise RuntimeError("the test client is not started: use `async with TestClient(...)`")
        return self._hub

    @property
    def client(self) -> PlugboardClient:
        """The service's client (started and joined): its executor, stats and counters."""
        if self._client is None:
            raise RuntimeError("the test client is not started: use `async with TestClient(...)`")
        return self._client

    async def __aenter__(self) -> Self:
        # Loaded here: a test module that imports this one pays for them only when it runs.
        from core.dev.local_hub.hub import LocalHub
        from core.hub.client import PlugboardClient

        actions, lifespans = self._resolve()
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(open_lifespans(lifespans, self.state))
            hub = await stack.enter_async_context(LocalHub())
            settings = replace(
                self._base_settings().with_hub(hub.websocket_url, next(iter(hub.tokens))),
                **self._overrides,
            )
            client = PlugboardClient(settings, actions)
            client.executor.state = self.state
            running = asyncio.get_running_loop().create_task(client.run())
            stack.push_async_callback(_stop, client, running)
            await _joined(client, running)
            self._hub, self._client = hub, client
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        self._hub = self._client = None
        if stack is not None:
            await stack.aclose()

    async def call(
        self, action: str, fields: Any = None, *, timeout: float | None = None
    ) -> Response:
        """Call `action` with `fields` (default ``{}``) through the hub's HTTP front and
        return what its caller gets; `timeout` is the hub's wait (default 30 s, then 408)."""
        answer = await self.hub.call(action, {} if fields is None else fields, timeout)
        payload = answer.payload
        sent = (
            ActionResponse(
                status_code=payload.get("status_code", 200),
                message=payload.get("message"),
                fields=payload.get("fields"),
            )
            if isinstance(payload, dict)
            else None
        )
        return Response(
            http_status=answer.status,
            status=answer.body.get("status", "error"),
            message=answer.body.get("message"),
            body=answer.body,
            action_response=sent,
        )

    def _resolve(self) -> tuple[dict[str, type[ActionRunner]], list[Lifespan]]:
        """The actions to serve and the lifespan functions to open."""
        from core.model.registry import discover

        given = self._actions_argument
        folder: Path | None = None
        actions: dict[str, type[ActionRunner]]
        if given is None or isinstance(given, str | Path):
            folder = self._base_settings().actions_path if given is None else Path(given)
            actions = discover(folder, ActionRunner)
        elif isinstance(given, Mapping):
            actions = dict(given)
        else:
            actions = {action.discriminator(): action for action in given}
        if self._lifespans_argument is not None:
            lifespans = list(self._lifespans_argument)
        else:
            lifespans = discover_lifespans(folder) if folder is not None else []
        return actions, lifespans

    @staticmethod
    def _base_settings() -> Settings:
        """The defaults, with ACTIONS_PATH (the one setting read from the environment)."""
        from core.settings import Settings, load_settings

        return Settings(actions_path=load_settings().actions_path)


class SyncTestClient:
    """`TestClient` for `unittest.TestCase`: ``with SyncTestClient(...) as client:`` and a
    plain ``client.call(name, fields)``.

    The hub and the service run on an event loop in a background thread, as a deployed
    service runs beside its callers; the arguments are `TestClient`'s.
    """

    __test__ = False

    def __init__(self, actions: Actions = None, **options: Any) -> None:
        self.async_client = TestClient(actions, **options)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="test-client", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            self._run(self.async_client.__aenter__())
        except BaseException:
            self._stop_loop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._run(self.async_client.__aexit__(exc_type, exc, tb))
        finally:
            self._stop_loop()

    @property
    def state(self) -> State:
        """The state the lifespan functions filled (`TestClient.state`)."""
        return self.async_client.state

    def call(self, action: str, fields: Any = None, *, timeout: float | None = None) -> Response:
        """`TestClient.call`, waited for."""
        return self._run(self.async_client.call(action, fields, timeout=timeout))

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            coroutine.close()
            raise RuntimeError("the test client is not started: use `with SyncTestClient(...)`")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


async def _joined(client: PlugboardClient, running: asyncio.Task[int]) -> None:
    """Wait until `client` has joined; fail at once if its run() ended instead."""
    joined = asyncio.ensure_future(client.wait_joined())
    try:
        done, _ = await asyncio.wait(
            {joined, running}, timeout=START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        joined.cancel()
    if joined in done and not joined.cancelled() and joined.exception() is None:
        return
    if running in done:
        running.result()  # its error, if it raised
        raise RuntimeError("the service's client stopped before it joined the local hub")
    raise TimeoutError(f"the service did not join the local hub within {START_TIMEOUT:g} s")


async def _stop(client: PlugboardClient, running: asyncio.Task[int]) -> None:
    """Shut the client down as SIGTERM does, and wait for it."""
    if not running.done() and not client.shutting_down:
        client.request_shutdown()
    await running
