"""The unittest suite: ``python -m tests`` runs every ``*_test.py`` file under this folder.

Log output is silenced unless ``TEST_LOG`` is set (for example ``TEST_LOG=DEBUG``), so the
suite's output stays readable; tests that check log lines attach their own handler.
"""

import logging
import os

if os.environ.get("TEST_LOG"):
    logging.basicConfig(
        level=os.environ["TEST_LOG"].upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
else:
    logging.getLogger().addHandler(logging.NullHandler())
