"""``python -m apisync <command>``: the command line (:mod:`apisync.cli`)."""

from __future__ import annotations

import sys

from apisync.cli import main

if __name__ == "__main__":
    sys.exit(main())
