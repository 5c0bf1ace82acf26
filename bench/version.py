"""Workload A1 (version part): the authenticated version check against a bare twisted.web JSON resource, same run, same cores.

Usage: python bench/version.py [--seconds 30] [--warmup 5] [--connections 50] [--tokens 200] [--rounds 3]

The servers (a real `twistd mmoshard --roles version` on Redis, and a bare
twisted.web JSON resource) run pinned to CPU 0; this driver runs on CPU 1
with keep-alive connections, each with one request outstanding, and prints
one summary line: key=value ...  Each server is measured for --seconds in
all, in --rounds slices alternating between the two (the first after
--warmup seconds, the others after 1 s), so that other work on the machine
during the run weighs on both figures alike.

Each request carries one of --tokens access tokens (one account each),
chosen at random, as clients reuse their token for the checks of one login.
The verifier keeps up to 4096 verified tokens (docs/version.md): with more
tokens than that, most checks decode and verify their token afresh, which
measures the check for clients each seen once.
"""

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
from benchutil import cpuSeconds, freePort  # noqa: E402

TOKEN_KEY = "bench-version-key-0123456789abcdef"

BARE_SERVER = r'''
import json, sys
from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import Site

BODY = json.loads(sys.argv[2])

class Bare(Resource):
    isLeaf = True
    def render_GET(self, request):
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return json.dumps(BODY, separators=(",", ":")).encode()

site = Site(Bare())
site.log = lambda request: None
if sys.argv[3:] != ["twisted"]:
    # The same HTTP channel as the node's sites (direct sends): the ceiling
    # does the same socket writes the same way; "twisted" gives stock twisted.web.
    from mmoshard.web.channel import directChannel
    site.protocol = directChannel
reactor.listenTCP(int(sys.argv[1]), site, interface="127.0.0.1")
reactor.run()
'''


class Client(asyncio.Protocol):
    """One keep-alive connection sending pre-encoded requests, one at a time."""

    def __init__(self, run, requests):
        self.run = run
        self.requests = requests
        self.buffer = b""
        self.sentAt = 0.0
        self.need = None

    def connection_made(self, transport):
        self.transport = transport
        self.send()

    def send(self):
        self.sentAt = time.perf_counter()
        self.transport.write(random.choice(self.requests))

    def data_received(self, data):
        self.buffer += data
        while True:
            if self.need is None:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self.buffer[:end]
                start = head.find(b"ontent-Length: ") + 15
                if start < 15:
                    start = head.find(b"ontent-length: ") + 15
                length = int(head[start : head.find(b"\r\n", start) if head.find(b"\r\n", start) > 0 else None])
                self.status = head[9:12]
                self.need = end + 4 + length
            if len(self.buffer) < self.need:
                return
            self.buffer = self.buffer[self.need :]
            self.need = None
            self.run.record(self.status, time.perf_counter() - self.sentAt)
            if self.run.running:
                self.send()
            else:
                self.transport.close()
                return


class Run:
    def __init__(self):
        self.running = True
        self.measuring = False
        self.latencies = []
        self.statuses = {}

    def record(self, status, latency):
        if self.measuring:
            self.latencies.append(latency)
            self.statuses[status] = self.statuses.get(status, 0) + 1


async def drive(port, requests, connections, warmup, seconds, serverPid):
    """One measured slice: @return: raw counts and sums, for L{summarise}."""
    loop = asyncio.get_running_loop()
    run = Run()
    for _ in range(connections):
        await loop.create_connection(lambda: Client(run, requests), "127.0.0.1", port)
    await asyncio.sleep(warmup)
    run.measuring = True
    cpu0, gen0, t0 = cpuSeconds(serverPid), time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    run.measuring = False
    elapsed = time.perf_counter() - t0
    server = cpuSeconds(serverPid) - cpu0
    generator = time.process_time() - gen0
    run.running = False
    await asyncio.sleep(0.2)
    return {
        "elapsed": elapsed,
        "latencies": run.latencies,
        "server_cpu": server,
        "gen_cpu": generator,
        "statuses": run.statuses,
    }


def summarise(slices):
    """Requests/s, p50/p99 and CPU (cores) over all of one server's slices."""
    elapsed = sum(s["elapsed"] for s in slices)
    lat = sorted(x for s in slices for x in s["latencies"])
    n = len(lat)
    statuses = {}
    for s in slices:
        for k, v in s["statuses"].items():
            statuses[k.decode()] = statuses.get(k.decode(), 0) + v
    return {
        "rps": n / elapsed,
        "p50_ms": lat[n // 2] * 1000 if n else 0,
        "p99_ms": lat[int(n * 0.99)] * 1000 if n else 0,
        "server_cpu": sum(s["server_cpu"] for s in slices) / elapsed,
        "gen_cpu": sum(s["gen_cpu"] for s in slices) / elapsed,
        "statuses": statuses,
        "slice_rps": [round(len(s["latencies"]) / s["elapsed"]) for s in slices],
    }


def waitHTTP(url, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except Exception:
            time.sleep(0.2)
    raise SystemExit(f"{url} not answering after {timeout}s")


def startNode(tmp, redisURL, prefix):
    from mmoshard.testing import writeConfig

    http, admin = freePort(), freePort()
    path = writeConfig(
        os.path.join(tmp, "version.toml"),
        {
            "node": {"id": "bench-version", "roles": ["version"], "var_dir": os.path.join(tmp, "var")},
            "volatile": {"url": redisURL, "prefix": prefix},
            "secrets": {"token_key": TOKEN_KEY},
            "listen": {
                "http": f"tcp:{http}:interface=127.0.0.1",
                "admin": f"tcp:{admin}:interface=127.0.0.1",
                "tcp": "",
                "websocket": "",
            },
            "version": {"releases_dir": os.path.join(ROOT, "etc", "releases")},
        },
    )
    env = dict(os.environ, PYTHONPATH=ROOT)
    args = ["taskset", "-c", "0", sys.executable, "-c",
            "from twisted.scripts.twistd import run; run()",
            "-n", "--pidfile=", "mmoshard", "--config", path]
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    waitHTTP(f"http://127.0.0.1:{admin}/healthz")
    return proc, http


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--bare-channel", choices=["direct", "twisted"], default="direct",
                        help="the bare resource's HTTP channel: the node's (direct) or stock twisted.web")
    parser.add_argument("--tokens", type=int, default=200, help="distinct access tokens (accounts)")
    parser.add_argument("--bare-requests", choices=["minimal", "same"], default="minimal",
                        help="what the bare resource is sent: a bare GET (the A1 baseline) "
                        "or the check's own requests (token header, region header, query)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating slices of check and bare the --seconds of each are split into")
    parser.add_argument("--redis", default=os.environ.get("MMOSHARD_TEST_REDIS", "127.0.0.1:6379"))
    options = parser.parse_args()
    os.sched_setaffinity(0, {1})

    from mmoshard.tokens import issueAccessToken

    redisURL = f"redis://{options.redis}/0"
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    tmp = tempfile.mkdtemp(prefix="bench-version-")
    proc, http = startNode(tmp, redisURL, prefix)
    try:
        builds = ["1.10.0"] * 6 + ["1.9.9", "1.9.0", "1.8.0", "1.11.0"]
        requests = []
        for account in range(1, options.tokens + 1):
            token = issueAccessToken(TOKEN_KEY, account, f"sid{account}", 3600, time.time())
            build = builds[account % len(builds)]
            requests.append(
                f"GET /v1/version?platform=windows&channel=live&build={build} HTTP/1.1\r\n"
                f"Host: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                f"X-Client-Region: eu\r\n\r\n".encode()
            )
        # Wait for the release published at start to be in force.
        for _ in range(100):
            req = urllib.request.Request(
                f"http://127.0.0.1:{http}/v1/version?platform=windows&build=1.10.0",
                headers={"Authorization": "Bearer " + issueAccessToken(TOKEN_KEY, 1, "s", 60, time.time())},
            )
            try:
                with urllib.request.urlopen(req, timeout=2) as r:
                    sample = json.loads(r.read())
                    break
            except urllib.error.HTTPError:
                time.sleep(0.2)
        else:
            raise SystemExit("the version role never served a release")
        port = freePort()
        bare = subprocess.Popen(
            ["taskset", "-c", "0", sys.executable, "-c", BARE_SERVER, str(port), json.dumps(sample),
             options.bare_channel],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            waitHTTP(f"http://127.0.0.1:{port}/")
            if options.bare_requests == "same":
                # The check's very requests: Twisted parses the same headers
                # and query for the bare resource, which ignores them.
                bareRequests = requests
            else:
                bareRequests = [b"GET /bare HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"]
            # Alternate slices of the two, so that whatever else the machine
            # does while we measure falls on both alike.
            checks, bares = [], []
            piece = options.seconds / options.rounds
            for i in range(options.rounds):
                warm = options.warmup if i == 0 else 1.0
                checks.append(asyncio.run(
                    drive(http, requests, options.connections, warm, piece, proc.pid)))
                bares.append(asyncio.run(
                    drive(port, bareRequests, options.connections, warm, piece, bare.pid)))
        finally:
            bare.terminate()
            bare.wait(30)
    finally:
        proc.terminate()
        proc.wait(30)
        cleanRedis(options.redis, prefix)
        shutil.rmtree(tmp, ignore_errors=True)

    check, base = summarise(checks), summarise(bares)
    print(f"# version check: {json.dumps(check)}")
    print(f"# bare resource: {json.dumps(base)}")
    ratio = check["rps"] / base["rps"] if base["rps"] else 0
    # Requests per second of server CPU: what the two cost, even when other
    # work on the machine kept a server from a full core (then only this
    # ratio compares them; the target is the throughput ratio on a quiet
    # machine, where both servers use a full core and the two agree).
    perCPU = [r["rps"] / r["server_cpu"] if r["server_cpu"] else 0 for r in (check, base)]
    cpuRatio = perCPU[0] / perCPU[1] if perCPU[1] else 0
    print(
        f"workload=A1-version check_rps={check['rps']:.0f} check_p50_ms={check['p50_ms']:.2f} "
        f"check_p99_ms={check['p99_ms']:.2f} check_server_cpu={check['server_cpu']:.2f} "
        f"bare_rps={base['rps']:.0f} bare_p50_ms={base['p50_ms']:.2f} bare_p99_ms={base['p99_ms']:.2f} "
        f"bare_server_cpu={base['server_cpu']:.2f} ratio={ratio:.2f} target=0.60 "
        f"check_per_cpu_s={perCPU[0]:.0f} bare_per_cpu_s={perCPU[1]:.0f} cpu_ratio={cpuRatio:.2f} "
        f"gen_cpu={max(check['gen_cpu'], base['gen_cpu']):.2f} "
        f"connections={options.connections} seconds={options.seconds:g} rounds={options.rounds} "
        f"tokens={options.tokens} bare_requests={options.bare_requests}"
    )


def cleanRedis(address, prefix):
    import socket

    host, _, port = address.partition(":")
    s = socket.create_connection((host, int(port or 6379)), timeout=2)
    script = b"for _,k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end return 0"
    parts = [b"EVAL", script, b"0", (prefix + "*").encode()]
    s.sendall(b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
    s.recv(64)
    s.close()


if __name__ == "__main__":
    main()
