"""Matchmaking nodes for tests: services on one Clock sharing a memory volatile store, a SQLite database of characters, and fake providers."""

import os

from prometheus_client import CollectorRegistry
from twisted.internet import reactor
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.task import Clock

from mmoshard.matchmaking.config import makeConfig
from mmoshard.matchmaking.data import QueueSpec
from mmoshard.matchmaking.service import MatchmakingService
from mmoshard.matchmaking.store import TicketStore
from mmoshard.matchmaking.test.fakes import (
    FakeInstances, FakeLocator, FakeParties, FakeResults, FakeRouter, FakeSession,
)
from mmoshard.store.memory import MemoryView
from mmoshard.store.sql import SQLStore, migrate
from mmoshard.store.volatile import MemoryStore
from mmoshard.wire.errors import ProtocolError

QUEUES = {
    "dungeon5": QueueSpec("dungeon5", "deadmines", teams=1, team_size=5,
                          quotas={"tank": 1, "healer": 1, "damage": 3}, title="Dungeon"),
    "arena2v2": QueueSpec("arena2v2", "arena", teams=2, team_size=2, rated=True, title="Arena"),
    "duo": QueueSpec("duo", "deadmines", teams=1, team_size=2, quotas={"damage": 2},
                     ready_timeout=10.0),
}
CLASS_ROLES = {"warrior": "tank", "paladin": "tank", "priest": "healer", "druid": "healer",
               "mage": "damage", "rogue": "damage", "ranger": "damage"}
# name -> class: 2 tanks, 2 healers, 6 damage dealers.
CHARACTERS = {
    "Tom": "warrior", "Tina": "paladin", "Hal": "priest", "Hana": "druid", "Dan": "mage",
    "Dora": "rogue", "Dirk": "ranger", "Dell": "mage", "Dina": "rogue", "Drew": "ranger",
}


def insertCharacters(cursor, characters, now):
    """@return: name -> (character id, account id), one account per character."""
    out = {}
    for name, cls in characters.items():
        cursor.execute("INSERT INTO accounts (username, username_lower, password_hash, created_at) "
                       "VALUES (?, ?, ?, ?)", (name, name.lower(), "x", now))
        accountId = cursor.lastrowid
        cursor.execute("INSERT INTO characters (account_id, name, name_lower, class, created_at) "
                       "VALUES (?, ?, ?, ?, ?)", (accountId, name, name.lower(), cls, now))
        out[name] = (cursor.lastrowid, accountId)
    return out


class Client:
    """A character's session on one matchmaking node, calling handlers as the wire would."""

    def __init__(self, node, session, cid, name):
        self.node = node
        self.session = session
        self.cid = cid
        self.name = name

    async def call(self, type, **body):
        body["t"] = type
        return await maybeDeferred(self.node.router.handlers[type], self.session, body)

    async def fails(self, type, **body):
        """@return: (code, details) of the error the request fails with."""
        try:
            result = await self.call(type, **body)
        except ProtocolError as e:
            return e.info.code, dict(e.info.details or ())
        raise AssertionError(f"{type} succeeded with {result!r}")

    def events(self, type):
        return self.session.events(type)

    def last(self, type):
        found = self.events(type)
        if not found:
            raise AssertionError(f"{self.name} got no {type}: {self.session.sent}")
        return found[-1]

    def end(self, reason="logout"):
        self.session.ended = True
        return self.node.service.sessionEnded(self.session, reason)


class Node:
    """One matchmaking node of a test."""

    def __init__(self, case, nodeId, instances=True, admin=None, **config):
        self.case = case
        self.nodeId = nodeId
        self.router = FakeRouter()
        self.volatile = MemoryStore(case.clock, prefix="t:", backend=case.view)
        self.volatile.open()
        self.metrics = CollectorRegistry()
        cfg = makeConfig(queues=QUEUES, classRoles=CLASS_ROLES, **config)
        self.service = MatchmakingService(
            cfg, case.clock, nodeId, self.metrics, case.sql, self.volatile, self.router,
            resumeGrace=30.0, locator=case.locator.forNode(nodeId), parties=case.parties,
            instances=case.instances if instances else None, results=case.results,
            admin=admin, store=case.store)

    async def connect(self, name):
        cid, accountId = self.case.chars[name]
        client = Client(self, FakeSession(accountId), cid, name)
        await client.call("mm.hello", character_id=cid)
        return client

    def metric(self, name, **labels):
        return self.metrics.get_sample_value(name, labels) or 0.0


class MatchmakingCase:
    """
    Mixin: C{self.sql} (SQLite with L{CHARACTERS}), C{self.chars} (name ->
    (cid, account)), one Clock, one shared memory store, ticket store,
    locator, parties, instances and ratings; L{node} starts a node on them.
    """

    def setUp(self):
        return Deferred.fromCoroutine(self._setUpCase())

    async def _setUpCase(self):
        path = os.path.abspath(self.mktemp()) + ".sqlite3"
        self.sql = SQLStore(reactor, "sqlite:///" + path)
        self.sql.open()
        self.addCleanup(self.sql.close)
        await migrate(self.sql)
        self.chars = await self.sql.runInteraction(insertCharacters, CHARACTERS, 1000.0)
        self.clock = Clock()
        self.clock.advance(1_000_000)
        self.view = MemoryView(self.clock)
        self.addCleanup(self.view.close)
        shared = MemoryStore(self.clock, prefix="t:", backend=self.view)
        shared.open()
        self.store = TicketStore(shared, self.clock, grace=30.0)
        self.locator = FakeLocator()
        self.parties = FakeParties()
        self.instances = FakeInstances()
        self.results = FakeResults()

    async def node(self, nodeId="mm-1", **kw):
        node = Node(self, nodeId, **kw)
        await node.service.startService()
        self.addCleanup(self._stop, node)
        return node

    async def _stop(self, node):
        if node.service.running:
            await node.service.stopService()

    def flush(self):
        """Run what is due now: deliveries between nodes (a few hops)."""
        for _ in range(5):
            self.clock.advance(0)

    async def matchPass(self, node):
        """Run one matching pass of C{node} now, and deliver what it sent."""
        await node.service.loop.runPass()
        self.flush()

    def party(self, pid, *names):
        self.parties.parties[pid] = [self.chars[n][0] for n in names]

    async def kill(self, node):
        """Stop C{node} as kill -9 would: no more passes, refreshes or deliveries; its leases and tickets stay in the store."""
        service = node.service
        for call in (service.loop.looping, service.toucher):
            if call is not None and call.running:
                call.stop()
        for _, timer in service.loop.timers.values():
            if timer.active():
                timer.cancel()
        service.loop.timers.clear()
        service.loop.held.clear()
        await service.courier.subscription.unsubscribe()
        await service.partySubscription.unsubscribe()
        service.running = False


class Flaky:
    """A ticket store whose every call fails with VolatileUnavailable while C{down} (or calls named in C{failing}), as a store outage would."""

    def __init__(self, store):
        self.store = store
        self.down = False
        self.failing = set()
        self.refused = []  # names of the calls refused

    def __getattr__(self, name):
        from mmoshard.store.errors import VolatileUnavailable

        real = getattr(self.store, name)
        if not callable(real):
            return real

        async def call(*args, **kwargs):
            if self.down or name in self.failing:
                self.refused.append(name)
                raise VolatileUnavailable("store down (test)")
            return await real(*args, **kwargs)

        return call
