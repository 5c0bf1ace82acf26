"""Rolling restart: bots play on two nodes of each role (world, chat, matchmaking) while every node is restarted in turn with SIGTERM; counts what they lost.

    python bench/rolling.py                # 200 bots
    python bench/rolling.py --bots 40      # a smaller run

The shard (mmoshard/bots/rollingcluster.py): world-a and world-b both host
the zone `field` (a draining node hands its players to the other),
chat-a/chat-b, mm-a/mm-b (matchmaking; instance creation stubbed by the
bench-only `benchinstances` role), each a real `twistd` process on the test
MariaDB and Redis (MMOSHARD_TEST_MYSQL / MMOSHARD_TEST_REDIS), in a fresh
database and key prefix.  The bots (mmoshard/bots/rollingbot.py) play in
parties of five: they walk (or hunt wolves, one in four), whisper and speak
in their party with numbered messages, and their leaders queue the party
for dungeon5 again after each match.  After `--warmup` s every node is
restarted in turn (world, chat, matchmaking, then the other three):
SIGTERM, wait for the exit, start again, wait for /readyz, `--pause` s.
A few players of each world node are made link-dead just before it stops.

One summary line `key=value ...` (docs/benchmarks.md "Rolling restart"
explains the keys; `run_s` and `bots_cpu`, the bots' process in cores, end
it), then `verdict=ok` or the targets missed.  Nothing is pinned with
taskset: this is a correctness run, not a capacity one.  Exit status 0
when every target is met.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchutil import cpuSeconds  # noqa: E402
from mmoshard.bots.rolling import Options, RollingRun, verdict  # noqa: E402
from mmoshard.bots.rollingcluster import RollingCluster, prepareStores  # noqa: E402

KEY = "rolling-bench-key-0123456789abcdef"


def parseArgs(argv):
    p = argparse.ArgumentParser(prog="python bench/rolling.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    d = Options()
    p.add_argument("--bots", type=int, default=d.bots)
    p.add_argument("--hunters", type=int, default=d.hunters, help="every Nth bot hunts (0: none)")
    p.add_argument("--warmup", type=float, default=d.warmup)
    p.add_argument("--pause", type=float, default=d.pause)
    p.add_argument("--settle", type=float, default=d.settle)
    p.add_argument("--droppers", type=int, default=d.droppers)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--keep", action="store_true", help="keep the nodes' logs (their directory is printed)")
    return p.parse_args(argv)


async def main(reactor, opts):
    sqlURL, redisURL, prefix, cleanups = await prepareStores(reactor, opts.bots)
    tmp = tempfile.mkdtemp(prefix="mmoshard-rolling-")
    cluster = RollingCluster(reactor, tmp, sqlURL, redisURL, prefix, KEY)
    try:
        await cluster.start()
        run = RollingRun(reactor, cluster, sqlURL, KEY, Options(
            bots=opts.bots, hunters=opts.hunters, warmup=opts.warmup, pause=opts.pause,
            settle=opts.settle, droppers=opts.droppers, seed=opts.seed))
        wall, cpu = time.monotonic(), cpuSeconds(os.getpid())
        figures = await run.run()
        figures["run_s"] = round(time.monotonic() - wall, 1)
        figures["bots_cpu"] = round((cpuSeconds(os.getpid()) - cpu) / figures["run_s"], 2)
        await cluster.stop()
    finally:
        cluster.kill()
        for cleanup in cleanups:
            cleanup()
    for r in run.restarts:
        print(f"[rolling] {r.node}: exit {r.exit_code}, {r.stop_s} s to stop, {r.start_s} s to ready",
              file=sys.stderr)
    if opts.keep:
        print(f"[rolling] node logs in {tmp}", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    missed = verdict(figures)
    print(" ".join(f"{k}={v}" for k, v in figures.items())
          + " verdict=" + ("ok" if not missed else "missed:" + ";".join(missed)), flush=True)
    if missed:
        raise SystemExit(1)


if __name__ == "__main__":
    from twisted.internet.defer import Deferred
    from twisted.internet.task import react

    options = parseArgs(sys.argv[1:])
    react(lambda reactor: Deferred.fromCoroutine(main(reactor, options)))
