"""Password hashing: off the reactor thread, one verification per login either way, rehash on upgrade."""

import threading

import argon2
from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.trial.unittest import SkipTest, TestCase

from mmoshard.auth.config import makeConfig
from mmoshard.auth.passwords import HasherBusy, PasswordHasher, poolSize
from mmoshard.auth.test.harness import FAST_ARGON2, AuthHarness

PASSWORD = "correct horse battery"


class CountingHasher:
    """Wraps the role's hasher, counting verifications."""

    def __init__(self, inner):
        self.inner = inner
        self.verified = 0
        self.dummyHash = inner.dummyHash

    def verify(self, encoded, password):
        self.verified += 1
        return self.inner.verify(encoded, password)

    def hash(self, password):
        return self.inner.hash(password)

    def stop(self):
        self.inner.stop()


class TimingEqualityTests(TestCase):
    """An unknown username costs exactly one verification, like a known one."""

    async def test_hash_called_once_either_way(self):
        """
        Every login verifies exactly one hash, whether the username exists, the
        password is wrong or the name is overlong.
        """
        h = await AuthHarness(self, "sqlite", lockout_threshold=1000).start()
        await h.register("alice")
        counting = h.service.hasher = CountingHasher(h.service.hasher)
        cases = [("alice", PASSWORD, 200), ("alice", "wrong password", 401),
                 ("ALICE", "wrong again!", 401), ("nobody", PASSWORD, 401),
                 ("nobody", "wrong password", 401), ("x" * 64, "y", 401),
                 ("Alice_", PASSWORD, 401)]
        for username, password, status in cases:
            before = counting.verified
            r = await h.login(username, password)
            self.assertEqual(r.code, status, (username, r))
            self.assertEqual(counting.verified - before, 1, username)

    async def test_unknown_user_verifies_against_dummy(self):
        """A login of an unknown username verifies against the hasher's dummy argon2id hash."""
        h = await AuthHarness(self, "sqlite").start()
        seen = []
        inner = h.service.hasher

        async def verify(encoded, password):
            seen.append(encoded)
            return await PasswordHasher.verify(inner, encoded, password)

        inner.verify = verify
        await h.login("nobody", PASSWORD)
        self.assertEqual(seen, [inner.dummyHash])
        self.assertTrue(seen[0].startswith("$argon2id$"))


class HasherTests(TestCase):
    def hasher(self, **overrides):
        h = PasswordHasher(reactor, makeConfig(**dict(FAST_ARGON2, **overrides)))
        self.addCleanup(h.stop)
        return h

    async def test_never_on_reactor_thread(self):
        """
        Hashing and verifying run in the auth-argon2 threads, never on the reactor
        thread.
        """
        h = self.hasher()
        threads = []
        real = h.argon2

        class Spy:
            def __getattr__(self, name):
                attr = getattr(real, name)
                if name in ("hash", "verify"):
                    def wrapped(*a):
                        threads.append(threading.current_thread())
                        return attr(*a)
                    return wrapped
                return attr

        h.argon2 = Spy()
        await h.start()
        encoded = await h.hash(PASSWORD)
        self.assertEqual(await h.verify(encoded, PASSWORD), (True, False))
        self.assertEqual(await h.verify(encoded, "nope"), (False, False))
        self.assertEqual(len(threads), 4)  # the dummy hash at start, then ours
        self.assertNotIn(threading.main_thread(), threads)
        self.assertTrue(all("auth-argon2" in t.name for t in threads))

    async def test_parameters(self):
        """
        Hashes use argon2id with the configured cost; the defaults are OWASP's
        recommendation.
        """
        h = self.hasher(argon2_time_cost=3, argon2_memory_kib=128, argon2_parallelism=2)
        await h.start()
        params = argon2.extract_parameters(await h.hash(PASSWORD))
        self.assertEqual((params.type, params.time_cost, params.memory_cost,
                          params.parallelism), (argon2.Type.ID, 3, 128, 2))
        default = argon2.extract_parameters(PasswordHasher(reactor, makeConfig())
                                            .argon2.hash(PASSWORD))
        # OWASP's argon2id recommendation: 19 MiB, 2 iterations, 1 lane.
        self.assertEqual((default.time_cost, default.memory_cost, default.parallelism),
                         (2, 19456, 1))

    def test_pool_size(self):
        """hash_threads sets the pool's size; 0 picks one from the CPUs, at least one."""
        self.assertEqual(poolSize(3), 3)
        self.assertGreaterEqual(poolSize(0), 1)
        h = self.hasher(hash_threads=0)
        self.assertEqual((h.pool.min, h.pool.max), (poolSize(0), poolSize(0)))

    async def test_sheds_when_saturated(self):
        """
        With maxPending hashes waiting, another is refused with HasherBusy at once;
        once the pool drains hashing works again.
        """
        h = self.hasher(hash_threads=1)
        h.maxPending = 2
        await h.start()
        gate = threading.Event()
        h.pool.callInThread(gate.wait)  # occupy the only thread
        pending = [Deferred.fromCoroutine(h.hash(PASSWORD)) for _ in range(2)]
        with self.assertRaises(HasherBusy):
            await h.hash(PASSWORD)
        gate.set()
        await gatherResults(pending)
        await h.hash(PASSWORD)


class RehashTests(TestCase):
    async def test_rehash_on_login_when_parameters_change(self):
        """
        When the operator raises the argon2 cost, the next good login stores a hash
        at the new cost, and later logins keep it.
        """
        h = await AuthHarness(self, "sqlite").start()
        accountId = (await h.register()).body["account_id"]
        query = "SELECT password_hash FROM accounts WHERE id = ?"
        old = (await h.sql.runQuery(query, (accountId,)))[0][0]
        self.assertEqual(argon2.extract_parameters(old).time_cost, 1)
        # The operator raises the cost: the next login upgrades the hash.
        upgraded = PasswordHasher(reactor, makeConfig(**dict(FAST_ARGON2,
                                                             argon2_time_cost=2)))
        await upgraded.start()
        self.addCleanup(h.service.hasher.stop)
        h.service.hasher = upgraded
        self.assertEqual((await h.login()).code, 200)
        new = (await h.sql.runQuery(query, (accountId,)))[0][0]
        self.assertNotEqual(new, old)
        self.assertEqual(argon2.extract_parameters(new).time_cost, 2)
        self.assertEqual((await h.login()).code, 200)
        self.assertEqual((await h.sql.runQuery(query, (accountId,)))[0][0], new)


class PriorityTests(TestCase):
    async def test_hashing_threads_are_niced(self):
        """
        The hashing threads run at hash_nice lower priority; the reactor thread
        keeps its own.
        """
        import os

        if not hasattr(os, "setpriority"):
            raise SkipTest("no per-thread priorities on this platform")
        h = PasswordHasher(reactor, makeConfig(**dict(FAST_ARGON2, hash_threads=1,
                                                      hash_nice=7)))
        self.addCleanup(h.stop)
        await h.start()
        base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        seen = []
        h.pool.callInThread(lambda: seen.append(
            os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
        await h.hash(PASSWORD)
        self.assertEqual(seen, [min(base + 7, 19)])
        # The reactor thread keeps its priority.
        self.assertEqual(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), base)
