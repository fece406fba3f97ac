"""Checks of docker-compose.yml and the Dockerfile: what they promise, so an edit cannot drop
it silently.

No Docker engine runs here, so `docker compose config` cannot check the file: it is read as
YAML, linted with the repository's yamllint settings, and its ``${...}`` values are
substituted the way compose does (`interpolate`, for the forms the file uses) to check the
settings each consumer would start with. `.ci/image-check` runs the image's own steps.
"""

from __future__ import annotations

import re
import shlex
import unittest
from collections.abc import Mapping
from typing import Any

import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

from core.settings import PROJECT_ROOT, Settings, SettingsError

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
# The services built from this repository's image (postgres is the official image).
OWN_SERVICES = ("consumer", "consumer-local", "hub")
PRODUCTION_ENV = {
    "WEBSOCKET_URL": "wss://hub.example.com/websocket",
    "TOKEN": "service-token",
    "POSTGRES_PASSWORD": "a-strong-password",
}

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, and $$ for "$".
_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}")


class InterpolationError(Exception):
    """A required variable is unset (or empty, for the ``:?`` form): compose stops."""


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """`value` (from the loaded YAML) with its ``${...}`` substituted from `env`."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(found: re.Match[str]) -> str:
        if found.group() == "$$":
            return "$"
        name, colon, kind, argument = found.groups()
        given = env.get(name)
        missing = given is None or (colon == ":" and given == "")
        if kind == "?" and missing:
            raise InterpolationError(f"required variable {name} is missing a value: {argument}")
        if kind == "-" and missing:
            return str(argument)
        return given or ""

    return _VARIABLE.sub(substitute, value)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, rest), continuation lines joined."""
    instructions, pending = [], ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    return instructions


class ComposeTestCase(unittest.TestCase):
    compose: dict[str, Any]

    @classmethod
    def setUpClass(cls) -> None:
        cls.compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))

    def service(self, name: str, env: Mapping[str, str] = PRODUCTION_ENV) -> dict[str, Any]:
        """The service `name` as compose would run it with `env` substituted."""
        return dict(interpolate(self.compose["services"][name], env))


class ComposeFileTest(ComposeTestCase):
    def test_lints_clean_with_the_repositorys_settings(self) -> None:
        config = YamlLintConfig(file=str(PROJECT_ROOT / ".yamllint"))
        problems = list(linter.run(COMPOSE.read_text(encoding="utf-8"), config))
        self.assertEqual([str(problem) for problem in problems], [])

    def test_the_services_containers_are_locked_down(self) -> None:
        for name in OWN_SERVICES:
            with self.subTest(service=name):
                service = self.service(name)
                self.assertIs(service["read_only"], True)
                self.assertEqual(service["cap_drop"], ["ALL"])
                self.assertNotIn("cap_add", service)
                self.assertIn("no-new-privileges:true", service["security_opt"])
                self.assertIn("/tmp", [mount.split(":")[0] for mount in service["tmpfs"]])
                self.assertNotIn("privileged", service)
        self.assertIn("no-new-privileges:true", self.service("postgres")["security_opt"])

    def test_only_the_dev_hub_publishes_a_port_and_on_loopback_only(self) -> None:
        published = {
            name: service["ports"]
            for name, service in self.compose["services"].items()
            if "ports" in service
        }
        self.assertEqual(list(published), ["hub"])
        for mapping in published["hub"]:
            with self.subTest(mapping=mapping):
                self.assertTrue(str(mapping).startswith("127.0.0.1:"), mapping)
        # Its consumers call it "hub": the local hub answers that Host header, and no other.
        self.assertIn("--allow-host=hub", self.service("hub")["command"])

    def test_the_database_password_has_no_default(self) -> None:
        self.assertNotRegex(COMPOSE.read_text(encoding="utf-8"), r"POSTGRES_PASSWORD:?-")
        for env in ({}, {"POSTGRES_PASSWORD": ""}):
            for name in ("postgres", "consumer"):
                with (
                    self.subTest(env=env, service=name),
                    self.assertRaisesRegex(InterpolationError, "POSTGRES_PASSWORD"),
                ):
                    self.service(name, env)
        password = PRODUCTION_ENV["POSTGRES_PASSWORD"]
        self.assertEqual(self.service("postgres")["environment"]["POSTGRES_PASSWORD"], password)
        self.assertEqual(self.service("consumer")["environment"]["POSTGRES_PASSWORD"], password)


class ConsumerSettingsTest(ComposeTestCase):
    """The settings each consumer service starts with, read by the service's own rules."""

    def settings(self, name: str, env: Mapping[str, str] = PRODUCTION_ENV) -> Settings:
        environment = self.service(name, env)["environment"]
        return Settings.from_env({key: str(value) for key, value in environment.items()})

    def test_the_consumers_run_in_production_on_postgresql(self) -> None:
        for name in ("consumer", "consumer-local"):
            with self.subTest(service=name):
                settings = self.settings(name)
                self.assertEqual(settings.database.environment, "production")
                self.assertEqual(settings.database.postgres_host, "postgres")
                self.assertEqual(settings.health_port, 8080)
        # The trial hub speaks plain ws:// on the compose network, which production allows
        # only when told to; a real hub must be wss://.
        self.assertTrue(self.settings("consumer-local").allow_insecure_websocket)
        self.assertFalse(self.settings("consumer").allow_insecure_websocket)
        plain = {**PRODUCTION_ENV, "WEBSOCKET_URL": "ws://hub.example.com/websocket"}
        with self.assertRaisesRegex(SettingsError, "WEBSOCKET_URL must be a wss:// URL"):
            self.settings("consumer", plain)


class ImageTest(unittest.TestCase):
    """The Dockerfile keeps the code out of the service user's reach."""

    def test_code_and_data_directories(self) -> None:
        instructions = dockerfile_instructions()
        workdirs = [rest for keyword, rest in instructions if keyword == "WORKDIR"]
        code, data = workdirs[0], workdirs[-1]
        self.assertNotEqual(code, data, "the working directory must not be the code")
        env = dict(
            item.split("=", 1)
            for keyword, rest in instructions
            if keyword == "ENV"
            for item in shlex.split(rest)
        )
        self.assertEqual(env["PYTHONSAFEPATH"], "1")
        self.assertEqual(env["PYTHONPATH"], code)
        command = next(rest for keyword, rest in instructions if keyword == "CMD")
        self.assertIn(f'"{code}/entrypoint.py"', command)
        # The user is set before the working directory, which is created for it; nothing
        # hands the code directory to it.
        runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
        self.assertRegex(runs, rf"install --directory --owner=app --group=app --mode=0700 {data}")
        self.assertNotRegex(runs, rf"(chown|chmod)\S*\s+(\S+\s+)*{code}\b")
        user = next(rest for keyword, rest in instructions if keyword == "USER")
        self.assertRegex(user, r"^[1-9][0-9]*:[1-9][0-9]*$")
        # The deploying page and the compose file name the data directory.
        page = (PROJECT_ROOT / "docs" / "deploying.md").read_text(encoding="utf-8")
        image = page[page.index("## The image") : page.index("## Kubernetes")]
        self.assertTrue(f"`{data}`" in image, f"docs/deploying.md names {data}")
        self.assertIn(f"{data} (its working directory)", COMPOSE.read_text(encoding="utf-8"))


if __name__ == "__main__":
    unittest.main()
