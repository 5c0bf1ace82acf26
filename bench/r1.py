"""R1 (raid instances): how many concurrent 5-player instances, each fighting a boss with 4 adds, one world process holds.

    python bench/r1.py                          # steps of 50 from 100 until one fails, summary line at the end
    python bench/r1.py --counts 100,150 --duration 60
    python bench/r1.py --quick                  # smoke run: 10 parties, short fights, about a minute

The parties arrive spread over `--stagger` seconds (default 120, about a
fight), so that in the window pulls, kills, reward writes, leaves and the
next generation's logins come at a steady rate rather than in one burst.

Server on CPU 0 (one twistd with the world and chat roles, real MariaDB and
Redis), load generator on CPU 1 (`python -m mmoshard.bots raid`, taskset).
Each step: fresh database and key prefix; the bench's own game data in the
step's temp dir — an open-world hub (`r1_hub`, each party's characters at
their own spot, out of each other's view), the instance template `r1`
(one boss, `r1_boss`, at 40 m from the entrance, bringing 4 adds,
`r1_add`, when pulled, and casts `--boss-ability` at its top target every
10 s; its health `--boss-health`, sized so that a party
of level-10 characters kills boss and adds in about two minutes; every
kill drops one `r1_mark`), written with copies of the shipped npcs and
items files plus those types.  Characters: K parties x 5 (a tank, a
healer, three damage dealers: mmoshard.bots.raid.partyClasses) x
`--clears` generations, since a boss kill binds its characters to their
copy until the daily reset: each clear is done by fresh characters.

Measured over the window (`../shared/BENCHMARKS.md`, R1): every zone's
tick durations (`/world/ticks`, polled through the window: the instances of
a template share one ring of 6,000 ticks): `tick_p50_ms`/`tick_p99_ms` over
all the process's ticks, `instance_tick_p50_ms`/`instance_tick_p99_ms` over
the instances' ticks, `tick_worst_p99_ms` (the worse of the hub's and the
instances' p99) and
`tick_max_ms`; ticks skipped (`mmoshard_world_ticks_skipped_total`: a tick
that came too late; informational: the process sums it over the zones it
hosts now, so the closed instances' skips drop out of it, and the figure
is floored at 0); server CPU; the generator's kills, wipes, rewards,
duplicates, casts and cast-to-effect p99; and, read from SQL after the
server stopped, `db_kills` (instance_kills rows), `db_lost_kills` (kills
the bots were told of, `kills_total`, beyond those rows: a kill whose
transaction never committed) and per character the marks held against the
kills whose roster names it: `db_duplicates` (more marks than kills) and
`db_missing` (fewer); all three must be 0.

Capacity = the largest K (steps of 50) with p99 tick <= 50 ms, p99
cast-to-effect <= 200 ms (with samples), no disconnects, no party stuck or
given up (an entry refused with an error not worth a retry), no duplicate
nor missing reward, some boss fight going on, server <= 1 core.  A step whose
generator used 95 % of its core is GENERATOR-BOUND and does not count.
"""

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import w1  # noqa: E402
from benchutil import cpuSeconds, freePort  # noqa: E402
from w1gen import KEY  # noqa: E402

from mmoshard.bots.raid import characterPlan  # noqa: E402
from mmoshard.bots.raidmind import PARTY_ROLES  # noqa: E402
from mmoshard.bots.w2 import classRoles  # noqa: E402

HUB = "r1_hub"
TEMPLATE = "r1"
MARK = "r1_mark"
LEVEL = 10
SPOT = 30.0  # metres between two parties' spots in the hub (its view radius is 10)
LIMITS = {"tick_p99_ms": 50.0, "cast_effect_p99_ms": 200.0, "cpu": 1.0}
SIZE = len(PARTY_ROLES)


def log(*args):
    print("[bench]", *args, file=sys.stderr, flush=True)


def columns(parties):
    """Columns of the hub's grid of party spots."""
    return max(1, math.ceil(math.sqrt(parties)))


def spot(party, parties):
    """(x, z) of party C{party}'s spot in the hub: a grid, SPOT metres apart, clear of the entrance."""
    cols = columns(parties)
    return 20.0 + SPOT * (party % cols), 20.0 + SPOT * (party // cols)


def hubSide(parties):
    """Metres of the hub's side for C{parties} spots."""
    return 40.0 + SPOT * columns(parties)


def prepareDatabase(parties, clears, seed):
    """W1's accounts and characters, made the plan's classes at level 10 at their party's spot. @return: (url, dropper)."""
    import pymysql

    from mmoshard.testing import mysqlAddress

    plan = characterPlan(parties, clears, classRoles("etc/classes.toml"))
    url, dropper = w1.prepareDatabase(len(plan), seed)
    host, port, user, password = mysqlAddress()
    conn = pymysql.connect(host=host, port=port, user=user, password=password,
                           database=url.rsplit("/", 1)[1])
    rows = []
    for cid, cls in plan:
        party = ((cid - 1) % (parties * SIZE)) // SIZE
        slot = (cid - 1) % SIZE
        x, z = spot(party, parties)
        rows.append((cls, LEVEL, HUB, x + slot, z, cid))
    with conn.cursor() as cur:
        cur.executemany("UPDATE characters SET class = %s, level = %s, zone = %s, x = %s, z = %s "
                        "WHERE id = %s", rows)
    conn.commit()
    conn.close()
    return url, dropper


def gameData(opts):
    """The bench's NPC types (TOML): the boss and its add."""
    return f"""
# --- bench/r1.py: the R1 boss and its adds --------------------------------------
[npcs.r1_boss]
name = "Raid Warden"
level = 11
health = {opts.boss_health}
damage = [{opts.boss_damage[0]}, {opts.boss_damage[1]}]
attack_speed = 2.0
speed = 6.0
aggro_radius = 15.0
social_radius = 0.0
leash = 70.0
power = 20.0

[npcs.r1_add]
name = "Warden's Hound"
level = 9
health = {opts.add_health}
damage = [4, 7]
attack_speed = 2.0
speed = 6.5
aggro_radius = 20.0
social_radius = 0.0
leash = 70.0
"""


ITEM = f"""
# --- bench/r1.py: one per boss kill ---------------------------------------------
[items.{MARK}]
name = "Warden's Mark"
kind = "material"
stack = 1000
"""


def instanceTemplate(opts):
    """The R1 template: a 100 m square, the boss 40 m from the entrance, 4 adds when pulled, a timed ability."""
    return f"""[instances.{TEMPLATE}]
name = "R1 Arena"
kind = "dungeon"
party_size = {SIZE}
lockout = "daily"
reset_hour = 9
empty_timeout = 20.0
max_duration = 3600.0
exit = [0.0, 94.0, 6.0, 100.0]

[instances.{TEMPLATE}.layout]
size = [100.0, 100.0]
spawns = [[50.0, 0.0, 10.0]]
graveyard = [50.0, 0.0, 12.0]
aoi_radius = 100.0
tick_rate = 10.0
max_speed = 7.0

[instances.{TEMPLATE}.entrance]
zone = "{HUB}"
rect = [0.0, 0.0, 4.0, 4.0]
arrive = [8.0, 0.0, 8.0]

[[instances.{TEMPLATE}.bosses]]
id = "warden"
npc = "r1_boss"
at = [50.0, 50.0]
exp = 500
loot = [{{item = "{MARK}", chance = 1.0}}]

[[instances.{TEMPLATE}.bosses.phases]]
below = 1.0
abilities = [{{ability = "{opts.boss_ability}", every = 10.0, first = 5.0, target = "top"}}]
adds = [{{npc = "r1_add", count = 4}}]
"""


def writeFiles(tmp, parties, sqlURL, prefix, tcpPort, adminPort, opts):
    from mmoshard.testing import writeConfig

    paths = {k: os.path.join(tmp, f"{k}.toml") for k in ("zones", "npcs", "items", "instances")}
    side = hubSide(parties)
    with open(paths["zones"], "w") as f:
        f.write(f"""[zones.{HUB}]
size = [{side:.1f}, {side:.1f}]
spawns = [[10.0, 0.0, 10.0]]
aoi_radius = 10.0
aoi_hysteresis = 2.0
tick_rate = 10.0
max_speed = 7.0
""")
    for kind, extra in (("npcs", gameData(opts)), ("items", ITEM)):
        with open(os.path.join(ROOT, "etc", f"{kind}.toml")) as src, open(paths[kind], "w") as f:
            f.write(src.read() + extra)
    with open(paths["instances"], "w") as f:
        f.write(instanceTemplate(opts))
    return writeConfig(os.path.join(tmp, "r1.toml"), {
        "node": {"id": "r1-bench", "roles": ["world", "chat"], "var_dir": os.path.join(tmp, "var")},
        "sql": {"url": sqlURL, "pool_min": 2, "pool_max": 8},
        "volatile": {"url": "redis://127.0.0.1:6379/0", "prefix": prefix},
        "secrets": {"token_key": KEY},
        "listen": {"tcp": f"tcp:{tcpPort}:interface=127.0.0.1", "websocket": "", "http": "",
                   "admin": f"tcp:{adminPort}:interface=127.0.0.1"},
        "session": {"max_per_ip": 100000, "max_connections": 100000, "max_output": 4194304,
                    "direct_write": True},
        "world": {"zones_file": paths["zones"], "npcs_file": paths["npcs"],
                  "items_file": paths["items"], "instances_file": paths["instances"],
                  "start_zone": HUB, "max_players": 100000,
                  "max_instances": 2 * parties + 50},
    })


def startServer(config, adminPort, logPath):
    """twistd on CPU 0 with C{config}, its log to C{logPath} (or discarded). @return: the process, ready."""
    import subprocess

    out = open(logPath, "a") if logPath else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(
            ["taskset", "-c", "0", sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
             "-n", "--pidfile=", "mmoshard", "--config", config],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, stdout=out, stderr=subprocess.STDOUT)
    finally:
        if logPath:
            out.close()
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"world server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{adminPort}/readyz", timeout=2)
            return proc
        except Exception:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("world server not ready after 60s")


def rateFor(parties, opts):
    """Bot connections per second: C{--rate}, or the parties spread over C{--stagger} seconds."""
    if opts.rate:
        return opts.rate
    return max(1.0, parties * SIZE / opts.stagger)


def clearsFor(parties, opts):
    """Generations enough for the run: one clear takes about a fight plus the entry, and each is fresh characters."""
    ramp = parties * SIZE / rateFor(parties, opts)
    return max(2, math.ceil((ramp + opts.warmup + opts.duration) / opts.cycle) + 1)


def botsCommand(parties, clears, port, instances, opts):
    return ["taskset", "-c", "1", sys.executable, "-m", "mmoshard.bots", "raid",
            "--address", f"tcp:127.0.0.1:{port}", "--token-key", KEY,
            "--parties", str(parties), "--clears", str(clears), "--template", TEMPLATE,
            "--instances-file", instances, "--warmup", str(opts.warmup),
            "--duration", str(opts.duration), "--rate", f"{rateFor(parties, opts):.3f}",
            "--seed", str(opts.seed), "--ramp-timeout", str(opts.ramp_timeout + opts.stagger)]


def skippedTicks(adminPort):
    """The process's mmoshard_world_ticks_skipped_total (0 when absent)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{adminPort}/metrics", timeout=30) as r:
            text = r.read().decode()
    except Exception:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("mmoshard_world_ticks_skipped_total"))


class TickPoller:
    """
    Collects /world/ticks over the window by polling it: the server keeps
    each label's last 6,000 ticks, and the instances of a template share
    one label (its id), so at K instances that ring covers 600/K seconds.
    Each poll asks for the seconds since the last one, every half of that.
    """

    def __init__(self, adminPort, parties):
        import threading

        self.url = f"http://127.0.0.1:{adminPort}/world/ticks"
        self.interval = max(0.25, min(5.0, 300.0 / max(1, parties)))
        self.byLabel = {}
        self.polls = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.last = time.monotonic()

    def start(self):
        self.last = time.monotonic()
        self.thread.start()

    def poll(self):
        now = time.monotonic()
        got = w1.getJSON(f"{self.url}?seconds={now - self.last:.3f}")
        self.last = now
        self.polls += 1
        for label, ticks in got.items():
            self.byLabel.setdefault(label, []).extend(ticks)

    def loop(self):
        while not self.stopped.wait(self.interval):
            try:
                self.poll()
            except Exception as e:
                log(f"/world/ticks poll failed: {e}")

    def stop(self):
        """Stop polling, take the last stretch. @return: label -> tick durations (ms) over the window."""
        self.stopped.set()
        self.thread.join(timeout=30)
        self.poll()
        return self.byLabel


def tickFigures(byLabel):
    """The R1 tick figures from the window's ticks (label -> durations in ms; the instances' label is the template's id)."""
    every = [d for ticks in byLabel.values() for d in ticks]
    inst = [d for label, ticks in byLabel.items()
            if label == TEMPLATE or label.startswith(TEMPLATE + "/") for d in ticks]
    worst = max((w1.quantile(t, 0.99) for t in byLabel.values() if len(t) >= 50), default=-1.0)
    return {"tick_p50_ms": round(w1.quantile(every, 0.5), 3),
            "tick_p99_ms": round(w1.quantile(every, 0.99), 3),
            "instance_tick_p50_ms": round(w1.quantile(inst, 0.5), 3),
            "instance_tick_p99_ms": round(w1.quantile(inst, 0.99), 3),
            "tick_worst_p99_ms": round(worst, 3), "tick_max_ms": round(max(every, default=-1.0), 3),
            "ticks": len(every), "instance_ticks": len(inst)}


def checkRewards(url):
    """Kills and marks in SQL: per character, marks held against the kills whose roster names it."""
    import json

    import pymysql

    from mmoshard.testing import mysqlAddress

    host, port, user, password = mysqlAddress()
    conn = pymysql.connect(host=host, port=port, user=user, password=password,
                           database=url.rsplit("/", 1)[1])
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT roster FROM instance_kills")
            kills = {}
            rows = cur.fetchall()
            for (roster,) in rows:
                for cid in json.loads(roster):
                    kills[cid] = kills.get(cid, 0) + 1
            cur.execute("SELECT character_id, SUM(count) FROM inventory WHERE item_id = %s "
                        "GROUP BY character_id", (MARK,))
            marks = {cid: int(n) for cid, n in cur.fetchall()}
    finally:
        conn.close()
    dup = sum(max(0, marks.get(c, 0) - kills.get(c, 0)) for c in set(marks) | set(kills))
    missing = sum(max(0, kills.get(c, 0) - marks.get(c, 0)) for c in set(marks) | set(kills))
    return {"db_kills": len(rows), "db_marks": sum(marks.values()), "db_duplicates": dup,
            "db_missing": missing}


def r1Step(parties, opts):
    """One R1 step at C{parties} instances. @return: the summary's fields."""
    from mmoshard.testing import requireRedis

    clears = opts.clears or clearsFor(parties, opts)
    tmp = tempfile.mkdtemp(prefix="r1-")
    url, dropper = prepareDatabase(parties, clears, opts.seed)
    _, prefix, cleaner = requireRedis()
    tcpPort, adminPort = freePort(), freePort()
    config = writeFiles(tmp, parties, url, prefix, tcpPort, adminPort, opts)
    proc = startServer(config, adminPort, opts.server_log)
    state = {}
    result = {}
    try:
        poller = TickPoller(adminPort, parties)

        def windowStart():
            state["cpu0"] = cpuSeconds(proc.pid)
            state["t0"] = time.monotonic()
            state["sys0"] = w1.cpuTotals()
            state["skipped0"] = skippedTicks(adminPort)
            poller.start()

        def summary():
            window = time.monotonic() - state["t0"]
            cpu = (cpuSeconds(proc.pid) - state["cpu0"]) / window
            ticks = poller.stop()
            out = {"machine_cpu": w1.machineCPU(state["sys0"], window),
                   "server_cpu": round(cpu, 3),
                   "ticks_skipped_s": round(max(0.0, skippedTicks(adminPort) - state["skipped0"])
                                            / window, 2),
                   "tick_polls": poller.polls}
            out.update(tickFigures(ticks))
            return out

        command = botsCommand(parties, clears, tcpPort, os.path.join(tmp, "instances.toml"), opts)
        result = w1.runGenerator(command, opts, windowStart, summary, tag="raid")
        result["generator"] = "python"
        result["clears_planned"] = clears
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except Exception:
            proc.kill()
        try:
            result.update(checkRewards(url))
            # A kill the players were told of whose transaction never committed.
            result["db_lost_kills"] = max(0, int(result.get("kills_total", 0)) - result["db_kills"])
        except Exception as e:  # the table may be missing on a tree without instances
            log(f"reward check failed: {e}")
        cleaner()
        dropper()
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def generatorBound(r):
    try:
        return float(r["gen_cpu"]) >= 0.95
    except (KeyError, ValueError):
        return False


def passes(r):
    """R1's rules: tick and cast-to-effect p99, no disconnects or stuck parties or duplicates, a fight on, one core."""
    if generatorBound(r):
        return False
    try:
        return (0 <= float(r["tick_p99_ms"]) <= LIMITS["tick_p99_ms"]
                and 0 <= float(r["cast_effect_p99_ms"]) <= LIMITS["cast_effect_p99_ms"]
                and int(r["cast_effect_samples"]) > 0
                and int(r["disconnects"]) == 0 and int(r["stuck"]) == 0
                and int(r.get("given_up", 0)) == 0 and int(r.get("step_errors", 0)) == 0
                and int(r["duplicates"]) == 0 and int(r.get("db_duplicates", 0)) == 0
                and int(r.get("db_missing", 0)) == 0 and int(r.get("db_lost_kills", 0)) == 0
                and float(r["fighting_avg"]) > 0
                and float(r["server_cpu"]) <= LIMITS["cpu"] * 0.98
                and float(r.get("others_cpu", 0.0)) <= 0.15)
    except (KeyError, ValueError):
        return False


def search(opts):
    """Steps of 50 from C{opts.start} until one fails (or the C{opts.counts} list). @return: (best, results)."""
    best, results = w1.stepSearch("r1 K", opts.start, 50, r1Step, passes, generatorBound, opts)
    return best, [(k, ok, r) for k, ok, r, _ in results]


KEYS = ("tick_p50_ms", "tick_p99_ms", "instance_tick_p99_ms", "tick_worst_p99_ms", "tick_max_ms",
        "ticks_skipped_s", "cast_effect_p50_ms", "cast_effect_p99_ms", "server_cpu", "gen_cpu",
        "fighting_avg", "fight_p50_s", "kills", "wipes", "rewards", "duplicates", "db_kills",
        "db_duplicates", "db_missing", "db_lost_kills", "casts_s", "disconnects", "stuck", "given_up", "step_errors", "errors")


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--start", type=int, default=100, help="first K (instances) of the search")
    p.add_argument("--max", type=int, default=2000)
    p.add_argument("--counts", default="", help="explicit K list instead of the 50-step search")
    p.add_argument("--warmup", type=float, default=30.0)
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--stagger", type=float, default=None,
                   help="seconds over which the parties arrive (120, about a fight: their kills, "
                        "leaves and fresh entries are then spread evenly through the window; "
                        "--quick 15)")
    p.add_argument("--rate", type=float, default=0.0,
                   help="bot connections per second (default: from --stagger)")
    p.add_argument("--ramp-timeout", type=float, default=300.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--boss-health", type=int, default=None,
                   help="the boss's health (10000: about two minutes for a level-10 party; "
                        "--quick 1500)")
    p.add_argument("--add-health", type=int, default=None, help="each add's (400; --quick 100)")
    p.add_argument("--boss-damage", default="18,26",
                   help="the boss's melee swing range LO,HI (every 2 s; more to see wipes)")
    p.add_argument("--boss-ability", default="cleave",
                   help="the NPC ability (etc/abilities.toml) the boss casts at its top target every 10 s")
    p.add_argument("--cycle", type=float, default=None,
                   help="seconds a clear is expected to take at the least (sizes --clears; "
                        "100, --quick 25)")
    p.add_argument("--clears", type=int, default=0,
                   help="generations of characters per party (0: enough for the run)")
    p.add_argument("--attempts", type=int, default=6)
    p.add_argument("--wait-quiet", type=float, default=300.0)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 10 parties, boss 1500 health, adds 100, 5 s warm-up, 30 s "
                        "window, no waiting for a quiet machine (not a capacity claim)")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--server-log", default="",
                   help="write the server's log here (default: discarded)")
    opts = p.parse_args(argv)
    opts.generator = "python"  # for w1.runGenerator's result
    opts.boss_damage = tuple(int(x) for x in opts.boss_damage.split(","))
    full = {"boss_health": 10000, "add_health": 400, "cycle": 100.0, "stagger": 120.0}
    quick = {"boss_health": 1500, "add_health": 100, "cycle": 25.0, "stagger": 15.0}
    for key, value in (quick if opts.quick else full).items():
        if getattr(opts, key) is None:
            setattr(opts, key, value)
    if opts.quick:
        opts.counts = opts.counts or "10"
        opts.warmup, opts.duration, opts.attempts, opts.wait_quiet = 5.0, 30.0, 1, 0.0
        opts.ramp_timeout = 60.0
    load = os.getloadavg()[0]
    if load > 0.5:
        log(f"WARNING: load average {load:.2f}: the machine is not quiet")
    out = {"load_before": round(load, 2), "quick": opts.quick, "boss_health": opts.boss_health}
    best, results = search(opts)
    out.update({"r1_capacity": best, "r1_generator_bound": any(generatorBound(r) for _, _, r in results)})
    chosen = [r for k, _, r in results if k == best] or [r for _, _, r in results[-1:]]
    if chosen:
        r = chosen[0]
        out.update({f"r1_{key}": r.get(key) for key in KEYS})
        if not best:
            out["r1_at"] = r.get("parties")
    print(" ".join(f"{k}={v}" for k, v in out.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]) or 0)
