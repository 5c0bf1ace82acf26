"""Draining world nodes on SIGTERM, on real twistd processes, MariaDB and Redis: zones handed to a standby or to another node hosting them."""

from twisted.internet.defer import gatherResults
from twisted.trial.unittest import TestCase

from mmoshard.world.lease import leaseKey
from mmoshard.world.test.test_processes import WorldProcesses
from mmoshard.world.test.worldprocess import sleep, waitFor


class DrainProcessTests(WorldProcesses, TestCase):
    async def players(self, node, places):
        """@return: a live client per (x, z) in greenvale on C{node}, each with its character id."""
        clients = []
        for i, (x, z) in enumerate(places, start=1):
            cid = await self.character(i, "greenvale", x, z)
            c = self.client(node, i, cid)
            await c.enter()
            clients.append(c)
        return clients

    async def drainTo(self, a, b, clients):
        """Move every client, SIGTERM C{a}: each follows to C{b} by itself; @return: A's exit code."""
        for n, c in enumerate(clients):
            c.move(c.x + 1.0 + n, c.z)
        await sleep(0.4)  # the moves are applied
        followed = [c.onTransfer for c in clients]
        code = await a.stop()
        zones = await gatherResults(followed)
        self.assertEqual(zones, ["greenvale"] * len(clients))
        address = b.address.replace("tcp:", "")
        for c in clients:
            self.assertEqual((c.address, c.transfers), (address, 1))
            self.assertEqual(await self.volatile.get(leaseKey(c.characterId)), b.nodeId.encode())
            self.assertFalse([m for m in c.events if m["t"] in ("world.kicked", "world.transfer_failed")])
        return code

    async def test_drainHandsZoneToStandby(self):
        """
        SIGTERM on the node hosting a zone: every player there moves to the node standing by
        for it, where they stand, and plays on there (seeing each other); the node exits 0.
        """
        a = await self.startWorld("world-a", zones=["greenvale"])
        b = await self.startWorld("world-b", zones=["ashfall"], standby=["greenvale"])
        a.nodeId, b.nodeId = "world-a", "world-b"
        await sleep(1.0)  # both directory entries are written
        clients = await self.players(a, [(100.0, 100.0), (110.0, 100.0), (120.0, 104.0)])
        self.assertEqual(await self.drainTo(a, b, clients), 0)
        for n, c in enumerate(clients):
            # Where it stood on A, as saved and as it entered B.
            self.assertEqual(await self.position(c.characterId), ("greenvale", c.x, c.z))
            self.assertEqual(c.x, [101.0, 112.0, 123.0][n])
        others = {c.characterId for c in clients}
        await waitFor(lambda: all(others - {c.characterId} <= set(c.entities) for c in clients))
        # Playing on there: moves are taken and saved on B.
        c = clients[0]
        c.move(102.5, 100.0)
        await sleep(0.3)
        await c.leave()
        self.assertEqual(await self.position(c.characterId), ("greenvale", 102.5, 100.0))
        self.assertEqual(await b.stop(), 0)

    async def test_drainToAnotherNodeHostingTheZone(self):
        """SIGTERM on one of two nodes listing the same zone: its players move to the other one."""
        a = await self.startWorld("world-a", zones=["greenvale"])
        b = await self.startWorld("world-b", zones=["greenvale"])
        a.nodeId, b.nodeId = "world-a", "world-b"
        await sleep(1.0)
        clients = await self.players(a, [(100.0, 100.0), (130.0, 90.0)])
        self.assertEqual(await self.drainTo(a, b, clients), 0)
        self.assertEqual(await self.position(clients[1].characterId), ("greenvale", 132.0, 90.0))
        await b.stop()

    async def test_standbyTakesOverAVanishedNode(self):
        """
        The node hosting a zone dies (kill -9): once its directory entry and the lease run out,
        a player logging in at the standby node enters the zone there, where last saved.
        """
        a = await self.startWorld("world-a", zones=["greenvale"])
        b = await self.startWorld("world-b", zones=["ashfall"], standby=["greenvale"])
        await sleep(1.0)
        [c] = await self.players(a, [(100.0, 100.0)])
        a.kill()
        await a.ended
        await sleep(2.5)  # its directory entry runs out (ttl 2 s): B no longer redirects to it
        late = self.client(b, 1, c.characterId)
        late.retries = 20  # busy (the lease) until lease_ttl runs out
        reply = await late.enter()
        self.assertEqual((reply["zone"]["id"], reply["x"], reply["z"]), ("greenvale", 100.0, 100.0))
        self.assertEqual(await self.volatile.get(leaseKey(c.characterId)), b"world-b")
        await b.stop()


