"""Property-based test: random frames from the hub never stop the client answering requests."""

from __future__ import annotations

import asyncio
import json
import threading
import unittest
from collections.abc import Coroutine
from typing import Any, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.dev.local_hub.hub import LocalHub
from tests.support import start_consumer

T = TypeVar("T")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
events = st.sampled_from(
    [
        "request",
        "phx_reply",
        "phx_error",
        "phx_close",
        "num_consumers",
        "service_updated",
        "token_created",
        "token_deleted",
        "phx_join",
        "unknown",
    ]
)
request_payloads = st.fixed_dictionaries(
    {},
    optional={
        "action": st.sampled_from(["Echo", "Greet", "Nope"]) | json_values,
        "fields": json_values,
        "response_ref": st.text(min_size=1, max_size=10) | json_values,
    },
)
messages = st.builds(
    lambda topic, event, payload, ref: json.dumps(
        {"topic": topic, "event": event, "payload": payload, "ref": ref}
    ),
    st.sampled_from(["service", "phoenix", "other"]) | st.text(max_size=5),
    events | st.text(max_size=10),
    request_payloads | json_values,
    st.none() | st.text(max_size=4) | st.integers(),
)
frames = st.one_of(
    messages,
    json_values.map(json.dumps),
    st.text(max_size=50),
    st.binary(max_size=50),
)


class RandomFramesTest(unittest.TestCase):
    """The hub lives on a loop in a thread; Hypothesis drives it from here. Each example gets
    a client of its own: a channel the hub ends (phx_error, phx_close) rejoins ever more slowly
    while it keeps being ended within its first seconds, so a client shared by the examples
    would carry the earlier ones' back-off into the later ones."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.loop = asyncio.new_event_loop()
        cls.thread = threading.Thread(target=cls.loop.run_forever, daemon=True)
        cls.thread.start()
        cls.hub = LocalHub()
        cls.run_on_loop(cls.hub.start())

    @classmethod
    def tearDownClass(cls) -> None:
        cls.run_on_loop(cls.hub.stop())
        cls.loop.call_soon_threadsafe(cls.loop.stop)
        cls.thread.join(5)
        cls.loop.close()

    @classmethod
    def run_on_loop(cls, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, cls.loop).result(timeout)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(frames, min_size=1, max_size=5))
    def test_client_keeps_answering(self, batch: list[str | bytes]) -> None:
        async def scenario() -> tuple[int, Any, bool]:
            consumer = await start_consumer(self.hub).joined()
            try:
                for frame in batch:
                    await self.hub.send_raw(frame)
                await consumer.client.wait_joined(10)
                status, body = await self.hub.request("Echo", {"message": "ping"}, timeout=10)
                return status, body, consumer.task.done()
            finally:
                await consumer.stop()

        status, body, ended = self.run_on_loop(scenario())
        self.assertEqual((status, body["message"]), (200, {"message": "ping"}))
        self.assertFalse(ended)


if __name__ == "__main__":
    unittest.main()
