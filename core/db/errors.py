"""The database component's errors: one line each, safe to log and to show an operator."""

from __future__ import annotations


class DatabaseStartupError(RuntimeError):
    """The database could not be set up; the message is one line, safe to log and show."""


class DatabaseConfigError(DatabaseStartupError):
    """The database settings are missing or invalid."""


class DatabaseUnavailableError(DatabaseStartupError):
    """The configured database could not be reached."""
