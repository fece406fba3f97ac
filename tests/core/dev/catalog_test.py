"""Tests of ``actions`` (core/dev/catalog.py), run as a real subprocess."""

from __future__ import annotations

import hashlib
import unittest
from functools import partial

from core.hub.client import PlugboardClient
from core.settings import Settings
from tests.core.dev.cli_support import (
    ACTIONS,
    CATALOG_JSON,
    EXTRA_ACTIONS,
    CommandTestCase,
    class_folder,
    cli_env,
    run_all,
    run_cli,
)


class ActionsCommandTest(CommandTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.folder = class_folder(cls)
        extra, broken = cls.folder / "extra", cls.folder / "broken"
        extra.mkdir()
        (extra / "extra.py").write_text(EXTRA_ACTIONS)
        broken.mkdir()
        (broken / "bad.py").write_text("import module_that_does_not_exist\n")
        env = cli_env(cls.folder)
        cls.results = run_all(
            {
                "table": partial(run_cli, env, "actions"),
                "json": partial(run_cli, env, "actions", "--json"),
                "hash": partial(run_cli, env, "actions", "--hash"),
                "extra_hash": partial(
                    run_cli, cli_env(cls.folder, ACTIONS_PATH=str(extra)), "actions", "--hash"
                ),
                "big": partial(run_cli, cli_env(cls.folder, ACTIONS_PATH=str(extra)), "actions"),
                "broken": partial(
                    run_cli, cli_env(cls.folder, ACTIONS_PATH=str(broken)), "actions"
                ),
            }
        )

    def test_catalog_table_and_url_size(self) -> None:
        result = self.results["table"]
        self.assert_ok(result)
        self.assertEqual(result.stderr, "")
        lines = result.stdout.splitlines()
        self.assertEqual(lines[0], CATALOG_JSON)
        table = "\n".join(lines[1:])
        self.assertRegex(table, r"\nEcho +Sends the message back\n")
        self.assertRegex(table, r"\n  message +string +required +What to send back\n")
        self.assertRegex(table, r'\n  greeting +string +default "Hello" +The greeting word\n')
        self.assertRegex(table, r"\n  punctuation +string \| null +default null ")
        self.assertRegex(table, r"\n  address\.street +string +required +Street and number\n")
        settings = Settings().with_hub("ws://localhost:4000/websocket", "x" * 32)
        size = len(PlugboardClient(settings, ACTIONS, {}).connection_url().encode())
        self.assertTrue(lines[-1].startswith(f"Connection URL: {size:,} bytes"), lines[-1])

    def test_json_prints_only_the_catalog(self) -> None:
        result = self.results["json"]
        self.assert_ok(result)
        self.assertEqual(result.stdout, CATALOG_JSON + "\n")

    def test_hash_prints_only_the_catalogs_hash(self) -> None:
        result = self.results["hash"]
        self.assert_ok(result)
        self.assertEqual(
            result.stdout, hashlib.sha256(CATALOG_JSON.encode()).hexdigest()[:12] + "\n"
        )
        other = self.results["extra_hash"]
        self.assert_ok(other)
        self.assertRegex(other.stdout, r"^[0-9a-f]{12}\n$")
        self.assertNotEqual(other.stdout, result.stdout)

    def test_warns_when_the_url_is_too_long(self) -> None:
        result = self.results["big"]
        self.assert_ok(result)
        self.assertRegex(result.stdout, r"\nBig +x{100}")
        lines = result.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertTrue(lines[0].startswith("warning: the connection URL is 9,"), lines[0])

    def test_a_broken_action_module_is_one_line(self) -> None:
        self.assert_one_line_error(self.results["broken"], 2, "cannot load actions", "bad.py")


if __name__ == "__main__":
    unittest.main()
