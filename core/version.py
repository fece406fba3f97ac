"""The service's version: `plugboard_build_info` on /metrics carries it.

Kept equal to ``[project] version`` in pyproject.toml (tests/core/ops/metrics_test.py checks
it): the image does not ship pyproject.toml, and reading it would cost a TOML parser.
"""

from typing import Final

VERSION: Final = "0.1.0"
