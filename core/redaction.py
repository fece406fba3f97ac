"""What of a value may be shown in a log line or an error: secrets hidden, length capped.

The one place that hides secrets inside URLs, for the hub's URL (its ``token`` query
parameter) and for database URLs (the password in ``user:password@``, or a ``password``
query parameter) alike. Cheap to import: `core.settings` uses it to word its errors.
"""

from __future__ import annotations

import re

MAX_SHOWN_CHARS = 200

# ``://user:`` opens a password, which runs to the last "@" of the same word: SQLAlchemy
# accepts "@" and "/" inside a password, so stopping at the first "@" could show half of one
# (hiding too much is the safe mistake).
_USER_AND_COLON = re.compile(r"://[^\s:/?#@'\"]*:")
_WORD_END = re.compile(r"[\s'\"]")
_SECRET_IN_QUERY = re.compile(r"([?&](?:token|password)=)[^&#\s'\"]*", re.IGNORECASE)


def redact_url(url: str, *, single: bool = False) -> str:
    """`url` (or any text holding URLs) with their secrets replaced by ``***``.

    Hides the value of ``token`` and ``password`` query parameters and the password of
    ``scheme://user:password@host``. In free text a password ends at a space or a quote;
    with ``single`` the text is one URL (a setting's value), whose password runs to its
    last "@" whatever it holds. Linear in the length of the text, whatever it holds.
    """
    if "=" in url:
        url = _SECRET_IN_QUERY.sub(r"\1***", url)
    if "@" in url:
        url = _hide_password_of_one(url) if single else _hide_passwords(url)
    return url


def _hide_password_of_one(url: str) -> str:
    # From the first ":" after "://" to the last "@": a user name may hold spaces and "@"
    # as SQLAlchemy reads it, and a mistyped URL may put its password anywhere in between.
    opening = url.find("://")
    colon = url.find(":", opening + 3) if opening != -1 else -1
    last_at = url.rfind("@")
    if colon == -1 or last_at < colon:
        return url
    return f"{url[: colon + 1]}***{url[last_at:]}"


def _hide_passwords(text: str) -> str:
    pieces: list[str] = []
    shown_up_to = 0
    word_end = last_at = -1
    for match in _USER_AND_COLON.finditer(text):
        password_start = match.end()
        if password_start <= shown_up_to:
            continue  # inside a password already hidden
        if password_start > word_end:  # a new word: where it ends, and its last "@"
            found = _WORD_END.search(text, password_start)
            word_end = found.start() if found else len(text)
            last_at = text.rfind("@", password_start, word_end)
        if last_at < password_start:
            continue
        pieces += [text[shown_up_to:password_start], "***"]
        shown_up_to = last_at
    pieces.append(text[shown_up_to:])
    return "".join(pieces)


def truncate(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """`text` cut to `limit` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def printable(text: str) -> str:
    """`text` with every non-printable character escaped (``\\n``, ``\\x00``, ``\\udcff``),
    so it stays on one line whatever it holds."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)
