"""Shared test helpers: real MariaDB/Redis fixtures, free ports, twistd runners."""

import os
import socket
import uuid

from twisted.internet.defer import succeed
from twisted.internet.task import deferLater
from twisted.trial.unittest import SkipTest
from zope.interface import implementer

from mmoshard.interfaces import IParties


def underCI():
    """True when running in CI, where integration tests must fail, not skip."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(what, why):
    """
    Give up on an integration test whose server is absent: skip with a loud
    reason on a developer machine, fail under C{CI=true}.
    """
    cannotRun(f"{what} is not reachable ({why}); integration test cannot run")


def cannotRun(reason):
    """Skip with C{reason} on a developer machine; fail under C{CI=true}, which forbids skipping."""
    if underCI():
        raise AssertionError(reason + " and CI=true forbids skipping")
    raise SkipTest(reason)


def mysqlAddress():
    """
    (host, port, user, password) of the test MariaDB/MySQL server, from
    C{MMOSHARD_TEST_MYSQL} (C{user[:password]@host:port}), default
    C{root@127.0.0.1:3306}.
    """
    spec = os.environ.get("MMOSHARD_TEST_MYSQL", "root@127.0.0.1:3306")
    creds, _, hostport = spec.rpartition("@")
    user, _, password = (creds or "root").partition(":")
    host, _, port = hostport.partition(":")
    return host or "127.0.0.1", int(port or 3306), user, password


def redisAddress():
    """(host, port) of the test Redis, from C{MMOSHARD_TEST_REDIS}."""
    spec = os.environ.get("MMOSHARD_TEST_REDIS", "127.0.0.1:6379")
    host, _, port = spec.partition(":")
    return host or "127.0.0.1", int(port or 6379)


def requireMySQL():
    """
    Make a fresh, uniquely named database on the test server.

    @return: (url, dropper) where C{url} is a C{mysql://} URL for the new
        database and C{dropper()} removes it (synchronously; use it with
        C{addCleanup}).
    """
    import pymysql

    host, port, user, password = mysqlAddress()
    try:
        conn = pymysql.connect(
            host=host, port=port, user=user, password=password, connect_timeout=3
        )
    except Exception as e:
        unavailable(f"MySQL at {host}:{port}", e)
    name = "mmoshard_test_" + uuid.uuid4().hex[:12]
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    conn.close()

    def dropper():
        c = pymysql.connect(host=host, port=port, user=user, password=password)
        with c.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        c.close()

    auth = user + (":" + password if password else "")
    return f"mysql://{auth}@{host}:{port}/{name}", dropper


def requireRedis():
    """
    Check the test Redis answers and pick a fresh key prefix.

    @return: (url, prefix, cleaner) where C{cleaner()} deletes every key under
        C{prefix} (synchronously, for C{addCleanup}).
    """
    host, port = redisAddress()
    try:
        s = socket.create_connection((host, port), timeout=2)
        s.sendall(b"PING\r\n")
        if not s.recv(64).startswith(b"+PONG"):
            raise OSError("no PONG")
        s.close()
    except OSError as e:
        unavailable(f"Redis at {host}:{port}", e)
    prefix = "mmotest:" + uuid.uuid4().hex[:12] + ":"

    def cleaner():
        s = socket.create_connection((host, port), timeout=2)
        f = s.makefile("rwb")
        # Lua keeps it to one round trip and needs no client library; SCAN in
        # chunks, not KEYS, so a shared Redis is never stalled by a clean-up.
        script = (
            "local n, cursor = 0, '0' repeat "
            "local r = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000) "
            "cursor = r[1] for _, k in ipairs(r[2]) do redis.call('DEL', k) n = n + 1 end "
            "until cursor == '0' return n"
        )
        parts = [b"EVAL", script.encode(), b"0", (prefix + "*").encode()]
        f.write(b"*%d\r\n" % len(parts))
        for p in parts:
            f.write(b"$%d\r\n%s\r\n" % (len(p), p))
        f.flush()
        f.readline()
        s.close()

    return f"redis://{host}:{port}/0", prefix, cleaner


async def sharedStores(testCase, reactor, prepare=None):
    """
    The stores a shard's real processes share: a fresh database on the test
    MySQL, migrated, and a fresh Redis key prefix, both removed at cleanup.

    @param prepare: None, or an C{async} callable(store) run on the migrated
        L{mmoshard.store.sql.SQLStore} before it is closed (to add rows).
    @return: (mysqlURL, redisURL, prefix).
    """
    from mmoshard.store.sql import SQLStore, migrate

    mysqlURL, dropDB = requireMySQL()
    testCase.addCleanup(dropDB)
    redisURL, prefix, cleanRedis = requireRedis()
    testCase.addCleanup(cleanRedis)
    store = SQLStore(reactor, mysqlURL)
    store.open()
    try:
        await migrate(store)
        if prepare is not None:
            await prepare(store)
    finally:
        await store.close()
    return mysqlURL, redisURL, prefix


def openMemoryStore(testCase, clock, prefix="t:", **options):
    """@return: an open L{mmoshard.store.volatile.MemoryStore} on C{clock}, closed at cleanup."""
    from mmoshard.store.volatile import MemoryStore

    store = MemoryStore(clock, prefix, **options)
    store.open()
    testCase.addCleanup(store.close)
    return store


def provideSites(node):
    """
    Give C{node} a public site and an admin site (its guard in front of the
    routes) as a node builds them, listening nowhere.

    @return: (publicRoot, adminRoot): the resources to serve or stub.
    """
    from mmoshard.interfaces import IAdminSite, IWebSite
    from mmoshard.web.json import JSONRoot
    from mmoshard.web.site import AdminSite, SiteRoot

    publicRoot = JSONRoot()
    node.provide(IWebSite, SiteRoot(publicRoot))
    admin = AdminSite()
    node.provide(IAdminSite, admin)
    return publicRoot, admin.root


# freePort picks below Linux's ephemeral range (32768 and up), so the
# outgoing connections of the tests never take a port a node is about to
# listen on, from a block of its own per test process (trial -j2 runs two),
# and never hands out a port twice: both raced a node's listeners before
# ("Address already in use" at start).
_PORT_BLOCKS = 8
_PORT_BLOCK = 2000
_PORT_BASE = 12000
_handedOut = set()


def freePort():
    """A TCP port on 127.0.0.1 that was free a moment ago, never one this process was given before."""
    block = _PORT_BASE + (os.getpid() % _PORT_BLOCKS) * _PORT_BLOCK
    for port in range(block, block + _PORT_BLOCK):
        if port in _handedOut:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        _handedOut.add(port)
        return port
    raise RuntimeError(f"no free port left in {block}..{block + _PORT_BLOCK - 1}")


def listening(port, timeout=0.5):
    """@return: whether something accepts connections on 127.0.0.1:C{port} within C{timeout}s."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


async def eventually(reactor, attempt, seconds=10.0, step=0.1, retrying=Exception):
    """
    Await C{attempt()} until it stops raising one of C{retrying}, every
    C{step} seconds: a server coming back (thawed, restarted, reconnecting)
    answers when it is scheduled again, which a loaded machine delays.

    @return: the first result of C{attempt()}.
    @raise: the last failure, once C{seconds} have passed.
    """
    deadline = reactor.seconds() + seconds
    while True:
        try:
            return await attempt()
        except retrying:
            if reactor.seconds() > deadline:
                raise
            await deferLater(reactor, step, lambda: None)


def tomlValue(value):
    """Render a Python value as TOML (the subset config files use)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(tomlValue(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def writeConfig(path, sections):
    """Write C{sections} (table name -> dict) as a TOML config file at C{path}."""
    lines = []
    for table, values in sections.items():
        lines.append(f"[{table}]")
        lines.extend(f"{k} = {tomlValue(v)}" for k, v in values.items())
        lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


def repoRoot():
    """
    The directory holding this package (and twisted/plugins): the checkout,
    or site-packages when the tests run against an installed mmoshard (tox).
    It goes first on a child process's PYTHONPATH.
    """
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def checkoutRoot():
    """
    The source checkout (docs/, sql/, setup.py): C{$MMOSHARD_CHECKOUT}, which
    tox sets because it runs the tests against the installed package, away
    from the checkout; else L{repoRoot}.
    """
    return os.environ.get("MMOSHARD_CHECKOUT") or repoRoot()


class TwistdProcess:
    """
    A real `twistd -n mmoshard` child process for end-to-end tests: started
    with a config file, waited for until /readyz answers 200, stopped with
    a signal, its output kept for assertions and failure messages.
    """

    def __init__(self, reactor, configPath, adminPort, extraArgs=(), env=None, cwd=None):
        self.reactor = reactor
        # The child runs in the checkout, not in trial's temp directory.
        self.configPath = os.path.abspath(configPath)
        self.adminPort = adminPort
        self.extraArgs = list(extraArgs)
        self.env = env
        self.cwd = cwd
        self.output = bytearray()
        self.ended = None
        self.exitCode = None
        self.transport = None
        # The client endpoint of its session TCP listener (L{startNodeProcess}).
        self.address = None

    def start(self):
        import sys

        from twisted.internet import defer, protocol

        owner = self
        self.ended = defer.Deferred()

        class Proto(protocol.ProcessProtocol):
            def childDataReceived(self, fd, data):
                owner.output.extend(data)

            def processEnded(self, reason):
                owner.exitCode = reason.value.exitCode
                owner.signal = reason.value.signal
                owner.ended.callback(owner.exitCode)

        env = dict(os.environ)
        env["PYTHONPATH"] = repoRoot() + os.pathsep + env.get("PYTHONPATH", "")
        env.update(self.env or {})
        args = [
            sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
            "-n", "--pidfile=",
            "mmoshard", "--config", self.configPath,
        ] + self.extraArgs
        self.transport = self.reactor.spawnProcess(
            Proto(), sys.executable, args, env=env, path=self.cwd or repoRoot()
        )
        return self

    @property
    def pid(self):
        return self.transport.pid

    async def get(self, path):
        """@return: (status, parsed JSON body) of an admin-site GET."""
        import json

        import treq

        response = await treq.get(
            f"http://127.0.0.1:{self.adminPort}{path}", timeout=5, persistent=False
        )
        body = await response.content()
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = body
        return response.code, parsed

    async def waitReady(self, timeout=30.0):
        """Poll /readyz until it answers 200; fail with the process output."""
        deadline = self.reactor.seconds() + timeout
        while self.reactor.seconds() < deadline:
            if self.ended.called:
                raise AssertionError(
                    f"twistd exited with {self.exitCode} before ready:\n"
                    + self.output.decode(errors="replace")
                )
            try:
                code, body = await self.get("/readyz")
                if code == 200:
                    return body
            except Exception:
                pass
            await deferLater(self.reactor, 0.2, lambda: None)
        raise AssertionError(
            f"twistd not ready after {timeout}s:\n" + self.output.decode(errors="replace")
        )

    async def stop(self, sig="TERM", timeout=30.0):
        """Send C{sig} and wait for the exit; @return: the exit code."""
        if not self.ended.called:
            self.transport.signalProcess(sig)
        d = self.ended
        if not d.called:
            d.addTimeout(timeout, self.reactor)
        await d
        return self.exitCode

    def kill(self):
        """SIGKILL the process at once (cleanup and crash tests)."""
        if self.ended is not None and not self.ended.called:
            try:
                self.transport.signalProcess("KILL")
            except Exception:
                pass
        return self.ended


async def startNodeProcess(testCase, reactor, configPath, sections, **options):
    """
    Write C{sections} as a node config at C{configPath}, with a session TCP
    listener and an admin listener on free loopback ports (whatever
    C{sections["listen"]} says) and no HTTP or WebSocket listener (unless
    C{sections["listen"]} names one); start a twistd node on it, killed at
    C{testCase}'s cleanup, and wait until it is ready.

    @param options: more keyword arguments for L{TwistdProcess}.
    @return: the ready L{TwistdProcess}; its C{address} is the client
        endpoint of its TCP listener.
    """
    tcp, admin = freePort(), freePort()
    listen = {"websocket": "", "http": "", **sections.get("listen", {}),
              "tcp": f"tcp:{tcp}:interface=127.0.0.1", "admin": f"tcp:{admin}:interface=127.0.0.1"}
    writeConfig(configPath, {**sections, "listen": listen})
    proc = TwistdProcess(reactor, configPath, admin, **options).start()
    testCase.addCleanup(proc.kill)
    await proc.waitReady()
    proc.address = f"tcp:127.0.0.1:{tcp}"
    return proc



@implementer(IParties)
class DictParties:
    """L{IParties} over a dict, C{parties}: party id -> member ids, leader first (for tests)."""

    def __init__(self):
        self.parties = {}

    def partyOf(self, characterId):
        return succeed(next((p for p, m in self.parties.items() if characterId in m), None))

    def members(self, partyId):
        return succeed(list(self.parties.get(partyId, ())))

    def partiesOf(self, characterIds):
        return succeed({c: (p, list(m)) for c in characterIds
                        for p, m in self.parties.items() if c in m})
