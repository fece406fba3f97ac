"""Tests of core/db/urls.py: which database the settings select, and how its URL is shown."""

from __future__ import annotations

import unittest
from pathlib import Path

from sqlalchemy import make_url

from core.database import DatabaseConfigError
from core.db.urls import (
    DatabaseSettings,
    default_sqlite_path,
    resolve_database_url,
    shown_url,
)
from core.settings import DatabaseConfig


class SelectionTest(unittest.TestCase):
    """How the environment selects the database."""

    def test_default_is_an_sqlite_file_per_environment(self) -> None:
        settings = DatabaseSettings.from_environment({})
        self.assertEqual(settings.environment, "test")
        self.assertEqual(settings.source, "embedded SQLite")
        self.assertEqual(settings.url.get_backend_name(), "sqlite")
        self.assertEqual(settings.url.database, str(Path.cwd() / "py_service_test.sqlite3"))
        development = resolve_database_url({"ENVIRONMENT": "Development"})
        self.assertEqual(development.database, str(default_sqlite_path("development")))

    def test_postgres_variables_pick_the_database_of_the_environment(self) -> None:
        environ = {
            "ENVIRONMENT": "development",
            "POSTGRES_HOST": "db.internal",
            "POSTGRES_USER": "service",
            "POSTGRES_PASSWORD": "p@ss:word",
            "POSTGRES_DB_DEVELOPMENT": "service_development",
            "POSTGRES_DB_TEST": "service_test",
            "POSTGRES_DB_PRODUCTION": "service_production",
        }
        url = resolve_database_url(environ)
        self.assertEqual(url.drivername, "postgresql+psycopg2")
        self.assertEqual((url.host, url.port, url.username), ("db.internal", 5432, "service"))
        self.assertEqual(url.password, "p@ss:word")
        self.assertEqual(url.database, "service_development")
        production = resolve_database_url({**environ, "ENVIRONMENT": "production"})
        self.assertEqual(production.database, "service_production")
        custom_port = resolve_database_url({**environ, "POSTGRES_PORT": "6543"})
        self.assertEqual(custom_port.port, 6543)

    def test_database_url_overrides_everything(self) -> None:
        environ = {
            "DATABASE_URL": "postgres://someone:secret@elsewhere:5433/other",
            "POSTGRES_HOST": "db.internal",
            "ENVIRONMENT": "production",
        }
        settings = DatabaseSettings.from_environment(environ)
        self.assertEqual(settings.source, "DATABASE_URL")
        self.assertEqual(settings.url.drivername, "postgresql+psycopg2")
        self.assertEqual((settings.url.host, settings.url.database), ("elsewhere", "other"))

    def test_production_without_settings_names_the_missing_variables(self) -> None:
        with self.assertRaises(DatabaseConfigError) as caught:
            DatabaseSettings.from_environment({"ENVIRONMENT": "production"})
        message = str(caught.exception)
        self.assertNotIn("\n", message)
        for name in ("POSTGRES_HOST", "POSTGRES_USER", "POSTGRES_DB_PRODUCTION"):
            self.assertIn(name, message)
        self.assertIn("DATABASE_URL", message)

    def test_partial_postgres_settings_are_an_error_not_a_fallback(self) -> None:
        with self.assertRaises(DatabaseConfigError) as caught:
            resolve_database_url({"ENVIRONMENT": "development", "POSTGRES_HOST": "db"})
        self.assertIn("POSTGRES_USER", str(caught.exception))
        self.assertIn("POSTGRES_DB_DEVELOPMENT", str(caught.exception))
        self.assertNotIn("POSTGRES_HOST,", str(caught.exception))

    def test_invalid_values_are_one_line_errors(self) -> None:
        postgres = {"POSTGRES_HOST": "h", "POSTGRES_USER": "u", "POSTGRES_DB_TEST": "d"}
        cases: list[tuple[dict[str, str], str]] = [
            ({"ENVIRONMENT": "staging"}, "ENVIRONMENT"),
            ({**postgres, "POSTGRES_PORT": "five"}, "POSTGRES_PORT"),
            ({**postgres, "POSTGRES_PORT": "70000"}, "POSTGRES_PORT"),
            ({"DB_POOL_SIZE": "0"}, "DB_POOL_SIZE"),
            ({"DB_MAX_OVERFLOW": "-1"}, "DB_MAX_OVERFLOW"),
        ]
        for environ, name in cases:
            with self.subTest(environ=environ), self.assertRaises(DatabaseConfigError) as caught:
                DatabaseSettings.from_environment(environ)
            self.assertIn(name, str(caught.exception))
            self.assertNotIn("\n", str(caught.exception))

    def test_a_malformed_database_url_is_not_echoed(self) -> None:
        with self.assertRaises(DatabaseConfigError) as caught:
            resolve_database_url({"DATABASE_URL": "not a url with s3cret inside"})
        self.assertIn("DATABASE_URL", str(caught.exception))
        self.assertNotIn("s3cret", str(caught.exception))

    def test_an_explicit_url_is_used_without_reading_the_url_variables(self) -> None:
        environ = {"ENVIRONMENT": "production", "POSTGRES_HOST": "half", "POSTGRES_PORT": "x"}
        settings = DatabaseSettings.from_environment(environ, url="sqlite:///elsewhere.db")
        self.assertEqual((settings.source, settings.environment), ("explicit", "production"))
        self.assertEqual(settings.url.database, "elsewhere.db")

    def test_settings_already_read_are_chosen_from_without_the_environment(self) -> None:
        config = DatabaseConfig(
            environment="production",
            postgres_host="db.internal",
            postgres_user="service",
            postgres_db_production="app",
        )
        settings = DatabaseSettings.from_config(config)
        self.assertEqual(settings.source, "POSTGRES_*")
        self.assertEqual(
            shown_url(settings.url), "postgresql+psycopg2://service@db.internal:5432/app"
        )

    def test_an_unknown_dialect_is_a_one_line_error_without_the_password(self) -> None:
        environ = {"DATABASE_URL": "postgresql+nosuchdriver://service:s3cret@db.internal/app"}
        with self.assertRaises(DatabaseConfigError) as caught:
            DatabaseSettings.from_environment(environ)
        self.assertEqual(
            str(caught.exception),
            "DATABASE_URL must name a database SQLAlchemy knows; got "
            "'postgresql+nosuchdriver://service:***@db.internal/app' "
            "(Can't load plugin: sqlalchemy.dialects:postgresql.nosuchdriver)",
        )

    def test_a_url_that_does_not_parse_shows_only_its_scheme(self) -> None:
        for raw in ("postgresql://service:s3cret@db:port/app", "postgresql://service:s3cret"):
            with self.subTest(raw=raw), self.assertRaises(DatabaseConfigError) as caught:
                DatabaseSettings.from_environment({"DATABASE_URL": raw})
            message = str(caught.exception)
            self.assertTrue(message.startswith("DATABASE_URL must be a database URL"), message)
            self.assertIn("got 'postgresql://'... (the rest is not shown", message)
            self.assertNotIn("s3cret", message)


class PasswordWithAtSignTest(unittest.TestCase):
    """An "@" in a password, written as it is: the password is the whole of it."""

    def test_the_password_runs_to_the_last_at_sign_before_the_host_ends(self) -> None:
        cases = {
            "postgresql://svc:Zq7@Xk9w@db.internal:5432/app": ("Zq7@Xk9w", "db.internal", 5432),
            "postgresql://svc:Zq7@@Xk9w@db.internal/app": ("Zq7@@Xk9w", "db.internal", None),
            "postgresql://svc:Zq7@Xk:9w@db.internal:6543/app": ("Zq7@Xk:9w", "db.internal", 6543),
            "postgresql://svc:Zq7@Xk#9w@db.internal/app": ("Zq7@Xk#9w", "db.internal", None),
            "postgresql://svc:Zq7/Xk@9w@db.internal/app": ("Zq7/Xk@9w", "db.internal", None),
            "postgresql://svc:Zq%37@Xk9w@db.internal/app": ("Zq7@Xk9w", "db.internal", None),
            "postgresql://svc:Zq7%40Xk9w@db.internal/app": ("Zq7@Xk9w", "db.internal", None),
            "postgres://svc:Zq7@Xk9w@[::1]:5432/app": ("Zq7@Xk9w", "::1", 5432),
        }
        for raw, (password, host, port) in cases.items():
            with self.subTest(raw=raw):
                url = DatabaseSettings.from_environment({"DATABASE_URL": raw}).url
                self.assertEqual((url.password, url.host, url.port), (password, host, port))
                self.assertEqual((url.username, url.database), ("svc", "app"))
                self.assertEqual(url.drivername, "postgresql+psycopg2")
                self.assertNotIn("Xk", shown_url(url))

    def test_an_at_sign_after_the_host_is_refused_without_showing_anything(self) -> None:
        for raw in (
            "postgresql://svc:Zq7@Xk/9w@db.internal/app",
            "postgresql://svc:Zq7@Xk?9w@db.internal/app",
            "postgresql://svc:Zq7@Xk/9w?x@db.internal:5432/app",
            "postgresql://svc:Zq7Xk9w@db.internal/app?application_name=me@home",
        ):
            with self.subTest(raw=raw), self.assertRaises(DatabaseConfigError) as caught:
                DatabaseSettings.from_environment({"DATABASE_URL": raw})
            message = str(caught.exception)
            self.assertIn("write an '@' of the password, the database name or a parameter", message)
            self.assertIn("got 'postgresql://'... (the rest is not shown", message)
            for fragment in ("Zq7", "Xk", "9w", "db.internal", "home"):
                self.assertNotIn(fragment, message)

    def test_without_a_password_an_at_sign_is_left_to_sqlalchemy(self) -> None:
        url = DatabaseSettings.from_environment({"DATABASE_URL": "sqlite:////tmp/a@b.db"}).url
        self.assertEqual(url.database, "/tmp/a@b.db")
        url = DatabaseSettings.from_environment(
            {"DATABASE_URL": "postgresql://me@corp@db.internal/app?application_name=x@y"}
        ).url
        self.assertEqual(
            (url.username, url.host, url.query),
            ("me@corp", "db.internal", {"application_name": "x@y"}),
        )


class ShownUrlTest(unittest.TestCase):
    """A URL as logs and messages show it."""

    def test_passwords_are_hidden(self) -> None:
        self.assertEqual(
            shown_url(make_url("postgresql://service:s3cret@db/app")),
            "postgresql://service:***@db/app",
        )
        self.assertEqual(
            shown_url(make_url("postgresql://service@db/app?password=s3cret&sslmode=require")),
            "postgresql://service@db/app?password=***&sslmode=require",
        )


if __name__ == "__main__":
    unittest.main()
