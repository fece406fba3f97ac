"""Alembic's migration environment for Py-Service.

Two ways in:

* the ``alembic`` command line, at the project root: the URL comes from `get_database_url()`,
  which applies the same rules as ``core.database`` (``DATABASE_URL``, else ``POSTGRES_*`` and
  ``ENVIRONMENT``, else the embedded SQLite file);
* ``core.database.Database.migrate()``: the service hands over a connection in
  ``config.attributes["connection"]`` (already inside a transaction, and with the migration
  lock held) and asks us to leave its logging alone.
"""

from __future__ import annotations

import importlib
from logging.config import fileConfig

from alembic.util import CommandError
from sqlalchemy import Connection, MetaData

from alembic import context

# alembic.ini puts the project root on sys.path (prepend_sys_path), so core imports.
from core.database import Base, Database, DatabaseStartupError, resolve_database_url
from core.settings import PROJECT_ROOT

config = context.config


def get_database_url() -> str:
    """The database URL, password included, chosen by the rules of ``core.database``.

    A configuration error becomes Alembic's one-line ``FAILED: ...`` instead of a traceback.
    """
    try:
        return resolve_database_url().render_as_string(hide_password=False)
    except DatabaseStartupError as error:
        raise CommandError(str(error)) from None


def _import_models() -> None:
    """Import every module under ``actions/`` so their models register on ``Base.metadata``.

    Only the command line needs this (for ``alembic revision --autogenerate``); inside the
    service the action registry has already imported the action modules.
    """
    for path in sorted((PROJECT_ROOT / "actions").glob("*.py")):
        if path.stem != "__init__":
            importlib.import_module(f"actions.{path.stem}")


def _configure(connection: Connection, metadata: MetaData | None) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_offline() -> None:
    """Emit the migrations as SQL (``alembic upgrade head --sql``) without connecting."""
    _import_models()
    context.configure(
        url=get_database_url(),
        target_metadata=Base.metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on a live connection: the service's, or one of our own."""
    shared = config.attributes.get("connection")
    if isinstance(shared, Connection):
        _configure(shared, None)
        with context.begin_transaction():
            context.run_migrations()
        return
    _import_models()
    # The service's own engine set-up (SQLite pragmas, timeouts) and its one-line errors.
    manager = Database(url=get_database_url())
    try:
        manager.initialize()
    except DatabaseStartupError as error:
        raise CommandError(str(error)) from None
    try:
        with manager.engine.connect() as connection:
            _configure(connection, Base.metadata)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        manager.dispose()


if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
