"""Mixins giving chat tests a SQLite database and a memory or Redis volatile store shared by processes."""

import os

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, deferLater

from mmoshard.chat.config import ChatConfig
from mmoshard.chat.test.harness import Process
from mmoshard.store.sql import SQLStore, migrate
from mmoshard.store.volatile import MemoryStore, MemoryView, makeVolatileStore
from mmoshard.testcluster import requireRedisCluster
from mmoshard.testing import requireRedis

NAMES = ("Alice", "Bob", "Carol", "Dave", "Eve", "Frank", "Grace", "Opal")


def insertCharacters(cursor, names, now):
    out = {}
    for name in names:
        cursor.execute(
            "INSERT INTO accounts (username, username_lower, password_hash, created_at, "
            "is_operator) VALUES (?, ?, ?, ?, ?)",
            (name, name.lower(), "x", now, name.startswith("Op")),
        )
        accountId = cursor.lastrowid
        cursor.execute(
            "INSERT INTO characters (account_id, name, name_lower, class, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (accountId, name, name.lower(), "warrior", now),
        )
        out[name.lower()] = (cursor.lastrowid, accountId, name)
    return out


class ChatFixture:
    """
    SQLite with the schema and a few characters; C{self.chars[name]} =
    (cid, account, Name).  A backend mixin gives the volatile store, the
    clock the chat processes run on, and how a test waits for deliveries:
    C{await self.eventually(predicate)} and C{await self.settle(seconds)}.
    """

    def setUp(self):
        return Deferred.fromCoroutine(self._setUpChat())

    async def _setUpChat(self):
        path = os.path.abspath(self.mktemp()) + ".sqlite3"
        self.sql = SQLStore(reactor, "sqlite:///" + path)
        self.sql.open()
        self.addCleanup(self.sql.close)
        await migrate(self.sql)
        self.chars = await self.sql.runInteraction(
            insertCharacters, NAMES, reactor.seconds()
        )
        self.processes = []

    def chatConfig(self, **kw):
        return ChatConfig(**kw)

    async def process(self, name="p1", config=None, resumeGrace=30.0):
        proc = Process(
            name, self.sql, self.newVolatile(), self.clock, config or self.chatConfig(),
            resumeGrace=resumeGrace,
        )
        await proc.start()
        self.processes.append(proc)
        self.addCleanup(self._stopProcess, proc)
        return proc

    async def _stopProcess(self, proc):
        if proc.chat.running:
            await proc.stop()

    def char(self, name):
        return self.chars[name.lower()]


class TurnClock(Clock):
    """
    A L{Clock} whose calls due now also run on the real reactor's next turn,
    so a request waiting on another process's answer (an acknowledged
    whisper) completes while the test awaits it; time itself (TTLs, timers,
    the presence refresh) only moves when a test advances it.
    """

    def __init__(self, reactor):
        super().__init__()
        self._reactor = reactor
        self._turn = None

    def callLater(self, delay, f, *args, **kwargs):
        call = super().callLater(delay, f, *args, **kwargs)
        if delay <= 0 and self._turn is None:
            self._turn = self._reactor.callLater(0, self._runDue)
        return call

    def _runDue(self):
        self._turn = None
        self.advance(0)

    def stop(self):
        """Cancel the pending turn (the real reactor must be clean after a test)."""
        if self._turn is not None and self._turn.active():
            self._turn.cancel()
        self._turn = None


class MemoryBackend(ChatFixture):
    """
    Processes share one MemoryView, as processes share one Redis, and run
    on one L{TurnClock}: the store answers at once and a delivery is a
    C{callLater(0)} on that clock, so a test checks deliveries by running
    what is due and moves time by advancing the clock (SQL still runs in
    its thread on the real reactor, which awaited requests wait for).
    """

    backend = "memory"

    @property
    def clock(self):
        if getattr(self, "_clock", None) is None:
            self._clock = TurnClock(reactor)
            self._view = MemoryView(self._clock)
            self.addCleanup(self._clock.stop)
            self.addCleanup(self._view.close)
        return self._clock

    def newVolatile(self):
        store = MemoryStore(self.clock, prefix="t:", backend=self._view)
        store.open()
        return store

    async def eventually(self, predicate):
        """Run what is due now (deliveries between processes); C{predicate()} must then hold."""
        self.clock.advance(0)
        if not predicate():
            raise AssertionError("condition not met once deliveries ran")

    async def settle(self, seconds=0.0, step=0.05):
        """Let C{seconds} pass on the clock in small steps, running what falls due."""
        self.clock.advance(0)
        left = seconds
        while left > 1e-9:
            self.clock.advance(min(step, left))
            left -= step


class RedisBackend(ChatFixture):
    """
    Processes share the test Redis under a fresh key prefix, on the real
    reactor: waiting is polling it.
    """

    backend = "redis"
    clock = reactor

    async def eventually(self, predicate, timeout=5.0):
        """Wait until C{predicate()} is true, polling the real reactor."""
        deadline = reactor.seconds() + timeout
        while not predicate():
            if reactor.seconds() > deadline:
                raise AssertionError("condition not met in time")
            await deferLater(reactor, 0.005, lambda: None)

    async def settle(self, seconds=0.05):
        """Let C{seconds} of real time pass (at least one cross-process hop)."""
        await deferLater(reactor, max(seconds, 0.05), lambda: None)

    require = staticmethod(requireRedis)

    def newVolatile(self):
        if getattr(self, "_redis", None) is None:
            url, prefix, cleaner = self.require()
            self._redis = (url, prefix)
            self.addCleanup(cleaner)
        url, prefix = self._redis
        store = makeVolatileStore(url, reactor, prefix, timeout=5.0)
        store.open()
        self.addCleanup(store.close)
        return store


class ClusterBackend(RedisBackend):
    """Processes share the tests' three-node Redis Cluster under a fresh key prefix."""

    backend = "cluster"
    require = staticmethod(requireRedisCluster)
