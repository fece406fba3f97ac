"""The seed's import path for the database component (it lives in `core.db`).

``from core.database import database`` then ``database.initialize()``, ``migrate()``,
``transaction()`` and ``teardown()``, as the seed's README shows.
"""

from core.db.base import Base, base
from core.db.database import Database, database, run_sync
from core.db.errors import DatabaseConfigError, DatabaseStartupError, DatabaseUnavailableError
from core.db.urls import DatabaseSettings, resolve_database_url

__all__ = [
    "Base",
    "Database",
    "DatabaseConfigError",
    "DatabaseSettings",
    "DatabaseStartupError",
    "DatabaseUnavailableError",
    "base",
    "database",
    "resolve_database_url",
    "run_sync",
]
