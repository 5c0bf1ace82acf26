"""Workload A1 (auth part): login and refresh throughput on MariaDB + Redis against the bare argon2 rate, same run, same cores.

Usage: python bench/auth.py [--seconds 20] [--warmup 3] [--connections 8] [--accounts 400] [--rounds 3]

The server (a real `twistd mmoshard --roles auth` on MariaDB and Redis, with
the default OWASP argon2id parameters and one hashing thread per core it
has) runs pinned to CPU 0; this driver runs on CPU 1.  In the same run it
measures the bare argon2id verification rate of the same parameters with
the same number of threads on CPU 0 (the login ceiling) and a bare
twisted.web JSON resource on CPU 0 (the refresh ceiling).  During the login
storm a probe sends the cheap authenticated GET /v1/accounts/me 20 times a
second and reports its p99: the reactor is never blocked by hashing.
Refresh and the bare resource are measured in --rounds alternating slices
(--seconds each in all), so that other work on the machine weighs on both
alike; refresh_cpu_ratio compares requests per second of server CPU.
Prints one summary line: key=value ...
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import version as common  # noqa: E402  (bench/version.py: the keep-alive driver)

TOKEN_KEY = "bench-auth-key-0123456789abcdef"
PASSWORD = "bench password 0123"
SERVER_CPUS = {0}
TASKSET = ",".join(str(c) for c in sorted(SERVER_CPUS))

BARE_ARGON2 = r'''
import sys, threading, time
import argon2
params = dict(time_cost=int(sys.argv[1]), memory_cost=int(sys.argv[2]), parallelism=int(sys.argv[3]))
threads, seconds = int(sys.argv[4]), float(sys.argv[5])
ph = argon2.PasswordHasher(type=argon2.Type.ID, **params)
encoded = ph.hash("bench password 0123")
count = [0] * threads
stop = time.perf_counter() + seconds
def work(i):
    while time.perf_counter() < stop:
        ph.verify(encoded, "bench password 0123")
        count[i] += 1
t0 = time.perf_counter()
ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
[t.start() for t in ts]
[t.join() for t in ts]
print(sum(count) / (time.perf_counter() - t0))
'''


def bareArgon2(params, threads, seconds):
    """@return: argon2id verifications per second with C{threads} threads on the server's CPUs."""
    out = subprocess.run(["taskset", "-c", TASKSET, sys.executable, "-c", BARE_ARGON2,
                          str(params["time_cost"]), str(params["memory_cost"]),
                          str(params["parallelism"]), str(threads), str(seconds)],
                         check=True, capture_output=True, text=True)
    return float(out.stdout.strip())


def post(url, body, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(url, json.dumps(body).encode(), headers)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def setUpDatabase(accounts, params):
    """A fresh MariaDB database, migrated, holding C{accounts} accounts."""
    import argon2
    import pymysql

    from mmoshard.testing import mysqlAddress, requireMySQL

    url, drop = requireMySQL()
    subprocess.run([sys.executable, "-m", "mmoshard.cli", "migrate", "--sql-url", url],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
                   env=dict(os.environ, PYTHONPATH=ROOT))
    encoded = argon2.PasswordHasher(type=argon2.Type.ID, **params).hash(PASSWORD)
    host, port, user, password = mysqlAddress()
    conn = pymysql.connect(host=host, port=port, user=user, password=password,
                           database=url.rsplit("/", 1)[1])
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO accounts (username, username_lower, password_hash, created_at) "
            "VALUES (%s, %s, %s, %s)",
            [(f"bench{i}", f"bench{i}", encoded, time.time()) for i in range(accounts)],
        )
    conn.commit()
    conn.close()
    return url, drop


def startNode(tmp, sqlURL, redisURL, prefix, threads):
    from mmoshard.testing import writeConfig

    http, admin = common.freePort(), common.freePort()
    path = writeConfig(os.path.join(tmp, "auth.toml"), {
        "node": {"id": "bench-auth", "roles": ["auth"], "var_dir": os.path.join(tmp, "var")},
        "sql": {"url": sqlURL, "pool_min": 4, "pool_max": 8},
        "volatile": {"url": redisURL, "prefix": prefix},
        "secrets": {"token_key": TOKEN_KEY},
        "listen": {"http": f"tcp:{http}:interface=127.0.0.1",
                   "admin": f"tcp:{admin}:interface=127.0.0.1", "tcp": "", "websocket": ""},
        "auth": {"hash_threads": threads, "login_rate": 10 ** 9, "access_ttl": 3600.0},
    })
    args = ["taskset", "-c", TASKSET, sys.executable, "-c",
            "from twisted.scripts.twistd import run; run()",
            "-n", "--pidfile=", "mmoshard", "--config", path]
    proc = subprocess.Popen(args, env=dict(os.environ, PYTHONPATH=ROOT), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    common.waitHTTP(f"http://127.0.0.1:{admin}/readyz")
    return proc, http


def loginRequest(i):
    body = json.dumps({"username": f"bench{i}", "password": PASSWORD}).encode()
    return (b"POST /v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


async def probe(port, token, run, hz=20.0):
    """GET /v1/accounts/me every 1/hz s on its own connection; latencies into C{run}."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = (f"GET /v1/accounts/me HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Authorization: Bearer {token}\r\n\r\n").encode()
    while run.running:
        t0 = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        run.record(head[9:12], time.perf_counter() - t0)
        await asyncio.sleep(max(0.0, 1 / hz - (time.perf_counter() - t0)))
    writer.close()


async def loginStorm(port, requests, options, pid, token):
    probeRun = common.Run()
    task = asyncio.ensure_future(probe(port, token, probeRun))
    await asyncio.sleep(options.warmup)
    probeRun.measuring = True
    result = common.summarise(
        [await common.drive(port, requests, options.connections, 0.0, options.seconds, pid)])
    probeRun.measuring = False
    probeRun.running = False
    await task
    lat = sorted(probeRun.latencies)
    result["probe_p99_ms"] = lat[int(len(lat) * 0.99)] * 1000 if lat else 0
    result["probe_n"] = len(lat)
    result["probe_statuses"] = {k.decode(): v for k, v in probeRun.statuses.items()}
    return result


class RefreshClient(asyncio.Protocol):
    """One keep-alive connection refreshing one login over and over (the token rotates)."""

    def __init__(self, run, token):
        self.run, self.token, self.buffer, self.need = run, token, b"", None

    def connection_made(self, transport):
        self.transport = transport
        self.send()

    def send(self):
        body = json.dumps({"refresh_token": self.token}).encode()
        self.sentAt = time.perf_counter()
        self.transport.write(b"POST /v1/sessions/refresh HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(body), body))

    def data_received(self, data):
        self.buffer += data
        if self.need is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            self.status = self.buffer[9:12]
            self.need = end + 4 + int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
            self.start = end + 4
        if len(self.buffer) < self.need:
            return
        answer = json.loads(self.buffer[self.start:self.need])
        self.buffer, self.need = b"", None
        self.run.record(self.status, time.perf_counter() - self.sentAt)
        if self.status == b"200":
            self.token = answer["refresh_token"]
        if self.status != b"200" or not self.run.running:
            self.transport.close()
            return
        self.send()


async def refreshSlice(port, tokens, warmup, seconds, pid):
    """
    One measured slice of refreshes, one connection per token.

    @return: (the raw slice, for L{common.summarise}; each connection's
        latest refresh token, for the next slice).
    """
    loop = asyncio.get_running_loop()
    run = common.Run()
    clients = []
    for token in tokens:
        _, client = await loop.create_connection(lambda t=token: RefreshClient(run, t),
                                                 "127.0.0.1", port)
        clients.append(client)
    await asyncio.sleep(warmup)
    run.measuring = True
    cpu0, gen0, t0 = common.cpuSeconds(pid), time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    run.measuring = False
    elapsed = time.perf_counter() - t0
    server = common.cpuSeconds(pid) - cpu0
    generator = time.process_time() - gen0
    run.running = False
    # Each connection closes after its answer in flight, keeping its token.
    await asyncio.sleep(0.5)
    return ({"elapsed": elapsed, "latencies": run.latencies, "server_cpu": server,
             "gen_cpu": generator, "statuses": run.statuses},
            [c.token for c in clients])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=8, help="login connections")
    parser.add_argument("--refreshers", type=int, default=50, help="refresh connections")
    parser.add_argument("--accounts", type=int, default=400)
    parser.add_argument("--bare-channel", choices=["direct", "twisted"], default="direct",
                        help="the bare resource's HTTP channel: the node's (direct) or stock twisted.web")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating slices of refresh and bare the --seconds of each "
                        "are split into")
    parser.add_argument("--redis", default=os.environ.get("MMOSHARD_TEST_REDIS", "127.0.0.1:6379"))
    options = parser.parse_args()
    os.sched_setaffinity(0, {1})

    from mmoshard.auth.config import makeConfig

    cfg = makeConfig()
    params = dict(time_cost=cfg.argon2_time_cost, memory_cost=cfg.argon2_memory_kib,
                  parallelism=cfg.argon2_parallelism)
    threads = len(SERVER_CPUS)
    redisURL = f"redis://{options.redis}/0"
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    sqlURL, drop = setUpDatabase(options.accounts, params)
    tmp = tempfile.mkdtemp(prefix="bench-auth-")
    proc, http = startNode(tmp, sqlURL, redisURL, prefix, threads)
    try:
        base = f"http://127.0.0.1:{http}"
        token = post(base + "/v1/sessions", {"username": "bench0", "password": PASSWORD})["access_token"]
        requests = [loginRequest(i) for i in range(options.accounts)]
        # The ceiling is measured next to the storm (the server idle), twice,
        # keeping the higher: other load on the host lowers it, never raises it.
        ceilings = [bareArgon2(params, threads, options.seconds / 2)]
        login = asyncio.run(loginStorm(http, requests, options, proc.pid, token))
        ceilings.append(bareArgon2(params, threads, options.seconds / 2))
        ceiling = max(ceilings)
        tokens = [post(base + "/v1/sessions", {"username": f"bench{i % options.accounts}",
                                               "password": PASSWORD})["refresh_token"]
                  for i in range(options.refreshers)]
        port = common.freePort()
        sample = {"access_token": "x" * 200, "refresh_token": "y" * 66, "expires_in": 900.0}
        bare = subprocess.Popen(["taskset", "-c", TASKSET, sys.executable, "-c",
                                 common.BARE_SERVER, str(port), json.dumps(sample),
                                 options.bare_channel],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            common.waitHTTP(f"http://127.0.0.1:{port}/")
            # Alternate slices of refresh and bare, so that whatever else the
            # machine does while we measure falls on both alike.
            refreshes, bares = [], []
            piece = options.seconds / options.rounds
            for i in range(options.rounds):
                warm = options.warmup if i == 0 else 1.0
                slice_, tokens = asyncio.run(refreshSlice(http, tokens, warm, piece, proc.pid))
                refreshes.append(slice_)
                bares.append(asyncio.run(common.drive(
                    port, [b"GET /bare HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"],
                    options.refreshers, warm, piece, bare.pid)))
        finally:
            bare.terminate()
            bare.wait(30)
    finally:
        proc.terminate()
        proc.wait(30)
        common.cleanRedis(options.redis, prefix)
        drop()

    refresh, bareRun = common.summarise(refreshes), common.summarise(bares)
    # Requests per second of server CPU: what the two cost even when other
    # work kept a server from a full core (on a quiet machine both use a
    # full core and the two ratios agree).
    perCPU = [r["rps"] / r["server_cpu"] if r["server_cpu"] else 0 for r in (refresh, bareRun)]
    cpuRatio = perCPU[0] / perCPU[1] if perCPU[1] else 0
    print(f"# login: {json.dumps(login)}")
    print(f"# bare argon2 before/after the storm: {ceilings}")
    print(f"# refresh: {json.dumps(refresh)}")
    print(f"# bare resource: {json.dumps(bareRun)}")
    print(
        f"workload=A1-auth argon2id=t{params['time_cost']}/m{params['memory_cost']}KiB/"
        f"p{params['parallelism']} threads={threads} "
        f"login_rps={login['rps']:.1f} hash_ceiling_rps={ceiling:.1f} "
        f"login_ratio={login['rps'] / ceiling:.2f} login_target=0.80 "
        f"login_p99_ms={login['p99_ms']:.0f} probe_p99_ms={login['probe_p99_ms']:.1f} "
        f"probe_target_ms=50 refresh_rps={refresh['rps']:.0f} "
        f"refresh_p99_ms={refresh['p99_ms']:.1f} bare_rps={bareRun['rps']:.0f} "
        f"refresh_ratio={refresh['rps'] / bareRun['rps']:.2f} refresh_target=0.60 "
        f"refresh_cpu_ratio={cpuRatio:.2f} refresh_server_cpu={refresh['server_cpu']:.2f} "
        f"bare_server_cpu={bareRun['server_cpu']:.2f} "
        f"login_connections={options.connections} refreshers={options.refreshers} "
        f"seconds={options.seconds:g} rounds={options.rounds}"
    )


if __name__ == "__main__":
    main()
