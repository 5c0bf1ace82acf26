"""The core's StoreInstances (IInstances without the world role) against world processes through the store: memory store on a Clock, and a real Redis."""

from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from mmoshard.directory import Directory
from mmoshard.instanceclient import StoreInstances
from mmoshard.instanceerrors import BAD_TICKET, NO_CAPACITY, UNAVAILABLE, InstanceError
from mmoshard.instancewire import hostKey
from mmoshard.interfaces import IInstances
from mmoshard.world.instances.store import loadInstance
from mmoshard.world.instances.test import test_crossprocess as world


class ClientMixin:
    """World processes b and c (offering every template) and a matchmaking-only node m with StoreInstances."""

    def setUp(self):
        self.world.setUp(self)

    def newVolatile(self):
        return self.world.newVolatile(self)

    def wait(self, d):
        return self.world.wait(self, d)

    async def client(self, timeout=3.0):
        await world.CrossProcessMixin.start(self)
        volatile = self.newVolatile()
        directory = Directory(volatile, self.clock, "m", ["matchmaking"], 5.0, 15.0)
        client = StoreInstances(self.sql, volatile, directory, self.clock, "m", timeout)
        await client.start()
        self.addCleanup(lambda: Deferred.fromCoroutine(client.stop()))
        return client

    async def fails(self, d, code):
        with self.assertRaises(InstanceError) as e:
            await self.wait(d)
        self.assertEqual(e.exception.code, code)
        return e.exception

    async def test_interface(self):
        """StoreInstances provides IInstances."""
        verifyObject(IInstances, await self.client())

    async def test_create_admit_list_locate_close(self):
        """A node without the world role creates a matchmade copy on a world process, its tickets admit once, it lists, locates and closes it."""
        m = await self.client()
        p = await self.wait(m.create("crypt", [7, 8], None, None, "dungeon5/x1"))
        self.assertIn(p.node, ("b", "c"))
        self.assertEqual(p.endpoints, {"tcp": f"{p.node}.example:7000"})
        self.assertEqual(sorted(p.tickets), [7, 8])
        self.assertEqual(await self.wait(m.admit(p.tickets[7], 7)), p.instance_id)
        await self.fails(m.admit(p.tickets[7], 7), BAD_TICKET)
        await self.fails(m.admit(p.tickets[8], 7), BAD_TICKET)
        listing = await self.wait(m.list())
        self.assertEqual([(i["instance_id"], i["template"], i["node"]) for i in listing],
                         [(p.instance_id, "crypt", p.node)])
        located = await self.wait(m.locate(p.instance_id))
        self.assertEqual((located.instance_id, located.node, located.zone, located.tickets),
                         (p.instance_id, p.node, p.zone, {}))
        self.assertIsNone(await self.wait(m.locate(p.instance_id + 1000)))
        await self.wait(m.close(p.instance_id))
        self.assertNotIn(p.zone, self.procs[p.node][0].zones)
        self.assertIsNotNone((await self.wait(loadInstance(self.sql, p.instance_id))).closed_at)
        self.assertIsNone(await self.wait(m.locate(p.instance_id)))
        self.assertEqual(await self.wait(m.list()), [])

    async def test_adopts_when_host_gone(self):
        """locate from a node without the world role has an instance whose host stopped re-created on another world process."""
        m = await self.client()
        p = await self.wait(m.create("crypt", [7]))
        world, instances, volatile, directory = self.procs[p.node]
        await self.wait(Deferred.fromCoroutine(instances.stop()))
        await self.wait(Deferred.fromCoroutine(directory.stop()))
        self.assertIsNone(await volatile.get(hostKey(p.instance_id)))
        other = "c" if p.node == "b" else "b"
        located = await self.wait(m.locate(p.instance_id))
        self.assertEqual((located.node, located.zone), (other, p.zone))

    async def test_unknown_template_and_no_world(self):
        """No world process offering the template: instance.no_capacity; silent world processes: instance.unavailable within the timeout."""
        m = await self.client(timeout=1.0)
        await self.fails(m.create("nowhere", [7]), NO_CAPACITY)
        for node in ("b", "c"):
            await self.wait(Deferred.fromCoroutine(self.procs[node][1].stop()))
        d = m.create("crypt", [7])
        if hasattr(self.clock, "advance"):
            self.clock.advance(0)
            self.clock.advance(2.0)
        await self.fails(d, UNAVAILABLE)


class MemoryStoreInstancesTests(ClientMixin, TestCase):
    """On the memory store and a Clock (the world's cross-process fixture)."""

    world = world.MemoryCrossProcessTests


class RedisStoreInstancesTests(ClientMixin, TestCase):
    """On a real Redis and the real reactor."""

    timeout = 30
    world = world.RedisCrossProcessTests
