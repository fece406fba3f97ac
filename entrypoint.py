"""The service's command line: ``python entrypoint.py [--local [--reload] | actions | call |
new | schema]``, as docs/getting-started.md describes it; ``--help`` lists the options.

The code is in `core.main`, a module like the rest of the service (imported, type-checked and
tested); this script only runs it.
"""

import sys

from core.main import main

if __name__ == "__main__":
    sys.exit(main())
