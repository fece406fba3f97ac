"""Tests of core/redaction.py: secrets in URLs, long text, one line."""

from __future__ import annotations

import time
import unittest

from core.redaction import printable, redact_url, truncate


class RedactUrlTest(unittest.TestCase):
    def test_query_secrets_are_hidden(self) -> None:
        self.assertEqual(
            redact_url("wss://hub/websocket?token=s3cr3t&actions=%7B%7D"),
            "wss://hub/websocket?token=***&actions=%7B%7D",
        )
        self.assertEqual(
            redact_url("postgresql://u@h/d?sslmode=require&PASSWORD=s3cr3t"),
            "postgresql://u@h/d?sslmode=require&PASSWORD=***",
        )

    def test_the_password_of_user_information_is_hidden(self) -> None:
        self.assertEqual(
            redact_url("postgresql+psycopg2://service:s3cr3t@db:5432/app"),
            "postgresql+psycopg2://service:***@db:5432/app",
        )
        self.assertEqual(redact_url("wss://user:pw@hub/ws"), "wss://user:***@hub/ws")

    def test_a_password_holding_at_signs_and_slashes_is_hidden_whole(self) -> None:
        for url in ("postgresql://u:p@ss/w:rd@host/db", "postgresql://u:a@b@c@host/db"):
            with self.subTest(url=url):
                shown = redact_url(url)
                self.assertEqual(shown, "postgresql://u:***@host/db")

    def test_urls_inside_text_are_redacted_one_by_one(self) -> None:
        text = "from 'postgresql://a:one@h1/d' to \"mysql://b:two@h2/d\", then ws://h3/?token=x"
        self.assertEqual(
            redact_url(text),
            "from 'postgresql://a:***@h1/d' to \"mysql://b:***@h2/d\", then ws://h3/?token=***",
        )

    def test_urls_without_secrets_are_unchanged(self) -> None:
        for url in ("ws://h/ws", "wss://hub:443/websocket", "sqlite:///x.db", "user@example.com"):
            with self.subTest(url=url):
                self.assertEqual(redact_url(url), url)

    def test_hostile_text_takes_linear_time(self) -> None:
        # Many URL openings in one word with an "@" at the front: a naive pattern would retry
        # from each opening to the end of the word.
        hostile = "@" + "x://:" * 30_000
        started = time.perf_counter()
        self.assertEqual(redact_url(hostile), hostile)
        self.assertLess(time.perf_counter() - started, 1.0)


class TruncateTest(unittest.TestCase):
    def test_long_text_is_cut_and_says_how_much(self) -> None:
        self.assertEqual(truncate("abc", 5), "abc")
        self.assertEqual(truncate("abcdefgh", 5), "abcde... (3 more characters)")


class PrintableTest(unittest.TestCase):
    def test_non_printable_characters_are_escaped(self) -> None:
        self.assertEqual(printable("plain é text"), "plain é text")
        self.assertEqual(printable("a\nb\x00c\u2028d\udcffe"), "a\\nb\\x00c\\u2028d\\udcffe")
        self.assertNotIn("\n", printable("\r\n\x0b\x0c\x1c\x85"))


if __name__ == "__main__":
    unittest.main()
