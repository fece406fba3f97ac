"""``new NAME``: write a new action module and its test from a template.

NAME may be CamelCase or snake_case; the action goes to ``<actions>/<snake_name>.py`` and its
test to ``<tests>/<snake_name>_test.py``. Existing files are never overwritten, and a name
that would not make a valid, lint-clean module is refused before anything is written.
"""

from __future__ import annotations

import argparse
import inspect
import keyword
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from string import Template
from typing import Final

from core.dev.command import EXIT_FAILED, EXIT_OK, CommandError, display_path, load_actions
from core.settings import PROJECT_ROOT, Settings

DEFAULT_TESTS_PATH: Final = PROJECT_ROOT / "tests" / "actions"
# `new` names: an ASCII identifier that starts with a letter, short enough for tool names.
NEW_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
NEW_NAME_MAX_LENGTH: Final = 64
# The generated files must pass the project's ruff configuration (line-length = 100).
MAX_LINE_LENGTH: Final = 100
# The fields the generated action accepts, as a shell argument (for the hint `new` prints).
EXAMPLE_FIELDS: Final = """'{"text": "hello"}'"""
# Names the templates import; a class of the same name would shadow them.
TEMPLATE_NAMES: Final = frozenset(
    {"ActionError", "ActionRunner", "BaseModel", "Context", "Field", "TestClient"}
)

ACTION_TEMPLATE: Final = Template('''\
"""The $class_name action."""

from __future__ import annotations

from pydantic import BaseModel, Field
from typing_extensions import override

from core import ActionError, ActionRunner, Context


class ${class_name}Result(BaseModel):
    """What a caller of $class_name receives: the message of the hub's answer."""

    text: str = Field(description="The text, unchanged (TODO: the action's result)")


class $class_name(ActionRunner):
    """TODO: what this action does, for readers of the code."""

    text: str = Field(min_length=1, max_length=1000, description="The text to work on")

    @classmethod
    @override
    def description(cls) -> str:
        # One line for the hub's catalog (and for LLMs reading the exported tools).
        return "Returns the text unchanged (TODO: describe what the action does)"

    @override
    async def run(self, ctx: Context) -> ${class_name}Result:
        # Await here, never block: blocking work belongs in a plain `def run(self, ctx)`,
        # which the service runs in a worker thread. ctx has the request's ref, deadline and
        # logger, and ctx.state what the @lifespan functions opened.
        ctx.logger.debug("%d characters", len(self.text))
        if not self.text.strip():
            # An error the caller can act on: {"code": "UNPROCESSABLE_CONTENT", "error": ...}.
            raise ActionError(422, "the text is only spaces")
        # What run() returns is what the caller receives, validated against the annotation.
        return ${class_name}Result(text=self.text)
''')

TEST_TEMPLATE: Final = Template('''\
"""Tests of the $class_name action, served as in production: validated and run by the
service's own client, through an in-process local hub."""

from __future__ import annotations

import unittest

from $module import $class_name
from core.testing import TestClient


class ${class_name}Test(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        # TestClient() would serve every action under ACTIONS_PATH, with its lifespan.
        self.client = await self.enterAsyncContext(TestClient([$class_name]))

    async def test_returns_the_text(self) -> None:
        response = await self.client.call("$class_name", {"text": "hello"})
        # Exactly what a caller of the hub receives: HTTP 200 and the result as the message.
        self.assertEqual(response.http_status, 200)
        self.assertEqual(response.message, {"text": "hello"})

    async def test_text_is_required(self) -> None:
        response = await self.client.call("$class_name", {})
        self.assertEqual(response.http_status, 400)
        self.assertEqual(response.message["code"], "INVALID_FIELDS")
        self.assertEqual(response.message["errors"][0]["field"], "text")

    async def test_blank_text_is_refused(self) -> None:
        response = await self.client.call("$class_name", {"text": "   "})
        self.assertEqual(response.http_status, 400)
        self.assertEqual(response.message["code"], "UNPROCESSABLE_CONTENT")

    def test_catalog_entry(self) -> None:
        entry = $class_name.catalog_entry()
        self.assertTrue(entry["description"])
        self.assertEqual(entry["fields"]["text"]["type"], "string")


if __name__ == "__main__":
    unittest.main()
''')


def run(args: argparse.Namespace, settings: Settings) -> int:
    """``new NAME``: write an action module and its test, refusing to overwrite either."""
    class_name, module_name = _new_names(args.name)
    actions_dir: Path = args.path if args.path is not None else settings.actions_path
    tests_dir: Path = args.tests_path if args.tests_path is not None else DEFAULT_TESTS_PATH
    if not actions_dir.is_dir():
        raise CommandError(f"the actions folder {display_path(actions_dir)} does not exist")
    action_file = actions_dir / f"{module_name}.py"
    test_file = tests_dir / f"{module_name}_test.py"
    for file in (action_file, actions_dir / module_name, test_file):
        if file.exists():
            raise CommandError(
                f"{display_path(file)} already exists; refusing to overwrite it", EXIT_FAILED
            )
    existing = load_actions(actions_dir).get(class_name)
    if existing is not None:
        where = display_path(Path(inspect.getfile(existing)))
        raise CommandError(
            f"an action named {class_name!r} already exists (in {where}); choose another name",
            EXIT_FAILED,
        )
    package = _package_name(actions_dir)
    names = {"class_name": class_name, "module": f"{package}.{module_name}"}
    contents = {
        action_file: ACTION_TEMPLATE.substitute(names),
        test_file: TEST_TEMPLATE.substitute(names),
    }
    for text in contents.values():
        if max(len(line) for line in text.splitlines()) > MAX_LINE_LENGTH:
            raise CommandError(
                f"the name {args.name!r} makes lines longer than {MAX_LINE_LENGTH} characters; "
                "choose a shorter one"
            )
    _write_new_files(contents)
    out = sys.stdout
    for file in contents:
        out.write(f"created {display_path(file)}\n")
    same_folder = actions_dir.resolve() == settings.actions_path.resolve()
    prefix = "" if same_folder else f"ACTIONS_PATH={display_path(actions_dir)} "
    out.write(f"try it:  {prefix}python entrypoint.py call {class_name} {EXAMPLE_FIELDS}\n")
    if tests_dir.resolve() == DEFAULT_TESTS_PATH.resolve():
        out.write(f"test it: python -m tests -k {class_name}\n")
    return EXIT_OK


def _write_new_files(contents: Mapping[Path, str]) -> None:
    """Create each file with its text; none is overwritten, and a failure leaves none behind."""
    written: list[Path] = []
    try:
        for file, text in contents.items():
            file.parent.mkdir(parents=True, exist_ok=True)
            with file.open("x", encoding="utf-8") as handle:
                written.append(file)
                handle.write(text)
    except OSError as error:
        for file in written:
            file.unlink(missing_ok=True)
        reason = error.strerror or str(error)
        raise CommandError(f"cannot write {error.filename}: {reason}", EXIT_FAILED) from None


def _new_names(name: str) -> tuple[str, str]:
    """(ClassName, module_name) for a CamelCase or snake_case `name`; validates both."""
    if not NEW_NAME.fullmatch(name):
        raise CommandError(
            f"{name!r} is not a valid action name: use letters, digits and underscores, "
            "starting with a letter (e.g. SendEmail or send_email)"
        )
    if len(name) > NEW_NAME_MAX_LENGTH:
        raise CommandError(f"the name is longer than {NEW_NAME_MAX_LENGTH} characters")
    class_name = "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)
    module_name = _snake_case(class_name)
    for candidate in (class_name, module_name):
        if keyword.iskeyword(candidate):
            raise CommandError(f"{name!r} gives {candidate!r}, a Python keyword; choose another")
    if class_name in TEMPLATE_NAMES:
        raise CommandError(f"{class_name!r} would shadow a name the template imports")
    return class_name, module_name


def _snake_case(name: str) -> str:
    """``SendEmail`` -> ``send_email``, ``HTTPFetch`` -> ``http_fetch``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _package_name(folder: Path) -> str:
    """The dotted name the modules of `folder` are imported under (``actions``)."""
    folder = folder.resolve()
    parts = [folder.name]
    parent = folder.parent
    if (folder / "__init__.py").is_file():
        while (parent / "__init__.py").is_file():
            parts.insert(0, parent.name)
            parent = parent.parent
    bad = [part for part in parts if not part.isidentifier() or keyword.iskeyword(part)]
    if bad:
        raise CommandError(
            f"{display_path(folder)} cannot be imported as a Python package "
            f"({bad[0]!r} is not a valid module name)"
        )
    return ".".join(parts)
