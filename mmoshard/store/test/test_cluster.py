"""The volatile-store and pub/sub contracts on a real three-node Redis Cluster, and what only a cluster does."""

import gc

from twisted.internet import reactor
from twisted.internet.defer import DeferredList
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from mmoshard.store.errors import VolatileUnavailable
from mmoshard.store.slots import keySlot, slotBatches, splitBySlot
from mmoshard.store.test.fixtures import ClusterFixture
from mmoshard.store.test.test_pubsub import PubSubContract
from mmoshard.store.test.test_volatile import LifecycleContract, VolatileStoreContract
from mmoshard.store.volatile import ClusterStore, MemoryStore, makeVolatileStore, parseClusterURL
from mmoshard.testcluster import command, testCluster
from mmoshard.testing import freePort


class ClusterLifecycleTests(LifecycleContract, ClusterFixture, TestCase):
    """Opening and closing a ClusterStore."""


class ClusterStoreContractTests(VolatileStoreContract, ClusterFixture, TestCase):
    """The contract on a real Redis Cluster, time passing for real."""


class ClusterPubSubTests(PubSubContract, ClusterFixture, TestCase):
    """Pub/sub on a real Redis Cluster."""


class SlotMigrationTests(ClusterFixture, TestCase):
    """A slot moving between nodes while a store uses it."""

    async def test_followsAskThenMoved(self):
        """
        While a key's slot migrates the store still reads it (ASK), and once the slot has moved
        it reads and writes it on the new owner (MOVED), with no error.
        """
        cluster = testCluster()
        await self.store.set("k", b"before")
        full = (self.prefix + "a:k").encode()
        slot = keySlot(full)
        ids = {p: command(p, "CLUSTER", "MYID") for p in cluster.ports}
        source = next(p for p in cluster.ports
                      if not command(p, "GET", full).startswith("-MOVED"))
        target = next(p for p in cluster.ports if p != source)
        command(target, "CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source])
        command(source, "CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target])
        self.assertEqual(command(source, "MIGRATE", "127.0.0.1", target, full, 0, 5000), "+OK")
        self.assertTrue(command(source, "GET", full).startswith("-ASK"))
        self.assertEqual(await self.store.get("k"), b"before")
        for port in cluster.ports:
            command(port, "CLUSTER", "SETSLOT", slot, "NODE", ids[target])
        self.assertTrue(command(source, "GET", full).startswith("-MOVED"))
        self.assertEqual(await self.store.get("k"), b"before")
        self.assertTrue(await self.store.set("k", b"after"))
        self.assertEqual(command(target, "GET", full), "after")


class PlacementTests(ClusterFixture, TestCase):
    """Where keys go, and the redis-cluster:// URL."""

    def test_slotAsRedisComputesIt(self):
        """keySlot() gives the slot Redis gives (CLUSTER KEYSLOT), hash tags included."""
        port = testCluster().ports[0]
        for key in ["foo", "123456789", "{user1000}.following", "a{}b", "x{a}y{b}", "h\u00e9llo",
                    self.prefix + "loc:{42}|n1"]:
            self.assertEqual(keySlot(key), int(command(port, "CLUSTER", "KEYSLOT", key)[1:]), key)

    def test_url(self):
        """A redis-cluster:// URL gives the nodes and password; a database number or bad port is refused."""
        self.assertEqual(parseClusterURL("redis-cluster://:s%40cret@a:7000,b:7001,c"),
                         {"nodes": [("a", 7000), ("b", 7001), ("c", 6379)], "password": "s@cret"})
        for bad in ["redis://a:1", "redis-cluster://a:1/3", "redis-cluster://a:x", "redis-cluster://"]:
            with self.assertRaises(ValueError, msg=bad):
                parseClusterURL(bad)
        self.assertIsInstance(makeVolatileStore(self.url, reactor, "p:"), ClusterStore)

    def test_groupsPerSlot(self):
        """On the cluster groupBySlot() gives one group per hash slot of the prefixed keys."""
        keys = [f"k{i}" for i in range(30)]
        groups = self.store.groupBySlot(keys)
        self.assertGreater(len(groups), 1)
        for group in groups:
            self.assertEqual(len({keySlot(self.prefix + k) for k in group}), 1)
        self.assertEqual(len({keySlot(self.prefix + g[0]) for g in groups}), len(groups))

    def test_splitBySlot(self):
        """
        A batch of items is cut per slot of their keys, items of one key kept in order; on one
        Redis the batch stays whole.
        """
        items = [("a", 1), ("b", 1), ("a", 2), ("c", 1), ("b", 2), ("a", 3)]
        batches = splitBySlot(self.store, items, lambda item: item[0])
        self.assertEqual(sorted(i for b in batches for i in b), sorted(items))
        for batch in batches:
            self.assertEqual(len({keySlot(self.prefix + i[0]) for i in batch}), 1)
        self.assertEqual([i for b in batches for i in b if i[0] == "a"],
                         [("a", 1), ("a", 2), ("a", 3)])
        self.assertEqual(slotBatches(MemoryStore(reactor), items, lambda i: i[0], 4),
                         [items[:4], items[4:]])


class EveryBatchTests(TestCase):
    """everyBatch: per-slot calls sent together, the first failure raised once all answered."""

    def test_sentTogetherAnsweredInOrder(self):
        """Every batch's call goes out before any answers; the replies come back in batch order."""
        from twisted.internet.defer import Deferred

        from mmoshard.store.slots import everyBatch

        calls = {}

        def call(batch):
            calls[batch[0]] = Deferred()
            return calls[batch[0]]

        done = Deferred.fromCoroutine(everyBatch([["a"], ["b"], ["c"]], call))
        self.assertEqual(sorted(calls), ["a", "b", "c"])
        calls["c"].callback(3)
        calls["a"].callback(1)
        self.assertNoResult(done)
        calls["b"].callback(2)
        self.assertEqual(self.successResultOf(done), [1, 2, 3])

        calls.clear()
        failing = Deferred.fromCoroutine(everyBatch([["a"], ["b"]], call))
        calls["a"].errback(VolatileUnavailable("down"))
        self.assertNoResult(failing)
        calls["b"].callback(2)
        self.failureResultOf(failing, VolatileUnavailable)


class SlotMapFailureTests(TestCase):
    """A slot map that cannot be read fails the commands waiting for it, and nothing else."""

    async def test_failedReadLeavesNoUnhandledError(self):
        """
        Two commands wait on one slot-map read from a seed that does not
        answer: both fail with VolatileUnavailable, and no failure is left
        unhandled behind them (it would be logged as "Unhandled error in
        Deferred" when collected, in whatever runs then).
        """
        store = ClusterStore(reactor, [("127.0.0.1", freePort())], timeout=0.5,
                             initialDelay=0.05, maxDelay=0.1)
        store.open()
        self.addCleanup(store.close)

        async def both():
            results = await DeferredList([store.get("a"), store.get("b")], consumeErrors=True)
            return [(ok, type(f.value), str(f.value)) for ok, f in results]

        outcomes = await both()
        self.assertEqual([o[:2] for o in outcomes], [(False, VolatileUnavailable)] * 2)
        self.assertIn("gave its slot map", outcomes[0][2])
        # Whatever the reads left behind is collected now, inside this test.
        await deferLater(reactor, 0, lambda: None)
        gc.collect()
        self.assertEqual(self.flushLoggedErrors(), [])
