"""Tests of the command line, run as a real subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without hub settings, with a throw-away SQLite database."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("WEBSOCKET_URL", "TOKEN", "DATABASE_URL", "ENVIRONMENT")
        and not key.startswith("POSTGRES_")
    }
    env["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='entrypoint_')}/service.sqlite3"
    env.update(extra)
    return env


class EntrypointTest(unittest.TestCase):
    def test_missing_settings_is_one_line_and_exit_2(self) -> None:
        result = subprocess.run(
            [sys.executable, "entrypoint.py"],
            cwd=ROOT,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(result.returncode, 2)
        self.assertEqual(
            result.stderr.strip(),
            "error: WEBSOCKET_URL and TOKEN must be set (or run with --local)",
        )

    def test_bad_setting_is_one_line_and_exit_2(self) -> None:
        result = subprocess.run(
            [sys.executable, "entrypoint.py"],
            cwd=ROOT,
            env=clean_env(MAX_CONCURRENCY="lots"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(result.returncode, 2)
        self.assertEqual(len(result.stderr.strip().splitlines()), 1)
        self.assertIn("MAX_CONCURRENCY", result.stderr)

    def test_unreachable_database_is_one_line_and_exit_1(self) -> None:
        env = clean_env(
            WEBSOCKET_URL="ws://127.0.0.1:9/websocket",
            TOKEN="some-token-value",
            DATABASE_URL="postgresql+psycopg2://service:pa55word@127.0.0.1:1/app",
        )
        result = subprocess.run(
            [sys.executable, "entrypoint.py"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(result.returncode, 1)
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        self.assertEqual(len(errors), 1, result.stderr)
        self.assertIn("cannot connect to the database", errors[0])
        self.assertNotIn("Traceback", result.stderr)
        self.assertNotIn("pa55word", result.stderr)
        self.assertNotIn("some-token-value", result.stderr)

    def test_local_prints_a_curl_line_that_works(self) -> None:
        process = subprocess.Popen(
            [sys.executable, "entrypoint.py", "--local", "--local-port", "0"],
            cwd=ROOT,
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            lines = [process.stdout.readline(), process.stdout.readline()]
            command = lines[1].strip()
            self.assertTrue(command.startswith("curl "), lines)
            url = re.search(r"(http://\S+/) ", command)
            body = re.search(r"-d '(.*)'$", command)
            assert url is not None and body is not None
            answer = b""
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                request = urllib.request.Request(
                    url.group(1),
                    data=body.group(1).encode(),
                    headers={"content-type": "application/json"},
                )
                try:
                    with urllib.request.urlopen(request, timeout=35) as response:
                        answer = response.read()
                        break
                except urllib.error.HTTPError as error:
                    if error.code != 422:  # 422 until the consumer has joined
                        raise
                    time.sleep(0.1)
            self.assertIn(b'"status":"success"', answer)
            self.assertIn(b'"message":"hello"', answer)
        finally:
            process.terminate()
            try:
                self.assertEqual(process.wait(timeout=30), 0)
            finally:
                process.kill()
                process.communicate()


if __name__ == "__main__":
    unittest.main()
