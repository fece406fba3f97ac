"""Tests for `core.dev.local_hub.service`: the hosted service's record and its tokens."""

from __future__ import annotations

import re
import unittest

from core.dev.local_hub.service import HostedService, public_token, timestamp

PHOENIX_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


class HostedServiceTest(unittest.TestCase):
    """The service record and token bookkeeping, without sockets."""

    def test_record_and_tokens(self) -> None:
        service = HostedService("billing", ["a", "b"])
        self.assertEqual(service.record["name"], "billing")
        self.assertEqual(service.record["id"], service.id)
        self.assertRegex(service.record["inserted_at"], PHOENIX_TIME)
        self.assertEqual(list(service.tokens), ["a", "b"])
        record = service.token("a")
        assert record is not None
        self.assertEqual((record["value"], record["service_id"]), ("a", service.id))
        self.assertEqual(record["context"], "api-token")
        self.assertRegex(record["expires_at"], PHOENIX_TIME)
        self.assertGreater(record["expires_at"], record["inserted_at"])
        self.assertIsNone(service.token("c"))

    def test_ids_are_serials_like_the_real_hubs(self) -> None:
        service = HostedService("s", ["a", "b"])
        self.assertEqual(service.id, 1)
        self.assertEqual([record["id"] for record in service.tokens.values()], [1, 2])
        self.assertEqual(service.add_token("c")["id"], 3)
        service.remove_token("c")
        self.assertEqual(service.add_token("d")["id"], 4)  # a serial is never reused
        self.assertEqual({record["service_id"] for record in service.tokens.values()}, {1})
        other = HostedService("s", ["a"], service_id=42)
        self.assertEqual((other.id, other.record["id"]), (42, 42))
        self.assertEqual(other.remove_token("a")["service_id"], 42)

    def test_public_token_has_no_value(self) -> None:
        record = HostedService("s", ["secret"]).add_token("other")
        self.assertNotIn("value", public_token(record))
        self.assertEqual(public_token(record)["id"], record["id"])

    def test_remove_by_id_or_value(self) -> None:
        service = HostedService("s", ["a", "b"])
        first = service.token("a")
        assert first is not None
        self.assertIsInstance(first["id"], int)
        self.assertEqual(service.remove_token(first["id"])["value"], "a")
        self.assertEqual(service.remove_token("b")["value"], "b")
        self.assertEqual(service.tokens, {})
        with self.assertRaises(KeyError):
            service.remove_token("b")

    def test_update_moves_updated_at_unless_given(self) -> None:
        service = HostedService("s", [])
        service.update({"name": "t", "updated_at": "2020-01-01T00:00:00Z"})
        self.assertEqual(service.record["updated_at"], "2020-01-01T00:00:00Z")
        service.update({"name": "u"})
        self.assertEqual(service.record["name"], "u")
        self.assertNotEqual(service.record["updated_at"], "2020-01-01T00:00:00Z")
        self.assertRegex(service.record["updated_at"], PHOENIX_TIME)

    def test_delete_revokes_every_token(self) -> None:
        service = HostedService("s", ["a"])
        service.delete()
        self.assertTrue(service.deleted)
        self.assertIsNone(service.token("a"))

    def test_timestamp_format(self) -> None:
        self.assertRegex(timestamp(), PHOENIX_TIME)


if __name__ == "__main__":
    unittest.main()
