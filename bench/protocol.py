"""Session-protocol benchmark: N clients at 10 Hz against the session server and a bare Twisted echo server."""

import argparse
import collections
import os
import resource
import subprocess
import sys
import time

import msgpack
from benchutil import cpuSeconds as serverCPUSeconds  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

KEY = "bench-signing-key-0123456789abcdef"
MESSAGE_SIZE = 40


def benchMessage():
    """A pre-encoded 40-byte request, identical for every client."""
    base = {"t": "bench.echo", "id": 1, "p": b""}
    pad = MESSAGE_SIZE - len(msgpack.packb(base, use_bin_type=True))
    base["p"] = b"x" * pad
    payload = msgpack.packb(base, use_bin_type=True)
    assert len(payload) == MESSAGE_SIZE, len(payload)
    return payload


# -- the servers (run in a child process pinned to CPU 0) -----------------------


def serveEcho(reactor):
    from twisted.internet.protocol import Factory
    from twisted.protocols.basic import Int32StringReceiver

    class Echo(Int32StringReceiver):
        MAX_LENGTH = 65536

        def stringReceived(self, data):
            self.sendString(data)

    return reactor.listenTCP(0, Factory.forProtocol(Echo), backlog=4096, interface="127.0.0.1")


def serveSession(reactor):

    from mmoshard.config import parseConfig
    from mmoshard.wire.manager import SessionManager
    from mmoshard.node import Node
    from mmoshard.store.volatile import MemoryStore
    from mmoshard.tokens import TokenVerifier
    from mmoshard.wire.service import SessionService

    raw = {
        "session": {"max_per_ip": 1000000, "max_connections": 1000000},
        "secrets": {"token_key": KEY},
        "listen": {
            "tcp": "tcp:0:interface=127.0.0.1:backlog=4096",
            "websocket": "",
            "http": "",
            "admin": "",
        },
    }
    config = parseConfig(raw, plugins=[], nodeId="bench", env={})
    node = Node(config, reactor, roles=[])
    store = MemoryStore(reactor, "bench:")
    store.open()
    manager = SessionManager(config.session, reactor, node.nodeId, node.metrics,
                             verifier=TokenVerifier(KEY, store, reactor), volatile=store)
    service = SessionService(reactor, manager, config.listen, config.shutdown.drain_timeout,
                             node.listeningPorts, node.nodeId)

    def echo(session, message):
        return {"p": message["p"]}

    service.manager.addHandlers("bench", {"bench.echo": echo})
    done = service.startService()
    assert done.called, "the session service starts synchronously on the memory store"
    return node.listeningPorts["tcp"]


def serve(mode):
    from twisted.internet import reactor

    port = (serveEcho if mode == "echo" else serveSession)(reactor)
    print(f"READY {port.getHost().port}", flush=True)
    # The driver kills us; bound the life anyway so a crashed driver leaves nothing.
    reactor.callLater(3600, reactor.stop)
    profile = os.environ.get("BENCH_PROFILE")
    if profile:
        import cProfile

        profiler = cProfile.Profile()

        def dump():
            profiler.disable()
            profiler.dump_stats(profile)

        reactor.addSystemEventTrigger("before", "shutdown", dump)
        profiler.enable()
    reactor.run()


# -- the load generator (this process, pinned to CPU 1) -------------------------


class Stats:
    def __init__(self):
        self.measuring = False
        self.sent = 0
        self.received = 0
        self.rtts = []
        self.errors = 0
        self.disconnects = 0


def makeClientProtocol(stats, mode, token, clock):
    from twisted.internet.defer import Deferred
    from twisted.internet.protocol import Protocol

    request = benchMessage()
    frame = len(request).to_bytes(4, "big") + request
    pongs = {}

    class BenchClient(Protocol):
        def __init__(self):
            self.buffer = b""
            self.sentAt = collections.deque()
            self.ready = Deferred()

        def connectionMade(self):
            if mode == "echo":
                self.ready.callback(self)
            else:
                hello = msgpack.packb(
                    {"t": "hello", "token": token, "client_version": "bench", "platform": "bench"}
                )
                self.transport.write(len(hello).to_bytes(4, "big") + hello)

        def send(self):
            self.sentAt.append(clock())
            self.transport.write(frame)
            if stats.measuring:
                stats.sent += 1

        def dataReceived(self, data):
            data = self.buffer + data if self.buffer else data
            offset, end = 0, len(data)
            while end - offset >= 4:
                size = int.from_bytes(data[offset : offset + 4], "big")
                if end - offset - 4 < size:
                    break
                payload = data[offset + 4 : offset + 4 + size]
                offset += 4 + size
                # Replies are long, pings and handshakes short: only the short
                # ones are decoded, keeping the generator lean.
                if size >= 30 and self.ready.called:
                    now = clock()
                    then = self.sentAt.popleft()
                    if stats.measuring:
                        stats.received += 1
                        stats.rtts.append(now - then)
                    continue
                self.control(msgpack.unpackb(payload))
            self.buffer = data[offset:]

        def control(self, message):
            kind = message.get("t")
            if kind == "welcome":
                self.ready.callback(self)
            elif kind == "ping":
                pong = pongs.get(message.get("n"))
                if pong is None:
                    body = msgpack.packb({"t": "pong", "n": message.get("n")})
                    pong = pongs[message.get("n")] = len(body).to_bytes(4, "big") + body
                self.transport.write(pong)
            elif kind == "error":
                stats.errors += 1

        def connectionLost(self, reason):
            stats.disconnects += 1

    return BenchClient


async def runLoad(reactor, port, mode, clients, rate, warmup, duration):
    from twisted.internet.defer import gatherResults
    from twisted.internet.endpoints import TCP4ClientEndpoint
    from twisted.internet.protocol import Factory
    from twisted.internet.task import LoopingCall, deferLater

    from mmoshard.tokens import issueAccessToken

    stats = Stats()
    clock = time.perf_counter
    conns = []
    for start in range(0, clients, 100):
        batch = []
        for i in range(start, min(start + 100, clients)):
            token = issueAccessToken(KEY, 1000 + i, f"bench-{i}", 3600, time.time())
            proto = makeClientProtocol(stats, mode, token, clock)
            endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=30)
            batch.append(endpoint.connect(Factory.forProtocol(proto)))
        protos = await gatherResults(batch)
        await gatherResults([p.ready for p in protos])
        conns.extend(protos)

    # One ticker at 10 x rate Hz sends for a tenth of the clients per tick,
    # staggering the load instead of 2,000 timers firing together.
    slots = 10
    groups = [conns[i::slots] for i in range(slots)]
    tick = [0]

    def fire():
        group = groups[tick[0] % slots]
        tick[0] += 1
        for proto in group:
            proto.send()

    ticker = LoopingCall(fire)
    ticker.clock = reactor
    ticker.start(1.0 / (rate * slots), now=False)
    await deferLater(reactor, warmup)

    serverCPU0 = serverCPUSeconds(reactor.serverPid)
    ownCPU0 = ownCPUSeconds()
    t0 = clock()
    stats.measuring = True
    await deferLater(reactor, duration)
    stats.measuring = False
    elapsed = clock() - t0
    serverCPU = (serverCPUSeconds(reactor.serverPid) - serverCPU0) / elapsed
    ownCPU = (ownCPUSeconds() - ownCPU0) / elapsed
    ticker.stop()
    await deferLater(reactor, 0.5)
    disconnects = stats.disconnects
    for proto in conns:
        proto.transport.abortConnection()
    rtts = sorted(stats.rtts)

    def pct(p):
        return rtts[min(len(rtts) - 1, int(len(rtts) * p))] * 1000 if rtts else float("nan")

    return {
        "msgs_per_s": stats.received / elapsed,
        "sent_per_s": stats.sent / elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "server_cpu": serverCPU,
        "gen_cpu": ownCPU,
        "errors": stats.errors,
        "disconnects": disconnects,
    }


def ownCPUSeconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def pin(cpu):
    if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > 1:
        os.sched_setaffinity(0, {cpu})


def measure(mode, args):
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred

    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve", mode],
        stdout=subprocess.PIPE,
        preexec_fn=lambda: pin(0),
        text=True,
    )
    try:
        line = child.stdout.readline()
        if not line.startswith("READY"):
            raise SystemExit(f"{mode} server failed to start: {line!r}")
        port = int(line.split()[1])
        reactor.serverPid = child.pid
        result = {}

        async def go():
            try:
                result.update(
                    await runLoad(
                        reactor, port, mode, args.clients, args.rate, args.warmup, args.duration
                    )
                )
            finally:
                reactor.stop()

        reactor.callWhenRunning(lambda: Deferred.fromCoroutine(go()))
        reactor.run()
        return result
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=10)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=10.0, help="messages/s per client")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--mode", choices=["both", "echo", "session"], default="both")
    parser.add_argument("--serve", choices=["echo", "session"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    pin(1)
    modes = ["echo", "session"] if args.mode == "both" else [args.mode]
    results = {}
    for mode in modes:
        # A reactor runs once per process, so each mode measures in a fresh one.
        if mode == modes[-1]:
            results[mode] = measure(mode, args)
        else:
            child = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--mode", mode,
                 "--clients", str(args.clients), "--rate", str(args.rate),
                 "--warmup", str(args.warmup), "--duration", str(args.duration)],
                capture_output=True, text=True, timeout=args.warmup + args.duration + 300,
            )
            results[mode] = parseSummary(child.stdout.strip().splitlines()[-1], mode)
    summary = {"clients": args.clients, "rate_hz": args.rate, "window_s": args.duration}
    for mode, result in results.items():
        for key, value in result.items():
            summary[f"{mode}_{key}"] = value
    if "echo" in results and "session" in results:
        echo, session = results["echo"], results["session"]
        summary["throughput_ratio"] = session["msgs_per_s"] / max(echo["msgs_per_s"], 1e-9)
        # CPU per message: the ceiling needs this much, we need that much.
        summary["cpu_efficiency_ratio"] = (
            (echo["server_cpu"] / max(echo["msgs_per_s"], 1e-9))
            / max(session["server_cpu"] / max(session["msgs_per_s"], 1e-9), 1e-12)
        )
    print(" ".join(f"{k}={fmt(v)}" for k, v in summary.items()))


def fmt(value):
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def parseSummary(line, mode):
    result = {}
    prefix = mode + "_"
    for item in line.split():
        key, _, value = item.partition("=")
        if key.startswith(prefix):
            number = float(value)
            result[key[len(prefix):]] = int(number) if key.endswith(("errors", "disconnects")) else number
    return result


if __name__ == "__main__":
    main()
