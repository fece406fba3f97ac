"""Is the database already at the newest migration? A read-only check that needs no Alembic.

Every replica migrates at start-up, but all except the first of a release find nothing to
do; loading Alembic to learn that costs each of them about 7 MiB and a tenth of a second.
This reads the revision files as text (their ``revision`` and ``down_revision`` lines) and the
database's ``alembic_version`` row. It answers yes only when it is sure: one plain chain of
revisions in one folder, no ``depends_on``, and the database at its head. Anything else
(a merge, several version folders, a relative path, a file it cannot read, no version
table) is a "no", and Alembic then runs as usual.

The folder comes from ``alembic.ini``, read here line by line rather than with configparser
(0.2 MiB and 2 ms per replica, for two options). That reading is strict: it accepts only
what ConfigParser, as Alembic uses it, surely reads the same way, and any other file is a
"not sure" too.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

_ASSIGNMENT = re.compile(
    r"^(revision|down_revision|depends_on)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.MULTILINE
)
_QUOTED = re.compile(r"""^(['"])([^'"]+)\1$""")
_SECTION = re.compile(r"\[([^\]]+)\]")
_OPTION = re.compile(r"([^=:\s][^=:]*?)\s*[=:]\s*(.*)")
_HERE = "%(here)s"


def alembic_options(alembic_ini: Path) -> dict[str, str] | None:
    """The options of the ``[alembic]`` section, as written; None when unsure.

    Section headers, ``key = value`` or ``key: value`` lines (keys in any case), values
    continued on indented lines outside ``[alembic]``, whole-line comments (``#``, ``;``,
    indented or not) and blank lines: what Alembic's own files hold. Whatever else this
    reading could take differently from ConfigParser is a None: text before the first
    section, a ``[DEFAULT]`` section (its values apply to every section), a section or an
    option given twice, a line that is none of the above, a value continued in
    ``[alembic]``, an unreadable file.
    """
    try:
        text = alembic_ini.read_text(encoding="utf-8")  # newlines as ConfigParser sees them
    except (OSError, UnicodeDecodeError):
        return None
    section: str | None = None
    in_value = False  # an indented line continues the value above it
    seen: set[tuple[str, str | None]] = set()
    options: dict[str, str] = {}
    for line in text.split("\n"):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if line[0].isspace():
            if not in_value or section == "alembic":
                return None
            continue
        if header := _SECTION.fullmatch(stripped):
            section, key = header.group(1), None
        elif (option := _OPTION.fullmatch(stripped)) and section is not None:
            key = option.group(1).lower()
            if section == "alembic":
                options[key] = option.group(2)
        else:
            return None  # neither, or an option before any section
        if section == "DEFAULT" or (section, key) in seen:
            return None
        seen.add((section, key))
        in_value = key is not None
    return options


def versions_folder(alembic_ini: Path) -> Path | None:
    """The one folder of revision files that `alembic_ini` names, ``%(here)s`` expanded;
    None when unsure (several folders, another interpolation, a relative path)."""
    options = alembic_options(alembic_ini)
    if options is None or "here" in options:  # a `here` of its own would change %(here)s
        return None
    key = "version_locations" if "version_locations" in options else "script_location"
    value = options.get(key, "").replace(_HERE, str(alembic_ini.parent))
    if "%" in value or os.pathsep in value:  # another interpolation, an escaped %, a list
        return None
    folder = Path(value) if key == "version_locations" else Path(value) / "versions"
    return folder if value and folder.is_absolute() else None


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
