"""M1 (matchmaking) under the issue's name: the same driver as bench/m1.py (`python bench/matchmaking.py --help`)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from m1 import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]) or 0)
