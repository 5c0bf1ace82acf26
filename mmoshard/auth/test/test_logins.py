"""The login-record scripts on both stores (Lua on Redis, Python on memory) and the batching of rotations."""

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, deferLater
from twisted.trial.unittest import TestCase

from mmoshard.auth.logins import CREATE, END, OVERLAP_BATCH, ROTATE, LoginRecords, loginKey
from mmoshard.auth.test.harness import START
from mmoshard.store.volatile import MemoryStore, makeVolatileStore
from mmoshard.testing import requireRedis


class ScriptTestsMixin:
    """The login-record scripts, Lua on Redis and Python on memory, alike."""

    def call(self, script, keys, args):
        return self.volatile.evalScript(script, [loginKey(k) for k in keys], args)

    async def create(self, sid, gen=0, expires=START + 100):
        return await self.call(CREATE, [sid], [7, "alice", 0, gen, expires, 100000])

    async def rotate(self, now, *pairs, grace=0):
        gens = " ".join(str(gen) for _, gen in pairs)
        return await self.call(ROTATE, [sid for sid, _ in pairs],
                               [now, now + 100, 100000, gens, grace])

    async def test_retry_within_grace(self):
        """
        Within the grace after a rotation, the generation it used up rotates
        again to the same answer and changes nothing (a retry); older ones,
        and the same one after the grace, are a reuse.
        """
        await self.create("a")
        self.assertEqual(await self.rotate(START, ("a", 0), grace=30), [b"ok 7 0 alice"])
        self.assertEqual(await self.rotate(START, ("a", 0), grace=30), [b"ok 7 0 alice"])
        self.assertEqual(await self.volatile.hget(loginKey("a"), "g"), b"1")
        self.assertEqual(await self.rotate(START, ("a", 1), grace=30), [b"ok 7 0 alice"])
        self.assertEqual(await self.rotate(START, ("a", 0), grace=30), [b"reused 7"])
        await self.create("b")
        await self.rotate(START, ("b", 0), grace=0.05)
        # Past the grace: by the store's clock on Redis (TIME), by the caller's on memory.
        await deferLater(reactor, 0.1, lambda: None)
        self.assertEqual(await self.rotate(START + 1, ("b", 0), grace=0.05), [b"reused 7"])

    async def test_create_once(self):
        """A login record is created once; a second create for the same login is refused and changes nothing."""
        self.assertEqual(await self.create("a"), 1)
        self.assertEqual(await self.create("a", gen=5), 0)
        self.assertEqual(await self.rotate(START, ("a", 0)), [b"ok 7 0 alice"])

    async def test_rotate(self):
        """Each rotation of the current generation answers ok, bumps the generation and extends the record's expiry."""
        await self.create("a")
        self.assertEqual(await self.rotate(START, ("a", 0)), [b"ok 7 0 alice"])
        self.assertEqual(await self.rotate(START, ("a", 1)), [b"ok 7 0 alice"])
        self.assertEqual(await self.volatile.hget(loginKey("a"), "g"), b"2")
        self.assertEqual(float(await self.volatile.hget(loginKey("a"), "e")), START + 100)

    async def test_reuse_marks_revoked(self):
        """Presenting a used-up generation is a reuse, and the login is refused as revoked from then on."""
        await self.create("a")
        await self.rotate(START, ("a", 0))
        self.assertEqual(await self.rotate(START, ("a", 0)), [b"reused 7"])
        # Even the current generation is refused from then on.
        self.assertEqual(await self.rotate(START, ("a", 1)), [b"revoked"])

    async def test_large_generation(self):
        """Generations up to 15 digits count on exactly in Lua as in Python."""
        await self.create("a", gen=999999999999998)
        self.assertEqual(await self.rotate(START, ("a", 999999999999998)),
                         [b"ok 7 0 alice"])
        self.assertEqual(await self.volatile.hget(loginKey("a"), "g"), b"999999999999999")
        await self.rotate(START, ("a", 999999999999999))
        self.assertEqual(await self.volatile.hget(loginKey("a"), "g"), b"1000000000000000")

    async def test_answer_keeps_the_username_whole(self):
        """
        A rotation's answer carries a username with spaces and non-ASCII
        whole, and reads back into a result.
        """
        await self.call(CREATE, ["a"], [42, "Zoë a b", 1, 0, START + 100, 100000])
        clock = Clock()
        clock.advance(START)
        records = LoginRecords(self.volatile, None, clock, 100.0, 5.0)
        result = await records.rotate("a", 0)
        self.assertEqual((result.outcome, result.accountId, result.username, result.isOperator),
                         ("ok", 42, "Zoë a b", True))
        answer = await self.rotate(START, ("a", 1))
        self.assertEqual(answer, ["ok 42 1 Zoë a b".encode()])

    async def test_newer_generation_is_reuse(self):
        """A generation newer than the record's counts as reuse."""
        await self.create("a")
        self.assertEqual(await self.rotate(START, ("a", 5)), [b"reused 7"])

    async def test_missing_and_expired(self):
        """An unknown login is missing, an expired one expired, and neither is rotated."""
        self.assertEqual(await self.rotate(START, ("nope", 0)), [b"missing"])
        await self.create("a", expires=START + 10)
        self.assertEqual(await self.rotate(START + 10, ("a", 0)), [b"expired"])
        self.assertEqual(await self.volatile.hget(loginKey("a"), "g"), b"0")

    async def test_end(self):
        """Ending logins marks them revoked, a mark made first keeps a record from being created, and records keep their own expiry."""
        await self.create("a")
        self.assertEqual(await self.call(END, ["a", "b"], ["logout", 50000]), 2)
        self.assertEqual(await self.rotate(START, ("a", 0), ("b", 0)),
                         [b"revoked", b"revoked"])
        # A mark made before the record keeps the record from being written.
        self.assertEqual(await self.create("b"), 0)
        ttl = await self.volatile.ttl(loginKey("b"))
        self.assertTrue(0 < ttl <= 50, ttl)
        # A record keeps its own expiry.
        self.assertGreater(await self.volatile.ttl(loginKey("a")), 50)

    async def test_batch(self):
        """Each login of a batch is judged on its own."""
        for sid in ("a", "b", "c"):
            await self.create(sid)
        await self.call(END, ["c"], ["ban", 50000])
        result = await self.rotate(START, ("a", 0), ("b", 3), ("c", 0), ("d", 0), ("a", 1))
        self.assertEqual(result, [b"ok 7 0 alice", b"reused 7",
                                  b"revoked", b"missing", b"ok 7 0 alice"])


class BatchTests(TestCase):
    """Rotations share script calls: one out at a time, a second once enough wait."""

    def setUp(self):
        self.calls = []
        self.records = LoginRecords(self, None, Clock(), 100.0, 5.0)

    def groupBySlot(self, keys):
        keys = list(keys)
        return [keys] if keys else []

    def evalScript(self, script, keys, args):
        d = Deferred()
        self.calls.append((keys, args[3].split(), d))
        return d

    def answer(self, i, failure=None):
        keys, gens, d = self.calls[i]
        if failure is not None:
            d.errback(failure)
        else:
            d.callback([b"ok %d 0 u" % n for n in range(len(keys))])

    def test_batches(self):
        """
        Rotations go one script call at a time, later ones batched, each
        answered (or failed) with its own call's result; once every call is
        answered, the next rotation goes out at once.
        """
        results = [self.records.rotate(f"s{i}", i) for i in range(OVERLAP_BATCH + 3)]
        # The first goes alone; the next wait until OVERLAP_BATCH of them do.
        self.assertEqual([len(keys) for keys, _, _ in self.calls], [1, OVERLAP_BATCH])
        self.assertEqual(self.calls[1][1], [b"%d" % i for i in range(1, OVERLAP_BATCH + 1)])
        self.answer(1)
        self.assertEqual(len(self.calls), 3)  # the rest, at once
        self.assertEqual(len(self.calls[2][0]), 2)
        self.answer(0)
        self.answer(2, ValueError("store down"))
        got = [self.successResultOf(d) for d in results[:-2]]
        self.assertEqual([(r.outcome, r.loginId) for r in got],
                         [("ok", f"s{i}") for i in range(OVERLAP_BATCH + 1)])
        self.assertEqual(got[1].accountId, 0)  # the first of its batch
        for d in results[-2:]:
            self.failureResultOf(d, ValueError)
        self.assertEqual(self.records.pendingGeneration("s3"), 4)
        self.assertIsNone(self.records.pendingGeneration(f"s{OVERLAP_BATCH + 2}"))
        # No call is counted as out any more.
        self.records.rotate("late", 0)
        self.assertEqual([len(keys) for keys, _, _ in self.calls[3:]], [1])


class MemoryScriptTests(ScriptTestsMixin, TestCase):
    def setUp(self):
        self.clock = Clock()
        self.volatile = MemoryStore(self.clock, prefix="t:")
        self.volatile.open()


class RedisScriptTests(ScriptTestsMixin, TestCase):
    def setUp(self):
        url, prefix, clean = requireRedis()
        self.addCleanup(clean)
        self.volatile = makeVolatileStore(url, reactor, prefix, 2.0)
        self.volatile.open()
        self.addCleanup(self.volatile.close)
