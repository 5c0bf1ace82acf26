"""IInstances between processes through the volatile store: the memory store on a Clock, and a real Redis (its Lua scripts)."""

from types import SimpleNamespace

import attrs
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from mmoshard.directory import Directory
from mmoshard.store.volatile import MemoryStore, makeVolatileStore
from mmoshard.testing import requireRedis
from mmoshard.world.instances import errors
from mmoshard.world.instances.errors import InstanceError
from mmoshard.world.instances.host import hostKey
from mmoshard.world.instances.service import Instances
from mmoshard.world.instances.store import loadInstance
from mmoshard.world.instances.test.test_host import TEMPLATES
from mmoshard.world.players import Tasks
from mmoshard.world.test.harness import SyncSQL


@attrs.define(eq=False)
class FakeZone:
    """What hosting needs of a zone: its id, its players, its instance."""

    id: str
    observers: dict = attrs.field(factory=dict)
    instance: object = None


@attrs.frozen
class FakeConfig:
    templates: dict
    offered: tuple
    max_instances: int = 10
    lease_ttl: float = 15.0
    lease_refresh: float = 5.0
    instance_timeout: float = 3.0


class FakeWorld:
    """The parts of a WorldService that hosting instances uses, without zones that tick."""

    def __init__(self, offered):
        self.config = FakeConfig(TEMPLATES, tuple(offered))
        self.zones = {}
        self.roster = SimpleNamespace(byCharacter={})
        self.tasks = Tasks()

    def addZone(self, spec):
        zone = self.zones[spec.id] = FakeZone(spec.id)
        return zone

    def removeZone(self, zoneId):
        del self.zones[zoneId]


class CrossProcessMixin:
    """Three processes: C{a} offers nothing, C{b} and C{c} offer every template; they share one store and database."""

    def setUp(self):
        self.sql = SyncSQL()
        self.procs = {}

    async def start(self):
        for node, offered in (("a", ()), ("b", tuple(TEMPLATES)), ("c", tuple(TEMPLATES))):
            volatile = self.newVolatile()
            directory = Directory(volatile, self.clock, node, ["world"], 5.0, 15.0)
            directory.endpoints = {"tcp": f"{node}.example:7000"}
            world = FakeWorld(offered)
            instances = Instances(world, self.sql, volatile, directory, self.clock, node)
            await instances.start()
            self.addCleanup(lambda i=instances: Deferred.fromCoroutine(i.stop()))
            await directory.beat()
            self.procs[node] = (world, instances, volatile, directory)

    def instances(self, node):
        return self.procs[node][1]

    async def test_createAndAdmitThroughTheStore(self):
        """A create from a process offering nothing is made by another through the store; its tickets admit once."""
        await self.start()
        p = await self.wait(self.instances("a").create("crypt", [7, 8], "party-9"))
        self.assertEqual((p.node, p.endpoints), ("b", {"tcp": "b.example:7000"}))
        world = self.procs["b"][0]
        self.assertEqual(world.zones[p.zone].instance.partyId, "party-9")
        self.assertEqual(await self.wait(self.instances("c").admit(p.tickets[7], 7)), p.instance_id)
        with self.assertRaises(InstanceError) as e:
            await self.wait(self.instances("c").admit(p.tickets[7], 7))
        self.assertEqual(e.exception.code, errors.BAD_TICKET)
        with self.assertRaises(InstanceError) as e:
            await self.wait(self.instances("c").admit(p.tickets[8], 7))
        self.assertEqual(e.exception.code, errors.BAD_TICKET)
        self.assertEqual(await self.wait(self.instances("a").admit(p.tickets[8], 8)), p.instance_id)

    async def test_closeThroughTheStore(self):
        """close() from another process closes the instance on its host; its key goes."""
        await self.start()
        p = await self.wait(self.instances("a").create("crypt", [7]))
        await self.wait(self.instances("a").close(p.instance_id))
        self.assertNotIn(p.zone, self.procs["b"][0].zones)
        self.assertIsNotNone((await self.wait(loadInstance(self.sql, p.instance_id))).closed_at)
        self.assertIsNone(await self.procs["a"][2].get(hostKey(p.instance_id)))

    async def test_adoptedOnce(self):
        """After its host is gone (key released), locate from two processes re-creates it on one process only."""
        await self.start()
        p = await self.wait(self.instances("a").create("crypt", [7]))
        world, instances, volatile, directory = self.procs["b"]
        # b stops: its inbox and entry go, its key is released, the row stays open.
        await self.wait(Deferred.fromCoroutine(instances.stop()))
        await self.wait(Deferred.fromCoroutine(directory.stop()))
        self.assertIsNone(await volatile.get(hostKey(p.instance_id)))
        first = self.instances("a").locate(p.instance_id)
        second = self.instances("c").locate(p.instance_id)
        first, second = await self.wait(first), await self.wait(second)
        self.assertEqual((first.node, second.node, first.zone), ("c", "c", p.zone))
        self.assertEqual(list(self.procs["c"][0].zones), [p.zone])
        self.assertEqual(await volatile.get(hostKey(p.instance_id)), b"c")

    async def test_reopenedOnce(self):
        """A closed copy with a running lockout, re-opened from two processes at once through the store, is hosted by one process only."""
        await self.start()
        p = await self.wait(self.instances("a").create("crypt", [7]))
        cid = self.sql.makeCharacter(1, "Saved", "greenvale", 0.0, 0.0, 0.0)
        self.sql.conn.execute("INSERT INTO instance_lockouts (character_id, template, instance_id, "
                              "reset_at) VALUES (?, 'crypt', ?, ?)",
                              (cid, p.instance_id, self.clock.seconds() + 3600.0))
        self.sql.conn.commit()
        await self.wait(self.instances("a").close(p.instance_id))
        first = self.instances("a").reopen(p.instance_id)
        second = self.instances("c").reopen(p.instance_id)
        first, second = await self.wait(first), await self.wait(second)
        self.assertEqual((first.node, first.zone), (second.node, p.zone))
        hosting = [n for n in ("b", "c") if p.zone in self.procs[n][0].zones]
        self.assertEqual(hosting, [first.node])
        self.assertTrue(self.procs[first.node][0].zones[p.zone].instance.reopened)
        self.assertIsNone((await self.wait(loadInstance(self.sql, p.instance_id))).closed_at)

    async def test_hostKeyRefreshAndRetake(self):
        """The refresh script extends the host's keys and takes back one the store lost."""
        await self.start()
        p = await self.wait(self.instances("a").create("crypt", [7]))
        host = self.instances("b").host
        volatile = self.procs["b"][2]
        await volatile.delete(hostKey(p.instance_id))
        await self.wait(Deferred.fromCoroutine(host.refresh()))
        self.assertEqual(await volatile.get(hostKey(p.instance_id)), b"b")
        self.assertGreater(await volatile.ttl(hostKey(p.instance_id)), 10.0)
        await volatile.set(hostKey(p.instance_id), "c")
        await self.wait(Deferred.fromCoroutine(host.refresh()))
        self.assertNotIn(p.instance_id, host.instances)
        self.assertNotIn(p.zone, self.procs["b"][0].zones)


class MemoryCrossProcessTests(CrossProcessMixin, TestCase):
    """On the memory store and a Clock."""

    def setUp(self):
        CrossProcessMixin.setUp(self)
        self.clock = Clock()
        self.clock.advance(1_000_000)
        self.backend = None

    def newVolatile(self):
        store = MemoryStore(self.clock, "t:", backend=self.backend)
        store.open()
        self.backend = store.backend
        self.addCleanup(store.close)
        return store

    async def wait(self, d):
        # The memory store delivers what is published from the clock.
        for _ in range(10):
            self.clock.advance(0)
        return await d


class RedisCrossProcessTests(CrossProcessMixin, TestCase):
    """On a real Redis and the real reactor: the Lua scripts and pub/sub."""

    timeout = 30

    def setUp(self):
        CrossProcessMixin.setUp(self)
        self.clock = reactor
        self.url, self.prefix, cleaner = requireRedis()
        self.addCleanup(cleaner)

    def newVolatile(self):
        store = makeVolatileStore(self.url, reactor, self.prefix, timeout=5.0)
        store.open()
        self.addCleanup(store.close)
        return store

    async def wait(self, d):
        return await d
