"""The volatile stores the contract tests run on: memory on a Clock, the test Redis, and a test Redis Cluster."""

from twisted.internet import reactor
from twisted.internet.task import Clock, deferLater

from mmoshard.store.volatile import (
    ClusterStore,
    MemoryStore,
    RedisStore,
    parseClusterURL,
    parseRedisURL,
)
from mmoshard.testcluster import requireRedisCluster
from mmoshard.testing import requireRedis

__all__ = ["ClusterFixture", "MemoryFixture", "RedisFixture", "StoreFixture"]


class StoreFixture:
    """
    The volatile stores a contract test runs on.  Subclasses provide
    C{makeUnopened(suffix)} (a store whose prefix ends in C{suffix}, not
    opened, closed at cleanup; stores of one test share a backend),
    C{wait(seconds)} (let time pass for expiry) and C{settle()} (let
    pending pub/sub deliveries happen).  C{self.store} is an opened one.
    """

    def setUp(self):
        self.store = self.makeStore("a:")

    def makeStore(self, suffix):
        """An opened store: see C{makeUnopened}."""
        store = self.makeUnopened(suffix)
        store.open()
        return store

    async def eventually(self, predicate, timeout=3.0):
        """Wait for C{predicate()} to be true, failing after C{timeout}."""
        for _ in range(int(timeout / 0.01)):
            if predicate():
                return
            await self.settle()
        self.fail(f"condition not met within {timeout}s")


class MemoryFixture(StoreFixture):
    """Memory stores sharing one MemoryView, time driven by a Clock."""

    def setUp(self):
        self.clock = Clock()
        self.backend = None
        super().setUp()

    def makeUnopened(self, suffix):
        store = MemoryStore(self.clock, prefix="p:" + suffix, backend=self.backend)
        self.backend = store.backend
        self.addCleanup(store.close)
        return store

    async def wait(self, seconds):
        self.clock.advance(seconds)

    async def settle(self):
        self.clock.advance(0)


class RedisFixture(StoreFixture):
    """Redis stores on the test Redis under a fresh prefix, time passing for real."""

    def setUp(self):
        url, self.prefix, cleaner = requireRedis()
        self.addCleanup(cleaner)
        self.address = parseRedisURL(url)
        super().setUp()

    def makeUnopened(self, suffix):
        store = RedisStore(
            reactor, prefix=self.prefix + suffix, timeout=2.0, poolsize=2, **self.address
        )
        self.addCleanup(store.close)
        return store

    async def wait(self, seconds):
        await deferLater(reactor, seconds, lambda: None)

    async def settle(self):
        await deferLater(reactor, 0.01, lambda: None)


class ClusterFixture(RedisFixture):
    """Cluster stores on the test process's three-node Redis Cluster under a fresh prefix."""

    def setUp(self):
        self.url, self.prefix, cleaner = requireRedisCluster()
        self.addCleanup(cleaner)
        self.address = parseClusterURL(self.url)
        StoreFixture.setUp(self)

    def makeUnopened(self, suffix):
        store = ClusterStore(
            reactor, prefix=self.prefix + suffix, timeout=2.0, poolsize=2, **self.address
        )
        self.addCleanup(store.close)
        return store
