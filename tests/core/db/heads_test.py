"""`core.db.heads`: the database at its newest migration, told without Alembic."""

from __future__ import annotations

import configparser
import tempfile
import unittest
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from core.db.heads import at_head, script_heads, versions_folder
from core.settings import PROJECT_ROOT
from tests.fixtures.db import ALEMBIC_INI, HEAD

REVISION = '''"""A migration."""
revision: str = "{revision}"
down_revision: str | None = {down}
branch_labels = None
depends_on = {depends}
'''


class ScriptHeadsTest(unittest.TestCase):
    def setUp(self) -> None:
        self.folder = Path(self.enterContext(tempfile.TemporaryDirectory()))
        (self.folder / "migrations" / "versions").mkdir(parents=True)
        self.ini = self.folder / "alembic.ini"
        self.ini.write_text("[alembic]\nscript_location = %(here)s/migrations\n")

    def revision(self, name: str, down: str = "None", depends: str = "None") -> None:
        text_ = REVISION.format(revision=name, down=down, depends=depends)
        (self.folder / "migrations" / "versions" / f"{name}.py").write_text(text_)

    def test_a_chain_has_one_head(self) -> None:
        self.revision("a1")
        self.revision("b2", down='"a1"')
        self.revision("c3", down="'b2'")
        self.assertEqual(script_heads(self.ini), {"c3"})

    def test_the_projects_and_the_fixtures_migrations(self) -> None:
        heads = script_heads(PROJECT_ROOT / "alembic.ini")
        self.assertIsNotNone(heads)
        self.assertLessEqual(len(heads or ()), 1)
        self.assertEqual(script_heads(ALEMBIC_INI), {HEAD})

    def test_what_it_cannot_be_sure_of_is_none(self) -> None:
        self.revision("a1")
        self.revision("b2", down='("a1", "x9")')  # a merge
        self.assertIsNone(script_heads(self.ini))
        (self.folder / "migrations" / "versions" / "b2.py").unlink()
        self.revision("b2", down='"a1"', depends='"z1"')
        self.assertIsNone(script_heads(self.ini))
        self.ini.write_text("[alembic]\nscript_location = migrations\n")  # relative
        self.assertIsNone(script_heads(self.ini))
        self.ini.write_text(
            "[alembic]\nscript_location = %(here)s/migrations\n"
            "version_locations = %(here)s/migrations/versions:%(here)s/more\n"
        )
        self.assertIsNone(script_heads(self.ini))
        self.assertIsNone(script_heads(self.folder / "missing.ini"))


def configparser_folder(ini: Path) -> Path | None:
    """The folder ConfigParser, read as Alembic reads it, names; None where it raises."""
    parser = configparser.ConfigParser(defaults={"here": str(ini.parent)})
    try:
        parser.read(ini, encoding="utf-8")
        section = parser["alembic"]
        if "version_locations" in section:
            return Path(section["version_locations"])
        return Path(section["script_location"]) / "versions"
    except (configparser.Error, KeyError):
        return None


# Files shaped like alembic.ini: sections of option lines, with what should not be there.
HEADERS = st.sampled_from(["[alembic]", "[alembic]", "[loggers]", "[DEFAULT]", "[ alembic ]"])
BODY_LINES = st.sampled_from(
    [
        "script_location = %(here)s/migrations",
        "Script_Location: %(here)s/elsewhere",
        "script_location=/absolute/migrations",
        "script_location = migrations",
        "script_location = %(other)s/migrations",
        "script_location = %%(here)s/migrations",
        "script_location = %(here)s/a=b",
        "script_location = /srv/%(other)s",
        "script_location = /srv/100%%",
        "version_locations = %(here)s/versions",
        "version_locations = %(here)s/a:%(here)s/b",
        "here = /somewhere/else",
        "other = /other",
        "keys = root,sqlalchemy",
        "qualname =",
        "file_template = %%(rev)s_%%(slug)s",
        "# a comment",
        "    ; an indented comment",
        "",
        "    continued value",
        "  script_location = %(here)s/indented",
        "[alembic] ; the section",
        "not an option",
        "= no key",
    ]
)
SECTIONS = st.lists(st.tuples(HEADERS, st.lists(BODY_LINES, max_size=4)), min_size=1, max_size=3)


class AlembicIniTest(unittest.TestCase):
    """`versions_folder` reads alembic.ini as Alembic does, and names one absolute folder."""

    def setUp(self) -> None:
        self.folder = Path(self.enterContext(tempfile.TemporaryDirectory()))
        self.ini = self.folder / "alembic.ini"

    def folder_of(self, *lines: str) -> Path | None:
        self.ini.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return versions_folder(self.ini)

    @settings(max_examples=200, deadline=None)
    @given(st.booleans(), SECTIONS)
    def test_an_answer_is_always_configparsers(
        self, preamble: bool, sections: list[tuple[str, list[str]]]
    ) -> None:
        lines = ["stray = line"] if preamble else []
        for header, body in sections:
            lines += [header, *body]
        found = self.folder_of(*lines)
        if found is not None:
            self.assertEqual(found, configparser_folder(self.ini))

    def test_the_files_alembic_writes_are_read(self) -> None:
        for ini in (PROJECT_ROOT / "alembic.ini", ALEMBIC_INI):
            self.assertIsNotNone(versions_folder(ini), ini)
            self.assertEqual(versions_folder(ini), configparser_folder(ini), ini)
        here = self.folder
        self.assertEqual(
            self.folder_of(
                "# settings", "[alembic]", "Script_Location: %(here)s/m", "[x]", "a = 1"
            ),
            here / "m" / "versions",
        )
        self.assertEqual(
            self.folder_of("[alembic]", "a = b:c=d", "version_locations=%(here)s/v"),
            here / "v",
        )

    def test_what_names_no_single_absolute_folder_is_none(self) -> None:
        for lines in (
            ("script_location = %(here)s/migrations",),  # before any section
            ("[alembic]", "script_location = %(other)s/migrations"),
            ("[alembic]", "script_location = migrations"),
            ("[alembic]", "script_location ="),
            ("[alembic]",),
            ("[loggers]", "keys = root"),
            ("[alembic]", "version_locations = %(here)s/a:%(here)s/b"),
            ("[alembic]", "script_location = /a", "script_location = /b"),  # twice
        ):
            with self.subTest(lines=lines):
                self.assertIsNone(self.folder_of(*lines))
        self.ini.write_bytes(b"[alembic]\nscript_location = \xff\n")
        self.assertIsNone(versions_folder(self.ini))
        self.assertIsNone(versions_folder(self.folder / "missing.ini"))


class NoMigrationsTest(unittest.TestCase):
    def test_a_project_without_migrations_is_at_head_until_something_is_recorded(self) -> None:
        folder = Path(self.enterContext(tempfile.TemporaryDirectory()))
        (folder / "migrations" / "versions").mkdir(parents=True)
        ini = folder / "alembic.ini"
        ini.write_text("[alembic]\nscript_location = %(here)s/migrations\n")
        engine = create_engine(f"sqlite:///{folder / 'db.sqlite3'}")
        self.addCleanup(engine.dispose)
        self.assertEqual(script_heads(ini), set())
        self.assertTrue(at_head(engine, ini))
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        self.assertTrue(at_head(engine, ini), "an empty version table records nothing")
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO alembic_version VALUES ('gone')"))
        self.assertFalse(at_head(engine, ini), "a revision no file names: let Alembic say so")


class AtHeadTest(unittest.TestCase):
    def setUp(self) -> None:
        folder = Path(self.enterContext(tempfile.TemporaryDirectory()))
        self.engine = create_engine(f"sqlite:///{folder / 'db.sqlite3'}")
        self.addCleanup(self.engine.dispose)

    def test_only_a_database_at_the_single_head_counts(self) -> None:
        self.assertFalse(at_head(self.engine, ALEMBIC_INI), "no version table yet")
        with self.engine.begin() as connection:
            connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
            connection.execute(text("INSERT INTO alembic_version VALUES ('older')"))
        self.assertFalse(at_head(self.engine, ALEMBIC_INI))
        with self.engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": HEAD})
        self.assertTrue(at_head(self.engine, ALEMBIC_INI))


if __name__ == "__main__":
    unittest.main()
