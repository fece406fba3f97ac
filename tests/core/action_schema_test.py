"""``python -m tests.core.action_schema_test``: the seed's command for the schema tests.

They live in `tests.core.model.schema_test`, beside the module they test; this module only
runs them when started on its own, and holds no tests of its own for discovery to count twice.
"""

import unittest

if __name__ == "__main__":
    unittest.main(module="tests.core.model.schema_test")
