"""The W1 load generator: N bots walking in one zone, 5 Hz moves, sampled latency, one summary line."""

import argparse
import gc
import math
import os
import random
import resource
import struct
import sys
import time

import msgpack
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.internet.task import LoopingCall

from mmoshard.tokens import issueAccessToken
from mmoshard.wire.codec import decode, encode
from mmoshard.wire.framing import FrameDecoder, frame

SPEED = 5.0
SEND_HZ = 5
SLOTS = 10  # sender loop runs at SLOTS * SEND_HZ per second, one slot of bots each
MOVE_RECORD = struct.Struct("<IffhhI")
WORLD_U = b"\xa7world.u"


def _movePacker():
    """
    A struct that writes a whole framed world.move message in one call:
    {t, x, z, vx, vz, ct, k} with float64 coordinates and uint32 ct/k.
    """
    head = b"\x87\xa1t" + msgpack.packb("world.move")
    parts = [head, b"\xa1x\xcb", b"\xa1z\xcb", b"\xa2vx\xcb", b"\xa2vz\xcb", b"\xa2ct\xce", b"\xa1k\xce"]
    body = struct.Struct(">" + "".join(f"{len(p)}s{c}" for p, c in zip(parts, ["", "d", "d", "d", "d", "I", "I"])))
    size = body.size
    full = struct.Struct(">I" + body.format[1:])
    const = (size,)

    def pack(x, z, vx, vz, ct, k):
        return full.pack(*const, parts[0], parts[1], x, parts[2], z, parts[3], vx, parts[4], vz,
                         parts[5], ct, parts[6], k)

    return pack


packMove = _movePacker()


def nowMillis():
    return int(time.time() * 1000.0) & 0xFFFFFFFF


class Stats:
    """Everything counted across bots; the window fields only between start and end."""

    def __init__(self):
        self.connected = 0
        self.entered = 0
        self.failed = 0
        self.disconnects = 0
        self.corrections = 0
        self.errors = 0
        self.bytesIn = 0
        self.msgsIn = 0
        self.sent = 0
        self.latencies = []
        self.measuring = False
        self.transfers = 0


class Bot(Protocol):
    """One simulated player: hello, world.enter, then walking and listening."""

    def __init__(self, run, index):
        self.run = run
        self.index = index
        self.cid = run.firstId + index
        rng = run.rng
        self.x = rng.uniform(0, run.size)
        self.z = rng.uniform(0, run.size)
        self.newHeading(time.monotonic())
        self.k = 0
        self.entered = False
        self.sampled = index % run.sampleEvery == 0
        self.decoder = FrameDecoder(1 << 22)
        self.closing = False
        self.lastSend = None
        self.attempts = 0

    def newHeading(self, now):
        rng = self.run.rng
        h = rng.uniform(0, 2 * math.pi)
        self.vx = SPEED * math.cos(h)
        self.vz = SPEED * math.sin(h)
        self.turnAt = now + rng.uniform(2.0, 5.0)

    def connectionMade(self):
        self.run.stats.connected += 1
        self.transport.setTcpNoDelay(True)
        self.transport.write(frame(encode({
            "t": "hello", "id": 1, "token": self.run.token(self.cid),
            "client_version": "bots-1", "platform": "bots"})))

    def enter(self):
        self.attempts += 1
        self.transport.write(frame(encode({"t": "world.enter", "id": 2, "character_id": self.cid})))

    def dataReceived(self, data):
        stats = self.run.stats
        frames = self.decoder.feed(data)
        if stats.measuring:
            stats.bytesIn += len(data)
            stats.msgsIn += len(frames)
        for p in frames:
            if self.entered and WORLD_U in p and not self.sampled:
                continue
            self.handle(decode(p))

    def handle(self, m):
        t = m["t"]
        run = self.run
        if t == "world.u":
            blob = m.get("m")
            if blob and run.stats.measuring:
                now = nowMillis()
                lat = run.stats.latencies
                for rec in MOVE_RECORD.iter_unpack(blob):
                    lat.append((now - rec[5]) & 0xFFFFFFFF)
        elif t == "ping":
            self.transport.write(frame(encode({"t": "pong", "n": m.get("n")})))
        elif t == "world.correct":
            run.stats.corrections += 1
            self.x, self.z, self.k = m["x"], m["z"], m["k"]
        elif t == "welcome":
            self.enter()
        elif t == "world.enter":
            if "redirect" in m:
                run.stats.errors += 1
                return
            self.entered = True
            self.x, self.z, self.k = m["x"], m["z"], m["k"]
            self.lastSend = time.monotonic()
            run.stats.entered += 1
            run.slots[self.index % SLOTS].append(self)
        elif t == "error":
            run.stats.errors += 1
            if m.get("id") == 2 and self.attempts < 10:
                run.reactor.callLater(m.get("retry_after") or 1.0, self.enter)
            elif m.get("id") == 1:
                run.stats.failed += 1
        elif t == "world.transfer":
            run.stats.transfers += 1

    def step(self, now, ct):
        dt = now - self.lastSend
        self.lastSend = now
        if now >= self.turnAt:
            self.newHeading(now)
        size = self.run.size
        x = self.x + self.vx * dt
        z = self.z + self.vz * dt
        if x < 0.0:
            x = -x
            self.vx = -self.vx
        elif x > size:
            x = 2 * size - x
            self.vx = -self.vx
        if z < 0.0:
            z = -z
            self.vz = -self.vz
        elif z > size:
            z = 2 * size - z
            self.vz = -self.vz
        self.x = x
        self.z = z
        self.transport.write(packMove(x, z, self.vx, self.vz, ct, self.k))

    def connectionLost(self, reason):
        if not self.run.stopping:
            self.run.stats.disconnects += 1
        slot = self.run.slots[self.index % SLOTS]
        if self in slot:
            slot.remove(self)


class BotFactory(ClientFactory):
    def __init__(self, run, index):
        self.run = run
        self.index = index

    def buildProtocol(self, addr):
        bot = self.run.botClass(self.run, self.index)
        self.run.bots.append(bot)
        return bot

    def clientConnectionFailed(self, connector, reason):
        self.run.stats.failed += 1


class Run:
    """One W1 run: ramp up, warm up, measure, report."""

    tag = "w1"  # of its progress lines
    workload = "W1"  # of its summary line
    botClass = Bot

    def __init__(self, reactor, opts):
        self.reactor = reactor
        self.opts = opts
        self.host, _, port = opts.address.replace("tcp:", "").rpartition(":")
        self.port = int(port)
        self.size = opts.size
        self.firstId = opts.first_id
        self.rng = random.Random(opts.seed)
        self.sampleEvery = max(1, opts.count // max(1, opts.sample))
        self.stats = Stats()
        self.bots = []
        self.slots = [[] for _ in range(SLOTS)]
        self.stopping = False
        self.slot = 0
        self.started = time.monotonic()
        self.cpu0 = None
        self.phase = "ramp"

    def token(self, cid):
        return issueAccessToken(self.opts.token_key, cid, f"bot-{cid}", 86400, time.time())

    def start(self):
        interval = 1.0 / self.opts.rate
        for i in range(self.opts.count):
            self.reactor.callLater(i * interval, self.reactor.connectTCP, self.host, self.port,
                                   BotFactory(self, i), 30)
        self.sender = LoopingCall(self.send)
        self.sender.start(1.0 / (SEND_HZ * SLOTS))
        self.progress = LoopingCall(self.report)
        self.progress.start(1.0, now=False)
        self.reactor.callLater(self.opts.ramp_timeout, self.rampDeadline)

    def send(self):
        slot = self.slots[self.slot]
        self.slot = (self.slot + 1) % SLOTS
        now = time.monotonic()
        ct = nowMillis()
        for bot in slot:
            bot.step(now, ct)
        self.stats.sent += len(slot)

    def cpu(self):
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    def report(self):
        s = self.stats
        elapsed = time.monotonic() - self.started
        line = (f"[{self.tag}] {self.phase} t={elapsed:.0f}s connected={s.connected} entered={s.entered}"
                f"/{self.opts.count} failed={s.failed} disconnects={s.disconnects} errors={s.errors}")
        print(line, file=sys.stderr, flush=True)
        if self.phase == "ramp" and s.entered >= self.opts.count:
            self.phase = "warmup"
            self.reactor.callLater(self.opts.warmup, self.beginWindow)

    def rampDeadline(self):
        if self.phase == "ramp":
            print(f"[{self.tag}] ramp not complete after {self.opts.ramp_timeout}s; measuring anyway",
                  file=sys.stderr, flush=True)
            self.phase = "warmup"
            self.beginWindow()

    def beginWindow(self):
        self.phase = "measure"
        gc.collect()
        print(f"[{self.tag}] window start", file=sys.stderr, flush=True)
        s = self.stats
        s.bytesIn = s.msgsIn = 0
        s.latencies = []
        self.window0 = (time.monotonic(), self.cpu(), s.disconnects, s.corrections, s.sent)
        s.measuring = True
        self.reactor.callLater(self.opts.duration, self.endWindow)

    def endWindow(self):
        self.stats.measuring = False
        summary = self.summary()
        print(" ".join(f"{k}={v}" for k, v in summary.items()), flush=True)
        self.stop()

    def summary(self):
        """@return: the summary line's fields, for the window that just ended."""
        s = self.stats
        t0, cpu0, disc0, corr0, sent0 = self.window0
        window = time.monotonic() - t0
        n = max(1, s.entered)
        lat = sorted(s.latencies)

        def q(p):
            return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else -1

        return {
            "workload": self.workload, "n": self.opts.count, "entered": s.entered,
            "window_s": round(window, 1),
            "latency_p50_ms": q(0.50), "latency_p99_ms": q(0.99), "latency_samples": len(lat),
            "bytes_per_client_s": round(s.bytesIn / n / window, 1),
            "msgs_per_client_s": round(s.msgsIn / n / window, 2),
            "moves_sent_s": round((s.sent - sent0) / window, 1),
            "disconnects": s.disconnects, "window_disconnects": s.disconnects - disc0,
            "corrections": s.corrections - corr0, "errors": s.errors, "failed": s.failed,
            "gen_cpu": round((self.cpu() - cpu0) / window, 3),
        }

    def stop(self):
        self.stopping = True
        for loop in (self.sender, self.progress):
            if loop.running:
                loop.stop()
        for bot in self.bots:
            if bot.transport is not None:
                bot.transport.abortConnection()
        self.reactor.callLater(0.5, self.reactor.stop)


def argumentParser(prog="python -m mmoshard.bots w1", description=__doc__):
    """The options every movement workload takes (W2 adds its own)."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--address", default="tcp:127.0.0.1:7000", help="session TCP listener")
    p.add_argument("--token-key", default=os.environ.get("MMOSHARD_TOKEN_KEY"),
                   help="the node's token key, to mint the bots' access tokens")
    p.add_argument("--count", type=int, default=100, help="bots")
    p.add_argument("--first-id", type=int, default=1,
                   help="bot i is account and character first_id + i")
    p.add_argument("--size", type=float, default=None, help="map side L (default from W1's rule)")
    p.add_argument("--radius", type=float, default=50.0, help="AOI radius R, for the default L")
    p.add_argument("--rate", type=float, default=250.0, help="connections per second while ramping")
    p.add_argument("--warmup", type=float, default=10.0)
    p.add_argument("--duration", type=float, default=30.0, help="measured window, seconds")
    p.add_argument("--ramp-timeout", type=float, default=120.0)
    p.add_argument("--sample", type=int, default=100, help="bots that fully decode updates")
    p.add_argument("--seed", type=int, default=1)
    return p


def checkArgs(p, opts):
    """Required options and the W1 map side. @return: C{opts}."""
    if not opts.token_key:
        p.error("--token-key (or MMOSHARD_TOKEN_KEY) is required")
    if opts.size is None:
        opts.size = math.sqrt(opts.count * math.pi * opts.radius ** 2 / 25.0)
    return opts


def parseArgs(argv):
    p = argumentParser()
    return checkArgs(p, p.parse_args(argv))


def main(argv):
    return runWith(parseArgs(argv), Run)


def runWith(opts, runClass):
    """Run C{runClass} (a L{Run}) with C{opts} on the epoll reactor until it stops. @return: 0."""
    from twisted.internet import epollreactor
    from twisted.internet.error import ReactorAlreadyInstalledError

    try:
        epollreactor.install()
    except ReactorAlreadyInstalledError:
        pass  # something imported the default reactor (epoll on Linux) first
    from twisted.internet import reactor

    gc.freeze()
    run = runClass(reactor, opts)
    reactor.callWhenRunning(run.start)
    # Bound in time whatever happens.
    limit = opts.ramp_timeout + opts.warmup + opts.duration + 30
    reactor.callLater(limit, lambda: (print(f"[{run.tag}] time limit reached", file=sys.stderr),
                                      run.stop()))
    reactor.run()
    return 0
