"""Tests of core/settings.py: every variable read once, and the errors a bad one gives."""

from __future__ import annotations

import subprocess
import sys
import unittest

from core.settings import PROJECT_ROOT, DatabaseConfig, Settings, SettingsError, load_settings

POSTGRES = {"POSTGRES_HOST": "db", "POSTGRES_USER": "service", "POSTGRES_DB_TEST": "app"}


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
