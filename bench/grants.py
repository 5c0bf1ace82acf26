"""Kill-reward grants on MariaDB: the database's CPU per grant, one transaction each against the rewards' group commit.

    python bench/grants.py                      # both ways, 150 grants/s for 10 s each
    python bench/grants.py --rate 300 --seconds 20 --modes batched

A fresh database with --characters characters; every tick (10 a second) the
tick's share of --rate grants is asked for at once, as the open world's
rewards ask for a tick's kills: 60 % exp, 40 % a loot item (W2's mix: an
exp share for each player on a wolf's threat table, a pelt half the time and
a fang a fifth), for random characters, each under its own key.  `one`
writes each with its own progression call (one transaction per grant, the
code before the group commit); `batched` submits them to the rewards'
L{GrantQueue}.  The figures: the CPU of the mariadbd threads serving this
run's connections (`db_conn_ms_per_grant`: MariaDB runs a thread per
connection, `information_schema.PROCESSLIST.TID`, read in /proc; on a
MariaDB other sessions use too, the only figure that is this run's), the
whole local mariadbd's (`db_ms_per_grant`, bench/benchutil.py StoreCPU:
with InnoDB's background threads, and whatever else it serves), and this
process's own (`own_ms_per_grant`: the world's side of the writes).  The
SQL pool is W2's (2..6 connections).  A micro benchmark: run it on a quiet
machine, compare the two modes of one invocation.
"""

import argparse
import os
import random
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchutil import StoreCPU, cpuSeconds  # noqa: E402

TICK = 0.1


def threadCPU():
    """@return: {tid: CPU seconds} of every thread of the local mariadbd."""
    from benchutil import pidsNamed

    out = {}
    for pid in pidsNamed(("mariadbd", "mysqld")):
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[int(tid)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def connectionThreads(url):
    """@return: the tids of the mariadbd threads serving connections to C{url}'s database."""
    import pymysql

    from mmoshard.testing import mysqlAddress

    host, port, user, password = mysqlAddress()
    conn = pymysql.connect(host=host, port=port, user=user, password=password)
    with conn.cursor() as cur:
        cur.execute("SELECT TID FROM information_schema.PROCESSLIST WHERE DB = %s",
                    (url.rsplit("/", 1)[1],))
        tids = [int(t) for (t,) in cur.fetchall()]
    conn.close()
    return tids


def prepare(characters):
    """A migrated database with C{characters} characters (W1's). @return: (url, dropper, ids)."""
    from w1 import prepareDatabase

    url, dropper = prepareDatabase(characters, 1)
    return url, dropper, list(range(1, characters + 1))


async def run(reactor, mode, opts, ids):
    """C{opts.seconds} of ticks of grants in C{mode}. @return: the line's fields."""
    from twisted.internet.defer import DeferredList
    from twisted.internet.task import deferLater

    from mmoshard.store.sql import SQLStore
    from mmoshard.world.combat.rewards import GrantQueue
    from mmoshard.world.grants import ExpGrant, ItemGrant
    from mmoshard.world.progression import Progression

    sql = SQLStore(reactor, opts.url, 2, 6)
    sql.open()
    prog = Progression(sql, reactor)
    queue = GrantQueue(prog)
    rng = random.Random(opts.seed)
    perTick = opts.rate * TICK
    stores = StoreCPU()
    pending = []
    owed = 0.0
    n = 0
    await deferLater(reactor, 0.5, lambda: None)  # the pool's connections open
    stores.start()
    threads0 = threadCPU()  # a connection may get a cached thread: its CPU so far
    cpu0, t0 = cpuSeconds(os.getpid()), time.monotonic()
    ticks = int(opts.seconds / TICK)
    for tick in range(ticks):
        owed += perTick
        while owed >= 1.0:
            owed -= 1.0
            n += 1
            cid = rng.choice(ids)
            key = f"{mode}:{opts.run}:{n}"
            if rng.random() < 0.6:
                g = ExpGrant(cid, 10, "kill:" + key)
            else:
                g = ItemGrant(cid, rng.choice(("wolf_pelt", "wolf_fang")), 1, "loot:" + key, 20)
            if mode == "batched":
                pending.append(queue.submit(g))
            elif type(g) is ExpGrant:
                pending.append(prog.grantExp(g.characterId, g.amount, g.key))
            else:
                pending.append(prog.addItem(g.characterId, g.itemId, g.count, g.key, stack=g.stack))
        await deferLater(reactor, max(0.0, t0 + (tick + 1) * TICK - time.monotonic()), lambda: None)
    done = await DeferredList(pending, consumeErrors=True)
    window = time.monotonic() - t0
    cores = stores.cores(window)
    threads = threadCPU()
    conn = sum(threads[t] - threads0.get(t, 0.0) for t in connectionThreads(opts.url) if t in threads)
    failed = sum(1 for ok, _ in done if not ok)
    await sql.close()
    db = cores.get("db_cpu", 0.0) * window
    return {"mode": mode, "grants": n, "failed": failed, "seconds": round(window, 1),
            "writes": queue.writes if mode == "batched" else n,
            "db_cpu": cores.get("db_cpu"), "db_ms_per_grant": round(db * 1000.0 / max(1, n), 3),
            "db_conn_ms_per_grant": round(conn * 1000.0 / max(1, n), 3),
            "own_ms_per_grant": round((cpuSeconds(os.getpid()) - cpu0) * 1000.0 / max(1, n), 3)}


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=150.0, help="grants a second")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--characters", type=int, default=2000)
    p.add_argument("--modes", default="one,batched")
    p.add_argument("--seed", type=int, default=1)
    opts = p.parse_args(argv)
    from twisted.internet import task
    from twisted.internet.defer import Deferred

    opts.url, dropper, ids = prepare(opts.characters)
    try:
        task.react(lambda reactor: Deferred.fromCoroutine(runAll(reactor, opts, ids)))
    finally:
        dropper()


async def runAll(reactor, opts, ids):
    """Each mode in turn on the same database, one summary line each."""
    for i, mode in enumerate(opts.modes.split(",")):
        opts.run = i
        r = await run(reactor, mode, opts, ids)
        print(" ".join(f"{k}={v}" for k, v in r.items()), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
