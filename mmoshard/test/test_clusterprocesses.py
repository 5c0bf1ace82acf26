"""Real twistd processes on a Redis Cluster (redis-cluster:// URL): chat across two nodes, a world node and a zone transfer."""

from twisted.trial.unittest import TestCase

from mmoshard.chat.test import test_processes as chatProcesses
from mmoshard.testcluster import requireRedisCluster
from mmoshard.world.lease import leaseKey
from mmoshard.world.test import test_processes as worldProcesses
from mmoshard.world.test.worldprocess import sleep, waitFor


class ClusterChatProcessesTests(chatProcesses.ChatProcessesTests):
    """
    The two-chat-process suite (friends, presence, whispers, a party over both nodes, a channel,
    a link-dead resume with replay; a kill -9) with both nodes on the tests' Redis Cluster.
    """

    async def setUpNode(self):
        await super().setUpNode()
        # SQL as the parent makes it; the volatile store is the cluster.
        self.redisURL, self.prefix, cleaner = requireRedisCluster()
        self.addCleanup(cleaner)
        self.assertTrue(self.redisURL.startswith("redis-cluster://"))


class ClusterWorldProcessTests(worldProcesses.WorldProcesses, TestCase):
    """World nodes on the tests' Redis Cluster."""

    async def _setUp(self):
        await super()._setUp()
        await self.volatile.close()
        from twisted.internet import reactor

        from mmoshard.store.volatile import makeVolatileStore

        self.redisURL, self.prefix, cleaner = requireRedisCluster()
        self.addCleanup(cleaner)
        self.volatile = makeVolatileStore(self.redisURL, reactor, self.prefix)
        self.volatile.open()
        self.addCleanup(self.volatile.close)

    async def test_enterMoveSeeEachOther(self):
        """Two players enter one zone on a cluster-backed world node, move, and each sees the other where it went."""
        a = await self.startWorld("world-a")
        one = await self.character(1, "greenvale", 100.0, 100.0)
        two = await self.character(2, "greenvale", 104.0, 100.0)
        c1, c2 = self.client(a, 1, one), self.client(a, 2, two)
        await c1.enter()
        await c2.enter()
        self.assertEqual(await self.volatile.get(leaseKey(one)), b"world-a")
        self.assertEqual(await self.volatile.get(leaseKey(two)), b"world-a")
        await waitFor(lambda: two in c1.entities and one in c2.entities)
        c1.move(101.0, 101.0)
        c2.move(105.0, 99.0)
        await waitFor(lambda: c2.entities[one] == [101.0, 101.0]
                      and c1.entities[two] == [105.0, 99.0])
        await c1.leave()
        await c2.leave()
        self.assertIsNone(await self.volatile.get(leaseKey(one)))
        await a.stop()

    async def test_zoneTransferBetweenProcesses(self):
        """A portal to a zone hosted by another node moves the character and its lease there, on the cluster."""
        a = await self.startWorld("world-a", zones=["greenvale"])
        b = await self.startWorld("world-b", zones=["ashfall"])
        await sleep(1.0)  # both directory entries are written
        cid = await self.character(1, "greenvale", 1000.0, 498.0)
        c = self.client(a, 1, cid)
        await c.enter()
        done = c.onTransfer
        c.move(1001.0, 500.5, 1.0, 1.0)  # into the portal to ashfall
        self.assertEqual(await done, "ashfall")
        self.assertEqual(c.address, b.address.replace("tcp:", ""))
        self.assertEqual(await self.volatile.get(leaseKey(cid)), b"world-b")
        await c.leave()
        self.assertEqual((await self.position(cid))[0], "ashfall")
        await a.stop()
        await b.stop()
