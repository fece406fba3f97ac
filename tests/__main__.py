"""Runs the whole suite and ends with ``N passed, N failed, N skipped`` on its own line.

``python -m tests`` runs everything; ``python -m tests -k heartbeat`` only the tests whose
names contain "heartbeat"; ``-v`` lists every test.
"""

from __future__ import annotations

import argparse
import sys
import unittest
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def main() -> int:
    """Discover ``tests/**/*_test.py``, run them, print the summary line, return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m tests")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every test")
    parser.add_argument("-k", dest="patterns", action="append", help="only matching tests")
    parser.add_argument("-f", "--failfast", action="store_true", help="stop at the first failure")
    args = parser.parse_args()
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    loader = unittest.TestLoader()
    if args.patterns:
        loader.testNamePatterns = [f"*{pattern}*" for pattern in args.patterns]
    suite = loader.discover(str(TESTS), pattern="*_test.py", top_level_dir=str(ROOT))
    runner = unittest.TextTestRunner(verbosity=2 if args.verbose else 1, failfast=args.failfast)
    result = runner.run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    sys.stdout.flush()
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
