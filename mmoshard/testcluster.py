"""A real three-node Redis Cluster the tests start themselves (one per test process) on free loopback ports."""

import atexit
import random
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

from mmoshard.testing import cannotRun, listening

__all__ = ["TestCluster", "requireRedisCluster", "testCluster"]

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")

# Cleaning a prefix on one node: SCAN sees only that node's keys, which are
# exactly those its DEL may touch.
_CLEAN = (
    "local n, cursor = 0, '0' repeat "
    "local r = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000) "
    "cursor = r[1] for _, k in ipairs(r[2]) do redis.call('DEL', k) n = n + 1 end "
    "until cursor == '0' return n"
)


def command(port, *parts, timeout=5.0):
    """Send one command to 127.0.0.1:C{port}; @return: the first line of the reply, decoded."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        out = [b"*%d\r\n" % len(parts)]
        for part in parts:
            part = part if isinstance(part, bytes) else str(part).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(part), part))
        s.sendall(b"".join(out))
        f = s.makefile("rb")
        line = f.readline()
        if line.startswith(b"$") and int(line[1:]) >= 0:
            line = f.read(int(line[1:]) + 2)
        return line.decode(errors="replace").strip()


def _free(port):
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False


def clusterPort():
    """
    A free port whose cluster bus port (+10000) is free too: below the
    ephemeral range, where an ordinary free port may leave no room for it.
    """
    while True:
        port = random.randrange(20000, 30000)
        if _free(port) and _free(port + 10000):
            return port


class TestCluster:
    """
    Three C{redis-server --cluster-enabled yes} (masters, no replicas) on
    free ports, joined with C{redis-cli --cluster create}, keeping nothing
    on disk but their cluster config in a temporary directory.  C{start()}
    returns once every node reports C{cluster_state:ok}; C{stop()} kills
    them and removes the directory.
    """

    __test__ = False  # not a test case, whatever its name says

    def __init__(self, size=3):
        self.ports = [clusterPort() for _ in range(size)]
        self.dir = None
        self.procs = []

    @property
    def url(self):
        return "redis-cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def start(self, timeout=20.0):
        for tool, name in ((REDIS_SERVER, "redis-server"), (REDIS_CLI, "redis-cli")):
            if not tool:
                cannotRun(f"{name} is not installed here (the Redis Cluster tests start their own)")
        self.dir = tempfile.mkdtemp(prefix="mmoshard-cluster-")
        for port in self.ports:
            log = open(f"{self.dir}/{port}.log", "wb")
            self.procs.append(subprocess.Popen(
                [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1",
                 "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                 "--cluster-node-timeout", "2000", "--save", "", "--appendonly", "no",
                 "--dir", self.dir],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            log.close()
        deadline = time.monotonic() + timeout
        self._until(lambda: all(listening(p, 0.2) for p in self.ports), deadline, "listening")
        subprocess.run([REDIS_CLI, "--cluster", "create",
                        *[f"127.0.0.1:{p}" for p in self.ports],
                        "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                       timeout=timeout)
        self._until(self.healthy, deadline, "cluster_state:ok on every node")
        return self

    def healthy(self):
        """True when every node says the cluster is ok."""
        for port in self.ports:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(b"CLUSTER INFO\r\n")
                data = b""
                while b"cluster_state" not in data or not data.endswith(b"\r\n"):
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            if b"cluster_state:ok" not in data:
                return False
        return True

    def _until(self, predicate, deadline, what):
        while not predicate():
            if any(p.poll() is not None for p in self.procs) or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"test Redis Cluster: no {what}")
            time.sleep(0.05)

    def clean(self, prefix):
        """Delete every key under C{prefix} on every node."""
        for port in self.ports:
            command(port, "EVAL", _CLEAN, 0, prefix + "*")

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.procs = []
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


_started = []


def testCluster():
    """The test process's cluster, started on first use and killed when the process exits."""
    if not _started:
        cluster = TestCluster()
        atexit.register(cluster.stop)
        _started.append(cluster.start())
    return _started[0]


def requireRedisCluster():
    """
    The test cluster and a fresh key prefix.

    @return: (url, prefix, cleaner), as L{mmoshard.testing.requireRedis}.
    """
    cluster = testCluster()
    prefix = "mmotest:" + uuid.uuid4().hex[:12] + ":"
    return cluster.url, prefix, lambda: cluster.clean(prefix)
