"""``python run_sweep.py CONFIG.yaml [flags]``: the same as ``miras sweep CONFIG.yaml [flags]``."""

import sys

from miras.search.command import main

if __name__ == "__main__":
    sys.exit(main())
