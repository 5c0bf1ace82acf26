"""Command line of the load generators: `python -m mmoshard.bots w1 --help`."""

import sys

from mmoshard.bots.w1 import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["w1"]:
        args = args[1:]
    sys.exit(main(args))
