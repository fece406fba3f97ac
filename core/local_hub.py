"""``python -m core.local_hub``: run the local hub on its own (it lives in `core.dev.local_hub`).

Also the import path ``from core.local_hub import LocalHub``.
"""

from core.dev.local_hub import LocalHub
from core.dev.local_hub.__main__ import main

__all__ = ["LocalHub", "main"]

if __name__ == "__main__":
    main()
