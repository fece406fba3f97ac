"""The database component's errors: one line each, safe to log and to show an operator."""

from __future__ import annotations


class DatabaseStartupError(RuntimeError):
    """The database could not be set up; the message is one line, safe to log and show."""


class DatabaseConfigError(DatabaseStartupError):
    """The database settings are missing or invalid."""


class DatabaseUnavailableError(DatabaseStartupError):
    """The configured database could not be reached."""


def one_line_reason(error: BaseException, password: str | None) -> str:
    """The first line of a driver error, with the password scrubbed should it appear."""
    original = getattr(error, "orig", None) or error
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    reason = lines[0] if lines else type(original).__name__
    if password:
        reason = reason.replace(password, "***")
    return reason
