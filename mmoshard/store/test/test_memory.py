"""What only the memory store does, and the volatile store's URL factory and public names."""

from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from mmoshard.store.volatile import (
    MemoryStore,
    RedisStore,
    StoreNotOpen,
    makeVolatileStore,
    parseRedisURL,
)
from mmoshard.testing import freePort


class MemoryStoreTests(TestCase):
    """What only the memory store does: clock-driven sweeping and delivery."""

    def setUp(self):
        self.clock = Clock()
        self.store = MemoryStore(self.clock, prefix="m:", sweepInterval=10.0)
        self.store.open()
        self.addCleanup(self.store.close)

    async def test_sweepFreesExpiredKeys(self):
        """
        The periodic sweep frees expired keys nobody reads, and stops scheduling once nothing can
        expire.
        """
        await self.store.set("k", b"v", ttl=1)
        await self.store.hset("h", {"f": b"v"})
        await self.store.expire("h", 30)
        self.clock.advance(10)
        self.assertEqual(set(self.store.backend._data), {"m:h"})
        self.clock.advance(20)
        self.assertEqual(self.store.backend._data, {})
        # nothing left to expire, nothing scheduled
        self.assertEqual(self.clock.getDelayedCalls(), [])

    async def test_closeCancelsEverything(self):
        """close() cancels the sweep and pending deliveries: nothing is left on the clock."""
        await self.store.set("k", b"v", ttl=100)
        await self.store.subscribe("c", lambda c, m: self.fail("delivered after close"))
        await self.store.publish("c", b"x")
        await self.store.close()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    async def test_deliveryNeverInsidePublish(self):
        """
        Messages are delivered from the clock, never inside publish(), so a callback that publishes
        does not recurse.
        """
        got = []

        def echo(channel, message):
            got.append(message)
            if message == b"ping":
                # publishing from a callback must not recurse into it
                self.store.publish("c", b"pong")
                got.append("after publish")

        await self.store.subscribe("c", echo)
        self.assertEqual(await self.store.publish("c", b"ping"), 1)
        self.assertEqual(got, [])
        self.clock.advance(0)
        self.assertEqual(got, [b"ping", "after publish", b"pong"])

    async def test_publishCountsSubscriptions(self):
        """publish() counts every subscription on the channel."""
        await self.store.subscribe("c", lambda c, m: None)
        await self.store.subscribe("c", lambda c, m: None)
        self.assertEqual(await self.store.publish("c", b"x"), 2)

    async def test_sharedBackendOpenedPerStore(self):
        """A store on another's backend is unusable until its own open()."""
        other = MemoryStore(self.clock, prefix="m:", backend=self.store.backend)
        self.addCleanup(other.close)
        await self.store.set("k", b"v")
        self.failureResultOf(other.get("k"), StoreNotOpen)
        other.open()
        self.assertEqual(await other.get("k"), b"v")

    async def test_closeEndsOwnSubscriptionsOnly(self):
        """
        Closing a store on a shared backend ends its own subscriptions, not the other store's.
        """
        other = MemoryStore(self.clock, prefix="m:", backend=self.store.backend)
        other.open()
        got = []
        await self.store.subscribe("c", lambda c, m: got.append("mine"))
        await other.subscribe("c", lambda c, m: got.append("other's"))
        await other.close()
        self.assertEqual(await self.store.publish("c", b"x"), 1)
        self.clock.advance(0)
        self.assertEqual(got, ["mine"])


class MakeVolatileStoreTests(TestCase):
    """The URL factory."""

    def test_memory(self):
        """memory:// gives an unopened MemoryStore with the prefix, on the given clock."""
        clock = Clock()
        store = makeVolatileStore("memory://", clock, "pre:", 1.0)
        self.addCleanup(store.close)
        self.failureResultOf(store.ping(), StoreNotOpen)
        self.assertIsInstance(store, MemoryStore)
        self.assertEqual(store.prefix, "pre:")
        self.assertIs(store.clock, clock)

    def test_parseRedisURL(self):
        """parseRedisURL splits host, port, database and unquoted password, with defaults."""
        self.assertEqual(
            parseRedisURL("redis://:s%40cret@cache.example:6380/3"),
            {"host": "cache.example", "port": 6380, "db": 3, "password": "s@cret"},
        )
        self.assertEqual(
            parseRedisURL("redis://10.0.0.1"),
            {"host": "10.0.0.1", "port": 6379, "db": 0, "password": None},
        )

    def test_redis(self):
        """
        redis:// gives an unopened RedisStore with the URL's address and the given prefix and
        timeout.
        """
        port = freePort()
        store = makeVolatileStore(f"redis://:pw@127.0.0.1:{port}/2", reactor, "pre:", 0.5)
        self.addCleanup(store.close)
        self.failureResultOf(store.ping(), StoreNotOpen)
        self.assertIsInstance(store, RedisStore)
        self.assertEqual(
            (store.host, store.port, store.db, store.password, store.prefix, store.timeout),
            ("127.0.0.1", port, 2, "pw", "pre:", 0.5),
        )

    def test_badURLs(self):
        """Unsupported or malformed URLs are ValueErrors naming the problem."""
        for url, words in [
            ("mysql://localhost/db", "unsupported volatile store URL"),
            ("redis://", "has no host"),
            ("redis://localhost:port/0", "bad port"),
            ("redis://localhost:6379/zero", "must be a number"),
            ("localhost:6379", "unsupported volatile store URL"),
        ]:
            with self.assertRaises(ValueError, msg=url) as caught:
                makeVolatileStore(url, reactor, "", 1.0)
            self.assertIn(words, str(caught.exception), url)

    def test_publicNames(self):
        """
        volatile.py stays the one import for the whole volatile store, though
        the implementations live in memory.py and redis.py.
        """
        from mmoshard.store import errors, memory, redis, volatile

        for name in volatile.__all__:
            self.assertTrue(hasattr(volatile, name), name)
        self.assertIs(volatile.MemoryStore, memory.MemoryStore)
        self.assertIs(volatile.MemoryView, memory.MemoryView)
        self.assertIs(volatile.RedisStore, redis.RedisStore)
        self.assertIs(volatile.CommandError, errors.CommandError)
        self.assertIs(volatile.StoreNotOpen, errors.StoreNotOpen)
        with self.assertRaises(AttributeError):
            volatile.NoSuchName
