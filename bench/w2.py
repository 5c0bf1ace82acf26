"""W2 (open-world combat): the W2 capacity of the world role beside its W1 capacity, in one invocation.

    python bench/w2.py                          # W1 search, then W2 search, summary line at the end
    python bench/w2.py --quick                  # smoke run: one step of 200 each, 10 s windows
    python bench/w2.py --only w2 --counts 1500,2000 --duration 30

Server on CPU 0, load generator on CPU 1 (taskset).  Real MariaDB and Redis.
W1 is bench/w1.py's world search, run as it runs it (its generator:
bench/w1gen.c where gcc is found).  W2 (../shared/BENCHMARKS.md): W1's map,
density and walking bots, plus one NPC per bot in packs of 3 placed
uniformly at random (seeded) — aggro radius 10 m, leash 40 m, respawn 30 s
— written with the zone into the step's temp dir (`[world] zones_file`,
`npcs_file`).  The characters' classes cycle through etc/classes.toml (equal
shares).  The generator is bench/w1gen.c's W2 workload where gcc is found
(`--workload W2`, the fighter's mind in bench/w2mind.c: the Python bots' play
in C), else or with `--python-bots` the Python bots, `python -m mmoshard.bots
w2` (half the bots fight, docs/world.md).  Each step: fresh database and key
prefix, N accounts and characters, the server started with twistd, the
generator driven against it.  The local MariaDB's and Redis's CPU over the
window is part of the workload (they write the kill rewards): reported as
`db_cpu` and `redis_cpu`, and not counted as other processes.
W2's capacity adds p99 cast-to-effect <= 200 ms to W1's rules (and a step
with no cast-to-effect sample fails: nobody fought).  A W2 step where the
generator ran under 95 % of its bots' 5 Hz turns, or used 95 % of its core,
is GENERATOR-BOUND and does not count.
"""

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import w1  # noqa: E402
from benchutil import StoreCPU, cpuSeconds, freePort  # noqa: E402
from w1gen import KEY, buildGenerator, writeGameData, writeHandshakes  # noqa: E402

from mmoshard.bots.w1 import SEND_HZ  # noqa: E402
from mmoshard.paths import readDataTOML  # noqa: E402

ZONE = "w2"
NPC = "w2_wolf"
PACK = 3
LIMITS = {**w1.LIMITS, "cast_effect_p99_ms": 200.0}
# The bench's NPC (its npcs file): the shipped young wolf's level, health,
# speed, radii and loot, with lighter swings, so that bots seldom die and
# the released ones (all at the graveyard) do not crowd one spot.
NPC_TOML = f"""[npcs.{NPC}]
name = "Wolf"
level = 1
health = 100
damage = [1, 2]
attack_speed = 2.0
attack_range = 3.0
speed = 6.0
aggro_radius = 10.0
social_radius = 8.0
leash = 40.0
loot = [{{item = "wolf_pelt", chance = 0.5}}, {{item = "wolf_fang", chance = 0.2}}]
"""


def log(*args):
    print("[bench]", *args, file=sys.stderr, flush=True)


def classes():
    """The class ids of etc/classes.toml, in its order."""
    return list(readDataTOML("etc/classes.toml", SystemExit)["classes"])


def prepareDatabase(n, seed):
    """W1's accounts and characters, in zone w2, their classes in turn. @return: (url, dropper)."""
    import pymysql

    from mmoshard.testing import mysqlAddress

    url, dropper = w1.prepareDatabase(n, seed)
    host, port, user, password = mysqlAddress()
    conn = pymysql.connect(host=host, port=port, user=user, password=password,
                           database=url.rsplit("/", 1)[1])
    ids = classes()
    with conn.cursor() as cur:
        cur.execute("UPDATE characters SET zone = %s, class = ELT(1 + MOD(id - 1, %s), "
                    + ", ".join(["%s"] * len(ids)) + ")", [ZONE, len(ids)] + ids)
    conn.commit()
    conn.close()
    return url, dropper


def writeZone(path, n, aoiInterval, seed):
    """The W2 zone for C{n} players: W1's, a graveyard at the centre, C{n} NPCs in packs of 3."""
    L = w1.side(n)
    rng = random.Random(seed + 1)  # not the characters' sequence
    lines = [f"""[zones.{ZONE}]
size = [{L:.1f}, {L:.1f}]
spawns = [[{L / 2:.1f}, 0.0, {L / 2:.1f}]]
graveyard = [{L / 2:.1f}, 0.0, {L / 2:.1f}]
aoi_radius = {w1.R}
aoi_hysteresis = 5.0
aoi_interval = {aoiInterval}
tick_rate = 10.0
max_speed = 7.0
"""]
    spread = 4.0
    left = n
    while left > 0:
        size = min(PACK, left)
        left -= size
        x, z = rng.uniform(spread, L - spread), rng.uniform(spread, L - spread)
        members = ", ".join([f'"{NPC}"'] * size)
        lines.append(f"""[[zones.{ZONE}.packs]]
members = [{members}]
at = [{x:.1f}, {z:.1f}]
spread = {spread}
respawn = 30.0
""")
    with open(path, "w") as f:
        f.write("\n".join(lines))


def writeFiles(tmp, n, sqlURL, prefix, tcpPort, adminPort, opts):
    from mmoshard.testing import writeConfig

    zones = os.path.join(tmp, "zones.toml")
    npcs = os.path.join(tmp, "npcs.toml")
    writeZone(zones, n, opts.aoi_interval, opts.seed)
    with open(npcs, "w") as f:
        f.write(NPC_TOML)
    return writeConfig(os.path.join(tmp, "w2.toml"), {
        "node": {"id": "w2-bench", "roles": ["world"], "var_dir": os.path.join(tmp, "var")},
        "sql": {"url": sqlURL, "pool_min": 2, "pool_max": 6},
        "volatile": {"url": "redis://127.0.0.1:6379/0", "prefix": prefix},
        "secrets": {"token_key": KEY},
        "listen": {"tcp": f"tcp:{tcpPort}:interface=127.0.0.1", "websocket": "", "http": "",
                   "admin": f"tcp:{adminPort}:interface=127.0.0.1"},
        "session": {"max_per_ip": 100000, "max_connections": 100000, "max_output": 4194304,
                    "direct_write": opts.world_write == "direct"},
        "world": {"zones_file": zones, "npcs_file": npcs, "instances_file": "", "start_zone": ZONE,
                  "max_players": 100000},
    })


def botsCommand(n, port, opts, tmp):
    """The generator's command line: the C program (its input files written to C{tmp}) or the Python bots."""
    args = ["--address", f"tcp:127.0.0.1:{port}", "--token-key", KEY, "--count", str(n),
            "--size", f"{w1.side(n):.1f}", "--warmup", str(opts.warmup),
            "--duration", str(opts.duration), "--rate", str(opts.rate), "--seed", str(opts.seed)]
    if opts.w2_generator == "c":
        handshakes, data = os.path.join(tmp, "handshakes"), os.path.join(tmp, "w2data")
        writeHandshakes(handshakes, n)
        writeGameData(data)
        return (["taskset", "-c", "1", opts.w2_binary] + args
                + ["--workload", "W2", "--game-data", data, "--handshakes", handshakes])
    return ["taskset", "-c", "1", sys.executable, "-m", "mmoshard.bots", "w2"] + args


REWARD_METRICS = {"grants": 'mmoshard_world_rewards_total{result="granted"}',
                  "reward_writes": "mmoshard_world_reward_writes_total"}


def rewardCounters(adminPort):
    """@return: {name: value} of L{REWARD_METRICS} in the node's /metrics (absent: 0)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{adminPort}/metrics", timeout=30) as r:
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        values[name] = value
    return {k: float(values.get(m, 0.0)) for k, m in REWARD_METRICS.items()}


def w2Step(n, opts):
    """One W2 step at C{n} bots (as bench/w1.py's worldStep). @return: the summary's fields."""
    from mmoshard.testing import requireRedis

    tmp = tempfile.mkdtemp(prefix="w2-")
    url, dropper = prepareDatabase(n, opts.seed)
    _, prefix, cleaner = requireRedis()
    tcpPort, adminPort = freePort(), freePort()
    proc = w1.startWorld(writeFiles(tmp, n, url, prefix, tcpPort, adminPort, opts), adminPort)
    state = {}
    stores = StoreCPU()
    try:
        def windowStart():
            state["cpu0"] = cpuSeconds(proc.pid)
            state["t0"] = time.monotonic()
            state["sys0"] = w1.cpuTotals()
            state["rewards0"] = rewardCounters(adminPort)
            stores.start()
            if opts.profile:
                import threading

                def grab():
                    request = urllib.request.Request(
                        f"http://127.0.0.1:{adminPort}/world/profile?seconds=10", data=b"",
                        headers={"Content-Type": "application/json"}, method="POST")
                    with urllib.request.urlopen(request, timeout=130) as r:
                        state["profile"] = json.loads(r.read())["profile"]
                threading.Thread(target=grab, daemon=True).start()

        def summary():
            window = time.monotonic() - state["t0"]
            cpu = (cpuSeconds(proc.pid) - state["cpu0"]) / window
            ticks = w1.getJSON(f"http://127.0.0.1:{adminPort}/world/ticks?seconds={window:.1f}")[ZONE]
            return {"machine_cpu": w1.machineCPU(state["sys0"], window),
                    "tick_p50_ms": round(w1.quantile(ticks, 0.5), 2),
                    "tick_p99_ms": round(w1.quantile(ticks, 0.99), 2),
                    "ticks": len(ticks), "server_cpu": round(cpu, 3), **stores.cores(window),
                    **{f"{k}_s": round((v - state["rewards0"][k]) / window, 1)
                       for k, v in rewardCounters(adminPort).items()}}

        result = w1.runGenerator(botsCommand(n, tcpPort, opts, tmp), opts, windowStart, summary,
                                 tag="w2")
        result["generator"] = opts.w2_generator
        if "profile" in state:
            log(f"w2 N={n} tick profile (the window is not a measurement):\n{state['profile']}")
        return result
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except Exception:
            proc.kill()
        cleaner()
        dropper()
        shutil.rmtree(tmp, ignore_errors=True)


def generatorBound(r):
    """True when the generator ran under 95 % of its bots' 5 Hz turns, or at 95 % of its core."""
    try:
        return (float(r["steps_s"]) < w1.DRIVEN * SEND_HZ * int(r["entered"])
                or float(r["gen_cpu"]) >= 0.95)
    except (KeyError, ValueError):
        return False


def passes(r):
    """W1's rules (bots admitted, ticks, latency, disconnects, one core, a quiet machine) and cast-to-effect."""
    if generatorBound(r):
        return False
    try:
        return (float(r["tick_p99_ms"]) <= LIMITS["tick_p99_ms"]
                and float(r["latency_p99_ms"]) <= LIMITS["latency_p99_ms"]
                and 0 <= float(r["cast_effect_p99_ms"]) <= LIMITS["cast_effect_p99_ms"]
                and int(r["cast_effect_samples"]) > 0
                and int(r["disconnects"]) == 0 and int(r["entered"]) == int(r["n"])
                and float(r["server_cpu"]) <= LIMITS["cpu"] * 0.98
                and float(r.get("others_cpu", 0.0)) <= 0.15)
    except (KeyError, ValueError):
        return False


def searchW2(opts):
    """W2 steps of 500 from C{opts.start} until one fails (or the C{opts.counts} list). @return: (best, results)."""
    best, results = w1.stepSearch("w2 N", opts.start, 500, w2Step, passes, generatorBound, opts)
    return best, [(n, ok, r) for n, ok, r, _ in results]


W1_KEYS = ("tick_p99_ms", "latency_p99_ms", "server_cpu", "gen_cpu", "bytes_per_client_s")
W2_KEYS = W1_KEYS + ("cast_effect_p99_ms", "casts_ok_s", "casts_refused_s",
                     "combat_events_per_client_s", "combat_bytes_per_client_s", "deaths", "kills",
                     "grants_s", "reward_writes_s", "db_cpu", "redis_cpu", "others_cpu")


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=["w1", "w2"], default=None)
    p.add_argument("--start", type=int, default=1500, help="first N of the W2 search")
    p.add_argument("--start-w1", type=int, default=2500, help="first N of the W1 search")
    p.add_argument("--max", type=int, default=10000)
    p.add_argument("--counts", default="", help="explicit W2 N list instead of the 500-step search")
    p.add_argument("--w1-counts", default="", help="explicit W1 N list instead of the search")
    p.add_argument("--warmup", type=float, default=10.0)
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--rate", type=float, default=300.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--world-write", choices=["direct", "twisted"], default="direct")
    p.add_argument("--aoi-interval", type=int, default=4, help="both zones' aoi_interval (as W1)")
    p.add_argument("--generator", choices=["python", "c"], default=None,
                   help="W1's generator (bench/w1.py's --generator)")
    p.add_argument("--python-bots", action="store_true",
                   help="W2's generator: the Python bots (python -m mmoshard.bots w2) instead of "
                        "bench/w1gen.c --workload W2")
    p.add_argument("--attempts", type=int, default=6)
    p.add_argument("--wait-quiet", type=float, default=300.0)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: one step of 200 bots each, 5 s warm-up, 10 s window, no "
                        "waiting for a quiet machine (not a capacity claim)")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--profile", action="store_true",
                   help="cProfile the world's ticks for 10 s of each W2 window (slows it: no measurement)")
    opts = p.parse_args(argv)
    if opts.quick:
        opts.counts = opts.counts or "200"
        opts.w1_counts = opts.w1_counts or "200"
        opts.warmup, opts.duration, opts.attempts, opts.wait_quiet = 5.0, 10.0, 1, 0.0
    load = os.getloadavg()[0]
    if load > 0.5:
        log(f"WARNING: load average {load:.2f}: the machine is not quiet")
    out = {"load_before": round(load, 2), "quick": opts.quick}
    opts.w2_generator = "python" if opts.python_bots or not shutil.which("gcc") else "c"
    if opts.w2_generator == "python" and not opts.python_bots:
        log("WARNING: no gcc: the Python bots drive W2 (they share the machine's second core "
            "with MariaDB and saturate it first)")
    opts.w2_binary = buildGenerator() if opts.w2_generator == "c" else None
    if opts.only != "w2":
        w1opts = argparse.Namespace(**vars(opts))
        w1opts.start, w1opts.counts, w1opts.profile_at = opts.start_w1, opts.w1_counts, 0
        if w1opts.generator is None:
            w1opts.generator = "c" if shutil.which("gcc") else "python"
        w1opts.gen_binary = w1.buildGenerator() if w1opts.generator == "c" else None
        best, results = w1.search("world", w1opts)
        out.update({"w1_capacity": best, "w1_generator": w1opts.generator,
                    "w1_generator_bound": any(w1.generatorBound(r) for _, _, r, _ in results)})
        out.update(picked("w1", best, [(n, r) for n, _, r, _ in results], W1_KEYS))
    if opts.only != "w1":
        best, results = searchW2(opts)
        out.update({"w2_capacity": best, "w2_generator": opts.w2_generator,
                    "w2_generator_bound": any(generatorBound(r) for _, _, r in results)})
        out.update(picked("w2", best, [(n, r) for n, _, r in results], W2_KEYS))
    if out.get("w1_capacity") and "w2_capacity" in out:
        out["ratio"] = round(out["w2_capacity"] / out["w1_capacity"], 2)
    print(" ".join(f"{k}={v}" for k, v in out.items()), flush=True)
    return 0


def picked(kind, best, results, keys):
    """The figures of the step at capacity (in a quick or listed run without a pass: of the last step)."""
    chosen = [r for n, r in results if n == best] or [r for _, r in results[-1:]]
    if not chosen:
        return {}
    r = chosen[0]
    fields = {f"{kind}_{k}": r.get(k) for k in keys}
    if not best:
        fields[f"{kind}_at"] = r.get("n")  # figures of a failed step, for a smoke run
    return fields


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]) or 0)
