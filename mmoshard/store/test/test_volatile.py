"""The contract suite both volatile stores pass, plus memory-store specifics and the URL factory."""

import uuid

from twisted.internet import reactor
from twisted.internet.task import Clock, deferLater
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from mmoshard.interfaces import ISubscription, IVolatileStore
from mmoshard.store.volatile import (
    CommandError,
    MemoryStore,
    RedisStore,
    Script,
    makeVolatileStore,
    parseRedisURL,
)
from mmoshard.testing import freePort, requireRedis

INF = float("inf")


def _release(view, keys, args):
    if view.get(keys[0]) == args[0]:
        return view.delete(keys[0])
    return 0


RELEASE_LEASE = Script(
    name="release-lease",
    lua=(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
        "  return redis.call('DEL', KEYS[1])\n"
        "end\n"
        "return 0\n"
    ),
    python=_release,
)


def _take(view, keys, args):
    current = view.get(keys[0])
    if current is None or current == args[0]:
        view.set(keys[0], args[0], ttl=int(args[1]) / 1000)
        return [1, args[0]]
    return [0, current]


TAKE_LEASE = Script(
    name="take-lease",
    lua=(
        "local current = redis.call('GET', KEYS[1])\n"
        "if current == false or current == ARGV[1] then\n"
        "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
        "  return {1, ARGV[1]}\n"
        "end\n"
        "return {0, current}\n"
    ),
    python=_take,
)


def _conventions(view, keys, args):
    mode = args[0].decode()
    if mode == "nil":
        return None
    if mode == "false":
        return False
    if mode == "true":
        return True
    if mode == "float":
        return -2.7
    if mode == "string":
        return "h\u00e9llo"
    if mode == "table":
        return [1, "two", False, 3.9, [4, "x"], None, 5]
    if mode == "status":
        return {"ok": "FINE"}
    if mode == "sum":
        return float(args[1]) + float(args[2])
    if mode == "error":
        raise CommandError("boom")
    if mode == "wrongtype":
        return view.hget(keys[0], "f")
    if mode == "crash":
        return 1 / 0


CONVENTIONS = Script(
    name="conventions",
    lua=(
        "local m = ARGV[1]\n"
        "if m == 'nil' then return nil end\n"
        "if m == 'false' then return false end\n"
        "if m == 'true' then return true end\n"
        "if m == 'float' then return -2.7 end\n"
        "if m == 'string' then return 'h\u00e9llo' end\n"
        "if m == 'table' then return {1, 'two', false, 3.9, {4, 'x'}, nil, 5} end\n"
        "if m == 'status' then return {ok='FINE'} end\n"
        "if m == 'sum' then return tonumber(ARGV[2]) + tonumber(ARGV[3]) end\n"
        "if m == 'error' then return redis.error_reply('boom') end\n"
        "if m == 'wrongtype' then return redis.call('HGET', KEYS[1], 'f') end\n"
        "if m == 'crash' then return nil + 1 end\n"
    ),
    python=_conventions,
)


class VolatileStoreContract:
    """
    The behaviour every IVolatileStore must have.  Subclasses provide
    C{makeStore(suffix)} (a store whose prefix ends in C{suffix}, closed at
    cleanup; stores of one test share a backend), C{wait(seconds)} (let
    time pass for expiry) and C{settle()} (let pending pub/sub deliveries
    happen).
    """

    def setUp(self):
        self.store = self.makeStore("a:")

    async def eventually(self, predicate, timeout=3.0):
        """Wait for C{predicate()} to be true, failing after C{timeout}."""
        for _ in range(int(timeout / 0.01)):
            if predicate():
                return
            await self.settle()
        self.fail(f"condition not met within {timeout}s")

    def test_providesInterface(self):
        self.assertTrue(verifyObject(IVolatileStore, self.store))

    async def test_ping(self):
        self.assertIsNone(await self.store.ping())

    async def test_valuesComeBackAsBytes(self):
        s = self.store
        for value, raw in [
            ("h\u00e9llo", "h\u00e9llo".encode()),
            (b"\x00\xff", b"\x00\xff"),
            (42, b"42"),
            (-7, b"-7"),
            (1.5, b"1.5"),
        ]:
            self.assertIs(await s.set("k", value), True)
            self.assertEqual(await s.get("k"), raw)
        self.assertIsNone(await s.get("missing"))

    async def test_setNx(self):
        s = self.store
        self.assertIs(await s.set("k", b"first", nx=True), True)
        self.assertIs(await s.set("k", b"second", nx=True), False)
        self.assertEqual(await s.get("k"), b"first")
        self.assertIs(await s.set("k", b"third"), True)
        self.assertEqual(await s.get("k"), b"third")

    async def test_setTtlExpires(self):
        s = self.store
        await s.set("k", b"v", ttl=0.2)
        left = await s.ttl("k")
        self.assertTrue(0 < left <= 0.2, left)
        await self.wait(0.3)
        self.assertIsNone(await s.get("k"))
        self.assertEqual(await s.ttl("k"), -1.0)
        # nx counts an expired key as absent
        self.assertIs(await s.set("k", b"again", nx=True, ttl=5), True)

    async def test_setWithoutTtlClearsExpiry(self):
        s = self.store
        await s.set("k", b"v", ttl=10)
        await s.set("k", b"w")
        self.assertIsNone(await s.ttl("k"))

    async def test_setRejectsBadTtl(self):
        with self.assertRaises(ValueError):
            await self.store.set("k", b"v", ttl=0)
        with self.assertRaises(ValueError):
            await self.store.set("k", b"v", ttl=-1)
        self.assertIsNone(await self.store.get("k"))

    async def test_ttlSemantics(self):
        s = self.store
        self.assertEqual(await s.ttl("missing"), -1.0)
        await s.set("forever", b"v")
        self.assertIsNone(await s.ttl("forever"))
        await s.set("soon", b"v", ttl=10)
        left = await s.ttl("soon")
        self.assertIsInstance(left, float)
        self.assertTrue(9 < left <= 10, left)

    async def test_delete(self):
        s = self.store
        await s.set("a", b"1")
        await s.hset("b", {"f": b"1"})
        self.assertEqual(await s.delete("a", "b", "missing"), 2)
        self.assertIsNone(await s.get("a"))
        self.assertEqual(await s.delete("a"), 0)
        self.assertEqual(await s.delete(), 0)

    async def test_expire(self):
        s = self.store
        self.assertIs(await s.expire("missing", 5), False)
        await s.set("k", b"v")
        self.assertIs(await s.expire("k", 0.2), True)
        left = await s.ttl("k")
        self.assertTrue(0 < left <= 0.2, left)
        await self.wait(0.3)
        self.assertIsNone(await s.get("k"))
        await s.set("gone", b"v")
        self.assertIs(await s.expire("gone", 0), True)
        self.assertIsNone(await s.get("gone"))

    async def test_incr(self):
        s = self.store
        self.assertEqual(await s.incr("n"), 1)
        self.assertEqual(await s.incr("n", 10), 11)
        self.assertEqual(await s.incr("n", -20), -9)
        self.assertEqual(await s.get("n"), b"-9")
        await s.set("text", b"abc")
        with self.assertRaises(CommandError):
            await s.incr("text")

    async def test_incrTtlOnlyWhenNoExpiry(self):
        s = self.store
        self.assertEqual(await s.incr("c", 1, ttl=0.2), 1)
        self.assertEqual(await s.incr("c", 1, ttl=10), 2)
        left = await s.ttl("c")
        self.assertTrue(0 < left <= 0.2, left)
        await self.wait(0.3)
        self.assertIsNone(await s.get("c"))
        self.assertEqual(await s.incr("c", 5), 5)
        self.assertIsNone(await s.ttl("c"))
        # an existing key without expiry gets one
        self.assertEqual(await s.incr("c", 1, ttl=5), 6)
        left = await s.ttl("c")
        self.assertTrue(4 < left <= 5, left)

    async def test_incrKeepsExpiry(self):
        s = self.store
        await s.set("c", 1, ttl=10)
        self.assertEqual(await s.incr("c"), 2)
        self.assertTrue(9 < await s.ttl("c") <= 10)

    async def test_hashes(self):
        s = self.store
        self.assertEqual(await s.hset("h", {"a": b"1", "b": "two", "c": 3}), 3)
        self.assertEqual(await s.hset("h", {"a": b"one", "d": 4.5}), 1)
        self.assertEqual(await s.hset("h", {}), 0)
        self.assertEqual(await s.hget("h", "a"), b"one")
        self.assertIsNone(await s.hget("h", "zz"))
        self.assertIsNone(await s.hget("nohash", "a"))
        self.assertEqual(
            await s.hgetall("h"), {"a": b"one", "b": b"two", "c": b"3", "d": b"4.5"}
        )
        self.assertEqual(await s.hgetall("nohash"), {})
        self.assertEqual(await s.hdel("h", "a", "zz"), 1)
        self.assertEqual(await s.hincrby("h", "c", 4), 7)
        self.assertEqual(await s.hincrby("h", "new"), 1)
        self.assertEqual(await s.hget("h", "c"), b"7")
        with self.assertRaises(CommandError):
            await s.hincrby("h", "b")
        self.assertEqual(await s.hdel("h", "b", "c", "d", "new"), 4)
        # an empty hash is no key at all
        self.assertEqual(await s.keys("h"), [])
        self.assertEqual(await s.hdel("nohash", "a"), 0)

    async def test_hashKeepsExpiry(self):
        s = self.store
        await s.hset("h", {"a": b"1"})
        await s.expire("h", 0.2)
        await s.hset("h", {"b": b"2"})
        await self.wait(0.3)
        self.assertEqual(await s.hgetall("h"), {})

    async def test_wrongType(self):
        s = self.store
        await s.set("str", b"v")
        await s.sadd("set", "m")
        with self.assertRaises(CommandError):
            await s.hget("str", "f")
        with self.assertRaises(CommandError):
            await s.get("set")
        with self.assertRaises(CommandError):
            await s.zadd("set", {"m": 1})

    async def test_sets(self):
        s = self.store
        self.assertEqual(await s.sadd("s", "a", "b", "a"), 2)
        self.assertEqual(await s.sadd("s", "b", "c"), 1)
        self.assertEqual(await s.sadd("s"), 0)
        self.assertEqual(await s.smembers("s"), {"a", "b", "c"})
        self.assertIs(await s.sismember("s", "a"), True)
        self.assertIs(await s.sismember("s", "z"), False)
        self.assertIs(await s.sismember("noset", "a"), False)
        self.assertEqual(await s.smembers("noset"), set())
        self.assertEqual(await s.srem("s", "a", "zz"), 1)
        self.assertEqual(await s.srem("s", "b", "c"), 2)
        self.assertEqual(await s.keys("s"), [])
        self.assertEqual(await s.srem("noset", "a"), 0)

    async def test_sortedSets(self):
        s = self.store
        self.assertEqual(await s.zadd("z", {"a": 1, "b": 2.5}), 2)
        self.assertEqual(await s.zadd("z", {"a": 3, "c": -1}), 1)
        self.assertEqual(await s.zadd("z", {}), 0)
        self.assertEqual(await s.zscore("z", "a"), 3.0)
        self.assertIsInstance(await s.zscore("z", "a"), float)
        self.assertEqual(await s.zscore("z", "b"), 2.5)
        self.assertIsNone(await s.zscore("z", "zz"))
        self.assertIsNone(await s.zscore("noz", "a"))
        self.assertEqual(await s.zcard("z"), 3)
        self.assertEqual(await s.zcard("noz"), 0)
        self.assertEqual(await s.zrem("z", "a", "zz"), 1)
        self.assertEqual(await s.zcard("z"), 2)
        self.assertEqual(await s.zrem("z", "b", "c"), 2)
        self.assertEqual(await s.keys("z"), [])

    async def test_zrangebyscoreOrderAndLimits(self):
        s = self.store
        await s.zadd(
            "z",
            {"b": 1, "a": 1, "c": 2, "d": 3.5, "e": -1, "top": INF, "bottom": -INF, "tiny": 1e-9},
        )
        everything = ["bottom", "e", "tiny", "a", "b", "c", "d", "top"]
        self.assertEqual(await s.zrangebyscore("z", -INF, INF), everything)
        self.assertEqual(await s.zrangebyscore("z", "-inf", "+inf"), everything)
        self.assertEqual(await s.zrangebyscore("z", 1, 3.5), ["a", "b", "c", "d"])
        self.assertEqual(await s.zrangebyscore("z", "(1", 3.5), ["c", "d"])
        self.assertEqual(await s.zrangebyscore("z", 1, "(3.5"), ["a", "b", "c"])
        self.assertEqual(await s.zrangebyscore("z", 0, 1e-8), ["tiny"])
        self.assertEqual(await s.zrangebyscore("z", 10, 20), [])
        self.assertEqual(await s.zrangebyscore("z", 5, 1), [])
        self.assertEqual(await s.zrangebyscore("noz", -INF, INF), [])
        self.assertEqual(await s.zrangebyscore("z", -INF, INF, offset=1, count=2), ["e", "tiny"])
        self.assertEqual(await s.zrangebyscore("z", -INF, INF, count=3), ["bottom", "e", "tiny"])
        self.assertEqual(await s.zrangebyscore("z", -INF, INF, offset=6), ["d", "top"])
        self.assertEqual(await s.zrangebyscore("z", -INF, INF, offset=0, count=0), [])
        self.assertEqual(await s.zrangebyscore("z", -INF, INF, offset=20, count=5), [])
        self.assertEqual(
            await s.zrangebyscore("z", 1, 1, withscores=True), [("a", 1.0), ("b", 1.0)]
        )
        pairs = await s.zrangebyscore("z", 3, INF, withscores=True)
        self.assertEqual(pairs, [("d", 3.5), ("top", INF)])
        self.assertIsInstance(pairs[0][1], float)
        self.assertEqual(
            await s.zrangebyscore("z", -INF, 0, count=1, withscores=True), [("bottom", -INF)]
        )

    async def test_keys(self):
        s = self.store
        for key in ["user:1", "user:2", "user:10", "other"]:
            await s.set(key, b"v")
        await s.hset("guild:x", {"f": b"v"})
        await s.set("old", b"v", ttl=0.2)
        await self.wait(0.3)
        self.assertEqual(await s.keys("user:*"), ["user:1", "user:10", "user:2"])
        self.assertEqual(await s.keys("user:?"), ["user:1", "user:2"])
        self.assertEqual(await s.keys("user:[12]"), ["user:1", "user:2"])
        self.assertEqual(await s.keys("user:[^1]"), ["user:2"])
        self.assertEqual(
            await s.keys("*"), ["guild:x", "other", "user:1", "user:10", "user:2"]
        )
        self.assertEqual(await s.keys("nothing*"), [])

    async def test_keysWithGlobCharactersInPrefix(self):
        tricky = self.makeStore("g[1]*:")
        lookalike = self.makeStore("g1x:")
        await tricky.set("mine", b"v")
        await lookalike.set("theirs", b"v")
        self.assertEqual(await tricky.keys("*"), ["mine"])
        self.assertEqual(await lookalike.keys("*"), ["theirs"])

    async def test_prefixIsolatesKeys(self):
        a, b = self.store, self.makeStore("b:")
        await a.set("k", b"from a")
        await b.set("k", b"from b")
        await a.sadd("s", "x")
        self.assertEqual(await a.get("k"), b"from a")
        self.assertEqual(await b.get("k"), b"from b")
        self.assertEqual(await a.keys("*"), ["k", "s"])
        self.assertEqual(await b.keys("*"), ["k"])
        self.assertEqual(await b.delete("k", "s"), 1)
        self.assertEqual(await a.get("k"), b"from a")
        self.assertEqual(await a.smembers("s"), {"x"})

    # -- pub/sub

    async def test_subscribeAndPublish(self):
        s = self.store
        got = []
        subscription = await s.subscribe("chat", lambda *a: got.append(a))
        self.assertTrue(verifyObject(ISubscription, subscription))
        self.assertEqual(subscription.channel, "chat")
        self.assertEqual(await s.publish("chat", b"hi"), 1)
        self.assertEqual(await s.publish("chat", "h\u00e9"), 1)
        await self.eventually(lambda: len(got) == 2)
        self.assertEqual(got, [("chat", b"hi"), ("chat", "h\u00e9".encode())])
        self.assertEqual(await s.publish("nobody", b"x"), 0)

    async def test_unsubscribe(self):
        s = self.store
        got = []
        subscription = await s.subscribe("chat", lambda *a: got.append(a))
        self.assertIsNone(await subscription.unsubscribe())
        self.assertEqual(await s.publish("chat", b"late"), 0)
        await self.settle()
        self.assertEqual(got, [])
        # unsubscribing twice is harmless, and the channel can be reused
        await subscription.unsubscribe()
        await s.subscribe("chat", lambda *a: got.append(a))
        self.assertEqual(await s.publish("chat", b"again"), 1)
        await self.eventually(lambda: got == [("chat", b"again")])

    async def test_severalSubscriptions(self):
        s = self.store
        first, second = [], []
        one = await s.subscribe("chat", lambda c, m: first.append(m))
        await s.subscribe("chat", lambda c, m: second.append(m))
        await s.publish("chat", b"both")
        await self.eventually(lambda: first == [b"both"] and second == [b"both"])
        await one.unsubscribe()
        await s.publish("chat", b"second only")
        await self.eventually(lambda: second == [b"both", b"second only"])
        self.assertEqual(first, [b"both"])

    async def test_prefixIsolatesChannels(self):
        a, b = self.store, self.makeStore("b:")
        gotA, gotB = [], []
        await a.subscribe("chat", lambda c, m: gotA.append(m))
        self.assertEqual(await b.publish("chat", b"from b"), 0)
        await b.subscribe("chat", lambda c, m: gotB.append((c, m)))
        self.assertEqual(await a.publish("chat", b"from a"), 1)
        self.assertEqual(await b.publish("chat", b"from b"), 1)
        await self.eventually(lambda: gotA and gotB)
        await self.settle()
        self.assertEqual(gotA, [b"from a"])
        self.assertEqual(gotB, [("chat", b"from b")])

    async def test_failingCallbackIsLogged(self):
        s = self.store
        got = []

        async def asyncCallback(channel, message):
            got.append(("async", message))
            raise KeyError(message)

        await s.subscribe("chat", lambda c, m: 1 / 0)
        await s.subscribe("chat", asyncCallback)
        await s.subscribe("chat", lambda c, m: got.append(m))
        await s.publish("chat", b"x")
        await s.publish("chat", b"y")
        await self.eventually(lambda: len(got) == 4)
        self.assertEqual(got, [("async", b"x"), b"x", ("async", b"y"), b"y"])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 2)
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 2)

    # -- scripts

    async def test_scriptReleaseLease(self):
        s = self.store
        self.assertEqual(await s.evalScript(RELEASE_LEASE, ["lease"], ["me"]), 0)
        await s.set("lease", "me")
        self.assertEqual(await s.evalScript(RELEASE_LEASE, ["lease"], ["you"]), 0)
        self.assertEqual(await s.get("lease"), b"me")
        self.assertEqual(await s.evalScript(RELEASE_LEASE, ["lease"], [b"me"]), 1)
        self.assertIsNone(await s.get("lease"))

    async def test_scriptBadArgument(self):
        """An argument the store cannot hold fails the Deferred; nothing raises."""
        d = self.store.evalScript(RELEASE_LEASE, ["lease"], [object()])
        with self.assertRaises(TypeError):
            await d

    async def test_scriptTakeLease(self):
        s = self.store
        self.assertEqual(await s.evalScript(TAKE_LEASE, ["lease"], ["me", 200]), [1, b"me"])
        self.assertTrue(0 < await s.ttl("lease") <= 0.2)
        self.assertEqual(await s.evalScript(TAKE_LEASE, ["lease"], ["me", 10000]), [1, b"me"])
        self.assertTrue(9 < await s.ttl("lease") <= 10)
        self.assertEqual(await s.evalScript(TAKE_LEASE, ["lease"], ["you", 200]), [0, b"me"])
        await s.expire("lease", 0.2)
        await self.wait(0.3)
        self.assertEqual(await s.evalScript(TAKE_LEASE, ["lease"], ["you", 200]), [1, b"you"])
        self.assertEqual(await s.get("lease"), b"you")

    async def test_scriptResultConventions(self):
        s = self.store
        expected = {
            "nil": None,
            "false": None,
            "true": 1,
            "float": -2,
            "string": "h\u00e9llo".encode(),
            "table": [1, b"two", None, 3, [4, b"x"]],
            "status": b"FINE",
        }
        for mode, result in expected.items():
            self.assertEqual(await s.evalScript(CONVENTIONS, [], [mode]), result, mode)
        self.assertEqual(await s.evalScript(CONVENTIONS, [], ["sum", 2, 0.75]), 2)

    async def test_scriptErrors(self):
        s = self.store
        await s.set("str", b"v")
        for mode in ["error", "wrongtype", "crash"]:
            with self.assertRaises(CommandError, msg=mode):
                await s.evalScript(CONVENTIONS, ["str"], [mode])
        with self.assertRaises(CommandError) as caught:
            await s.evalScript(CONVENTIONS, [], ["error"])
        self.assertIn("boom", str(caught.exception))

    async def test_scriptKeysArePrefixed(self):
        setter = Script(
            name="setter",
            lua="redis.call('SET', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])",
            python=lambda view, keys, args: view.set(keys[0], args[0]) and view.get(keys[0]),
        )
        other = self.makeStore("b:")
        self.assertEqual(await self.store.evalScript(setter, ["k"], ["v"]), b"v")
        self.assertEqual(await self.store.get("k"), b"v")
        self.assertIsNone(await other.get("k"))

    async def test_scriptFirstRunThenCached(self):
        # A script the backend has never seen: the first run loads it, the
        # second finds it cached; both must answer the same.
        marker = uuid.uuid4().hex
        script = Script(
            name="fresh",
            lua=f"-- {marker}\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])",
            python=lambda view, keys, args: view.incr(keys[0], int(args[0])),
        )
        self.assertEqual(await self.store.evalScript(script, ["n"], [2]), 2)
        self.assertEqual(await self.store.evalScript(script, ["n"], [3]), 5)

    async def test_closeIsIdempotent(self):
        store = self.makeStore("c:")
        await store.close()
        await store.close()


class MemoryStoreContractTests(VolatileStoreContract, TestCase):
    """The contract on MemoryStore, time driven by a Clock."""

    def setUp(self):
        self.clock = Clock()
        self.backend = None
        super().setUp()

    def makeStore(self, suffix):
        store = MemoryStore(self.clock, prefix="p:" + suffix, backend=self.backend)
        store.open()
        self.backend = store.backend
        self.addCleanup(store.close)
        return store

    async def wait(self, seconds):
        self.clock.advance(seconds)

    async def settle(self):
        self.clock.advance(0)


class RedisStoreContractTests(VolatileStoreContract, TestCase):
    """The contract on a real Redis, time passing for real."""

    def setUp(self):
        url, self.prefix, cleaner = requireRedis()
        self.addCleanup(cleaner)
        self.address = parseRedisURL(url)
        super().setUp()

    def makeStore(self, suffix):
        store = RedisStore(
            reactor, prefix=self.prefix + suffix, timeout=2.0, poolsize=2, **self.address
        )
        store.open()
        self.addCleanup(store.close)
        return store

    async def wait(self, seconds):
        await deferLater(reactor, seconds, lambda: None)

    async def settle(self):
        await deferLater(reactor, 0.01, lambda: None)


class MemoryStoreTests(TestCase):
    """What only the memory store does: clock-driven sweeping and delivery."""

    def setUp(self):
        self.clock = Clock()
        self.store = MemoryStore(self.clock, prefix="m:", sweepInterval=10.0)
        self.store.open()
        self.addCleanup(self.store.close)

    async def test_sweepFreesExpiredKeys(self):
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
        await self.store.set("k", b"v", ttl=100)
        await self.store.subscribe("c", lambda c, m: self.fail("delivered after close"))
        await self.store.publish("c", b"x")
        await self.store.close()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    async def test_deliveryNeverInsidePublish(self):
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
        await self.store.subscribe("c", lambda c, m: None)
        await self.store.subscribe("c", lambda c, m: None)
        self.assertEqual(await self.store.publish("c", b"x"), 2)

    async def test_closeEndsOwnSubscriptionsOnly(self):
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
        clock = Clock()
        store = makeVolatileStore("memory://", clock, "pre:", 1.0)
        store.open()
        self.addCleanup(store.close)
        self.assertIsInstance(store, MemoryStore)
        self.assertEqual(store.prefix, "pre:")
        self.assertIs(store.clock, clock)

    def test_parseRedisURL(self):
        self.assertEqual(
            parseRedisURL("redis://:s%40cret@cache.example:6380/3"),
            {"host": "cache.example", "port": 6380, "db": 3, "password": "s@cret"},
        )
        self.assertEqual(
            parseRedisURL("redis://10.0.0.1"),
            {"host": "10.0.0.1", "port": 6379, "db": 0, "password": None},
        )

    def test_redis(self):
        port = freePort()
        store = makeVolatileStore(f"redis://:pw@127.0.0.1:{port}/2", reactor, "pre:", 0.5)
        store.open()
        self.addCleanup(store.close)
        self.assertIsInstance(store, RedisStore)
        self.assertEqual(
            (store.host, store.port, store.db, store.password, store.prefix, store.timeout),
            ("127.0.0.1", port, 2, "pw", "pre:", 0.5),
        )

    def test_badURLs(self):
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
        with self.assertRaises(AttributeError):
            volatile.NoSuchName
