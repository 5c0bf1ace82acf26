"""Draining a world node with drain = "handover" moves its live instances: real twistd processes on MariaDB and Redis."""

from twisted.internet.defer import gatherResults

from mmoshard.world.instances.host import hostKey
from mmoshard.world.instances.ids import instanceZoneId
from mmoshard.world.instances.test.test_killcrash import BOSSES, VaultCase
from mmoshard.world.lease import leaseKey
from mmoshard.world.test.worldprocess import sleep


class DrainMovesInstanceTests(VaultCase):
    """Two world nodes offering the vault; the one hosting a copy with players inside gets SIGTERM."""

    async def _setUp(self):
        from twisted.internet import reactor

        from mmoshard.store.volatile import makeVolatileStore

        await VaultCase._setUp(self)
        self.volatile = makeVolatileStore(self.redisURL, reactor, self.prefix)
        self.volatile.open()
        self.addCleanup(self.volatile.close)

    async def test_instanceMovesWithItsPlayers(self):
        """
        Two players in a copy where one boss is dead; SIGTERM its node: the copy is
        re-created on the other node with that boss still dead, both players follow
        world.transfer there by themselves into the same copy, where they stood, their
        sessions never kicked, and the kill's rewards are held exactly once.
        """
        a = await self.startWorld(0.0, "world-a")
        iid, cids, clients = await self.newParty(a)
        for c in clients:
            await self.aliveBosses(c, BOSSES)
        await self.strike(clients[0], "b1", clients)
        b = await self.startWorld(0.0, "world-b")
        await sleep(1.0)  # B's directory entry is written
        clients[1].move(21.0, 21.0)
        await sleep(0.4)
        followed = [c.onTransfer for c in clients]
        self.assertEqual(await a.stop(), 0)
        zones = await gatherResults(followed)
        zone = instanceZoneId("vault", iid)
        self.assertEqual(zones, [zone, zone])
        self.assertEqual(await self.volatile.get(hostKey(iid)), b"world-b")
        for c in clients:
            self.assertEqual(c.transfers, 1)
            self.assertEqual(c.address, b.address.replace("tcp:", ""))
            self.assertEqual(await self.volatile.get(leaseKey(c.characterId)), b"world-b")
            self.assertFalse([m for m in c.events
                              if m["t"] in ("world.kicked", "world.transfer_failed")])
            # The dead boss stays dead in the copy re-created on B: not there at all.
            i = max(n for n, m in enumerate(c.events) if m["t"] == "world.transfer")
            c.events.insert(i + 1, {"t": "world.reset"})  # what B shows from here on
            await self.aliveBosses(c, {"b2", "b3", "b4"})
            self.assertEqual(set(self.bossesSeen(c)), {"b2", "b3", "b4", "sentry"})
        self.assertEqual((clients[1].x, clients[1].z), (21.0, 21.0))
        rows = await self.sql.runQuery("SELECT closed_at FROM instances WHERE id = ?", (iid,))
        self.assertEqual(rows, [(None,)])
        await self.assertExactlyOnce(cids)
        self.assertEqual(await b.stop(), 0)
