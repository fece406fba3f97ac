"""`core.db.heads`: the database at its newest migration, told without Alembic."""

from __future__ import annotations

import tempfile
import unittest
from pathlib import Path

from sqlalchemy import create_engine, text

from core.db.heads import at_head, script_heads
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
