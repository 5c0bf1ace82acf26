"""Workload C1: chat fan-out (parties of 5, whispers, one zone channel of 500) over real sessions, one or two chat processes on Redis.

Usage: python bench/chat.py [--users 5000] [--processes 1] [--seconds 30]
       [--warmup 10] [--sample 0.1] [--scale 1.0]

The chat server(s) (real `twistd mmoshard --roles chat` on MariaDB + Redis)
run pinned to CPU 0; this driver runs on CPU 1.  Each user sends one party
message every 5 s and a whisper every 20 s; 50 members of the zone channel
(500 users) post to it every 10 s (--scale multiplies every rate).  Message
texts carry the send time; a sample of the clients decodes what it receives
for the latency (send to receive), the rest only count frames and answer
pings.  Deliveries per second come from the servers' own counters over the
measured window.  Prints one summary line: key=value ...
"""

import argparse
import json
import os
import random
import resource
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
from benchutil import cpuSeconds, freePort  # noqa: E402

import msgpack  # noqa: E402
from twisted.internet import epollreactor  # noqa: E402

epollreactor.install()

from twisted.internet import reactor  # noqa: E402
from twisted.internet.defer import Deferred, DeferredSemaphore, gatherResults  # noqa: E402
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol  # noqa: E402
from twisted.internet.protocol import Protocol  # noqa: E402
from twisted.internet.task import LoopingCall, deferLater  # noqa: E402

TOKEN_KEY = "bench-chat-key-0123456789abcdef00"
HEADER = struct.Struct(">I")
PARTY_SIZE = 5
ZONE_SIZE = 500
ZONE_POSTERS = 50
TICK = 0.02
MEASURED = {"chat.party.message", "chat.whisper", "chat.channel.message"}


def packed(message):
    payload = msgpack.packb(message, use_bin_type=True)
    return HEADER.pack(len(payload)) + payload


class Stats:
    def __init__(self):
        self.frames = 0
        self.latencies = []
        self.byKind = {}
        self.timeline = []
        self.measuring = False
        self.errors = {}
        self.sent = 0
        self.dropped = 0


class BotProtocol(Protocol):
    """A lean session client: length-prefixed msgpack, full decoding only when sampled."""

    def __init__(self, bot):
        self.bot = bot
        self.buffer = b""

    def connectionMade(self):
        self.bot.connected(self)

    def dataReceived(self, data):
        buffer = self.buffer + data if self.buffer else data
        bot = self.bot
        stats = bot.stats
        offset = 0
        end = len(buffer)
        sampled = bot.sampled or not bot.ready
        while end - offset >= 4:
            (size,) = HEADER.unpack_from(buffer, offset)
            if end - offset - 4 < size:
                break
            start = offset + 4
            offset = start + size
            stats.frames += 1
            if sampled:
                bot.message(msgpack.unpackb(buffer[start:offset], raw=False), stats)
            elif size < 40 and b"ping" in buffer[start:offset]:
                bot.message(msgpack.unpackb(buffer[start:offset], raw=False), stats)
        self.buffer = buffer[offset:] if offset < end else b""

    def connectionLost(self, reason):
        self.bot.lost()


class Bot:
    """One user: its character, its connection and its scheduled sends."""

    def __init__(self, index, cid, name, token, sampled, stats):
        self.index = index
        self.cid = cid
        self.name = name
        self.token = token
        self.sampled = sampled
        self.stats = stats
        self.proto = None
        self.ready = False
        self.waiting = None
        self.closed = False

    def connected(self, proto):
        self.proto = proto
        self.write({"t": "hello", "token": self.token, "client_version": "1.0.0",
                    "platform": "bench"})

    def write(self, message):
        if self.proto is not None and not self.closed:
            self.proto.transport.write(packed(message))
            self.stats.sent += 1

    def lost(self):
        self.closed = True
        if self.ready:
            self.stats.dropped += 1
        if self.waiting is not None and not self.waiting.called:
            self.waiting.errback(RuntimeError("connection lost during login"))

    def message(self, m, stats):
        t = m.get("t")
        if t == "ping":
            pong = {"t": "pong"}
            if "n" in m:
                pong["n"] = m["n"]
            self.write(pong)
            return
        if t == "welcome":
            self.write({"t": "chat.hello", "character_id": self.cid})
            return
        if t == "chat.hello":
            self.ready = True
            if self.waiting is not None and not self.waiting.called:
                self.waiting.callback(None)
            return
        if t == "error":
            code = m.get("code")
            stats.errors[code] = stats.errors.get(code, 0) + 1
            if not self.ready and self.waiting is not None and not self.waiting.called:
                self.waiting.errback(RuntimeError(f"login refused: {code} {m.get('message')}"))
            return
        if t in MEASURED and stats.measuring:
            try:
                latency = time.time() - float(m["text"])
            except (KeyError, ValueError):
                return
            stats.latencies.append(latency)
            stats.byKind.setdefault(t, []).append(latency)
            stats.timeline.append((int(time.time()), latency))


async def connectBot(bot, port):
    bot.waiting = Deferred()
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=30)
    await connectProtocol(endpoint, BotProtocol(bot))
    timer = reactor.callLater(60, lambda: bot.waiting.called or bot.waiting.errback(
        RuntimeError("login timed out")))
    try:
        await bot.waiting
    finally:
        if timer.active():
            timer.cancel()


def adminGet(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.read().decode()


def deliveries(adminPort):
    total = 0.0
    for line in adminGet(adminPort, "/metrics").splitlines():
        if line.startswith("mmoshard_chat_deliveries_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


GC_LOG_HOOK = """
import os, time
_gcStart = [0.0]
_gcLog = open(os.path.join(LOGDIR, "gc-%d.log" % os.getpid()), "a", buffering=1)
def _gcTimer(phase, info):
    if phase == "start":
        _gcStart[0] = time.perf_counter()
    else:
        took = time.perf_counter() - _gcStart[0]
        if took >= 0.005:
            _gcLog.write("%.3f %d %.4f\\n" % (time.time(), info["generation"], took))
gc.callbacks.append(_gcTimer)
"""


def gcPauses(tmp, pids, start, end):
    """@return: (count, longest, total seconds) of logged collections in [start, end]."""
    count, longest, total = 0, 0.0, 0.0
    for pid in pids:
        try:
            with open(os.path.join(tmp, f"gc-{pid}.log")) as f:
                for line in f:
                    at, _, took = line.split()
                    if start <= float(at) <= end:
                        count += 1
                        longest = max(longest, float(took))
                        total += float(took)
        except OSError:
            pass
    return count, longest, total


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def _txn_makeUsers(cursor, count, now):
    rows = []
    for i in range(count):
        name = f"b{i:06d}"
        rows.append((name, name, "x", now))
    cursor.executemany(
        "INSERT INTO accounts (username, username_lower, password_hash, created_at) "
        "VALUES (?, ?, ?, ?)", rows,
    )
    ids = dict(cursor.execute("SELECT username, id FROM accounts").fetchall())
    cursor.executemany(
        "INSERT INTO characters (account_id, name, name_lower, class, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        [(ids[n], n, n, "warrior", now) for n, _, _, _ in rows],
    )
    chars = dict(cursor.execute("SELECT name, id FROM characters").fetchall())
    return [(chars[n], ids[n], n) for n, _, _, _ in rows]


async def seedVolatile(store, users):
    """Parties of five and the zone channel, as the chat role itself stores them."""
    ops = []
    for first in range(0, len(users) - PARTY_SIZE + 1, PARTY_SIZE):
        members = users[first : first + PARTY_SIZE]
        pid = f"bench{first:06d}"
        party = {"id": pid, "leader": members[0][0], "v": 1,
                 "members": [[cid, name] for cid, _, name in members]}
        ops.append(store.set(f"chat:party:{pid}",
                             json.dumps(party, separators=(",", ":"), sort_keys=True),
                             ttl=3600))
        for cid, _, _ in members:
            ops.append(store.set(f"chat:pof:{cid}", pid, ttl=3600))
        if len(ops) > 2000:
            await gatherResults(ops)
            ops = []
    for cid, _, _ in users[:ZONE_SIZE]:
        ops.append(store.set(f"chat:zone:{cid}", "bench", ttl=3600))
    await gatherResults(ops)


def startServer(args, nodeId, mysqlURL, redisURL, prefix, tmp):
    from mmoshard.testing import writeConfig

    tcp, admin = freePort(), freePort()
    node = {"id": nodeId, "roles": ["chat"], "var_dir": os.path.join(tmp, nodeId)}
    if args.gc_threshold:
        node["gc_threshold"] = [int(x) for x in args.gc_threshold.split(",")]
    path = writeConfig(os.path.join(tmp, f"{nodeId}.toml"), {
        "node": node,
        "sql": {"url": mysqlURL},
        "volatile": {"url": redisURL, "prefix": prefix},
        "secrets": {"token_key": TOKEN_KEY},
        "listen": {"tcp": f"tcp:{tcp}:interface=127.0.0.1:backlog=4096",
                   "admin": f"tcp:{admin}:interface=127.0.0.1", "http": "", "websocket": ""},
        "session": dict(
            {"max_connections": 100000, "max_per_ip": 100000},
            **({"replay_buffer": args.replay_buffer} if args.replay_buffer else {}),
        ),
        "chat": {"rate": 5.0, "burst": 20},
    })
    log = open(os.path.join(tmp, f"{nodeId}.log"), "wb")
    paths = [ROOT, os.environ.get("PYTHONPATH")]
    if args.gc_log:
        # A sitecustomize logs every collection of 5 ms or more with its time.
        site = os.path.join(tmp, "gc-site")
        os.makedirs(site, exist_ok=True)
        with open(os.path.join(site, "sitecustomize.py"), "w") as f:
            f.write("import gc\n" + GC_LOG_HOOK.replace("LOGDIR", repr(tmp)))
        paths.insert(0, site)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))
    proc = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, "-c",
         "from twisted.scripts.twistd import run; run()", "-n", "--pidfile=", "mmoshard",
         "--config", path],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 60
    while True:
        if proc.poll() is not None or time.time() > deadline:
            raise SystemExit(f"chat server {nodeId} not ready; see {log.name}")
        try:
            adminGet(admin, "/readyz")  # raises unless 200
            break
        except Exception:
            time.sleep(0.2)
    return proc, tcp, admin


async def run(args):
    from mmoshard.store.sql import SQLStore, migrate
    from mmoshard.store.volatile import makeVolatileStore
    from mmoshard.testing import requireMySQL, requireRedis
    from mmoshard.tokens import issueAccessToken, newLoginId

    rng = random.Random(args.seed)
    mysqlURL, dropDB = requireMySQL()
    redisURL, prefix, cleanRedis = requireRedis()
    servers = []
    tmp = tempfile.mkdtemp(prefix="bench-chat-")
    try:
        sql = SQLStore(reactor, mysqlURL)
        sql.open()
        await migrate(sql)
        users = await sql.runInteraction(_txn_makeUsers, args.users, time.time())
        await sql.close()
        volatile = makeVolatileStore(redisURL, reactor, prefix)
        volatile.open()
        await seedVolatile(volatile, users)
        await volatile.close()

        for n in range(args.processes):
            servers.append(startServer(args, f"chat-{n + 1}", mysqlURL, redisURL, prefix, tmp))
        os.sched_setaffinity(0, {1})

        stats = Stats()
        now = time.time()
        bots = []
        for i, (cid, accountId, name) in enumerate(users):
            token = issueAccessToken(TOKEN_KEY, accountId, newLoginId(), 7200, now)
            bots.append(Bot(i, cid, name, token, rng.random() < args.sample, stats))
        gate = DeferredSemaphore(args.concurrency)
        t0 = time.time()
        await gatherResults([
            gate.run(connectBot, bot, servers[bot.index % len(servers)][1]) for bot in bots
        ], consumeErrors=True)
        connectSeconds = time.time() - t0

        schedule = buildSchedule(bots, rng, args.scale)
        names = [b.name for b in bots]
        period = schedule["period"]
        wheel = schedule["wheel"]
        state = {"slot": 0, "start": time.time()}

        def tick():
            # Catch up on every slot due by now, so a slow tick never thins the load.
            due = int((time.time() - state["start"]) / TICK)
            while state["slot"] <= due:
                for kind, bot in wheel[state["slot"] % len(wheel)]:
                    text = f"{time.time():.6f}"
                    if kind == "p":
                        bot.write({"t": "chat.party.say", "text": text})
                    elif kind == "w":
                        to = names[rng.randrange(len(names))]
                        if to == bot.name:
                            to = names[(bot.index + 1) % len(names)]
                        bot.write({"t": "chat.whisper", "to": to, "text": text})
                    else:
                        bot.write({"t": "chat.channel.say", "channel": "zone:bench",
                                   "text": text})
                state["slot"] += 1

        loop = LoopingCall(tick)
        loop.start(TICK)
        await deferLater(reactor, args.warmup, lambda: None)

        before = sum(deliveries(admin) for _, _, admin in servers)
        cpuBefore = [cpuSeconds(p.pid) for p, _, _ in servers]
        genBefore = resource.getrusage(resource.RUSAGE_SELF)
        stats.measuring = True
        stats.errors.clear()
        w0 = time.time()
        await deferLater(reactor, args.seconds, lambda: None)
        window = time.time() - w0
        stats.measuring = False
        w1 = time.time()
        after = sum(deliveries(admin) for _, _, admin in servers)
        cpuAfter = [cpuSeconds(p.pid) for p, _, _ in servers]
        genAfter = resource.getrusage(resource.RUSAGE_SELF)
        loop.stop()

        lat = stats.latencies
        genCPU = (genAfter.ru_utime + genAfter.ru_stime - genBefore.ru_utime
                  - genBefore.ru_stime) / window
        serverCPU = [(a - b) / window for a, b in zip(cpuAfter, cpuBefore)]
        ready = sum(1 for b in bots if b.ready and not b.closed)
        summary = {
            "workload": "C1",
            "users": args.users,
            "processes": args.processes,
            "scale": args.scale,
            "replay_buffer": args.replay_buffer or "default",
            "server_gc": args.gc_threshold.replace(",", "/") or "node-default",
            "ready": ready,
            "connect_s": round(connectSeconds, 1),
            "window_s": round(window, 1),
            "deliveries_per_s": round((after - before) / window),
            "p50_ms": round(percentile(lat, 0.50) * 1000, 2),
            "p99_ms": round(percentile(lat, 0.99) * 1000, 2),
            "max_ms": round(max(lat) * 1000, 1) if lat else float("nan"),
            "latency_samples": len(lat),
            "party_p99_ms": round(percentile(stats.byKind.get("chat.party.message", []), 0.99) * 1000, 2),
            "whisper_p99_ms": round(percentile(stats.byKind.get("chat.whisper", []), 0.99) * 1000, 2),
            "zone_p99_ms": round(percentile(stats.byKind.get("chat.channel.message", []), 0.99) * 1000, 2),
            "server_cpu": "+".join(f"{c:.2f}" for c in serverCPU),
            "generator_cpu": round(genCPU, 2),
            "disconnects": stats.dropped,
            "errors": sum(stats.errors.values()),
            "error_codes": ",".join(f"{k}:{v}" for k, v in sorted(stats.errors.items()))
            or "none",
            "schedule_period_s": period,
        }
        if args.gc_log:
            count, longest, total = gcPauses(tmp, [p.pid for p, _, _ in servers], w0, w1)
            summary["gc_pauses"] = count
            summary["gc_max_ms"] = round(longest * 1000, 1)
            summary["gc_total_ms"] = round(total * 1000)
        if args.timeline:
            perSecond = {}
            for second, latency in stats.timeline:
                perSecond.setdefault(second, []).append(latency)
            first = min(perSecond) if perSecond else 0
            sys.stderr.write("second: p99_ms/max_ms\n" + " ".join(
                f"{s - first}:{percentile(v, 0.99) * 1000:.0f}/{max(v) * 1000:.0f}"
                for s, v in sorted(perSecond.items())) + "\n")
        print(" ".join(f"{k}={v}" for k, v in summary.items()), flush=True)
    finally:
        for proc, _, _ in servers:
            proc.terminate()
        for proc, _, _ in servers:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        try:
            cleanRedis()
        finally:
            dropDB()


def buildSchedule(bots, rng, scale):
    """A timing wheel of TICK slots: which bot sends what in each slot."""
    period = 20.0
    slots = int(period / TICK)
    wheel = [[] for _ in range(slots)]

    def every(kind, bot, seconds):
        seconds /= scale
        phase = rng.random() * seconds
        t = phase
        while t < period:
            wheel[int(t / TICK) % slots].append((kind, bot))
            t += seconds

    partied = (len(bots) // PARTY_SIZE) * PARTY_SIZE
    for bot in bots[:partied]:
        every("p", bot, 5.0)
    for bot in bots:
        every("w", bot, 20.0)
    for bot in bots[: min(ZONE_POSTERS, ZONE_SIZE, len(bots))]:
        every("z", bot, 10.0)
    return {"period": period, "wheel": wheel}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--processes", type=int, default=1, choices=(1, 2))
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--sample", type=float, default=0.1,
                        help="share of clients that decode what they receive")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every send rate (1.0 is C1 as written)")
    parser.add_argument("--concurrency", type=int, default=200,
                        help="logins in flight while connecting")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeline", action="store_true",
                        help="also print per-second latency to stderr")
    parser.add_argument("--gc-threshold", default="",
                        help="the servers' [node] gc_threshold, e.g. 700,10,10 (CPython's)")
    parser.add_argument("--gc-log", action="store_true",
                        help="log the servers' collections of 5 ms or more and report them")
    parser.add_argument("--replay-buffer", type=int, default=0,
                        help="session.replay_buffer of the servers (0: the default)")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, args.users * 2 + 1024))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    failure = []

    def go():
        d = Deferred.fromCoroutine(run(args))
        d.addErrback(lambda f: failure.append(f))
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(go)
    # Bound the whole run in time whatever happens.
    reactor.callLater(args.warmup + args.seconds + 600, reactor.stop)
    reactor.run()
    if failure:
        failure[0].printTraceback()
        raise SystemExit(1)


if __name__ == "__main__":
    main()
