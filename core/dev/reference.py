"""The configuration reference (docs/configuration.md), written from the settings' table.

``python -m core.dev.reference > docs/configuration.md`` writes it again after a setting
changes; a test fails while the page and the table disagree.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from core.settings import DATABASE_SETTINGS, SETTINGS, Variable

INTRODUCTION = """\
# Configuration

<!-- Written by `python -m core.dev.reference` from core/settings.py: edit the table there. -->

The service reads its settings from environment variables, once, at start-up. Every one is
checked before anything starts. Seconds and whole numbers must be finite (`nan` and `inf` are
refused); whole numbers may be written `1e3` or `1_000`; surrounding spaces are ignored (except
in `POSTGRES_PASSWORD`); an empty value counts as unset; a value that is not UTF-8 is refused.
A missing or malformed setting stops start-up with one line naming the variable, its value
(`TOKEN`, `POSTGRES_PASSWORD`, a URL's password and `token=` shown as `***`, a malformed
`DATABASE_URL` not shown) and what it accepts, and exit code 2:

```
error: LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL; got 'VERBOSE'
```

## The service
"""

TRACING_ROW = (
    "| `OTEL_*` | (unset: no tracing) | OpenTelemetry's standard variables | tracing, with "
    "`requirements-tracing.txt` installed: see [Observability](observability.md#tracing) |"
)

DATABASE_INTRODUCTION = """
## The database

With no PostgreSQL settings and `ENVIRONMENT` other than `production`, an SQLite file is used
(`py_service_<ENVIRONMENT>.sqlite3` in the working directory). In production, or when
PostgreSQL is only partly configured, a missing setting stops start-up with a one-line error
naming it; there is no silent fallback. [The database](database.md) says how actions use it.
"""


def table(variables: Iterable[Variable]) -> list[str]:
    """The variables as a Markdown table: name, default, what it accepts, what it means."""
    rows = ["| variable | default | accepts | meaning |", "| --- | --- | --- | --- |"]
    for variable in variables:
        rows.append(
            f"| `{variable.name}` | {variable.default_text()} | {variable.accepted()} "
            f"| {variable.meaning} |"
        )
    return rows


def configuration_reference() -> str:
    """docs/configuration.md's text."""
    lines = [INTRODUCTION, *table(SETTINGS), TRACING_ROW, DATABASE_INTRODUCTION]
    lines += table(DATABASE_SETTINGS)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(configuration_reference())
