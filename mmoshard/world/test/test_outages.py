"""World nodes as real twistd processes over a MariaDB and a Redis of the test's own, frozen, killed and restarted: honest outcomes."""

import os
import tempfile

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from mmoshard.store.errors import VolatileUnavailable
from mmoshard.testing import requireMySQL, startNodeProcess
from mmoshard.testservers import PrivateMariaDB, PrivateRedis
from mmoshard.tokens import issueAccessToken
from mmoshard.wire.client import RequestError
from mmoshard.world.client import WorldClient
from mmoshard.world.lease import leaseKey

KEY = "world-outage-test-key-0123456789"


def sleep(seconds):
    return deferLater(reactor, seconds, lambda: None)


class OutageTests(TestCase):
    """Each test starts its own Redis and, where the database is to fail, its own MariaDB."""

    timeout = 180

    def setUp(self):
        self.tmp = tempfile.mkdtemp()

    async def servers(self, privateSQL):
        """Start a private Redis and the SQL database (private or shared), migrated, and open stores on them."""
        from mmoshard.store.sql import SQLStore, migrate
        from mmoshard.store.volatile import makeVolatileStore

        self.redis = await PrivateRedis(self).start()
        if privateSQL:
            self.db = await PrivateMariaDB(self).start()
            self.sqlURL = await self.db.createDatabase()
        else:
            self.sqlURL, dropper = requireMySQL()
            self.addCleanup(dropper)
        sql = SQLStore(reactor, self.sqlURL, 1, 2)
        sql.open()
        await migrate(sql)
        await sql.close()
        self.volatile = makeVolatileStore(self.redis.url, reactor, "t:")
        self.volatile.open()
        self.addCleanup(self.volatile.close)

    async def sql(self, func):
        """Run C{func(store)} on a short-lived SQL store (the node's database may have been restarted)."""
        from mmoshard.store.sql import SQLStore

        store = SQLStore(reactor, self.sqlURL, 1, 1)
        store.open()
        try:
            return await func(store)
        finally:
            await store.close()

    async def character(self, zone, x, z):
        from mmoshard.world.test.dbfixture import makeCharacter

        return await self.sql(lambda s: makeCharacter(s, 1, "Hero", zone, x, 0.0, z))

    async def position(self, cid):
        rows = await self.sql(
            lambda s: s.runQuery("SELECT zone, x, z FROM characters WHERE id = ?", (cid,)))
        return tuple(rows[0])

    async def lease(self, cid):
        return await self.volatile.get(leaseKey(cid))

    async def startWorld(self, name, zones, **world):
        settings = {"lease_ttl": 3.0, "lease_refresh": 1.0, "save_interval": 1.0, "zones": zones,
                    **world}
        return await startNodeProcess(self, reactor, os.path.join(self.tmp, f"{name}.toml"), {
            "node": {"id": name, "roles": ["world"], "var_dir": os.path.join(self.tmp, name)},
            # Short driver timeouts: a dead database is noticed in seconds.
            "sql": {"url": self.sqlURL + "?connect_timeout=2&read_timeout=20&write_timeout=20"},
            "volatile": {"url": self.redis.url, "prefix": "t:"},
            "secrets": {"token_key": KEY},
            "directory": {"heartbeat": 0.5, "ttl": 2.0},
            "session": {"one_session_per_account": False, "resume_grace": 1.0},
            "world": settings,
        })

    def client(self, proc, cid):
        token = issueAccessToken(KEY, 1, "login-1", 3600, reactor.seconds())
        c = WorldClient(reactor, proc.address, token, cid, retries=1)
        self.addCleanup(lambda: c.session and c.session.drop())
        return c

    async def leaseBecomes(self, cid, value, timeout):
        """Wait until the lease of C{cid} holds C{value} (None: absent); fail after C{timeout}s."""
        for _ in range(int(timeout / 0.1)):
            try:
                if await self.lease(cid) == value:
                    return
            except VolatileUnavailable:
                pass  # the test's own store still reconnecting after a restart
            await sleep(0.1)
        self.fail(f"the lease of {cid} is not {value!r} within {timeout}s: {await self.lease(cid)!r}")

    async def test_logoutDuringFailedTransferSave(self):
        """
        A player walks through a portal to another node while the database hangs, then
        logs out; the transfer save fails.  The character is not left behind: its lease
        is released at once and another node hosting its zone lets it enter, at its last
        saved position.
        """
        await self.servers(privateSQL=True)
        a = await self.startWorld("world-a", ["greenvale"])
        b = await self.startWorld("world-b", ["ashfall", "greenvale"])
        await sleep(1.0)  # both directory entries are written
        cid = await self.character("greenvale", 1000.0, 498.0)
        c = self.client(a, cid)
        await c.enter()
        self.assertEqual(await self.lease(cid), b"world-a")
        self.db.freeze()
        c.move(1001.0, 500.5, 1.0, 1.0)  # into the portal to ashfall, hosted by B
        await sleep(0.5)  # the transfer save hangs
        await c.session.close()  # logs out meanwhile
        await sleep(0.3)
        self.db.kill()  # the save fails
        await self.leaseBecomes(cid, None, 5.0)
        await sleep(2.0)  # and not taken again by A's refreshes
        self.assertIsNone(await self.lease(cid))
        await self.db.start()
        self.assertEqual(await self.position(cid), ("greenvale", 1000.0, 498.0))
        again = self.client(b, cid)
        reply = await again.enter()
        self.assertEqual((reply["zone"]["id"], reply["x"], reply["z"]), ("greenvale", 1000.0, 498.0))
        self.assertEqual(await self.lease(cid), b"world-b")
        await a.stop()
        await b.stop()

    async def test_failedLeaveIsAnError(self):
        """
        world.leave with the database dead answers world.save_failed; the character stays
        live and leased; once the database is back, leaving again saves and releases.
        """
        await self.servers(privateSQL=True)
        a = await self.startWorld("world-a", ["greenvale"], save_interval=600.0)
        cid = await self.character("greenvale", 100.0, 100.0)
        c = self.client(a, cid)
        await c.enter()
        c.move(101.0, 100.0)
        await sleep(0.3)
        self.db.kill()
        with self.assertRaises(RequestError) as e:
            await c.leave()
        self.assertEqual((e.exception.code, e.exception.retry_after), ("world.save_failed", 5.0))
        await sleep(4.0)  # longer than lease_ttl: still refreshed, the character still here
        self.assertEqual(await self.lease(cid), b"world-a")
        c.move(102.0, 100.0)  # still live: the move counts
        await sleep(0.3)
        await self.db.start()
        for _ in range(50):
            try:
                reply = await c.leave()
                break
            except RequestError as e:
                self.assertEqual(e.code, "world.save_failed")
                await sleep(0.2)
        self.assertEqual(reply["ok"], True)
        self.assertIsNone(await self.lease(cid))
        self.assertEqual(await self.position(cid), ("greenvale", 102.0, 100.0))
        await a.stop()

    async def test_redisRestartKeepsPlayers(self):
        """
        A Redis restart shorter than the lease TTL kicks nobody: the node takes back the
        leases the restart lost, and the players play on.
        """
        await self.servers(privateSQL=False)
        a = await self.startWorld("world-a", ["greenvale"], lease_ttl=10.0)
        cid = await self.character("greenvale", 100.0, 100.0)
        c = self.client(a, cid)
        await c.enter()
        await self.redis.restart()
        await self.leaseBecomes(cid, b"world-a", 8.0)
        await sleep(1.5)
        self.assertEqual([m for m in c.events if m["t"] == "world.kicked"], [])
        c.move(101.0, 100.0)
        await sleep(0.3)
        self.assertEqual((await c.leave())["ok"], True)
        self.assertEqual(await self.position(cid), ("greenvale", 101.0, 100.0))
        self.assertIsNone(await self.lease(cid))
        await a.stop()
