"""Tests for `tests.support_phoenix`: finding, starting and stopping the real hub."""

from __future__ import annotations

import os
import platform
import socket
import sys
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from tests import support_phoenix
from tests.support_phoenix import PhoenixHub, skip_without_phoenix_hub


class LocateTest(unittest.TestCase):
    def test_override_names_the_folder_and_the_reason(self) -> None:
        with (
            tempfile.TemporaryDirectory() as empty,
            mock.patch.dict(os.environ, {"PHOENIX_HUB_DIR": empty}),
        ):
            self.assertEqual(support_phoenix.phoenix_hub_dir(), Path(empty))
            reason = support_phoenix.unavailable_reason()
        self.assertIsNotNone(reason)
        assert reason is not None
        if platform.machine() == "x86_64" and sys.platform == "linux":
            self.assertIn(empty, reason)
            self.assertIn("PHOENIX_HUB_DIR", reason)

    def test_a_worktree_finds_the_main_checkout(self) -> None:
        with tempfile.TemporaryDirectory() as top:
            main = Path(top) / "main"
            gitdir = main / ".git" / "worktrees" / "feature"
            gitdir.mkdir(parents=True)
            (gitdir / "commondir").write_text("../..\n")
            worktree = Path(top) / "wt" / "feature"
            worktree.mkdir(parents=True)
            (worktree / ".git").write_text(f"gitdir: {gitdir}\n")
            self.assertEqual(support_phoenix._main_checkout(worktree), main.resolve())
            self.assertIsNone(support_phoenix._main_checkout(main))  # .git is a folder


@skip_without_phoenix_hub
class LifecycleTest(unittest.IsolatedAsyncioTestCase):
    async def test_start_answers_and_stop_frees_the_port(self) -> None:
        hub = PhoenixHub(("lifecycle-token", "second-token"), service_id=3)
        async with hub:
            state = hub.state()
            self.assertEqual([service["id"] for service in state["services"]], [3])
            self.assertEqual(state["tokens"], {"3": 2})
            self.assertEqual(hub.joined_count(), 0)
            self.assertEqual(hub.websocket_url, f"ws://127.0.0.1:{hub.port}/websocket")
            port = hub.port
        with self.assertRaises(OSError), socket.create_connection(("127.0.0.1", port), 1):
            pass
        self.assertEqual(hub.output(), "")  # the scratch folder went with the hub


if __name__ == "__main__":
    unittest.main()
