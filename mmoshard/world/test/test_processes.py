"""Multi-process world tests on real twistd processes, MariaDB and Redis: leases, kill -9 recovery, zone transfer."""

import os
import tempfile

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from mmoshard.testing import requireMySQL, requireRedis, startNodeProcess
from mmoshard.tokens import issueAccessToken
from mmoshard.wire.client import RequestError
from mmoshard.world.client import WorldClient
from mmoshard.world.lease import leaseKey
from mmoshard.world.test.worldprocess import sleep, waitFor

KEY = "world-process-test-key-0123456789"


class WorldProcesses:
    """The stores, characters, nodes and clients of a multi-process world test (a mixin without tests)."""

    timeout = 120

    async def _setUp(self):
        from mmoshard.store.sql import SQLStore, migrate

        self.sqlURL, dropper = requireMySQL()
        self.addCleanup(dropper)
        self.redisURL, self.prefix, cleaner = requireRedis()
        self.addCleanup(cleaner)
        self.sql = SQLStore(reactor, self.sqlURL, 1, 2)
        self.sql.open()
        self.addCleanup(self.sql.close)
        await migrate(self.sql)
        from mmoshard.store.volatile import makeVolatileStore

        self.volatile = makeVolatileStore(self.redisURL, reactor, self.prefix)
        self.volatile.open()
        self.addCleanup(self.volatile.close)
        self.tmp = tempfile.mkdtemp()

    def setUp(self):
        return Deferred.fromCoroutine(self._setUp())

    async def character(self, accountId, zone, x, z):
        from mmoshard.world.test.dbfixture import makeCharacter

        return await makeCharacter(self.sql, accountId, f"Char{accountId}", zone, x, 0.0, z)

    async def position(self, cid):
        rows = await self.sql.runQuery("SELECT zone, x, z FROM characters WHERE id = ?", (cid,))
        return rows[0]

    async def startWorld(self, name, zones=None, **world):
        settings = {"lease_ttl": 3.0, "lease_refresh": 1.0, "save_interval": 1.0, **world}
        if zones:
            settings["zones"] = zones
        return await self.startNode(name, ["world"], {
            "directory": {"heartbeat": 0.5, "ttl": 2.0},
            "session": {"one_session_per_account": False, "resume_grace": 1.0},
            "world": settings,
        })

    async def startChat(self, name):
        return await self.startNode(name, ["chat"], {
            "session": {"one_session_per_account": False},
        })

    async def startNode(self, name, roles, sections):
        """@return: a ready node process C{name} with C{roles} on the test's stores, and C{sections}."""
        return await startNodeProcess(self, reactor, os.path.join(self.tmp, f"{name}.toml"), {
            "node": {"id": name, "roles": roles, "var_dir": os.path.join(self.tmp, name)},
            "sql": {"url": self.sqlURL},
            "volatile": {"url": self.redisURL, "prefix": self.prefix},
            "secrets": {"token_key": KEY},
            **sections,
        })

    def client(self, proc, accountId, cid):
        token = issueAccessToken(KEY, accountId, f"login-{accountId}", 3600, reactor.seconds())
        c = WorldClient(reactor, proc.address, token, cid, retries=1)
        # Ended, not dropped: a stopped node leaves sessions resumable and a
        # dropped client would go on resuming after the test.
        self.addCleanup(lambda: c.session and Deferred.fromCoroutine(c.session.close()))
        return c


class WorldProcessTests(WorldProcesses, TestCase):
    async def test_leaseAcrossTwoProcesses(self):
        """A character live in one process is refused by another until it leaves the first."""
        a = await self.startWorld("world-a")
        b = await self.startWorld("world-b")
        cid = await self.character(1, "greenvale", 100.0, 100.0)
        ca = self.client(a, 1, cid)
        await ca.enter()
        self.assertEqual(await self.volatile.get(leaseKey(cid)), b"world-a")
        cb = self.client(b, 1, cid)
        with self.assertRaises(RequestError) as e:
            await cb.enter()
        self.assertEqual(e.exception.code, "world.character_busy")
        await ca.leave()
        reply = await cb.enter()
        self.assertEqual(reply["character_id"], cid)
        self.assertEqual(await self.volatile.get(leaseKey(cid)), b"world-b")
        await a.stop()
        await b.stop()

    async def test_zoneChatWithChatInAnotherProcess(self):
        """
        Entering a zone on a world-only process joins the zone channel on the chat
        process the character talks to.
        """
        from mmoshard.wire.client import SessionClient

        world = await self.startWorld("world-a")
        chat = await self.startChat("chat-a")
        cid = await self.character(1, "greenvale", 100.0, 100.0)
        events = []
        token = issueAccessToken(KEY, 1, "login-chat-1", 3600, reactor.seconds())
        session = SessionClient(reactor, chat.address, token, onEvent=events.append,
                                clientVersion="chat-test")
        await session.connect()
        self.addCleanup(session.drop)
        hello = await session.request("chat.hello", character_id=cid)
        self.assertIsNone(hello.get("zone_channel"))

        def of(type):
            return [e for e in events if e["t"] == type]

        c = self.client(world, 1, cid)
        await c.enter()
        await waitFor(lambda: of("chat.channel.joined"))
        self.assertEqual(of("chat.channel.joined")[0]["channel"], "zone:greenvale")
        await c.leave()
        await waitFor(lambda: of("chat.channel.left"))
        self.assertEqual(of("chat.channel.left")[0]["channel"], "zone:greenvale")
        await world.stop()
        await chat.stop()

    async def test_crashRecoveryAfterKill9(self):
        """
        After kill -9 the saved position is at most a save interval behind, and another
        process takes the character once the lease expires.
        """
        a = await self.startWorld("world-a")
        b = await self.startWorld("world-b")
        cid = await self.character(1, "greenvale", 100.0, 100.0)
        ca = self.client(a, 1, cid)
        await ca.enter()
        x = 100.0
        positions = []
        for _ in range(25):  # 2.5 s walking at 4 m/s, saved every second
            x += 0.4
            ca.move(x, 100.0, 4.0, 0.0)
            positions.append((reactor.seconds(), x))
            await sleep(0.1)
        killedAt = reactor.seconds()
        a.kill()
        await a.ended
        zone, savedX, _ = await self.position(cid)
        self.assertEqual(zone, "greenvale")
        # At most one save interval (1 s) behind the last move, plus a tick
        # and scheduling slack for a loaded machine.
        behind = [t for t, px in positions if abs(px - savedX) < 1e-6]
        self.assertTrue(behind, (savedX, positions[-1]))
        self.assertLessEqual(killedAt - behind[0], 1.0 + 0.5)
        # The lease outlives the crash by at most its TTL, then b takes over.
        cb = self.client(b, 1, cid)
        cb.retries = 50
        reply = await cb.enter()
        self.assertLessEqual(reactor.seconds() - killedAt, 3.0 + 3.0)  # TTL + retry slack
        self.assertAlmostEqual(reply["x"], savedX, places=3)
        await b.stop()

    async def test_zoneTransferBetweenProcesses(self):
        """
        Walking into a portal to a zone hosted elsewhere moves the character, its saved
        position and its lease to that process.
        """
        a = await self.startWorld("world-a", zones=["greenvale"])
        b = await self.startWorld("world-b", zones=["ashfall"])
        await sleep(1.0)  # both directory entries are written
        cid = await self.character(1, "greenvale", 1000.0, 498.0)
        c = self.client(a, 1, cid)
        await c.enter()
        self.assertEqual(c.zone, "greenvale")
        done = c.onTransfer
        c.move(1001.0, 500.5, 1.0, 1.0)  # into the portal to ashfall
        zone = await done
        self.assertEqual((zone, c.x, c.z, c.transfers), ("ashfall", 40.0, 256.0, 1))
        self.assertEqual(c.address, b.address.replace("tcp:", ""))
        self.assertEqual(await self.position(cid), ("ashfall", 40.0, 256.0))
        self.assertEqual(await self.volatile.get(leaseKey(cid)), b"world-b")
        # Walking on in the new zone works and is saved there on logout.
        c.move(40.5, 256.0)
        await sleep(0.3)
        await c.leave()
        self.assertEqual(await self.position(cid), ("ashfall", 40.5, 256.0))
        self.assertIsNone(await self.volatile.get(leaseKey(cid)))
        await a.stop()
        await b.stop()

    async def test_transferTargetDiesMidway(self):
        """The target dies after the hand-off: the character is live nowhere, then enters with its ticket."""
        a = await self.startWorld("world-a", zones=["greenvale"])
        b = await self.startWorld("world-b", zones=["ashfall"])
        await sleep(1.0)
        cid = await self.character(1, "greenvale", 1000.0, 498.0)
        c = self.client(a, 1, cid)
        await c.enter()
        b.kill()
        await b.ended
        done = c.onTransfer
        c.move(1001.0, 500.5, 1.0, 1.0)  # A still lists B in its directory: it hands off
        with self.assertRaises(Exception):
            await done
        [ticket] = [m["ticket"] for m in c.events if m["t"] == "world.transfer"]
        self.assertEqual(await self.position(cid), ("ashfall", 40.0, 256.0))
        self.assertEqual(await self.volatile.get(leaseKey(cid)), b"xfer:" + ticket.encode())
        # A does not take it back: its zone is elsewhere now.
        back = self.client(a, 1, cid)
        back.retries = 1
        with self.assertRaises(Exception):
            await back.enter()  # redirected to ashfall, which nobody hosts
        b2 = await self.startWorld("world-b2", zones=["ashfall"])
        c2 = self.client(b2, 1, cid)
        reply = await c2.enter(ticket=ticket)
        self.assertEqual((reply["zone"]["id"], reply["x"], reply["z"]), ("ashfall", 40.0, 256.0))
        self.assertEqual(await self.volatile.get(leaseKey(cid)), b"world-b2")
        await a.stop()
        await b2.stop()

    async def test_gracefulStopSavesAndReleases(self):
        """A graceful stop saves the latest positions and releases the leases."""
        a = await self.startWorld("world-a", save_interval=600.0)
        cid = await self.character(1, "greenvale", 100.0, 100.0)
        c = self.client(a, 1, cid)
        await c.enter()
        c.move(101.0, 100.0)
        await sleep(0.3)
        self.assertEqual(await a.stop(), 0)
        self.assertEqual(await self.position(cid), ("greenvale", 101.0, 100.0))
        self.assertIsNone(await self.volatile.get(leaseKey(cid)))
