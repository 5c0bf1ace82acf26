"""The stores' deadlines: the SQL store's (SQLUnavailable past it, nothing run or committed once the caller was answered, MySQL socket timeouts following it) and the Redis store's on a hung Redis."""

import os
import socket
import threading
import time

from twisted.internet import reactor
from twisted.internet.defer import CancelledError
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from mmoshard.store.common import Script
from mmoshard.store.errors import IntegrityError, SQLUnavailable, VolatileUnavailable
from mmoshard.store.sql import SQLStore, isDisconnect
from mmoshard.store.volatile import makeVolatileStore
from mmoshard.testservers import PrivateMariaDB, PrivateRedis

DEADLINE = 0.3


def _txn_setUp(cursor):
    cursor.execute("CREATE TABLE IF NOT EXISTS t (n INTEGER PRIMARY KEY)")


def _txn_insertAndWait(cursor, n, started, release):
    cursor.execute("INSERT INTO t (n) VALUES (?)", (n,))
    started.set()
    release.wait(10)
    return n


def _txn_insert(cursor, n, calls=None):
    if calls is not None:
        calls.append(n)
    cursor.execute("INSERT INTO t (n) VALUES (?)", (n,))
    return n


def _txn_rows(cursor):
    return [r[0] for r in cursor.execute("SELECT n FROM t ORDER BY n").fetchall()]


class SQLiteDeadlineTests(TestCase):
    """The deadline on SQLite, whose one pool thread a blocked transaction holds."""

    async def makeStore(self, deadline=DEADLINE):
        path = os.path.abspath(os.path.join(self.mktemp(), "db.sqlite3"))
        store = SQLStore(reactor, "sqlite:///" + path, deadline=deadline)
        store.open()
        self.addCleanup(store.close)
        await self.unbounded(store, _txn_setUp)
        return store

    async def unbounded(self, store, func):
        """@return: C{func}'s transaction's result, run without the deadline (a loaded machine is slow)."""
        deadline, store.deadline = store.deadline, None
        try:
            return await store.runInteraction(func)
        finally:
            store.deadline = deadline

    def blocked(self, store, n):
        """Start a transaction that inserts C{n} and waits; @return: (its Deferred, started, release)."""
        started, release = threading.Event(), threading.Event()
        self.addCleanup(release.set)
        d = store.runInteraction(_txn_insertAndWait, n, started, release)
        return d, started, release

    async def settle(self, store):
        """Wait until every transaction's thread is done."""
        for _ in range(200):
            if not store.inflight:
                return
            await deferLater(reactor, 0.01, lambda: None)
        self.fail("transactions still running")

    async def test_answersInTime(self):
        """A transaction done within the deadline is answered with its result, its errors typed as before."""
        store = await self.makeStore(deadline=10.0)
        self.assertEqual(await store.runInteraction(_txn_insert, 1), 1)
        with self.assertRaises(IntegrityError):
            await store.runInteraction(_txn_insert, 1)
        self.assertEqual(await store.runInteraction(_txn_rows), [1])

    async def test_pastDeadlineRolledBack(self):
        """
        A transaction still running at the deadline fails with SQLUnavailable
        then, not when it ends; when it ends it is rolled back, not committed.
        """
        store = await self.makeStore()
        d, started, release = self.blocked(store, 7)
        began = time.monotonic()
        with self.assertRaises(SQLUnavailable) as caught:
            await d
        self.assertLess(time.monotonic() - began, DEADLINE + 1.0)
        self.assertIn(f"within {DEADLINE}s", str(caught.exception))
        self.assertTrue(started.is_set())
        release.set()
        await self.settle(store)
        self.assertEqual(await self.unbounded(store, _txn_rows), [])

    async def test_queuedPastDeadlineNeverRuns(self):
        """A transaction that waited past its deadline for the pool's thread is answered SQLUnavailable and never runs."""
        store = await self.makeStore()
        first, started, release = self.blocked(store, 1)
        first.addErrback(lambda f: f.trap(SQLUnavailable))
        calls = []
        queued = store.runInteraction(_txn_insert, 2, calls)
        with self.assertRaises(SQLUnavailable):
            await queued
        release.set()
        await self.settle(store)
        self.assertEqual(calls, [])
        self.assertEqual(await self.unbounded(store, _txn_rows), [])

    async def test_cancelledRolledBack(self):
        """A caller cancelling its transaction gets CancelledError at once, and the transaction is rolled back."""
        store = await self.makeStore()
        d, started, release = self.blocked(store, 3)
        while not started.is_set():
            await deferLater(reactor, 0.01, lambda: None)
        d.cancel()
        with self.assertRaises(CancelledError):
            await d
        release.set()
        await self.settle(store)
        self.assertEqual(await self.unbounded(store, _txn_rows), [])

    async def test_noDeadline(self):
        """Without a deadline (tools, migrations) a slow transaction is waited for and committed."""
        store = await self.makeStore(deadline=None)
        d, started, release = self.blocked(store, 4)
        reactor.callLater(DEADLINE * 2, release.set)
        self.assertEqual(await d, 4)
        self.assertEqual(await store.runInteraction(_txn_rows), [4])

    async def test_closeWaitsForAbandonedThread(self):
        """close() waits for a transaction abandoned at its deadline to end before stopping the pool."""
        store = await self.makeStore()
        d, started, release = self.blocked(store, 5)
        with self.assertRaises(SQLUnavailable):
            await d
        closed = store.close()
        self.assertFalse(closed.called)
        release.set()
        await closed


class MySQLTimeoutTests(TestCase):
    """How the deadline reaches pymysql's connections."""

    def test_socketTimeoutsFollowDeadline(self):
        """Without read_timeout/write_timeout in the URL, MySQL connections read and write with the deadline."""
        store = SQLStore(reactor, "mysql://u@db.example/mmo", deadline=2.5)
        options = store.driverOptions()
        self.assertEqual((options["read_timeout"], options["write_timeout"]), (2.5, 2.5))
        self.assertEqual(options["connect_timeout"], 5.0)

    def test_urlTimeoutsWin(self):
        """A URL's read_timeout/write_timeout win over the deadline; 0 is no limit."""
        store = SQLStore(reactor, "mysql://u@db.example/mmo?read_timeout=9&write_timeout=0",
                         deadline=2.5)
        options = store.driverOptions()
        self.assertEqual((options["read_timeout"], options["write_timeout"]), (9.0, None))

    def test_noDeadlineSixtySeconds(self):
        """Without a deadline or URL options, MySQL reads and writes time out after 60 s, as before."""
        options = SQLStore(reactor, "mysql://u@db.example/mmo").driverOptions()
        self.assertEqual((options["read_timeout"], options["write_timeout"]), (60.0, 60.0))

    def test_timeoutIsNoDisconnect(self):
        """A read that timed out is not a dead connection to replay the statement on: the replay would hang as long."""
        import pymysql

        try:
            try:
                raise socket.timeout("timed out")
            except OSError as e:
                raise pymysql.err.OperationalError(2013, f"Lost connection ({e})")
        except pymysql.err.OperationalError as e:
            timedOut = e
        self.assertFalse(isDisconnect(timedOut))
        self.assertTrue(isDisconnect(pymysql.err.OperationalError(2013, "Lost connection")))


class FrozenMariaDBTests(TestCase):
    """The SQL store on a MariaDB of the test's own, frozen with SIGSTOP."""

    timeout = 120

    async def test_stuckConnectionsReplaced(self):
        """
        With MariaDB frozen, more transactions than the pool has connections
        each fail within the deadline; the threads stuck in reads come back, and
        after SIGCONT the same pool answers at once, its connections made again.
        """
        db = await PrivateMariaDB(self).start()
        url = await db.createDatabase("deadline")
        setUp = SQLStore(reactor, url, 1, 1)
        setUp.open()
        await setUp.runInteraction(_txn_setUp)
        await setUp.runInteraction(_txn_insert, 1)
        await setUp.close()
        store = SQLStore(reactor, url, 1, 2, deadline=0.5)
        store.open()
        self.addCleanup(store.close)
        for _ in range(20):
            try:
                await store.runInteraction(_txn_rows)
                break
            except SQLUnavailable:
                await deferLater(reactor, 0.1, lambda: None)
        db.freeze()
        began = time.monotonic()
        for d in [store.runInteraction(_txn_rows) for _ in range(5)]:
            with self.assertRaises(SQLUnavailable):
                await d
        self.assertLess(time.monotonic() - began, 0.5 + 2.5)
        # Every thread came back from its read (read_timeout = the deadline).
        for _ in range(100):
            if not store.inflight:
                break
            await deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(store.inflight, 0)
        db.thaw()
        # Each try is bounded by the deadline; the pool needs no restart.
        for _ in range(20):
            try:
                rows = await store.runInteraction(_txn_rows)
                break
            except SQLUnavailable:
                await deferLater(reactor, 0.1, lambda: None)
        self.assertEqual(rows, [1])



# Not cached on a new Redis: the first call is EVALSHA, then EVAL.
_ECHO = Script(name="echo-deadline", lua="return ARGV[1]", python=lambda view, keys, args: args[0])


class FrozenRedisTests(TestCase):
    """The Redis store's timeout on a Redis of the test's own, frozen with SIGSTOP."""

    timeout = 120

    async def test_everyCallBounded(self):
        """
        With Redis frozen, commands, scripts (EVALSHA then EVAL), a SCAN, a
        publish and a new subscription each fail with VolatileUnavailable
        within the timeout; after SIGCONT they all work again, and the
        subscription made while frozen is confirmed and delivers.
        """
        redis = await PrivateRedis(self).start()
        store = makeVolatileStore(redis.url, reactor, "frozen:", 0.5, keepalive=None)
        store.open()
        self.addCleanup(store.close)
        await store.set("k", "v")
        redis.freeze()
        kept = []
        calls = {
            "get": lambda: store.get("k"),
            "incr with ttl (script)": lambda: store.incr("n", 1, ttl=10),
            "evalScript": lambda: store.evalScript(_ECHO, [], ["x"]),
            "keys (SCAN)": lambda: store.keys("*"),
            "publish": lambda: store.publish("c", "m"),
            "subscribe": lambda: store.subscribe("c", lambda channel, message: kept.append(message)),
        }
        for name, call in calls.items():
            began = time.monotonic()
            with self.assertRaises(VolatileUnavailable, msg=name) as caught:
                await call()
            self.assertLess(time.monotonic() - began, 0.5 * 2 + 1.0, name)
        # The subscription stays wanted (RedisStore's documented rule).
        subscription = caught.exception.subscription
        self.addCleanup(subscription.unsubscribe)
        redis.thaw()

        async def answers():
            self.assertEqual(await store.get("k"), b"v")

        for _ in range(100):
            try:
                await answers()
                break
            except VolatileUnavailable:
                await deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(await store.evalScript(_ECHO, [], ["y"]), b"y")
        self.assertEqual(await store.incr("n", 1, ttl=10), 1)
        for _ in range(100):
            if store.subscriber.confirmed("c"):
                break
            await deferLater(reactor, 0.05, lambda: None)
        await store.publish("c", "after")
        for _ in range(100):
            if kept:
                break
            await deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(kept, [b"after"])
