"""The one service the local hub hosts: its record, its tokens and their ids.

The hub's database, reduced to what a consumer sees: the service record sent in the join
reply and in ``service_updated``/``service_deleted``, and the service's API tokens, whose
values a consumer connects with and whose records (without the value) appear in the join
reply and in ``token_created``/``token_deleted``.

Ids are integers, as the real hub's database serials: the service's id (1 unless chosen),
and tokens numbered 1, 2, ... in the order they were created, never reused.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

TOKEN_CONTEXT = "api-token"
"""The ``context`` of service tokens on the real hub."""

TOKEN_VALIDITY = timedelta(days=30)
"""How long a token created here is reported as valid (``expires_at``)."""


def timestamp(moment: datetime | None = None) -> str:
    """An Ecto ``utc_datetime`` as Phoenix encodes it: ``2025-01-31T12:00:00Z``."""
    moment = moment or datetime.now(UTC)
    return moment.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def public_token(record: dict[str, Any]) -> dict[str, Any]:
    """A token record without its value, as the hub shows it outside ``token_created``."""
    return {key: value for key, value in record.items() if key != "value"}


class HostedService:
    """The hosted service and its tokens, keyed by value."""

    def __init__(self, name: str, tokens: tuple[str, ...] | list[str], service_id: int = 1) -> None:
        created = timestamp()
        self.record: dict[str, Any] = {
            "id": service_id,
            "name": name,
            "inserted_at": created,
            "updated_at": created,
        }
        self.tokens: dict[str, dict[str, Any]] = {}
        self.deleted = False
        self._token_ids = itertools.count(1)
        for value in tokens:
            self.add_token(value)

    @property
    def id(self) -> int:
        """The service's id."""
        return int(self.record["id"])

    def matches(self, service_id: Any) -> bool:
        """True when `service_id` (from a caller) names this service.

        Like the real hub, the id is matched as text: the integer or its decimal string
        (``1`` or ``"1"``), not ``"01"``, ``1.0`` or ``true``.
        """
        if isinstance(service_id, bool):
            return False
        if isinstance(service_id, int):
            return service_id == self.id
        return isinstance(service_id, str) and service_id == str(self.id)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply `changes` to the record; ``updated_at`` moves to now unless given."""
        self.record.update(changes)
        if "updated_at" not in changes:
            self.record["updated_at"] = timestamp()

    def delete(self) -> None:
        """Mark the service deleted and revoke every token."""
        self.tokens.clear()
        self.deleted = True

    def token(self, value: str) -> dict[str, Any] | None:
        """The record of the token with this value, or None when it is not accepted."""
        return self.tokens.get(value)

    def add_token(self, value: str) -> dict[str, Any]:
        """Accept `value` as a token and return its new record (with the value)."""
        now = datetime.now(UTC)
        record = {
            "id": next(self._token_ids),
            "value": value,
            "context": TOKEN_CONTEXT,
            "service_id": self.id,
            "inserted_at": timestamp(now),
            "expires_at": timestamp(now + TOKEN_VALIDITY),
        }
        self.tokens[value] = record
        return record

    def remove_token(self, id_or_value: int | str) -> dict[str, Any]:
        """Revoke the token with this id (int) or value (str) and return its record.

        KeyError when no accepted token has that id or value.
        """
        for value, record in list(self.tokens.items()):
            if record["id"] == id_or_value or value == id_or_value:
                del self.tokens[value]
                return record
        raise KeyError("no such token")
