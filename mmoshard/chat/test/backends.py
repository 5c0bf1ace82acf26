"""Mixins giving chat tests a SQLite database and a memory or Redis volatile store shared by processes."""

import os

from twisted.internet import reactor
from twisted.internet.defer import Deferred

from mmoshard.chat.config import ChatConfig
from mmoshard.chat.test.harness import Process
from mmoshard.store.sql import SQLStore, migrate
from mmoshard.store.volatile import MemoryStore, MemoryView, makeVolatileStore
from mmoshard.testing import requireRedis

NAMES = ("Alice", "Bob", "Carol", "Dave", "Eve", "Frank", "Grace", "Opal")


def _txn_makeCharacters(cursor, names, now):
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
    """SQLite with the schema and a few characters; C{self.chars[name]} = (cid, account, Name)."""

    def setUp(self):
        return Deferred.fromCoroutine(self._setUpChat())

    async def _setUpChat(self):
        path = os.path.abspath(self.mktemp()) + ".sqlite3"
        self.sql = SQLStore(reactor, "sqlite:///" + path)
        self.sql.open()
        self.addCleanup(self.sql.close)
        await migrate(self.sql)
        self.chars = await self.sql.runInteraction(
            _txn_makeCharacters, NAMES, reactor.seconds()
        )
        self.processes = []

    def chatConfig(self, **kw):
        return ChatConfig(**kw)

    async def process(self, name="p1", config=None, clock=None, resumeGrace=30.0):
        proc = Process(
            name, self.sql, self.newVolatile(clock), config or self.chatConfig(), clock=clock,
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


class MemoryBackend(ChatFixture):
    """Processes share one MemoryView, as processes share one Redis."""

    backend = "memory"

    def newVolatile(self, clock=None):
        if getattr(self, "_view", None) is None or clock is not None:
            self._view = MemoryView(clock or reactor)
            self.addCleanup(self._view.close)
        store = MemoryStore(clock or reactor, prefix="t:", backend=self._view)
        store.open()
        return store


class RedisBackend(ChatFixture):
    """Processes share the test Redis under a fresh key prefix."""

    backend = "redis"

    def newVolatile(self, clock=None):
        if getattr(self, "_redis", None) is None:
            url, prefix, cleaner = requireRedis()
            self._redis = (url, prefix)
            self.addCleanup(cleaner)
        url, prefix = self._redis
        store = makeVolatileStore(url, reactor, prefix, timeout=5.0)
        store.open()
        self.addCleanup(store.close)
        return store
