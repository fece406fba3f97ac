"""Tests of the local ``call`` (core/dev/call.py), run as a real subprocess.

Every run has its own SQLite file, migrated by the command as at start-up.
"""

from __future__ import annotations

import json
import unittest
from collections.abc import Callable
from functools import partial

from tests.core.dev.cli_support import (
    EXTRA_ACTIONS,
    CommandTestCase,
    Result,
    class_folder,
    cli_env,
    run_all,
    run_cli,
    split_call_output,
)

# Invalid JSON: a missing value on one line; a trailing comma on the second of three lines.
BAD_FIELDS = '{"message": }'
BAD_STDIN = '{\n  "message": "x",\n}'


def decode_error(text: str) -> json.JSONDecodeError:
    """The error this Python's decoder raises for `text`."""
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        return error
    raise AssertionError(f"{text!r} decoded")


class CallCommandTest(CommandTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.folder = class_folder(cls)
        extra = cls.folder / "extra"
        extra.mkdir()
        (extra / "extra.py").write_text(EXTRA_ACTIONS)

        def call(name: str, *args: str, stdin: str = "", **env: str) -> Callable[[], Result]:
            return partial(run_cli, cli_env(cls.folder, name, **env), "call", *args, stdin=stdin)

        cls.results = run_all(
            {
                "echo": call("echo", "Echo", '{"message": "hello"}'),
                "stdin": call("stdin", "DatabaseRevision", "-", stdin='{"note": "from stdin"}'),
                "invalid": call("invalid", "Greet", '{"greeting": 5}'),
                "unknown": call("unknown", "Ecko", "{}"),
                "bad_json": call("bad_json", "Echo", BAD_FIELDS),
                "bad_stdin": call("bad_stdin", "Echo", stdin=BAD_STDIN),
                "array": call("array", "Echo", '["hello"]'),
                "boom": call("boom", "Boom", ACTIONS_PATH=str(extra)),
                "late": call("late", "Late", ACTIONS_PATH=str(extra)),
                "production": call(
                    "production", "Echo", "{}", ENVIRONMENT="production", DATABASE_URL=""
                ),
            }
        )

    def test_runs_an_action_and_prints_payload_and_status(self) -> None:
        result = self.results["echo"]
        self.assert_ok(result)
        payload, status = split_call_output(result.stdout)
        # The whole payload: what the caller gets (status, message) and what it does not.
        self.assertEqual(
            payload,
            {
                "status": "success",
                "status_code": 200,
                "message": {"message": "hello"},
                "fields": None,
            },
        )
        self.assertEqual(status, "status 200 (success)")

    def test_fields_from_stdin_with_the_database_migrated(self) -> None:
        result = self.results["stdin"]
        self.assert_ok(result)
        payload, status = split_call_output(result.stdout)
        self.assertEqual((payload["status_code"], status), (200, "status 200 (success)"))
        fields = payload["message"]
        self.assertEqual(fields["note"], "from stdin")
        # The command migrated the database to the project's newest migration first.
        self.assertEqual(fields["revision"], fields["head"])
        # No FIELDS argument: they come from stdin too; --json prints the payload alone.
        again = run_cli(
            cli_env(self.folder, "stdin"), "call", "DatabaseRevision", "--json", stdin="{}"
        )
        self.assert_ok(again)
        self.assertEqual(json.loads(again.stdout)["message"]["revision"], fields["head"])

    def test_invalid_fields_are_the_400_response(self) -> None:
        result = self.results["invalid"]
        self.assertEqual(result.returncode, 1, result.stderr)
        payload, status = split_call_output(result.stdout)
        self.assertEqual(status, "status 400 (error)")
        self.assertIn("name: Field required", payload["message"]["error"])
        fields = {problem["field"] for problem in payload["message"]["errors"]}
        self.assertEqual(fields, {"name", "greeting"})

    def test_unknown_action(self) -> None:
        result = self.results["unknown"]
        self.assert_one_line_error(
            result, 2, "unknown action 'Ecko'", "did you mean 'Echo'?", "known actions: ", "Greet"
        )
        self.assertEqual(result.stdout, "")

    def test_invalid_json_says_where(self) -> None:
        # Python versions word the error and place a trailing comma differently (3.13 points
        # at the comma, 3.11 at the brace after it): the line names the decoder's position.
        for key, source, text in (
            ("bad_json", "FIELDS", BAD_FIELDS),
            ("bad_stdin", "stdin", BAD_STDIN),
        ):
            with self.subTest(source=source):
                where = decode_error(text)
                self.assert_one_line_error(
                    self.results[key],
                    2,
                    f"{source} is not valid JSON",
                    f"at line {where.lineno}, column {where.colno}",
                )
        # The position is the one in the text given: the stdin error is past line 1.
        self.assertEqual(decode_error(BAD_FIELDS).lineno, 1)
        self.assertGreater(decode_error(BAD_STDIN).lineno, 1)

    def test_fields_must_be_an_object(self) -> None:
        self.assert_one_line_error(
            self.results["array"], 2, "must be a JSON object", "not an array"
        )

    def test_an_action_that_raises(self) -> None:
        result = self.results["boom"]
        self.assertEqual(result.returncode, 1, result.stderr)
        payload, status = split_call_output(result.stdout)
        self.assertEqual(status, "status 500 (error)")
        self.assertIn("error id", payload["message"]["error"])
        self.assertNotIn("kaboom", result.stdout)
        self.assertIn("kaboom", result.stderr)  # the log keeps the traceback for the developer

    def test_an_action_past_its_time_limit(self) -> None:
        result = self.results["late"]
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(split_call_output(result.stdout)[1], "status 504 (error)")

    def test_database_configuration_error_is_one_line(self) -> None:
        # A setting, read with the others before the command runs: exit 2 like any bad one.
        self.assert_one_line_error(self.results["production"], 2, "ENVIRONMENT=production")


if __name__ == "__main__":
    unittest.main()
