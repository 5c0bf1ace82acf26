"""W1 (world movement): find the capacity of the world role and of a bare Twisted server in one run.

    python bench/w1.py                       # both, default steps, summary line at the end
    python bench/w1.py --only world --counts 2000,2500 --duration 30
    python bench/w1.py bare-server --port 7100 --records 25   (used by the bench itself)

Server on CPU 0, load generator on CPU 1 (taskset).  Real MariaDB and Redis.
Each step: fresh database and key prefix, N accounts and characters spawned
uniformly at random (seeded) in a square zone of side sqrt(N*pi*R^2/25), the
server started with twistd, the load generator driven against it.
A step where the generator sent under 95 % of the intended moves is
GENERATOR-BOUND: it does not count, and the summary says the capacity found
is then a lower bound (`<kind>_generator_bound=True`).

The generator is bench/w1gen.c where gcc is found (`--generator c`), else the
Python bots (`--generator python`, `python -m mmoshard.bots w1`).  Both run
the same workload (handshake, 5 Hz moves with the same bytes, pings, sampled
world.u decoding, ramp/warmup/window, summary line); the C one is a
single-threaded epoll program at about half the CPU, so one generator core
can drive more bots than the bare server's core can serve (the Python bots
saturate near 6,000).  It is compiled once per run (`gcc -O2`, cached by
source hash in the temp dir); each step writes the bots' framed hello (token
minted as the Python bots mint it) and world.enter into a handshake file the
program reads.  Each step's result says which generator drove it
(`generator=`).

    python bench/w1.py gen-selftest          # C move bytes == packMove, handshake file reads back
"""

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchutil import StoreCPU, cpuSeconds, freePort  # noqa: E402
from w1gen import KEY, buildGenerator, genSelftest, writeHandshakes  # noqa: E402
from mmoshard.bots.w1 import SEND_HZ  # noqa: E402

R = 50.0
LIMITS = {"tick_p99_ms": 50.0, "latency_p99_ms": 200.0, "cpu": 1.0}


def log(*args):
    print("[bench]", *args, file=sys.stderr, flush=True)


def side(n):
    return math.sqrt(n * math.pi * R * R / 25.0)


def busy(seconds=2.0):
    """@return: the share of all CPUs busy over C{seconds} (0..1), from /proc/stat."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        return sum(v), v[3] + v[4]
    t1, i1 = sample()
    time.sleep(seconds)
    t2, i2 = sample()
    return 1.0 - (i2 - i1) / max(1, t2 - t1)


def cpuTotals():
    """@return: (busy, total) jiffies of the whole machine."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return sum(v) - v[3] - v[4], sum(v)


def waitQuiet(limit, threshold=0.1):
    """Wait up to C{limit} seconds for the machine to be quiet. @return: the last busy share."""
    deadline = time.time() + limit
    b = busy()
    while b > threshold and time.time() < deadline:
        log(f"machine busy ({b:.0%}); waiting for quiet")
        time.sleep(5)
        b = busy()
    return b


def machineCPU(start, window):
    """Cores busy on the whole machine since C{start} (server + generator + anything else)."""
    busy0, total0 = start
    busy1, total1 = cpuTotals()
    cores = os.cpu_count() or 1
    return round((busy1 - busy0) / max(1, total1 - total0) * cores, 3)


def othersCPU(r):
    """
    Cores used by other processes during the window: a result with much is
    not valid.  The local database and Redis servers (C{db_cpu},
    C{redis_cpu}, where the step measured them) serve the workload: not others.
    """
    try:
        return (float(r["machine_cpu"]) - float(r["server_cpu"]) - float(r["gen_cpu"])
                - float(r.get("db_cpu", 0.0)) - float(r.get("redis_cpu", 0.0)))
    except (KeyError, ValueError):
        return 0.0


def quantile(values, q):
    if not values:
        return -1.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def getJSON(url, timeout=130):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


# --- the world server ----------------------------------------------------------


def prepareDatabase(n, seed):
    """A fresh MariaDB database with N accounts and characters. @return: (url, dropper)."""
    import pymysql

    from mmoshard.testing import requireMySQL

    url, dropper = requireMySQL()
    out = subprocess.run(
        [sys.executable, "-m", "mmoshard.cli", "migrate", "--config", "/dev/null"],
        env={**os.environ, "MMOSHARD_SQL_URL": url, "PYTHONPATH": ROOT},
        capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        dropper()
        raise SystemExit(f"migrate failed: {out.stdout}{out.stderr}")
    from mmoshard.testing import mysqlAddress

    host, port, user, password = mysqlAddress()
    db = url.rsplit("/", 1)[1]
    conn = pymysql.connect(host=host, port=port, user=user, password=password, database=db)
    rng = random.Random(seed)
    L = side(n)
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO accounts (id, username, username_lower, password_hash, created_at) "
            "VALUES (%s, %s, %s, 'x', 0)",
            [(i, f"bot{i}", f"bot{i}") for i in range(1, n + 1)])
        cur.executemany(
            "INSERT INTO characters (id, account_id, name, name_lower, class, zone, x, y, z, created_at) "
            "VALUES (%s, %s, %s, %s, 'warrior', 'w1', %s, 0, %s, 0)",
            [(i, i, f"Bot{i}", f"bot{i}", rng.uniform(0, L), rng.uniform(0, L))
             for i in range(1, n + 1)])
    conn.commit()
    conn.close()
    return url, dropper


def writeZones(path, n, aoiInterval):
    """Write the W1 zone (`w1`) for C{n} players to C{path}: also bench/tick.py's."""
    L = side(n)
    with open(path, "w") as f:
        f.write(f"""[zones.w1]
size = [{L:.1f}, {L:.1f}]
spawns = [[{L / 2:.1f}, 0.0, {L / 2:.1f}]]
aoi_radius = {R}
aoi_hysteresis = 5.0
aoi_interval = {aoiInterval}
tick_rate = 10.0
max_speed = 7.0
""")


def writeFiles(tmp, n, sqlURL, prefix, tcpPort, adminPort, aoiInterval, directWrite=True):
    from mmoshard.testing import writeConfig

    zones = os.path.join(tmp, "zones.toml")
    writeZones(zones, n, aoiInterval)
    return writeConfig(os.path.join(tmp, "w1.toml"), {
        "node": {"id": "w1-bench", "roles": ["world"], "var_dir": os.path.join(tmp, "var")},
        "sql": {"url": sqlURL, "pool_min": 2, "pool_max": 6},
        "volatile": {"url": "redis://127.0.0.1:6379/0", "prefix": prefix},
        "secrets": {"token_key": KEY},
        "listen": {"tcp": f"tcp:{tcpPort}:interface=127.0.0.1", "websocket": "", "http": "",
                   "admin": f"tcp:{adminPort}:interface=127.0.0.1"},
        "session": {"max_per_ip": 100000, "max_connections": 100000, "max_output": 4194304,
                    "direct_write": directWrite},
        "world": {"zones_file": zones, "instances_file": "", "start_zone": "w1", "max_players": 100000},
    })


def startWorld(config, adminPort):
    proc = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n", "--pidfile=",
         "mmoshard", "--config", config],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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


def botsCommand(n, port, opts, handshakes=None):
    """The generator's command line: the Python bots, or the C program with C{handshakes}."""
    args = ["--address", f"tcp:127.0.0.1:{port}", "--token-key", KEY, "--count", str(n),
            "--size", f"{side(n):.1f}", "--warmup", str(opts.warmup),
            "--duration", str(opts.duration), "--rate", str(opts.rate), "--seed", str(opts.seed)]
    if opts.generator == "c":
        return ["taskset", "-c", "1", opts.gen_binary] + args + ["--handshakes", handshakes]
    return ["taskset", "-c", "1", sys.executable, "-m", "mmoshard.bots", "w1"] + args


def runBots(n, port, opts, onWindowStart, onSummary):
    """Run the generator on CPU 1; call the hooks as its window starts and ends."""
    if opts.generator == "c":
        with tempfile.TemporaryDirectory(prefix="w1gen-") as d:
            path = os.path.join(d, "handshakes")
            writeHandshakes(path, n)
            return runGenerator(botsCommand(n, port, opts, path), opts, onWindowStart, onSummary)
    return runGenerator(botsCommand(n, port, opts), opts, onWindowStart, onSummary)


def runGenerator(cmd, opts, onWindowStart, onSummary, tag="w1"):
    """Run generator command C{cmd} whose progress lines start with C{[tag]}. @return: its summary."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    summary = {}
    extra = {}
    for line in proc.stdout:
        line = line.rstrip()
        if line.startswith(f"[{tag}]"):
            if "window start" in line and not extra.get("started"):
                extra["started"] = True
                extra.update(onWindowStart() or {})
            if opts.verbose or " measure " not in line:
                log(line)
        elif line.startswith(f"workload={tag.upper()}"):
            extra.update(onSummary() or {})
            summary = dict(kv.split("=", 1) for kv in line.split())
        else:
            log("bots:", line)
    proc.wait(timeout=60)
    summary.update(extra)
    summary["generator"] = opts.generator
    return summary


def worldStep(n, opts):
    tmp = tempfile.mkdtemp(prefix="w1-")
    url, dropper = prepareDatabase(n, opts.seed)
    from mmoshard.testing import requireRedis

    _, prefix, cleaner = requireRedis()
    tcpPort, adminPort = freePort(), freePort()
    config = writeFiles(tmp, n, url, prefix, tcpPort, adminPort, opts.aoi_interval,
                        opts.world_write == "direct")
    proc = startWorld(config, adminPort)
    state = {}
    stores = StoreCPU()
    try:
        def windowStart():
            state["cpu0"] = cpuSeconds(proc.pid)
            state["t0"] = time.monotonic()
            state["sys0"] = cpuTotals()
            stores.start()
            if opts.profile_at and n == opts.profile_at:
                import threading

                def grab():
                    request = urllib.request.Request(
                        f"http://127.0.0.1:{adminPort}/world/profile?seconds=10", data=b"",
                        headers={"Content-Type": "application/json"}, method="POST")
                    with urllib.request.urlopen(request, timeout=130) as r:
                        state["profile"] = json.loads(r.read())["profile"]
                threading.Thread(target=grab, daemon=True).start()
            return {}

        def summary():
            window = time.monotonic() - state["t0"]
            cpu = (cpuSeconds(proc.pid) - state["cpu0"]) / window
            ticks = getJSON(f"http://127.0.0.1:{adminPort}/world/ticks?seconds={window:.1f}")["w1"]
            return {"machine_cpu": machineCPU(state["sys0"], window),"tick_p50_ms": round(quantile(ticks, 0.5), 2),
                    "tick_p99_ms": round(quantile(ticks, 0.99), 2),
                    "ticks": len(ticks), "server_cpu": round(cpu, 3), **stores.cores(window)}

        result = runBots(n, tcpPort, opts, windowStart, summary)
        if "profile" in state:
            result["profile"] = state["profile"]
        return result
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        cleaner()
        dropper()
        shutil.rmtree(tmp, ignore_errors=True)


# --- the bare ceiling ------------------------------------------------------------


def bareStep(n, opts):
    port = freePort()
    proc = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, os.path.abspath(__file__), "bare-server",
         "--port", str(port), "--records", str(opts.records), "--write", opts.bare_write],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT},
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()  # "listening"
    state = {}
    try:
        def windowStart():
            state["cpu0"] = cpuSeconds(proc.pid)
            state["t0"] = time.monotonic()
            state["sys0"] = cpuTotals()
            os.kill(proc.pid, 10)  # SIGUSR1: start recording ticks

        def summary():
            window = time.monotonic() - state["t0"]
            cpu = (cpuSeconds(proc.pid) - state["cpu0"]) / window
            os.kill(proc.pid, 12)  # SIGUSR2: print the recorded ticks
            ticks = json.loads(proc.stdout.readline())
            return {"machine_cpu": machineCPU(state["sys0"], window),"tick_p50_ms": round(quantile(ticks, 0.5), 2),
                    "tick_p99_ms": round(quantile(ticks, 0.99), 2),
                    "ticks": len(ticks), "server_cpu": round(cpu, 3)}

        return runBots(n, port, opts, windowStart, summary)
    finally:
        proc.kill()
        proc.wait()
        del line


def bareServer(argv):
    """
    The ceiling: a Twisted server with the same framing, codec, socket reads
    and writes as the world (a welcome, an enter reply, a world.u per client
    per tick carrying `records` latest move records), and no game logic.
    """
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--records", type=int, default=25)
    p.add_argument("--write", choices=["direct", "twisted"], default="direct")
    opts = p.parse_args(argv)
    import gc
    import signal
    import struct

    from twisted.internet import epollreactor
    from twisted.internet.error import ReactorAlreadyInstalledError

    try:
        epollreactor.install()
    except ReactorAlreadyInstalledError:
        pass  # something imported the default reactor (epoll on Linux) first
    from twisted.internet import reactor
    from twisted.internet.protocol import Factory, Protocol
    from twisted.internet.task import LoopingCall

    from mmoshard.wire.codec import decode, encode
    from mmoshard.wire.direct import WriteBatch, directWriter
    from mmoshard.wire.framing import FrameDecoder, frame

    rec = struct.Struct("<IffhhI")
    batch = WriteBatch(reactor)
    clients = []
    ticks = []
    recording = [False]

    class Bare(Protocol):
        def connectionMade(self):
            self.decoder = FrameDecoder(65536)
            self.index = len(clients)
            self.record = None  # the newest move since the last tick, packed
            self.write = directWriter(self.transport, batch, opts.write == "direct").write
            clients.append(self)

        def dataReceived(self, data):
            for payload in self.decoder.feed(data):
                m = decode(payload)
                t = m["t"]
                if t == "world.move":
                    self.record = rec.pack(self.index, m["x"], m["z"], int(m["vx"] * 100),
                                           int(m["vz"] * 100), m["ct"])
                elif t == "hello":
                    self.send({"t": "welcome", "id": m.get("id"), "session_id": "s",
                               "resume_token": "r", "heartbeat_s": 10.0})
                elif t == "world.enter":
                    self.send({"t": "world.enter", "id": m.get("id"), "character_id": 1,
                               "x": 1.0, "y": 0.0, "z": 1.0, "k": 0})

        def send(self, message):
            self.write(frame(encode(message)))

        def connectionLost(self, reason):
            clients[self.index] = None

    def tick():
        t0 = time.perf_counter()
        live = clients
        n = len(live)
        k = min(opts.records, n - 1)
        # Like the world: each client hears the moves of its `records`
        # "neighbours" (the next clients by index) made since the last tick.
        fresh = [c.record if c is not None else None for c in live]
        for c in live:
            if c is not None:
                c.record = None
        for i, c in enumerate(live):
            if c is None:
                continue
            recs = [r for r in (fresh[(i + j) % n] for j in range(1, k + 1)) if r is not None]
            if recs:
                c.write(frame(encode({"m": b"".join(recs), "t": "world.u"})))
        if recording[0]:
            ticks.append((time.perf_counter() - t0) * 1000.0)

    def dump(*a):
        print(json.dumps([round(t, 3) for t in ticks]), flush=True)

    signal.signal(signal.SIGUSR1, lambda *a: recording.__setitem__(0, True))
    signal.signal(signal.SIGUSR2, lambda *a: reactor.callFromThread(dump))
    gc.freeze()
    reactor.listenTCP(opts.port, Factory.forProtocol(Bare), interface="127.0.0.1", backlog=4096)
    LoopingCall(tick).start(0.1)
    print("listening", flush=True)
    reactor.callLater(3600, reactor.stop)
    reactor.run()


# --- the search ------------------------------------------------------------------


# A step counts only if the generator drove the workload: every bot sends
# SEND_HZ moves a second.  Below this share the generator (one core, Python)
# is the bottleneck, and the step says nothing about the server.
DRIVEN = 0.95


def generatorBound(r):
    """
    True when the generator sent under L{DRIVEN} of the moves its entered
    bots should have: bots the server did not admit are the server's
    failure (L{passes} checks them), not the generator's.
    """
    try:
        return float(r["moves_sent_s"]) < DRIVEN * SEND_HZ * int(r["entered"])
    except (KeyError, ValueError):
        return False


def passes(r):
    if generatorBound(r):
        return False
    try:
        return (float(r["tick_p99_ms"]) <= LIMITS["tick_p99_ms"]
                and float(r["latency_p99_ms"]) <= LIMITS["latency_p99_ms"]
                and int(r["disconnects"]) == 0 and int(r["entered"]) == int(r["n"])
                and float(r["server_cpu"]) <= LIMITS["cpu"] * 0.98
                and float(r.get("others_cpu", 0.0)) <= 0.15)
    except (KeyError, ValueError):
        return False


def stepSearch(label, first, size, runStep, passes, generatorBound, opts):
    """
    The capacity search every bench shares: steps of C{size} from C{first}
    (or the C{opts.counts} list) until one fails; each step waits for a
    quiet machine and is run again (up to C{opts.attempts}) while other
    processes disturb its window.  C{label} names the steps in the log
    ("world N", "r1 K"...).  @return: (best, [(n, ok, result, profile)]).
    """
    counts = [int(c) for c in opts.counts.split(",")] if opts.counts else None
    n = counts[0] if counts else first
    best = 0
    results = []
    while n <= opts.max:
        for attempt in range(opts.attempts):
            quiet = waitQuiet(opts.wait_quiet)
            log(f"{label}={n}: load {os.getloadavg()[0]:.2f}, busy before {quiet:.0%}")
            r = runStep(n, opts)
            r["busy_before"] = round(quiet, 2)
            r["others_cpu"] = round(othersCPU(r), 3)
            if r["others_cpu"] <= 0.15:
                break
            log(f"{label}={n}: other processes used {r['others_cpu']} cores during the "
                f"window; result not valid" + ("" if attempt + 1 == opts.attempts else ", again"))
        ok = passes(r)
        profile = r.pop("profile", None)
        verdict = "PASS" if ok else "GENERATOR-BOUND" if generatorBound(r) else "FAIL"
        log(f"{label}={n}: {verdict} " + " ".join(f"{k}={v}" for k, v in r.items()))
        if profile:
            log(f"{label}={n} tick profile:\n{profile}")
        results.append((n, ok, r, profile))
        if ok:
            best = max(best, n)
        if counts:
            counts = counts[1:]
            if not counts:
                break
            n = counts[0]
        elif not ok:
            break
        else:
            n += size
    return best, results


def search(kind, opts):
    step = bareStep if kind == "bare" else worldStep
    first = opts.start_bare if kind == "bare" else opts.start
    return stepSearch(f"{kind} N", first, 500, step, passes, generatorBound, opts)


def main(argv):
    if argv[:1] == ["bare-server"]:
        return bareServer(argv[1:])
    if argv[:1] == ["gen-selftest"]:
        return genSelftest(argv[1:])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=["world", "bare"], default=None)
    p.add_argument("--start", type=int, default=2000, help="first N of the world search")
    p.add_argument("--start-bare", type=int, default=4000, help="first N of the bare search")
    p.add_argument("--max", type=int, default=10000)
    p.add_argument("--counts", default="", help="explicit N list instead of the 500-step search")
    p.add_argument("--warmup", type=float, default=10.0)
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--rate", type=float, default=300.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--records", type=int, default=25,
                   help="bare server: neighbours whose new moves each update carries")
    p.add_argument("--world-write", choices=["direct", "twisted"], default="direct",
                   help="world's [session] direct_write")
    p.add_argument("--bare-write", choices=["direct", "twisted"], default="direct",
                   help="bare server's writes: direct (the world's TCP path) or Twisted's "
                        "transport.write")
    p.add_argument("--aoi-interval", type=int, default=4,
                   help="W1 zone's aoi_interval (ticks between visibility recomputes)")
    p.add_argument("--profile", action="store_true",
                   help="after the search, profile the world's tick at its capacity (extra run)")
    p.add_argument("--generator", choices=["python", "c"], default=None,
                   help="load generator: bench/w1gen.c (the default where gcc is found: "
                        "the Python bots saturate their core before the bare server does) "
                        "or the Python bots (mmoshard.bots w1)")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--attempts", type=int, default=6,
                   help="runs of a step while other processes disturb its window")
    p.add_argument("--wait-quiet", type=float, default=300.0,
                   help="seconds to wait for an idle machine before each step")
    opts = p.parse_args(argv)
    load = os.getloadavg()[0]
    if load > 0.5:
        log(f"WARNING: load average {load:.2f}: the machine is not quiet")
    if opts.generator is None:
        opts.generator = "c" if shutil.which("gcc") else "python"
        if opts.generator == "python":
            log("WARNING: no gcc: the Python generator drives the steps, and cannot drive "
                "the bare server to its ceiling (steps will be GENERATOR-BOUND)")
    opts.gen_binary = buildGenerator() if opts.generator == "c" else None
    out = {"load_before": round(load, 2), "bare_write": opts.bare_write, "generator": opts.generator}
    for kind in ("world", "bare"):
        if opts.only and kind != opts.only:
            continue
        profileAt, opts.profile_at = opts.profile, 0
        best, results = search(kind, opts)
        out[f"{kind}_capacity"] = best
        if kind == "world" and best and profileAt:
            # A separate run: profiling slows the ticks, so it never counts.
            opts.profile_at = best
            r = worldStep(best, opts)
            log(f"world N={best} tick profile (not a measurement):\n{r.get('profile')}")
        # Capacity is then only a lower bound, and a ratio over it an upper one.
        out[f"{kind}_generator_bound"] = any(generatorBound(r) for _, _, r, _ in results)
        for n, ok, r, _ in results:
            if n == best:
                out.update({f"{kind}_{k}": r.get(k) for k in (
                    "tick_p99_ms", "latency_p99_ms", "server_cpu", "gen_cpu", "bytes_per_client_s")})
    if "world_capacity" in out and "bare_capacity" in out and out["bare_capacity"]:
        out["ratio"] = round(out["world_capacity"] / out["bare_capacity"], 2)
    print(" ".join(f"{k}={v}" for k, v in out.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]) or 0)
