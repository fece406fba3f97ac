"""Is the database already at the newest migration? A read-only check that needs no Alembic.

Every replica migrates at start-up, but all except the first of a release find nothing to
do, and loading Alembic only to learn that costs each of them memory and start-up time.
This reads the revision files as text (their ``revision`` and ``down_revision`` lines) and the
database's ``alembic_version`` row. It answers yes only when it is sure: one plain chain of
revisions in one folder, no ``depends_on``, and the database at its head. Anything else
(a merge, several version folders, a relative path, a file it cannot read, no version
table) is a "no", and Alembic then runs as usual.
"""

from __future__ import annotations

import configparser
import os
import re
from pathlib import Path
from typing import Final

from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from core.settings import PROJECT_ROOT

# The project's migration configuration (Alembic's, and this check's).
ALEMBIC_INI: Final = PROJECT_ROOT / "alembic.ini"

_ASSIGNMENT = re.compile(
    r"^(revision|down_revision|depends_on)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.MULTILINE
)
_QUOTED = re.compile(r"""^(['"])([^'"]+)\1$""")


def versions_folder(alembic_ini: Path) -> Path | None:
    """The one folder of revision files that `alembic_ini` names, read as Alembic reads it
    (ConfigParser, with ``%(here)s`` the file's folder); None when unsure (no such file or
    section, several folders, a relative path)."""
    parser = configparser.ConfigParser(defaults={"here": str(alembic_ini.parent)})
    try:
        if not parser.read(alembic_ini, encoding="utf-8"):
            return None
        section = parser["alembic"]
        key = "version_locations" if "version_locations" in section else "script_location"
        value = section.get(key, "")
    except (configparser.Error, KeyError, UnicodeDecodeError):
        return None
    if not value or os.pathsep in value:  # a list of folders
        return None
    folder = Path(value) if key == "version_locations" else Path(value) / "versions"
    return folder if folder.is_absolute() else None


def script_heads(alembic_ini: Path) -> set[str] | None:
    """The head revisions of the migrations `alembic_ini` points at; None when unsure."""
    versions = versions_folder(alembic_ini)
    if versions is None or not versions.is_dir():
        return None
    revisions: set[str] = set()
    parents: set[str] = set()
    for file in sorted(versions.glob("*.py")):
        try:
            found = dict(_ASSIGNMENT.findall(file.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError):
            return None
        revision = _QUOTED.match(found.get("revision", ""))
        down = found.get("down_revision", "None")
        if revision is None or found.get("depends_on", "None") != "None":
            return None
        revisions.add(revision.group(2))
        if down != "None":
            parent = _QUOTED.match(down)
            if parent is None:  # a merge (a tuple of parents), or something unexpected
                return None
            parents.add(parent.group(2))
    return revisions - parents


def at_head(engine: Engine, alembic_ini: Path) -> bool:
    """True only when the database is surely at the migrations' single head (or, with no
    migrations at all, has no revision recorded)."""
    heads = script_heads(alembic_ini)
    if heads is None or len(heads) > 1:
        return False
    try:
        with engine.connect() as connection:
            if not heads and not inspect(connection).has_table("alembic_version"):
                return True  # nothing to migrate to, and nothing was ever migrated
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except SQLAlchemyError:
        return False
    return {row[0] for row in rows} == heads
