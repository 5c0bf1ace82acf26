"""The private test servers: start, freeze and thaw, restart with their data, kill."""

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from mmoshard.store.sql import SQLStore
from mmoshard.store.volatile import makeVolatileStore
from mmoshard.testing import eventually
from mmoshard.testservers import PrivateMariaDB, PrivateRedis


class PrivateServerTests(TestCase):
    timeout = 120

    async def test_redis_freeze_thaw_restart(self):
        """A private Redis answers, stops answering while frozen, answers again when thawed, and comes back after a restart."""
        redis = await PrivateRedis(self).start()
        store = makeVolatileStore(redis.url, reactor, "t:", 0.5)
        store.open()
        self.addCleanup(store.close)
        await store.set("k", "v")
        self.assertEqual(await store.get("k"), b"v")
        redis.freeze()
        with self.assertRaises(Exception):
            await store.get("k")
        redis.thaw()
        # The answer comes once the thawed server is scheduled again: on a
        # loaded machine that can take longer than the store's 0.5 s timeout.
        self.assertEqual(await eventually(reactor, lambda: store.get("k")), b"v")
        await redis.restart()
        # Nothing is kept on disk: a restarted Redis is empty, and answers.
        self.assertIsNone(await eventually(reactor, lambda: store.get("k")))

    async def mariadb(self):
        """@return: a private MariaDB and an open L{SQLStore} on a database of its own."""
        db = await PrivateMariaDB(self).start()
        store = SQLStore(reactor, await db.createDatabase("t"), 1, 1)
        store.open()
        self.addCleanup(store.close)
        return db, store

    async def test_mariadb_keeps_data_across_restart(self):
        """A private MariaDB takes a database, keeps its rows across a restart, and refuses while killed."""
        db, store = await self.mariadb()
        def setUp(txn):
            txn.execute("CREATE TABLE x (n INT)")
            txn.execute("INSERT INTO x VALUES (7)")

        await store.runInteraction(setUp)
        await db.restart()
        rows = await store.runQuery("SELECT n FROM x")
        self.assertEqual([tuple(r) for r in rows], [(7,)])
        db.kill()
        with self.assertRaises(Exception):
            await store.runQuery("SELECT n FROM x")

    async def test_mariadb_killed_while_frozen_commits_nothing(self):
        """A write sent to a frozen MariaDB that is then killed is not committed: after a restart the row is absent."""
        db, store = await self.mariadb()
        await store.runInteraction(lambda txn: txn.execute("CREATE TABLE x (n INT)"))
        db.freeze()
        pending = store.runInteraction(lambda txn: txn.execute("INSERT INTO x VALUES (7)"))
        pending.addErrback(lambda f: None)  # its connection dies with the server
        await deferLater(reactor, 0.5, lambda: None)  # the INSERT waits in the frozen server
        db.kill()
        await pending
        await db.start()
        rows = await eventually(reactor, lambda: store.runQuery("SELECT n FROM x"))
        self.assertEqual([tuple(r) for r in rows], [])
