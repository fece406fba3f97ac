"""`ActionError`'s codes: what a caller's program branches on."""

from __future__ import annotations

import unittest

from core.model.errors import ActionError


class ActionErrorTest(unittest.TestCase):
    def test_the_code_is_the_statuss_name(self) -> None:
        self.assertEqual(ActionError(404, "no such note").code, "NOT_FOUND")
        self.assertEqual(ActionError(409, "already there").code, "CONFLICT")

    def test_renamed_statuses_have_their_rfc_9110_name_on_every_python(self) -> None:
        # Python 3.11 calls 422 UNPROCESSABLE_ENTITY and 3.13 UNPROCESSABLE_CONTENT; a caller
        # must not see the code change when the replica's interpreter does.
        self.assertEqual(ActionError(422, "blank").code, "UNPROCESSABLE_CONTENT")
        self.assertEqual(ActionError(413, "too big").code, "CONTENT_TOO_LARGE")
        self.assertEqual(ActionError(414, "too long").code, "URI_TOO_LONG")
        self.assertEqual(ActionError(416, "out of range").code, "RANGE_NOT_SATISFIABLE")

    def test_a_status_without_a_name_is_error_and_a_given_code_wins(self) -> None:
        self.assertEqual(ActionError(499, "given up").code, "ERROR")
        self.assertEqual(ActionError(422, "blank", code="BLANK_TEXT").code, "BLANK_TEXT")

    def test_a_status_outside_4xx_and_5xx_is_refused(self) -> None:
        with self.assertRaisesRegex(ValueError, "400 to 599"):
            ActionError(200, "fine")


if __name__ == "__main__":
    unittest.main()
