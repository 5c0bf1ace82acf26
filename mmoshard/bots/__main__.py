"""Command line of the load generators: `python -m mmoshard.bots w1 --help`, `... w2 --help`, `... raid --help`, `... m1 --help`."""

import sys

from mmoshard.bots import m1, raid, w1, w2

if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["w2"]:
        sys.exit(w2.main(args[1:]))
    if args[:1] == ["m1"]:
        sys.exit(m1.main(args[1:]))
    if args[:1] == ["raid"]:
        sys.exit(raid.main(args[1:]))
    if args[:1] == ["w1"]:
        args = args[1:]
    sys.exit(w1.main(args))
