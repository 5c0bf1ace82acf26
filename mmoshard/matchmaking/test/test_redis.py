"""Matchmaking nodes on a real Redis (the store's Lua scripts, pub/sub between nodes, the locator) on the real reactor: events across nodes, failover of a killed holder, two matchers racing for the same tickets."""

import os

from prometheus_client import CollectorRegistry
from twisted.internet import reactor
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from mmoshard.locator import StoreLocator
from mmoshard.matchmaking.config import makeConfig
from mmoshard.matchmaking.data import Proposal
from mmoshard.matchmaking.loop import newMatchId
from mmoshard.matchmaking.matcher import formMatches
from mmoshard.matchmaking.service import MatchmakingService
from mmoshard.matchmaking.store import TicketStore
from mmoshard.matchmaking.test.fakes import FakeInstances, FakeParties, FakeRouter, FakeSession
from mmoshard.matchmaking.test.harness import CHARACTERS, CLASS_ROLES, QUEUES, insertCharacters
from mmoshard.store.sql import SQLStore, migrate
from mmoshard.store.volatile import makeVolatileStore
from mmoshard.testing import requireRedis

FIVE = ("Tom", "Hal", "Dan", "Dora", "Dirk")


async def until(predicate, what, timeout=10.0):
    """@return: C{predicate()} once true, polling the real reactor."""
    deadline = reactor.seconds() + timeout
    while True:
        found = predicate()
        if found:
            return found
        if reactor.seconds() > deadline:
            raise AssertionError(f"{what} not seen in {timeout}s")
        await deferLater(reactor, 0.02, lambda: None)


class RedisNode:
    """One matchmaking node on its own Redis connections."""

    def __init__(self, case, nodeId):
        self.case = case
        self.nodeId = nodeId
        self.router = FakeRouter()
        self.volatile = makeVolatileStore(case.redisURL, reactor, case.prefix, timeout=5.0)
        self.volatile.open()
        case.addCleanup(self.volatile.close)
        self.locator = StoreLocator(self.volatile, reactor, nodeId, ttl=5.0)
        self.store = TicketStore(self.volatile, reactor, grace=30.0)
        config = makeConfig(queues=QUEUES, classRoles=CLASS_ROLES, match_interval=0.1,
                            lease_ttl=0.6)
        self.service = MatchmakingService(
            config, reactor, nodeId, CollectorRegistry(), case.sql, self.volatile, self.router,
            resumeGrace=30.0, locator=self.locator, parties=case.parties,
            instances=case.instances, store=self.store)

    async def connect(self, name):
        cid, accountId = self.case.chars[name]
        session = FakeSession(accountId)
        await maybeDeferred(self.router.handlers["mm.hello"], session,
                            {"t": "mm.hello", "character_id": cid})
        return _Client(self, session, cid)

    async def kill(self):
        """Stop as kill -9 would: no pass, refresh or delivery any more; its lease stays until it runs out."""
        service = self.service
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


class _Client:
    def __init__(self, node, session, cid):
        self.node = node
        self.session = session
        self.cid = cid

    def call(self, type, **body):
        return maybeDeferred(self.node.router.handlers[type], self.session, dict(body, t=type))

    def events(self, type):
        return self.session.events(type)


class RedisTests(TestCase):
    timeout = 60

    def setUp(self):
        return Deferred.fromCoroutine(self._setUp())

    async def _setUp(self):
        self.redisURL, self.prefix, cleaner = requireRedis()
        self.addCleanup(cleaner)
        path = os.path.abspath(self.mktemp()) + ".sqlite3"
        self.sql = SQLStore(reactor, "sqlite:///" + path)
        self.sql.open()
        self.addCleanup(self.sql.close)
        await migrate(self.sql)
        self.chars = await self.sql.runInteraction(insertCharacters, CHARACTERS, 1000.0)
        self.parties = FakeParties()
        self.instances = FakeInstances()

    async def node(self, nodeId):
        node = RedisNode(self, nodeId)
        node.locator.start()
        await node.service.startService()
        self.addCleanup(self._stop, node)
        return node

    async def _stop(self, node):
        if node.service.running:
            await node.service.stopService()
        await node.locator.stop()

    async def spread(self, one, two):
        """Tom, Hal, Dan on node one, Dora and Dirk on node two, each queued; @return: name -> client."""
        clients = {}
        for name in FIVE:
            clients[name] = await (one if name in ("Tom", "Hal", "Dan") else two).connect(name)
        for name in FIVE:
            await clients[name].call("mm.queue", queue="dungeon5")
        return clients

    async def test_matchedAcrossNodes(self):
        """Players on two nodes get one proposal through Redis pub/sub, accept on their own node, and get mm.matched with their own tickets."""
        one = await self.node("mm-1")
        await until(lambda: one.service.loop.held, "node one holding the queues")
        two = await self.node("mm-2")
        clients = await self.spread(one, two)
        proposals = [await until(lambda c=c: c.events("mm.proposal"), "a proposal")
                     for c in clients.values()]
        match = {p[0]["match"] for p in proposals}
        self.assertEqual(len(match), 1)
        for client in clients.values():
            await client.call("mm.accept", match=next(iter(match)))
        for client in clients.values():
            matched = (await until(lambda c=client: c.events("mm.matched"), "mm.matched"))[0]
            self.assertEqual(matched["ticket"], f"adm-1-{client.cid}")
        self.assertEqual(len(self.instances.created), 1)

    async def test_killedHolderReplaced(self):
        """The holder killed mid-check: the other node takes the lease within its TTL and makes the accepted match once."""
        one = await self.node("mm-1")
        await until(lambda: one.service.loop.held, "node one holding the queues")
        two = await self.node("mm-2")
        clients = await self.spread(two, two)
        match = (await until(lambda: clients["Tom"].events("mm.proposal"), "a proposal"))[0]["match"]
        await one.kill()
        for client in clients.values():
            await client.call("mm.accept", match=match)
        await until(lambda: two.service.loop.held == set(QUEUES), "node two taking the leases")
        for client in clients.values():
            await until(lambda c=client: c.events("mm.matched"), "mm.matched")
        self.assertEqual(len(self.instances.created), 1)
        self.assertEqual([len(c.events("mm.matched")) for c in clients.values()], [1] * 5)

    async def test_twoMatchersRaceForTheSameTickets(self):
        """Two nodes proposing matches over the same waiting tickets at once (a paused holder and its successor): one proposal per ticket stands, no character is in two."""
        one = await self.node("mm-1")
        two = await self.node("mm-2")
        for node in (one, two):
            await node.service.loop.stop()
        names = list(CHARACTERS)
        clients = [await one.connect(name) for name in names]
        for client in clients:
            await client.call("mm.queue", queue="duo", roles=["damage"])
        spec = QUEUES["duo"]
        now = reactor.seconds()
        waiting = await one.store.waiting("duo", 100)
        self.assertEqual(len(waiting), len(names))
        # Each node pairs them differently, as two matchers with different views would.
        rounds = []
        for node, order in ((one, waiting), (two, waiting[1:] + waiting[:1])):
            matches = formMatches(spec, order, now)
            rounds.append([Proposal(newMatchId("duo"), "duo", tuple(t for t in order
                                                                   if t.id in m.tickets),
                                    m.slots, now, now + 10) for m in matches])
        won = await Deferred.fromCoroutine(_both(one.store.proposeMany(rounds[0]),
                                                 two.store.proposeMany(rounds[1])))
        stood = [p for r, w in zip(rounds, won) for p, ok in zip(r, w) if ok]
        placed = [cid for p in stood for cid in p.characterIds]
        self.assertEqual(len(placed), len(set(placed)))
        # Every pairing of one overlaps the other's: one side's five stand.
        self.assertEqual(len(stood), len(names) // 2)
        for p in stood:
            self.assertIsNotNone(await one.store.proposal(p.match_id))
        claimed = [c for c in await one.store.claims([c.cid for c in clients])
                   if c is not None and c.match_id is not None]
        self.assertEqual(sorted(c.ticket.characterIds[0] for c in claimed), sorted(placed))


async def _both(a, b):
    """Run two store calls at once (both sent before either answers); @return: their results."""
    da, db = Deferred.fromCoroutine(a), Deferred.fromCoroutine(b)
    return [await da, await db]
