"""The database component's errors: one line each, safe to log and to show an operator."""

from __future__ import annotations

from urllib.parse import quote


class DatabaseStartupError(RuntimeError):
    """The database could not be set up; the message is one line, safe to log and show."""


class DatabaseConfigError(DatabaseStartupError):
    """The database settings are missing or invalid."""


class DatabaseUnavailableError(DatabaseStartupError):
    """The configured database could not be reached."""


def one_line_reason(error: BaseException, *secrets: str | None) -> str:
    """The first line of a driver error, or a stand-in when it holds one of `secrets`.

    A driver has no business echoing a password, so a message that holds one (as written,
    or percent-encoded) is not shown at all: masking only the matching text would tell
    where in the message the password appeared, and a short password matches words that
    have nothing to do with it, so that the mask would spell it out.
    """
    original = getattr(error, "orig", None) or error
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    reason = lines[0] if lines else type(original).__name__
    for secret in secrets:
        if secret and (secret in reason or quote(secret, safe="") in reason):
            return f"{type(original).__name__} (its message is not shown: it holds the password)"
    return reason
