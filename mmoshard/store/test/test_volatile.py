"""The contract both volatile stores pass (open/close, keys, values, scripts): memory on a Clock, Redis for real."""

import uuid

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from mmoshard.interfaces import IVolatileStore
from mmoshard.store.test.fixtures import MemoryFixture, RedisFixture
from mmoshard.store.test.scripts import CONVENTIONS, RELEASE_LEASE, TAKE_LEASE
from mmoshard.store.volatile import CommandError, MemoryStore, RedisStore, Script, StoreNotOpen

INF = float("inf")


class LifecycleContract:
    """Opening and closing: what every IVolatileStore must do."""

    def test_providesInterface(self):
        """The store provides IVolatileStore, opened or not."""
        self.assertTrue(verifyObject(IVolatileStore, self.store))
        self.assertTrue(verifyObject(IVolatileStore, self.makeUnopened("u:")))

    async def test_dedicatedSharesTheData(self):
        """A dedicated store (its own connections) reads and writes the same keys as the store it came from; closing it, when it is another store, leaves that one working."""
        other = self.store.dedicated()
        self.assertTrue(verifyObject(IVolatileStore, other))
        if other is not self.store:
            other.open()
        await self.store.set("k", b"v")
        self.assertEqual(await other.get("k"), b"v")
        await other.set("k2", b"w", ttl=60)
        self.assertEqual(await self.store.get("k2"), b"w")
        if other is not self.store:
            await other.close()
        self.assertEqual(await self.store.get("k"), b"v")

    async def test_nothingBeforeOpen(self):
        """
        Before open() every call fails at once with StoreNotOpen, naming
        open(), and does nothing: what it would have written is not there
        once the store is opened.
        """
        store = self.makeUnopened("u:")
        calls = {
            "ping": (),
            "get": ("k",),
            "set": ("k", b"v"),
            "delete": ("k",),
            "expire": ("k", 1),
            "ttl": ("k",),
            "incr": ("n",),
            "hset": ("h", {"f": b"v"}),
            "hget": ("h", "f"),
            "hgetall": ("h",),
            "hdel": ("h", "f"),
            "hincrby": ("h", "f"),
            "sadd": ("s", "m"),
            "srem": ("s", "m"),
            "smembers": ("s",),
            "sismember": ("s", "m"),
            "zadd": ("z", {"m": 1}),
            "zrem": ("z", "m"),
            "zscore": ("z", "m"),
            "zcard": ("z",),
            "zrangebyscore": ("z", 0, 1),
            "keys": ("*",),
            "publish": ("c", b"x"),
            "subscribe": ("c", lambda channel, message: None),
            "evalScript": (TAKE_LEASE, ["lease"], [b"me", 60000]),
        }
        # groupBySlot() and dedicated() are synchronous and touch nothing:
        # they work before open().
        self.assertEqual(set(calls), set(IVolatileStore.names())
                         - {"open", "close", "groupBySlot", "dedicated"})
        self.assertEqual(store.groupBySlot(["a"]), [["a"]])
        for name, args in calls.items():
            with self.assertRaises(StoreNotOpen, msg=name) as caught:
                await getattr(store, name)(*args)
            self.assertIn("open()", str(caught.exception), name)
        store.open()
        self.assertIsNone(await store.get("k"))
        self.assertIsNone(await store.get("lease"))
        self.assertEqual(await store.keys("*"), [])

    async def test_openThenWorks(self):
        """open() returns None, the store answers after it, and a second open() changes nothing."""
        store = self.makeUnopened("o:")
        self.assertIsNone(store.open())
        self.assertIsNone(await store.ping())
        store.open()
        self.assertTrue(await store.set("k", b"v"))
        self.assertEqual(await store.get("k"), b"v")

    async def test_closeBeforeOpen(self):
        """A store never opened closes, twice if need be, and then cannot be opened."""
        store = self.makeUnopened("n:")
        await store.close()
        await store.close()
        self.assertRaises(RuntimeError, store.open)

    async def test_closeIsIdempotent(self):
        """close() can be called twice."""
        store = self.makeStore("c:")
        await store.close()
        await store.close()



class VolatileStoreContract:
    """
    Keys, values and scripts: what every IVolatileStore must do, on the
    stores a L{mmoshard.store.test.fixtures} fixture makes.
    """

    async def test_ping(self):
        """ping() fires with None when the backend answers."""
        self.assertIsNone(await self.store.ping())

    async def test_valuesComeBackAsBytes(self):
        """
        Strings, bytes, ints and floats are stored and come back as the same bytes; a missing key
        gives None.
        """
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
        """
        set(nx=True) writes only a missing key and says whether it wrote; a plain set() overwrites.
        """
        s = self.store
        self.assertIs(await s.set("k", b"first", nx=True), True)
        self.assertIs(await s.set("k", b"second", nx=True), False)
        self.assertEqual(await s.get("k"), b"first")
        self.assertIs(await s.set("k", b"third"), True)
        self.assertEqual(await s.get("k"), b"third")

    async def test_setTtlExpires(self):
        """
        A value set with a TTL disappears once it has passed, and nx then counts the key as absent.
        """
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
        """Setting a key again without a TTL removes its expiry."""
        s = self.store
        await s.set("k", b"v", ttl=10)
        await s.set("k", b"w")
        self.assertIsNone(await s.ttl("k"))

    async def test_setRejectsBadTtl(self):
        """A zero or negative TTL is a ValueError and stores nothing."""
        with self.assertRaises(ValueError):
            await self.store.set("k", b"v", ttl=0)
        with self.assertRaises(ValueError):
            await self.store.set("k", b"v", ttl=-1)
        self.assertIsNone(await self.store.get("k"))

    async def test_ttlSemantics(self):
        """
        ttl() is -1.0 for a missing key, None for one without expiry, else the float seconds left.
        """
        s = self.store
        self.assertEqual(await s.ttl("missing"), -1.0)
        await s.set("forever", b"v")
        self.assertIsNone(await s.ttl("forever"))
        await s.set("soon", b"v", ttl=10)
        left = await s.ttl("soon")
        self.assertIsInstance(left, float)
        self.assertTrue(9 < left <= 10, left)

    async def test_delete(self):
        """
        delete() removes keys of any kind and counts those that existed; no keys deletes nothing.
        """
        s = self.store
        await s.set("a", b"1")
        await s.hset("b", {"f": b"1"})
        self.assertEqual(await s.delete("a", "b", "missing"), 2)
        self.assertIsNone(await s.get("a"))
        self.assertEqual(await s.delete("a"), 0)
        self.assertEqual(await s.delete(), 0)

    async def test_expire(self):
        """
        expire() says whether the key exists, sets a deadline that removes it, and 0 removes it at
        once.
        """
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
        """
        incr() counts from 0 by any int amount, stored as decimal text; a non-integer value is a
        CommandError.
        """
        s = self.store
        self.assertEqual(await s.incr("n"), 1)
        self.assertEqual(await s.incr("n", 10), 11)
        self.assertEqual(await s.incr("n", -20), -9)
        self.assertEqual(await s.get("n"), b"-9")
        await s.set("text", b"abc")
        with self.assertRaises(CommandError):
            await s.incr("text")

    async def test_incrTtlOnlyWhenNoExpiry(self):
        """
        incr(ttl=...) sets an expiry only on a key without one, never extending a running one.
        """
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
        """A plain incr() keeps the key's expiry."""
        s = self.store
        await s.set("c", 1, ttl=10)
        self.assertEqual(await s.incr("c"), 2)
        self.assertTrue(9 < await s.ttl("c") <= 10)

    async def test_hashes(self):
        """
        hset/hget/hgetall/hdel/hincrby on hashes: counts of new and removed fields, values as
        bytes, an emptied hash gone.
        """
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
        """Adding to a hash keeps its expiry."""
        s = self.store
        await s.hset("h", {"a": b"1"})
        await s.expire("h", 0.2)
        await s.hset("h", {"b": b"2"})
        await self.wait(0.3)
        self.assertEqual(await s.hgetall("h"), {})

    async def test_wrongType(self):
        """Using a key as the wrong kind of value is a CommandError."""
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
        """
        sadd/srem/smembers/sismember: counts of members added and removed, an emptied set gone.
        """
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
        """
        zadd/zscore/zcard/zrem: new members counted, scores as floats, an emptied sorted set gone.
        """
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
        """
        zrangebyscore orders by score then member, honours exclusive and infinite bounds,
        offset/count, and withscores.
        """
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
        """keys() matches Redis globs (*, ?, [..], [^..]) on live keys only, sorted."""
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
        """Glob characters in a store's prefix match literally, not other stores' keys."""
        tricky = self.makeStore("g[1]*:")
        lookalike = self.makeStore("g1x:")
        await tricky.set("mine", b"v")
        await lookalike.set("theirs", b"v")
        self.assertEqual(await tricky.keys("*"), ["mine"])
        self.assertEqual(await lookalike.keys("*"), ["theirs"])

    async def test_prefixIsolatesKeys(self):
        """Two stores with different prefixes on one backend see only their own keys."""
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

    # -- scripts

    async def test_scriptReleaseLease(self):
        """A script reads and deletes atomically: the lease is released only by its holder."""
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
        """
        A script can set with a TTL and return a list: the lease is taken, renewed by its holder
        and refused to others until it expires.
        """
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
        """Script results convert as Redis converts Lua values on both stores."""
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
        """
        An error reply, a wrong-type call or a crash in a script fails with CommandError carrying
        the message.
        """
        s = self.store
        await s.set("str", b"v")
        for mode in ["error", "wrongtype", "crash"]:
            with self.assertRaises(CommandError, msg=mode):
                await s.evalScript(CONVENTIONS, ["str"], [mode])
        with self.assertRaises(CommandError) as caught:
            await s.evalScript(CONVENTIONS, [], ["error"])
        self.assertIn("boom", str(caught.exception))

    async def test_scriptKeysArePrefixed(self):
        """A script's keys get the store's prefix."""
        setter = Script(
            name="setter",
            lua="redis.call('SET', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])",
            python=lambda view, keys, args: view.set(keys[0], args[0]) and view.get(keys[0]),
        )
        other = self.makeStore("b:")
        self.assertEqual(await self.store.evalScript(setter, ["k"], ["v"]), b"v")
        self.assertEqual(await self.store.get("k"), b"v")
        self.assertIsNone(await other.get("k"))

    async def test_groupBySlot(self):
        """
        groupBySlot() puts every key in exactly one group, order kept, and each group runs as one
        script; keys sharing a hash tag always share a group.
        """
        keys = [f"g:{i}" for i in range(40)] + ["t:{x}:a", "t:{x}:b"]
        groups = self.store.groupBySlot(keys)
        self.assertEqual(self.store.groupBySlot([]), [])
        self.assertEqual(sorted(k for g in groups for k in g), sorted(keys))
        for group in groups:
            self.assertEqual(group, [k for k in keys if k in group])
        self.assertTrue(any({"t:{x}:a", "t:{x}:b"} <= set(g) for g in groups))
        setAll = Script(
            name="set_all",
            lua="for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[1]) end return #KEYS",
            python=lambda view, keys, args: [view.set(k, args[0]) for k in keys] and len(keys),
        )
        for group in groups:
            self.assertEqual(await self.store.evalScript(setAll, group, ["v"]), len(group))
        for key in keys:
            self.assertEqual(await self.store.get(key), b"v")

    async def test_scriptFirstRunThenCached(self):
        """
        A script the backend has not seen runs, and runs again from its cache, with the same
        results.
        """
        # The first run loads it (EVAL after NOSCRIPT), the second finds it cached.
        marker = uuid.uuid4().hex
        script = Script(
            name="fresh",
            lua=f"-- {marker}\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])",
            python=lambda view, keys, args: view.incr(keys[0], int(args[0])),
        )
        self.assertEqual(await self.store.evalScript(script, ["n"], [2]), 2)
        self.assertEqual(await self.store.evalScript(script, ["n"], [3]), 5)


class OneGroupTests(TestCase):
    """Without a cluster every key goes in one group: batching callers keep one round trip."""

    def test_oneGroup(self):
        """The memory and Redis stores group any keys, of any slots, together."""
        keys = [f"k{i}" for i in range(30)]
        for store in (MemoryStore(Clock()), RedisStore(Clock(), "localhost", 6379, 0)):
            self.assertEqual(store.groupBySlot(keys), [keys])
            self.assertEqual(store.groupBySlot(iter(keys)), [keys])


class MemoryLifecycleTests(LifecycleContract, MemoryFixture, TestCase):
    """Opening and closing a MemoryStore."""


class RedisLifecycleTests(LifecycleContract, RedisFixture, TestCase):
    """Opening and closing a RedisStore."""


class MemoryStoreContractTests(VolatileStoreContract, MemoryFixture, TestCase):
    """The contract on MemoryStore, time driven by a Clock."""


class RedisStoreContractTests(VolatileStoreContract, RedisFixture, TestCase):
    """The contract on a real Redis, time passing for real."""
