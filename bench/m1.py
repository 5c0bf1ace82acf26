"""M1 (matchmaking): tickets admitted and players placed in proposals per second, p99 ticket-to-proposal, Redis round trips per match.

    python bench/m1.py                 # 20,000 tickets, 500 tickets/s steady, 30 s window
    python bench/m1.py --quick         # smoke run: 400 tickets, 40/s, 10 s window (not a claim)
    python bench/m1.py --crash         # two matchmaking processes, kill -9 of the lease holder

One matchmaking process (`twistd mmoshard`, roles chat + matchmaking +
the bench-only `benchinstances`, which answers IInstances.create at once:
instance creation is excluded) on CPU 0, on MariaDB and on a Redis of its
own that the bench starts (`redis-server` on a free port, so `INFO` and
its CPU are this run's alone) on CPU 1 with the load generator
(`python -m mmoshard.bots m1`).  The plan (seeded): `--tickets`
groups, solo players and parties of 2-5 formed through chat, a quarter
for the rated arena2v2 queue and the rest for dungeon5 (1 tank, 1 healer,
3 damage; each party a part of one such team, so every role comes in the
quotas' proportions).

Phases: connect and form parties; fill (every group queues at once,
1,000 mm.queue in flight, as many as a node takes at once ([session]
max_pending): `admitted_per_s`, and the server's CPU over it,
`fill_server_cpu` (busy share of a core), `fill_cpu_us_per_ticket`, and how
busy the two cores were, `fill_cpu0_busy` (the server's) and
`fill_cpu1_busy` (the generator's and Redis's)); drain (the matchmaker works through
those ~20,000 tickets: `burst_placed_per_s`, `burst_matches_per_s`,
`burst_server_cpu`, `burst_rt_per_match`); then tickets arrive at `--rate`
per second from the groups at rest (a group rests `--think` s after its
match or removal), `--warmup` s, and the window of `--duration` s:
`placed_per_s`, `matches_per_s`, `wait_p99_ms` (ticket to first proposal,
every ticket queued in the window, those still waiting at the end counted
at their age), `matchable_p99_ms` (only tickets that could be matched when
admitted: the waiting tickets the generator knows of held a whole match
with them), `server_cpu`, `redis_cpu`, `rt_per_match` (Redis requests the
server sent: its `mmoshard_volatile_requests_total` on /metrics, per
proposal formed) and `rt_per_ticket`.  Bots decline 10 % of ready checks
(one member, chosen by the match id) and accept the rest.

With `--crash`: two such processes (node ids m1-a, m1-b), characters
split between them (parties across both); mid-window the bench kills the
holder of dungeon5's lease with SIGKILL; the bots on it reconnect to the
other.  Then `lost` (tickets the bots held that no process knows of, by
mm.status) and `duplicates` (a character matched twice for one ticket)
must be 0, `takeover_s` is the time from the kill until the other process
held the lease and `lease_left_s` the lease's time to live at the kill (no
process may take it sooner; both read in the bench's Redis).
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchutil import cpuSeconds, freePort  # noqa: E402
from w1gen import KEY  # noqa: E402

from mmoshard.bots.instancestub import ROLE, writePlugin  # noqa: E402
from mmoshard.bots.m1plan import characterPlan, planGroups  # noqa: E402
from mmoshard.bots.w2 import classRoles  # noqa: E402

# Descriptors a process needs besides its players' connections.
DESCRIPTORS_SPARE = 500


def log(*args):
    stamp = time.strftime("%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}"
    print("[bench]", stamp, *args, file=sys.stderr, flush=True)


def prepareDatabase(plan, tmp):
    """A fresh migrated MariaDB database with one account and character per (id, class) of C{plan}. @return: (url, dropper)."""
    import pymysql

    from mmoshard.testing import mysqlAddress, requireMySQL

    url, dropper = requireMySQL()
    # The queues' templates are not checked (instances are excluded).
    config = os.path.join(tmp, "migrate.toml")
    with open(config, "w") as f:
        f.write('[matchmaking]\ninstances_file = ""\n')
    out = subprocess.run([sys.executable, "-m", "mmoshard.cli", "migrate", "--config", config],
                         env={**os.environ, "MMOSHARD_SQL_URL": url, "PYTHONPATH": ROOT},
                         capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        dropper()
        raise SystemExit(f"migrate failed: {out.stdout}{out.stderr}")
    host, port, user, password = mysqlAddress()
    conn = pymysql.connect(host=host, port=port, user=user, password=password,
                           database=url.rsplit("/", 1)[1])
    with conn.cursor() as cur:
        for i in range(0, len(plan), 5000):
            rows = plan[i:i + 5000]
            cur.executemany("INSERT INTO accounts (id, username, username_lower, password_hash, "
                            "created_at) VALUES (%s, %s, %s, 'x', 0)",
                            [(c, f"bot{c}", f"bot{c}") for c, _ in rows])
            cur.executemany("INSERT INTO characters (id, account_id, name, name_lower, class, "
                            "created_at) VALUES (%s, %s, %s, %s, %s, 0)",
                            [(c, c, f"Bot{c}", f"bot{c}", cls) for c, cls in rows])
    conn.commit()
    conn.close()
    return url, dropper


def startRedis(tmp, cpu):
    """A private redis-server on a free port (no persistence), on CPU C{cpu} ("": any). @return: (process, port)."""
    port = freePort()
    # By default on CPU 1, beside the generator: CPU 0 is the matchmaking
    # process's alone, as the target's "one core" means.
    pin = ["taskset", "-c", cpu] if cpu else []
    proc = subprocess.Popen([*pin, "redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", tmp],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    for _ in range(100):
        if redisCommand(port, "PING") == "PONG":
            return proc, port
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("redis-server did not start")


def cpuTimes():
    """@return: /proc/stat's times now, per line: "cpu" (the machine), "cpu0", "cpu1"..."""
    with open("/proc/stat") as f:
        return {name: [int(v) for v in values]
                for name, *values in (line.split() for line in f) if name.startswith("cpu")}


def stolenShare(since=None):
    """@return: the machine's cpu times now, or the percentage stolen since C{since} (such times)."""
    now = cpuTimes()["cpu"]
    if since is None:
        return now
    spent = [b - a for a, b in zip(since, now)]
    return round(100 * spent[7] / max(1, sum(spent)), 1)


def cpuBusy():
    """@return: per CPU (cpu0, cpu1...), its (busy, all) jiffies now; idle and iowait are not busy."""
    return {name: (sum(t) - t[3] - t[4], sum(t)) for name, t in cpuTimes().items() if name != "cpu"}


def redisCommand(port, *words):
    """One inline command to the Redis on C{port}. @return: its reply as text, or None."""
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall((" ".join(words) + "\r\n").encode())
            data = b""
            # A bulk reply ($n) has a second line, unless it is nil ($-1).
            while not data.endswith(b"\r\n") or (data[:1] == b"$" and not data.startswith(b"$-")
                                                  and data.count(b"\r\n") < 2):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    head, _, rest = data.partition(b"\r\n")
    if head.startswith(b"$-"):
        return None
    return rest.decode().rstrip("\r\n") if head[:1] == b"$" else head[1:].decode()


def writeConfig(tmp, nodeId, url, redisURL, prefix, opts):
    from mmoshard.testing import writeConfig as write

    tcp, admin = freePort(), freePort()
    node = {"id": nodeId, "roles": ["chat", "matchmaking", ROLE], "var_dir": os.path.join(tmp, nodeId)}
    if opts.gc_threshold:
        node["gc_threshold"] = [int(x) for x in opts.gc_threshold.split(",")]
    path = write(os.path.join(tmp, f"{nodeId}.toml"), {
        "node": node,
        "sql": {"url": url, "pool_min": 2, "pool_max": 8},
        "volatile": {"url": redisURL, "prefix": prefix},
        "secrets": {"token_key": KEY},
        "listen": {"tcp": f"tcp:{tcp}:interface=127.0.0.1:backlog=4096", "websocket": "", "http": "",
                   "admin": f"tcp:{admin}:interface=127.0.0.1"},
        "session": {"max_per_ip": 1000000, "max_connections": 1000000, "resume_grace": 30.0},
        # The node's defaults (heartbeat 5 s, TTL 15 s), but with --crash: there
        # the dead node's entries (directory, locator) must lapse within the run.
        "directory": {"heartbeat": 1.0, "ttl": 3.0} if opts.crash else {},
        "matchmaking": {"instances_file": "", "match_interval": opts.match_interval, "lease_ttl": opts.lease_ttl,
                        "max_matches_per_pass": opts.max_matches,
                        "admission_first": opts.admission_first},
    })
    return path, tcp, admin


def startServer(config, admin, logPath, pythonPath):
    out = open(logPath, "ab")
    try:
        proc = subprocess.Popen(
            ["taskset", "-c", "0", sys.executable, "-c",
             "from twisted.scripts.twistd import run; run()", "-n", "--pidfile=", "mmoshard",
             "--config", config],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": pythonPath}, stdout=out,
            stderr=subprocess.STDOUT)
    finally:
        out.close()
    deadline = time.time() + 90
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}; see {logPath}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{admin}/readyz", timeout=2)
            return proc
        except Exception:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"server not ready after 90 s; see {logPath}")


def scrape(admin):
    """@return: the text of /metrics on the admin site C{admin} ("" when it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=30) as r:
            return r.read().decode()
    except Exception:
        return ""


def metric(text, name):
    """The sum of metric C{name} over its labels in /metrics C{text} (0 when absent)."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") or line.startswith(name + " "))


def metricByLabel(text, name, label):
    """@return: {value of C{label}: metric C{name}} in /metrics C{text} ({} when absent)."""
    import re

    found = {}
    pattern = re.compile(re.escape(name) + r'\{[^}]*' + re.escape(label) + r'="([^"]*)"[^}]*\} (\S+)')
    for line in text.splitlines():
        m = pattern.match(line)
        if m:
            found[m.group(1)] = found.get(m.group(1), 0.0) + float(m.group(2))
    return found


class Servers:
    """The matchmaking processes of a run and the private Redis: their counters at each mark."""

    def __init__(self, servers, redis, redisPort, tmp):
        self.servers = servers  # [(node id, process, admin port)]
        self.redis = redis
        self.redisPort = redisPort
        self.tmp = tmp
        self.dead = set()
        self.last = {}  # node id -> its last sample

    def sample(self):
        """@return: the servers' counters now (a killed process counts with its last sample)."""
        counts = {"t": time.monotonic(), "cpu": 0.0, "rt": 0, "scripts": {}, "proposals": 0.0,
                  "matches": 0.0, "tickets": 0.0}
        for nodeId, proc, admin in self.servers:
            if nodeId not in self.dead:
                # One scrape per sample: rendering /metrics costs the server
                # CPU, and the fill's sample falls in the fill.
                text = scrape(admin)
                self.last[nodeId] = {
                    "cpu": cpuSeconds(proc.pid),
                    "rt": metric(text, "mmoshard_volatile_requests_total"),
                    "scripts": metricByLabel(text, "mmoshard_volatile_script_calls_total",
                                             "script"),
                    "proposals": metric(text, "mmoshard_mm_proposals_total"),
                    "matches": metric(text, "mmoshard_mm_matches_total"),
                    "tickets": metric(text, "mmoshard_mm_tickets_total")}
            last = self.last.get(nodeId)
            if last is None:
                continue
            for key in ("cpu", "rt", "proposals", "matches", "tickets"):
                counts[key] += last[key]
            for k, v in last["scripts"].items():
                counts["scripts"][k] = counts["scripts"].get(k, 0) + v
        counts["redis_cpu"] = cpuSeconds(self.redis.pid)
        counts["cpus"] = cpuBusy()
        return counts


def figures(a, b, prefix=""):
    """The server-side figures between two samples."""
    seconds = max(1e-9, b["t"] - a["t"])
    proposals = b["proposals"] - a["proposals"]
    rt = b["rt"] - a["rt"]
    out = {f"{prefix}server_cpu": round((b["cpu"] - a["cpu"]) / seconds, 3),
           f"{prefix}redis_cpu": round((b["redis_cpu"] - a["redis_cpu"]) / seconds, 3),
           f"{prefix}rt_per_match": round(rt / proposals, 1) if proposals > 0 else -1,
           f"{prefix}server_matches_per_s": round(proposals / seconds, 1)}
    tickets = b["tickets"] - a["tickets"]
    if not prefix:
        out["rt_per_ticket"] = round(rt / tickets, 2) if tickets > 0 else -1
        out["server_completed_per_s"] = round((b["matches"] - a["matches"]) / seconds, 1)
        scripts = {k: v - a["scripts"].get(k, 0) for k, v in b["scripts"].items()}
        top = sorted(((v, k) for k, v in scripts.items() if v > 0), reverse=True)[:6]
        if proposals > 0:
            out["scripts_per_match"] = ",".join(f"{k}:{v / proposals:.2f}" for v, k in top) or "none"
    return out


def fillFigures(a, b):
    """
    The fill's cost: the servers' CPU (busy share of a core, and seconds per
    ticket they admitted, in microseconds) from the fill's mark to the
    drain's, when the last mm.queue was answered.  With matching held off
    (--match-interval past the fill) that is admission alone.
    """
    seconds = max(1e-9, b["t"] - a["t"])
    cpu = b["cpu"] - a["cpu"]
    tickets = b["tickets"] - a["tickets"]
    out = {"fill_server_cpu": round(cpu / seconds, 3),
           "fill_cpu_us_per_ticket": round(1e6 * cpu / tickets) if tickets > 0 else -1}
    # How busy each core was (the server's, and the generator's and Redis's).
    for name, (busy, total) in sorted(b["cpus"].items()):
        was = a["cpus"].get(name)
        if was is not None and name in ("cpu0", "cpu1"):
            out[f"fill_{name}_busy"] = round((busy - was[0]) / max(1, total - was[1]), 2)
    return out


def botsCommand(opts, addresses):
    cmd = ["taskset", "-c", "1", sys.executable, "-m", "mmoshard.bots", "m1",
           "--address", ",".join(f"tcp:127.0.0.1:{p}" for p in addresses), "--token-key", KEY,
           "--tickets", str(opts.tickets), "--rate", str(opts.rate),
           "--backlog", str(opts.backlog), "--window", str(opts.window),
           "--decline", str(opts.decline), "--think", str(opts.think),
           "--settle", str(opts.settle),
           "--arena-share", str(opts.arena_share), "--warmup", str(opts.warmup),
           "--duration", str(opts.duration), "--seed", str(opts.seed),
           "--connect-rate", str(opts.connect_rate),
           "--ramp-timeout", str(60.0 if opts.quick else 600.0)]
    if opts.crash:
        cmd.append("--reconnect")
    return cmd


def runGenerator(opts, addresses, servers):
    """Run the bots, sampling the servers at their marks (and killing the lease holder with --crash). @return: the summary."""
    proc = subprocess.Popen(botsCommand(opts, addresses), cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": ROOT}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    samples = {}
    summary = {}
    crash = {}
    for line in proc.stdout:
        line = line.rstrip()
        if line.startswith("[m1] mark "):
            name = line.split()[2]
            samples[name] = servers.sample()
            log(line)
            if name == "window" and opts.crash:
                crash["at"] = time.monotonic() + opts.duration / 3
        elif line.startswith("workload=M1"):
            samples["end"] = servers.sample()
            summary = dict(kv.split("=", 1) for kv in line.split())
        elif line.startswith("[m1]"):
            if opts.verbose or " window " not in line:
                log(line)
        else:
            log("bots:", line)
        if crash.get("at") and time.monotonic() >= crash["at"] and "killed" not in crash:
            crash.update(killHolder(servers))
    proc.wait(timeout=120)
    if "fill" in samples and "drain" in samples:
        summary.update(fillFigures(samples["fill"], samples["drain"]))
    if "fill" in samples and "steady" in samples:
        summary.update(figures(samples["fill"], samples["steady"], "burst_"))
    if "window" in samples and "end" in samples:
        summary.update(figures(samples["window"], samples["end"]))
    if opts.crash:
        summary.update({k: v for k, v in crash.items() if k != "at"})
    return summary


def killHolder(servers):
    """
    SIGKILL the process holding dungeon5's lease; @return: what happened:
    who, C{takeover_s} (the kill to the other process holding the lease)
    and C{lease_left_s} (the lease's time to live at the kill: no process
    can take it over sooner).  Both read in the bench's Redis, not on an
    admin page, which a busy survivor answers late.
    """
    byNode = {n: (p, a) for n, p, a in servers.servers}
    key = "m1:{mm}:lease:dungeon5"
    holder = redisCommand(servers.redisPort, "GET", key)
    if holder not in byNode:
        log(f"no lease holder found ({holder!r}): nothing killed")
        return {"killed": "none"}
    proc, _ = byNode[holder]
    os.kill(proc.pid, signal.SIGKILL)
    killedAt = time.monotonic()
    left = redisCommand(servers.redisPort, "PTTL", key)
    servers.dead.add(holder)
    log(f"killed {holder} (pid {proc.pid}) with SIGKILL; its lease had {left} ms left")
    takeover = -1.0
    while time.monotonic() - killedAt < 30:
        now = redisCommand(servers.redisPort, "GET", key)
        if now and now != holder:
            takeover = time.monotonic() - killedAt
            break
        time.sleep(0.02)
    log(f"lease of dungeon5 taken over after {takeover:.2f}s")
    # (PTTL -2: the key was already gone; -1: no TTL; both reported as -1.)
    leftS = int(left) / 1000 if left and left.isdigit() else -1.0
    return {"killed": holder, "takeover_s": round(takeover, 2), "lease_left_s": round(leftS, 2)}


def fitDescriptors(opts):
    """
    Every player is a session: one descriptor in the generator and one in
    a server.  Raise this process's soft limit to the hard one (the
    processes it starts inherit it) and, when the plan's players do not
    fit under it, cut the plan to the groups that do (the first groups of
    a seeded plan are the same whatever its length), loudly.
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    groups = planGroups(opts.tickets, classRoles(os.path.join(ROOT, "etc", "classes.toml")),
                        opts.seed, opts.arena_share)
    room, players, fit = hard - DESCRIPTORS_SPARE, 0, 0
    for g in groups:
        if players + g.size > room:
            break
        players += g.size
        fit += 1
    if fit < opts.tickets:
        log(f"WARNING: {opts.tickets} tickets need "
            f"{sum(g.size for g in groups) + DESCRIPTORS_SPARE} descriptors, the limit is "
            f"{hard} (ulimit -Hn): running {fit} tickets ({players} players)")
        opts.tickets = fit
        opts.backlog = min(opts.backlog, fit)
    return hard


def run(opts):
    tmp = tempfile.mkdtemp(prefix="m1-")
    plan = characterPlan(planGroups(opts.tickets, classRoles(os.path.join(ROOT, "etc", "classes.toml")),
                                    opts.seed, opts.arena_share))
    log(f"{opts.tickets} tickets, {len(plan)} players; preparing the database")
    url, dropper = prepareDatabase(plan, tmp)
    redisProc, redisPort = startRedis(tmp, opts.redis_cpu)
    stolen0 = stolenShare()
    procs = []
    result = {}
    try:
        pythonPath = os.pathsep.join([writePlugin(os.path.join(tmp, "plugins")), ROOT])
        nodes = ["m1-a", "m1-b"] if opts.crash else ["m1-a"]
        servers, addresses = [], []
        for nodeId in nodes:
            config, tcp, admin = writeConfig(tmp, nodeId, url, f"redis://127.0.0.1:{redisPort}/0",
                                             "m1:", opts)
            proc = startServer(config, admin, opts.server_log or os.path.join(tmp, f"{nodeId}.log"),
                               pythonPath)
            procs.append(proc)
            servers.append((nodeId, proc, admin))
            addresses.append(tcp)
        log(f"server(s) ready: {', '.join(nodes)}")
        result = runGenerator(opts, addresses, Servers(servers, redisProc, redisPort, tmp))
        result["load_before"] = opts.load_before
        # The hypervisor's share of this machine's CPU time over the run: runs
        # with much of it are not comparable (their p99s especially).
        result["steal_pct"] = stolenShare(stolen0)
        result["fd_limit"] = opts.fd_limit
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        redisProc.terminate()
        redisProc.wait(timeout=30)
        dropper()
        if opts.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return result


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tickets", type=int, default=None, help="groups, one ticket each (20000; --quick 400)")
    p.add_argument("--backlog", type=int, default=None, help="tickets of the fill (default: every group)")
    p.add_argument("--rate", type=float, default=None,
                   help="steady arrivals, tickets/s (500, about 1,000 players/s; --quick 40)")
    p.add_argument("--redis-cpu", default="1", help="the CPU the bench's Redis runs on (\"\": any)")
    p.add_argument("--window", type=int, default=1000,
                   help="mm.queue in flight in the fill (a node's [session] max_pending)")
    p.add_argument("--decline", type=float, default=0.1)
    p.add_argument("--think", type=float, default=1.0)
    p.add_argument("--settle", type=float, default=1.0,
                   help="seconds a formed party waits before it queues")
    p.add_argument("--arena-share", type=float, default=0.25)
    p.add_argument("--warmup", type=float, default=None, help="10 s; --quick 5")
    p.add_argument("--duration", type=float, default=None, help="30 s; --quick 10")
    p.add_argument("--connect-rate", type=float, default=1000.0)
    p.add_argument("--match-interval", type=float, default=0.25, help="[matchmaking] match_interval (its default)")
    p.add_argument("--lease-ttl", type=float, default=5.0)
    p.add_argument("--max-matches", type=int, default=200, help="[matchmaking] max_matches_per_pass")
    p.add_argument("--admission-first", type=int, default=50,
                   help="[matchmaking] admission_first (its default; 0: off)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--gc-threshold", default="",
                   help="the servers' [node] gc_threshold, e.g. 700,10,10 (default: the node's)")
    p.add_argument("--crash", action="store_true",
                   help="two matchmaking processes; kill -9 the lease holder a third into the window")
    p.add_argument("--quick", action="store_true", help="smoke run (not a claim)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (server logs)")
    p.add_argument("--server-log", default="", help="the servers' log (default: in the temp dir)")
    p.add_argument("--verbose", action="store_true")
    opts = p.parse_args(argv)
    full = {"tickets": 20000, "rate": 500.0, "warmup": 10.0, "duration": 30.0}
    quick = {"tickets": 400, "rate": 40.0, "warmup": 5.0, "duration": 10.0}
    for key, value in (quick if opts.quick else full).items():
        if getattr(opts, key) is None:
            setattr(opts, key, value)
    if opts.backlog is None:
        opts.backlog = opts.tickets
    opts.fd_limit = fitDescriptors(opts)
    opts.load_before = round(os.getloadavg()[0], 2)
    if opts.load_before > 0.5:
        log(f"WARNING: load average {opts.load_before}: the machine is not quiet")
    result = run(opts)
    out = {"quick": opts.quick, "crash": opts.crash}
    out.update(result)
    print(" ".join(f"{k}={v}" for k, v in out.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]) or 0)
