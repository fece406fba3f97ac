"""Tests of core/settings.py: every variable read once, and the errors a bad one gives."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import unittest
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.uri import parse_uri

from core.dev.reference import configuration_reference
from core.settings import (
    DATABASE_SETTINGS,
    ENVIRONMENTS,
    LOG_FORMATS,
    LOG_LEVELS,
    PHOENIX_VERSIONS,
    PROJECT_ROOT,
    SETTINGS,
    VARIABLES,
    DatabaseConfig,
    Settings,
    SettingsError,
    is_host,
    is_loopback_host,
    load_settings,
    sends_token_in_clear,
)

POSTGRES = {"POSTGRES_HOST": "db", "POSTGRES_USER": "service", "POSTGRES_DB_TEST": "app"}

SECRET_VARIABLES = ("TOKEN", "POSTGRES_PASSWORD")

# What the environment can hold, and more: any code point (lone surrogates are how Python
# shows bytes that are not UTF-8; NUL cannot be in a real environment but may be passed in).
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=30)
VALUES = st.one_of(
    ANY_TEXT,
    st.one_of(st.integers(), st.floats()).map(str),  # floats: nan, inf, -0.0, 1e+300...
    st.sampled_from(
        [
            "",
            " ",
            "nan",
            "-inf",
            "1e309",
            "1e3",
            "0",
            "-1",
            "65536",
            "1_000",
            "0x10",
            "\u0661\u0662",  # Arabic-Indic digits: float() reads them
            "9" * 5000,
            "x" * 100_000,
            "\udcff",
            "debug",
            "JSON",
            "2.0.0",
            "production",
            "true",
            "::",
            "ws://h",
            "WSS://h:443/x",
            "ws://h:99999",
            "ws://[::1",
            "ws://u@h",
            "ws://u:%ff@h",
            "ws://\u00e9x\u0301..a",
            "http://host",
            "postgresql://u:p@h:x/d",
            "postgres://u@h/d",
            "sqlite://",
            "foo+bar://x",
        ]
    ),
    st.builds(
        str.__add__,
        st.sampled_from(["ws://", "wss://", "http://", "postgresql://", "sqlite:///", "x+y://"]),
        ANY_TEXT,
    ),
)
ENVIRONMENTS_TO_TRY = st.dictionaries(st.sampled_from(VARIABLES), VALUES)


@st.composite
def environments_with_a_secret(draw: st.DrawFn) -> tuple[dict[str, str], str]:
    """Any environment whose TOKEN and/or POSTGRES_PASSWORD is a recognisable secret, which
    may also turn up inside the other values."""
    env = draw(ENVIRONMENTS_TO_TRY)
    secret = "S3cr3t-" + draw(ANY_TEXT)
    for name in draw(st.sets(st.sampled_from(SECRET_VARIABLES), min_size=1)):
        env[name] = secret
    for name in draw(st.sets(st.sampled_from(VARIABLES))):
        if name not in SECRET_VARIABLES:
            env[name] = draw(VALUES) + secret + draw(VALUES)
    return env, secret


def assert_one_line_naming_a_variable(test: unittest.TestCase, error: SettingsError) -> str:
    """The error's message: one printable line that names a variable."""
    message = str(error)
    test.assertTrue(message.isprintable(), repr(message))
    test.assertTrue(any(name in message for name in VARIABLES), message)
    test.assertLess(len(message), 1000)
    return message


def assert_sound(test: unittest.TestCase, loaded: Settings) -> None:
    """What a start-up may rely on in settings that loaded."""
    test.assertIn(loaded.log_level, LOG_LEVELS)
    test.assertIn(loaded.log_format, LOG_FORMATS)
    test.assertIn(loaded.phoenix_vsn, PHOENIX_VERSIONS)
    test.assertIn(loaded.database.environment, ENVIRONMENTS)
    if loaded.websocket_url:
        parse_uri(loaded.websocket_url)  # the WebSocket client's own rules
    numbers: list[Any] = [
        loaded.max_concurrency,
        loaded.max_waiting_requests,
        loaded.action_timeout_seconds,
        loaded.heartbeat_interval_seconds,
        loaded.join_timeout_seconds,
        loaded.shutdown_grace_seconds,
        loaded.max_message_bytes,
        loaded.outbox_limit,
        loaded.outbox_max_bytes,
        loaded.response_max_age_seconds,
        loaded.database.pool_size,
        loaded.database.max_overflow,
        loaded.database.connect_timeout,
    ]
    for number in numbers:
        test.assertTrue(math.isfinite(number) and number >= 0, numbers)
    for port in (loaded.health_port, loaded.database.postgres_port):
        test.assertTrue(port is None or 0 <= port <= 65535, port)
    test.assertTrue(loaded.health_host == "" or is_host(loaded.health_host))
    if loaded.database.environment == "production" and not loaded.allow_insecure_websocket:
        test.assertFalse(loaded.websocket_url and sends_token_in_clear(loaded.websocket_url))
    for text in (loaded.token, str(loaded.actions_path), loaded.database.url):
        text.encode("utf-8")  # no lone surrogates: every value is text that can be sent


class AnyValueTest(unittest.TestCase):
    """Whatever the environment holds, loading either succeeds or raises one line naming a
    variable: never another exception."""

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(ENVIRONMENTS_TO_TRY)
    def test_loads_or_names_the_variable(self, env: dict[str, str]) -> None:
        try:
            loaded = load_settings(env)
        except SettingsError as error:
            assert_one_line_naming_a_variable(self, error)
        else:
            assert_sound(self, loaded)

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(environments_with_a_secret())
    def test_a_secret_never_appears_in_the_error(self, case: tuple[dict[str, str], str]) -> None:
        env, secret = case
        try:
            load_settings(env)
        except SettingsError as error:
            self.assertNotIn(secret, str(error))
            self.assertNotIn(secret.strip(), str(error))


class BadValueTest(unittest.TestCase):
    """Each rule, and the one line it gives."""

    def assert_refused(self, env: dict[str, str], expected: str) -> None:
        with self.assertRaises(SettingsError) as caught:
            load_settings(env)
        self.assertEqual(str(caught.exception), expected)

    def test_names_the_variable_the_value_and_what_it_accepts(self) -> None:
        cases = {
            "LOG_LEVEL": (
                "VERBOSE",
                "one of DEBUG, INFO, WARNING, ERROR, CRITICAL; got 'VERBOSE'",
            ),
            "LOG_FORMAT": ("yaml", "one of text, json; got 'yaml'"),
            "PHOENIX_VSN": ("3.0.0", "one of 1.0.0, 2.0.0; got '3.0.0'"),
            "ENVIRONMENT": ("staging", "one of development, test, production; got 'staging'"),
            "MAX_CONCURRENCY": ("abc", "a whole number, at least 1; got 'abc'"),
            "OUTBOX_LIMIT": ("2.5", "a whole number, at least 1; got '2.5'"),
            "OUTBOX_MAX_BYTES": ("1000", "a whole number, at least 1024; got '1000'"),
            "MAX_WAITING_REQUESTS": ("-1", "a whole number, at least 0; got '-1'"),
            "MAX_MESSAGE_BYTES": ("1000", "a whole number, at least 1024; got '1000'"),
            "HEALTH_PORT": ("65536", "a whole number, from 0 to 65535; got '65536'"),
            "POSTGRES_PORT": ("0", "a whole number, from 1 to 65535; got '0'"),
            "DB_POOL_SIZE": ("0", "a whole number, at least 1; got '0'"),
            "DB_MAX_OVERFLOW": ("-1", "a whole number, at least 0; got '-1'"),
            "DB_CONNECT_TIMEOUT": (
                "3000000000",
                "a whole number, from 1 to 2147483647; got '3000000000'",
            ),
            "ACTION_TIMEOUT_SECONDS": ("0", "a number of seconds, at least 0.001; got '0'"),
            "HEARTBEAT_INTERVAL_SECONDS": (
                "soon",
                "a number of seconds, at least 0.01; got 'soon'",
            ),
            "JOIN_TIMEOUT_SECONDS": ("-5", "a number of seconds, at least 0.01; got '-5'"),
            "SHUTDOWN_GRACE_SECONDS": ("-1", "a number of seconds, at least 0; got '-1'"),
            "RESPONSE_MAX_AGE_SECONDS": ("x", "a number of seconds, at least 0; got 'x'"),
            "ALLOW_INSECURE_WEBSOCKET": (
                "maybe",
                "true or false (also yes/no, 1/0, on/off); got 'maybe'",
            ),
            "HEALTH_HOST": (
                "[::1]",
                "an IP address or a host name, like 127.0.0.1 or ::; got '[::1]'",
            ),
        }
        for name, (value, expected) in cases.items():
            with self.subTest(name=name):
                self.assert_refused({name: value}, f"{name} must be {expected}")

    def test_numbers_that_are_not_finite_are_refused(self) -> None:
        numbers = ("MAX_CONCURRENCY", "ACTION_TIMEOUT_SECONDS", "SHUTDOWN_GRACE_SECONDS")
        for name in (*numbers, "HEALTH_PORT", "DB_POOL_SIZE", "RESPONSE_MAX_AGE_SECONDS"):
            for value in ("nan", "inf", "-inf", "Infinity", "1e309"):
                with self.subTest(name=name, value=value), self.assertRaises(SettingsError):
                    load_settings({name: value})

    def test_numbers_are_read_generously_but_exactly(self) -> None:
        loaded = load_settings(
            {
                "MAX_CONCURRENCY": " 1e3 ",
                "OUTBOX_LIMIT": "1_000",
                "MAX_MESSAGE_BYTES": "9007199254740993",  # beyond a float's exact integers
                "HEALTH_PORT": "0",
                "SHUTDOWN_GRACE_SECONDS": "0",
                "ACTION_TIMEOUT_SECONDS": "2.5",
            }
        )
        self.assertEqual((loaded.max_concurrency, loaded.outbox_limit), (1000, 1000))
        self.assertEqual(loaded.max_message_bytes, 9007199254740993)
        self.assertEqual(loaded.health_port, 0)
        self.assertEqual((loaded.shutdown_grace_seconds, loaded.action_timeout_seconds), (0, 2.5))

    def test_choices_ignore_case(self) -> None:
        loaded = load_settings({"LOG_LEVEL": "debug", "LOG_FORMAT": "JSON", "ENVIRONMENT": "Test"})
        self.assertEqual((loaded.log_level, loaded.log_format), ("DEBUG", "json"))
        self.assertEqual(loaded.database.environment, "test")

    def test_websocket_url_must_be_one_the_client_accepts(self) -> None:
        form = "a ws:// or wss:// URL with a host, like wss://hub.example.com/websocket"
        cases = {
            "http://host": "'http://host' (its scheme is http)",
            "host/websocket": "'host/websocket' (it has no scheme)",
            "ws:///websocket": "'ws:///websocket' (it has no host)",
            "ws://host/ws#top": "'ws://host/ws#top' (it has a #fragment)",
            "ws://host:99999/": "'ws://host:99999/' (its port is not a number from 0 to 65535)",
            "ws://[::1/": "'ws://[::1/' (it is not a valid URL)",
            "ws://me@host/": "'ws://me@host/' (it has a user name without a password)",
            "ws://me:%ff@host/": "'ws://me:***@host/' (its user name or password is not "
            "percent-encoded UTF-8)",
            "ws://ho st/": "'ws://ho st/' (it holds spaces or control characters)",
            "ws://h\u00e9..x/": "'ws://h\u00e9..x/' (its host is not a valid domain name)",
        }
        for value, expected in cases.items():
            with self.subTest(value=value):
                self.assert_refused(
                    {"WEBSOCKET_URL": value}, f"WEBSOCKET_URL must be {form}; got {expected}"
                )
        for good in ("ws://127.0.0.1:4000/websocket", "WSS://hub.example.com", "ws://[::1]:80"):
            with self.subTest(good=good):
                self.assertEqual(load_settings({"WEBSOCKET_URL": good}).websocket_url, good)

    def test_plain_ws_to_another_machine_is_refused_in_production(self) -> None:
        production = {"ENVIRONMENT": "production", "DATABASE_URL": "sqlite:///p.db"}
        token = "hub-s3cret"
        for url in ("ws://hub.example.com/websocket", "WS://10.0.0.5:4000/ws", "ws://[::2]/ws"):
            with self.subTest(url=url), self.assertRaises(SettingsError) as caught:
                load_settings({**production, "WEBSOCKET_URL": f"{url}?token={token}"})
            message = str(caught.exception)
            self.assertTrue(
                message.startswith(
                    "WEBSOCKET_URL must be a wss:// URL when ENVIRONMENT=production; got '"
                ),
                message,
            )
            self.assertTrue(
                message.endswith(
                    "(ws:// would send TOKEN unencrypted to a host that is not this machine; "
                    "ALLOW_INSECURE_WEBSOCKET=true allows it)"
                ),
                message,
            )
            self.assertNotIn(token, message)
        allowed = [
            {**production, "WEBSOCKET_URL": "wss://hub.example.com/websocket"},
            {**production, "WEBSOCKET_URL": "ws://127.0.0.1:4000/websocket"},
            {**production, "WEBSOCKET_URL": "ws://localhost/websocket"},
            {**production, "WEBSOCKET_URL": "ws://[::1]:4000/websocket"},
            {**production, "WEBSOCKET_URL": "ws://h/ws", "ALLOW_INSECURE_WEBSOCKET": " Yes "},
            {"ENVIRONMENT": "development", "WEBSOCKET_URL": "ws://hub.example.com/websocket"},
            production,
        ]
        for env in allowed:
            with self.subTest(env=env):
                self.assertEqual(load_settings(env).websocket_url, env.get("WEBSOCKET_URL", ""))

    def test_health_host_is_an_address_or_a_name(self) -> None:
        for value in ("0.0.0.0", "::", "127.0.0.1", "fe80::1", "health.internal", "localhost"):
            with self.subTest(value=value):
                self.assertEqual(load_settings({"HEALTH_HOST": value}).health_host, value)
        for value in ("a b", "host:8080", "-x.example", "x" * 64 + ".example", "été"):
            with self.subTest(value=value), self.assertRaises(SettingsError):
                load_settings({"HEALTH_HOST": value})

    def test_loopback_means_this_machine_by_name_or_address(self) -> None:
        for host in ("localhost", "LOCALHOST.", "127.0.0.1", "127.9.9.9", "::1", "[::1]"):
            with self.subTest(host=host):
                self.assertTrue(is_loopback_host(host))
        for host in ("", "localhost.example", "127.0.0.1.nip.io", "0.0.0.0", "::", "10.0.0.1"):
            with self.subTest(host=host):
                self.assertFalse(is_loopback_host(host))
        self.assertTrue(is_loopback_host("::ffff:127.0.0.1"))

    def test_secrets_are_masked(self) -> None:
        token = "hub-s3cret"
        url = f"http://user:pa55@host/ws?token={token}&x=1"
        with self.assertRaises(SettingsError) as caught:
            load_settings({"WEBSOCKET_URL": url, "TOKEN": token})
        self.assertIn("'http://user:***@host/ws?token=***&x=1'", str(caught.exception))
        with self.assertRaises(SettingsError) as caught:
            load_settings({"TOKEN": token, "LOG_FORMAT": f"{token}!"})
        self.assertEqual(str(caught.exception), "LOG_FORMAT must be one of text, json; got '***!'")
        with self.assertRaises(SettingsError) as caught:
            load_settings({"TOKEN": f"{token}\udcff"})
        self.assertEqual(str(caught.exception), "TOKEN must be UTF-8 text; got *** (hidden)")

    def test_a_malformed_database_url_is_never_shown(self) -> None:
        with self.assertRaises(SettingsError) as caught:
            load_settings({"DATABASE_URL": "user:s3cret@db/app"})
        message = str(caught.exception)
        self.assertTrue(message.startswith("DATABASE_URL must be a database URL"), message)
        self.assertTrue(message.endswith("got a value that is not shown (it may hold a password)"))

    def test_what_the_environment_cannot_decode_is_named(self) -> None:
        for name in ("ACTIONS_PATH", "POSTGRES_HOST", "LOG_LEVEL"):
            with self.subTest(name=name):
                self.assert_refused(
                    {name: "ab\udcffc"}, f"{name} must be UTF-8 text; got 'ab\\udcffc'"
                )

    def test_control_characters_and_huge_values_stay_on_one_short_line(self) -> None:
        with self.assertRaises(SettingsError) as caught:
            load_settings({"LOG_LEVEL": "x\n2026-01-01 ERROR forged\r" + "y" * 10_000})
        message = str(caught.exception)
        self.assertTrue(message.isprintable(), message)
        self.assertIn("x\\n2026-01-01 ERROR forged\\r", message)
        self.assertIn("more characters", message)
        self.assertLess(len(message), 300)


class ReadTest(unittest.TestCase):
    def test_every_variable_is_read_and_documented(self) -> None:
        read: set[str] = set()

        class Recording(dict[str, str]):
            def get(self, key: str, default: Any = None) -> Any:
                read.add(key)
                return super().get(key, default)

        load_settings(Recording())
        self.assertEqual(read, set(VARIABLES))
        reference = (PROJECT_ROOT / "docs" / "configuration.md").read_text()
        documented = re.findall(r"^\| `([A-Z_]+)` \|", reference, re.MULTILINE)
        self.assertEqual(documented, list(VARIABLES))
        # The page is the one the table writes (python -m core.dev.reference).
        self.assertEqual(reference, configuration_reference())

    def test_each_default_is_the_tables(self) -> None:
        settings = Settings()
        for variable in SETTINGS:
            with self.subTest(variable=variable.name):
                self.assertEqual(getattr(settings, variable.field), variable.default)
        database = DatabaseConfig()
        for variable in DATABASE_SETTINGS:
            with self.subTest(variable=variable.name):
                self.assertEqual(getattr(database, variable.field), variable.default)


class DefaultsTest(unittest.TestCase):
    def test_an_empty_environment_gives_the_documented_defaults(self) -> None:
        self.assertEqual(load_settings({}), Settings())
        self.assertEqual(load_settings({}).actions_path, PROJECT_ROOT / "actions")


class DatabaseSettingsTest(unittest.TestCase):
    """The database variables, folded into `Settings.database`."""

    def test_defaults_ask_for_no_database(self) -> None:
        settings = load_settings({})
        self.assertEqual(settings.database, DatabaseConfig())
        self.assertEqual(settings.database.environment, "test")
        self.assertFalse(settings.database_configured)

    def test_any_database_variable_asks_for_a_database(self) -> None:
        cases = [
            {"DATABASE_URL": "sqlite:///x.db"},
            POSTGRES,
            {**POSTGRES, "POSTGRES_PORT": "6543", "POSTGRES_PASSWORD": "pw"},
            {"POSTGRES_DB_DEVELOPMENT": "other"},  # another environment's: still configured
        ]
        for env in cases:
            with self.subTest(env=env):
                self.assertTrue(load_settings(env).database_configured)

    def test_values_are_read_as_plain_strings_and_numbers(self) -> None:
        config = load_settings(
            {
                **POSTGRES,
                "ENVIRONMENT": " Test ",
                "POSTGRES_PORT": "6543",
                "POSTGRES_PASSWORD": " pw ",
                "DB_POOL_SIZE": "3",
                "DB_MAX_OVERFLOW": "0",
                "DB_CONNECT_TIMEOUT": "7",
            }
        ).database
        self.assertEqual(
            (config.environment, config.postgres_host, config.postgres_port, config.postgres_user),
            ("test", "db", 6543, "service"),
        )
        self.assertEqual(config.postgres_password, " pw ")  # a password is taken as it is
        self.assertEqual(config.postgres_database, "app")
        self.assertEqual((config.pool_size, config.max_overflow, config.connect_timeout), (3, 0, 7))

    def test_secrets_stay_out_of_repr(self) -> None:
        settings = load_settings(
            {**POSTGRES, "POSTGRES_PASSWORD": "pg-s3cret", "TOKEN": "hub-s3cret"}
        )
        self.assertNotIn("pg-s3cret", repr(settings))
        self.assertNotIn("hub-s3cret", repr(settings))
        with_url = load_settings({"DATABASE_URL": "postgresql://u:url-s3cret@h/d"})
        self.assertNotIn("url-s3cret", repr(with_url))

    def test_production_needs_postgresql(self) -> None:
        with self.assertRaises(SettingsError) as caught:
            load_settings({"ENVIRONMENT": "production"})
        self.assertEqual(
            str(caught.exception),
            "ENVIRONMENT=production needs PostgreSQL: set DATABASE_URL or the missing variables "
            "POSTGRES_HOST, POSTGRES_USER, POSTGRES_DB_PRODUCTION",
        )
        self.assertTrue(
            load_settings({"ENVIRONMENT": "production", "DATABASE_URL": "sqlite:///p.db"})
        )

    def test_partial_postgresql_is_an_error(self) -> None:
        with self.assertRaises(SettingsError) as caught:
            load_settings({"POSTGRES_HOST": "db", "POSTGRES_PORT": "5432"})
        self.assertEqual(
            str(caught.exception),
            "PostgreSQL is partly configured: set DATABASE_URL or the missing variables "
            "POSTGRES_USER, POSTGRES_DB_TEST",
        )

    def test_a_url_of_their_own_skips_the_url_variables(self) -> None:
        env = {"ENVIRONMENT": "production", "POSTGRES_HOST": "half", "DB_POOL_SIZE": "4"}
        config = DatabaseConfig.from_env(env, own_url=True)
        self.assertEqual((config.environment, config.pool_size), ("production", 4))
        self.assertEqual(config.postgres_host, "")


class ImportCostTest(unittest.TestCase):
    def test_importing_settings_loads_no_database_library(self) -> None:
        code = "import sys, core.settings; print('sqlalchemy' in sys.modules)"
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(result.stdout.strip(), "False", result.stderr)


if __name__ == "__main__":
    unittest.main()
