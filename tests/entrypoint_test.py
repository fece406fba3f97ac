"""Tests of the command line, run as a real subprocess."""

from __future__ import annotations

import ast
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from core.dev.local_hub.hub import LocalHub
from core.main import load_configuration
from core.settings import SettingsError
from tests.core.settings_test import (
    ENVIRONMENTS_TO_TRY,
    assert_one_line_naming_a_variable,
    assert_sound,
    environments_with_a_secret,
)
from tests.fixtures.lifespan import FOLDER as LIFESPAN_ACTIONS
from tests.replicas import Replica
from tests.support import FIXTURE_ACTIONS_FOLDER, project_has_migrations, wait_until

ROOT = Path(__file__).resolve().parent.parent
SECRET_TOKEN = "tok-5ecret-value-4242"
SECRET_PASSWORD = "pw-5ecret-value-4242"
HUB = {"WEBSOCKET_URL": "ws://127.0.0.1:9/websocket", "TOKEN": SECRET_TOKEN}
Result = subprocess.CompletedProcess[str]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without hub settings, with a throw-away SQLite database, serving the
    fixture actions."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("WEBSOCKET_URL", "TOKEN", "DATABASE_URL", "ENVIRONMENT", "ACTIONS_PATH")
        and not key.startswith("POSTGRES_")
    }
    env["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='entrypoint_')}/service.sqlite3"
    env["ACTIONS_PATH"] = str(FIXTURE_ACTIONS_FOLDER)
    env.update(extra)
    return env


def run_entrypoint(env: dict[str, str] | dict[bytes, bytes], timeout: float = 60) -> Result:
    """Run ``python entrypoint.py`` (no options) to its end."""
    return subprocess.run(
        [sys.executable, "entrypoint.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class BadSettingTest(unittest.TestCase):
    """A bad setting stops start-up before anything starts: one line on stderr, exit 2."""

    def assert_refused(self, result: Result, *parts: str) -> str:
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertTrue(result.stderr.endswith("\n"), result.stderr)
        self.assertEqual(result.stderr.count("\n"), 1, result.stderr)
        self.assertTrue(result.stderr.startswith("error: "), result.stderr)
        for part in parts:
            self.assertIn(part, result.stderr)
        self.assertEqual(result.stdout, "")
        return result.stderr

    def test_an_unknown_log_level(self) -> None:
        result = run_entrypoint(clean_env(LOG_LEVEL="VERBOSE", **HUB))
        self.assert_refused(
            result, "LOG_LEVEL", "'VERBOSE'", "DEBUG, INFO, WARNING, ERROR, CRITICAL"
        )

    def test_a_websocket_url_that_is_not_ws_stops_at_start_up(self) -> None:
        # Before: retried forever, warning every few seconds. The timeout is that case's failure.
        result = run_entrypoint(
            clean_env(WEBSOCKET_URL="http://host", TOKEN=SECRET_TOKEN), timeout=30
        )
        line = self.assert_refused(result, "WEBSOCKET_URL", "'http://host'", "ws://", "wss://")
        self.assertNotIn(SECRET_TOKEN, line)

    def test_plain_ws_to_a_remote_hub_in_production_stops_at_start_up(self) -> None:
        url = f"ws://hub.example.com/websocket?token={SECRET_TOKEN}"
        env = clean_env(ENVIRONMENT="production", WEBSOCKET_URL=url, TOKEN=SECRET_TOKEN)
        line = self.assert_refused(
            run_entrypoint(env), "WEBSOCKET_URL", "wss://", "ALLOW_INSECURE_WEBSOCKET"
        )
        self.assertNotIn(SECRET_TOKEN, line)

    def test_a_health_address_that_cannot_be_bound_stops_at_start_up(self) -> None:
        # 192.0.2.1 (TEST-NET-1, RFC 5737) is no address of this machine.
        env = clean_env(HEALTH_HOST="192.0.2.1", HEALTH_PORT="0", LOG_LEVEL="ERROR", **HUB)
        line = self.assert_refused(run_entrypoint(env), "HEALTH_HOST", "192.0.2.1")
        self.assertNotIn(SECRET_TOKEN, line)

    def test_a_number_that_is_not_one(self) -> None:
        result = run_entrypoint(clean_env(MAX_CONCURRENCY="abc", **HUB))
        self.assert_refused(result, "MAX_CONCURRENCY", "'abc'", "whole number")

    def test_a_bad_database_setting(self) -> None:
        result = run_entrypoint(clean_env(DATABASE_URL=f"not a url {SECRET_PASSWORD}", **HUB))
        line = self.assert_refused(result, "DATABASE_URL")
        self.assertNotIn(SECRET_PASSWORD, line)
        env = clean_env(POSTGRES_HOST="db", **HUB)
        del env["DATABASE_URL"]  # it would win over POSTGRES_*
        result = run_entrypoint(env)
        self.assert_refused(result, "PostgreSQL is partly configured", "POSTGRES_USER")

    def test_a_bad_port_inside_database_url_is_refused_without_the_password(self) -> None:
        url = f"postgresql://service:{SECRET_PASSWORD}@db:port/app"
        line = self.assert_refused(
            run_entrypoint(clean_env(DATABASE_URL=url, **HUB)), "DATABASE_URL"
        )
        self.assertNotIn(SECRET_PASSWORD, line)

    def test_an_at_sign_in_the_password_never_shows_a_piece_of_it(self) -> None:
        # Written as it is, the password is whole: the connection fails on the closed port
        # (exit 1) and names the host, not the password's tail.
        unreachable = run_entrypoint(
            clean_env(DATABASE_URL="postgresql://service:Zq7@Xk9w@127.0.0.1:1/app", **HUB)
        )
        self.assertEqual(unreachable.returncode, 1, unreachable.stderr)
        self.assertIn('server at "127.0.0.1", port 1 failed', unreachable.stderr)
        # With an "@" after the host too, there is no telling where it ends: exit 2.
        ambiguous = run_entrypoint(
            clean_env(DATABASE_URL="postgresql://service:Zq7@Xk/9w@127.0.0.1:1/app", **HUB)
        )
        self.assert_refused(ambiguous, "DATABASE_URL", "%40")
        for result in (unreachable, ambiguous):
            for piece in ("Zq7", "Xk", "9w"):
                self.assertNotIn(piece, result.stderr)

    def test_secrets_in_a_bad_value_are_masked(self) -> None:
        url = f"http://user:{SECRET_PASSWORD}@host/socket?token={SECRET_TOKEN}"
        line = self.assert_refused(
            run_entrypoint(clean_env(WEBSOCKET_URL=url, TOKEN=SECRET_TOKEN)), "WEBSOCKET_URL"
        )
        self.assertNotIn(SECRET_PASSWORD, line)
        self.assertNotIn(SECRET_TOKEN, line)

    def test_bytes_that_are_not_utf8(self) -> None:
        # The environment holds bytes; Python shows undecodable ones as lone surrogates.
        env = {key.encode(): value.encode() for key, value in clean_env(**HUB).items()}
        env[b"TOKEN"] = SECRET_TOKEN.encode() + b"\xff"
        line = self.assert_refused(run_entrypoint(env), "TOKEN")
        self.assertNotIn(SECRET_TOKEN, line)


class ConfigurationTest(unittest.TestCase):
    """`load_configuration`, which main() calls first: whatever the environment holds, it
    returns settings or raises one line naming a variable (main prints it, exit code 2)."""

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(ENVIRONMENTS_TO_TRY)
    def test_loads_or_names_the_variable(self, env: dict[str, str]) -> None:
        try:
            loaded = load_configuration(env)
        except SettingsError as error:
            assert_one_line_naming_a_variable(self, error)
        else:
            assert_sound(self, loaded)

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(environments_with_a_secret())
    def test_a_secret_never_appears_in_the_error(self, case: tuple[dict[str, str], str]) -> None:
        env, secret = case
        try:
            load_configuration(env)
        except SettingsError as error:
            self.assertNotIn(secret, str(error))

    def test_a_database_url_is_parsed_before_anything_starts(self) -> None:
        with self.assertRaises(SettingsError) as caught:
            load_configuration({"DATABASE_URL": "postgresql://service:s3cret@db:port/app"})
        self.assertIn("DATABASE_URL must be a database URL", str(caught.exception))
        self.assertNotIn("s3cret", str(caught.exception))
        with self.assertRaises(SettingsError) as caught:
            load_configuration({"DATABASE_URL": "nosuchdialect://db/app"})
        self.assertIn("DATABASE_URL must name a database SQLAlchemy knows", str(caught.exception))


class LifespanServiceTest(unittest.IsolatedAsyncioTestCase):
    """The service opens its lifespan before it joins and closes it after the last answer."""

    async def asyncSetUp(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="lifespan_"))
        self.addCleanup(shutil.rmtree, self.workdir, True)
        self.log = self.workdir / "steps.log"
        self.hub = await self.enterAsyncContext(LocalHub())

    def replica(self, **env: str) -> Replica:
        replica = Replica(
            "lifespan",
            self.hub.websocket_url,
            next(iter(self.hub.tokens)),
            self.workdir,
            ACTIONS_PATH=str(LIFESPAN_ACTIONS),
            LIFESPAN_LOG=str(self.log),
            # The only replica: on SIGTERM it serves until its grace ends (no other joins).
            SHUTDOWN_GRACE_SECONDS="1",
            **env,
        )
        self.addAsyncCleanup(replica.kill)
        return replica

    def steps(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    async def test_a_failure_at_start_up_is_one_line_and_exit_1_before_joining(self) -> None:
        replica = await self.replica(LIFESPAN_FAIL="open").start()
        self.assertEqual(await replica.exited(), 1)
        errors = [line for line in replica.lines if "error" in line.lower()]
        self.assertEqual(len(errors), 1, replica.log())
        self.assertRegex(
            errors[0],
            r"^error: lifespan \S+resources\.counter failed at start-up: ConnectionError: ",
        )
        self.assertNotIn("pa55word", replica.log())
        self.assertNotIn("Traceback", replica.log())
        # It never reached the hub.
        self.assertEqual(self.hub.connection_count(), 0)
        self.assertEqual(len(self.hub.received), 0)
        self.assertEqual(self.steps(), ["open"])

    async def test_closed_after_the_last_answer_on_sigterm(self) -> None:
        replica = await (await self.replica().start()).joined()
        self.assertEqual(self.steps(), ["open"])
        first = await self.hub.request("Count", {})
        running = asyncio.ensure_future(self.hub.request("Count", {"seconds": 0.5}))
        await wait_until(lambda: len(self.steps()) == 4)  # the second one has started
        replica.terminate()
        status, body = await running
        self.assertEqual(await replica.exited(), 0, replica.log())
        self.assertEqual(first[1]["message"], {"count": 1})
        self.assertEqual((status, body["message"]), (200, {"count": 2}))
        # The running request finished with the resource open; it closed after that.
        self.assertEqual(
            [step.split()[0] for step in self.steps()],
            ["open", "started", "answered", "started", "answered", "closed"],
        )
        log = replica.log()
        self.assertLess(log.index("lifespan open:"), log.index("joined service"))

    async def test_a_failure_while_closing_is_logged_in_one_line(self) -> None:
        replica = await (await self.replica(LIFESPAN_FAIL="close").start()).joined()
        replica.terminate()
        self.assertEqual(await replica.exited(), 0, replica.log())
        errors = [line for line in replica.lines if " ERROR " in line]
        self.assertEqual(len(errors), 1, replica.log())
        self.assertIn("failed while closing: RuntimeError: the pool would not close", errors[0])
        self.assertNotIn("Traceback", replica.log())
        self.assertEqual(self.steps(), ["open", "closed"])


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


class ScriptTest(unittest.TestCase):
    def test_the_script_defines_nothing_and_hands_over_to_core_main(self) -> None:
        """The command line lives in core.main, with the rest of the code; the script users
        run only calls it."""
        tree = ast.parse((ROOT / "entrypoint.py").read_text(encoding="utf-8"))
        definitions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
        self.assertEqual([node for node in ast.walk(tree) if isinstance(node, definitions)], [])
        handed_over = {
            (node.module, alias.name)
            for node in tree.body
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        }
        self.assertEqual(handed_over, {("core.main", "main")})


class DatabaseOnlyWhenUsedTest(unittest.IsolatedAsyncioTestCase):
    """The database stack loads only for a service that uses it (issue: footprint)."""

    async def asyncSetUp(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="lazy_db_"))
        self.addCleanup(shutil.rmtree, self.workdir, True)
        self.hub = await self.enterAsyncContext(LocalHub())

    async def modules_of_a_replica(self, actions: Path, **env: str) -> tuple[set[str], str]:
        """Start a replica with ``-X importtime``, let it join, stop it; its imports and log."""
        replica = Replica(
            "lazy",
            self.hub.websocket_url,
            next(iter(self.hub.tokens)),
            self.workdir,
            ACTIONS_PATH=str(actions),
            PYTHONPROFILEIMPORTTIME="1",
            # The only replica, idle: on SIGTERM it leaves once its grace (none) ends.
            SHUTDOWN_GRACE_SECONDS="0",
            **env,
        )
        self.addAsyncCleanup(replica.kill)
        await (await replica.start()).joined()
        replica.terminate()
        self.assertEqual(await replica.exited(), 0, replica.log())
        imported = {
            match.group(1)
            for line in replica.lines
            if (match := re.match(r"import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", line))
        }
        self.assertIn("core.hub.client", imported)  # the report was read
        return imported, replica.log()

    async def test_a_service_that_uses_no_database_never_loads_one(self) -> None:
        actions = self.workdir / "plain"
        actions.mkdir()
        (actions / "echo.py").write_text(
            "from pydantic import Field\n"
            "from core import ActionResponse, ActionRunner, Context\n\n\n"
            "class Echo(ActionRunner):\n"
            '    text: str = Field(description="What to say")\n\n'
            "    @classmethod\n"
            "    def description(cls) -> str:\n"
            '        return "Says it back"\n\n'
            "    async def run(self, ctx: Context) -> ActionResponse:\n"
            "        return ActionResponse(fields=self.text)\n"
        )
        imported, log = await self.modules_of_a_replica(actions)
        self.assertFalse({"sqlalchemy", "alembic", "core.db.database"} & imported, log)
        self.assertIn("no database: no action imports core.database", log)
        # The command's code came in as a module.
        self.assertIn("core.main", imported)
        # Tracing not asked for (no OTEL_* variables), and /metrics never read: neither
        # OpenTelemetry nor prometheus_client is loaded, installed or not.
        self.assertIn("core.ops.tracing", imported)
        self.assertEqual(
            {name for name in imported if name.startswith(("opentelemetry", "prometheus_client"))},
            set(),
            log,
        )

    async def test_a_configured_database_is_migrated_and_alembic_then_stays_unloaded(
        self,
    ) -> None:
        database = f"sqlite:///{self.workdir / 'service.sqlite3'}"
        first, log = await self.modules_of_a_replica(FIXTURE_ACTIONS_FOLDER, DATABASE_URL=database)
        if project_has_migrations():
            self.assertIn("alembic", first)  # a fresh database: migrated
        else:  # a project without migrations: a fresh database is already at head
            self.assertNotIn("alembic", first)
            self.assertIn("is at the newest revision; nothing to migrate", log)
        again, log = await self.modules_of_a_replica(FIXTURE_ACTIONS_FOLDER, DATABASE_URL=database)
        self.assertIn("sqlalchemy", again)
        self.assertNotIn("alembic", again, "at head: recognised without loading Alembic")
        self.assertIn("is at the newest revision; nothing to migrate", log)


if __name__ == "__main__":
    unittest.main()
