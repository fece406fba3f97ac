"""The service's command line: ``python entrypoint.py [--local [--reload] | actions | call |
new | schema]``, as the README describes it; ``--help`` lists the options.

The code is in `core.main`. This script stays this small because Python compiles a script
from source at every start, while an imported module is loaded from its bytecode.
"""

import sys

from core.main import main

if __name__ == "__main__":
    sys.exit(main())
