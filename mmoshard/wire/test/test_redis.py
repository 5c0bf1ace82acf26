"""Session ownership across processes on a real Redis: the Lua scripts and pub/sub kicks."""

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from mmoshard.store.volatile import makeVolatileStore
from mmoshard.testing import requireRedis
from mmoshard.wire import errors
from mmoshard.wire.manager import ownerField, ownersKey
from mmoshard.wire.test.helpers import Server
from mmoshard.wire.test.test_owners import runClaims


def realReactor():
    # Redis needs real sockets, so this test runs on the real reactor.
    from twisted.internet import reactor

    return reactor


class RedisOwnershipTests(TestCase):
    async def server(self, url, prefix, nodeId):
        reactor = realReactor()
        store = makeVolatileStore(url, reactor, prefix, timeout=2.0)
        store.open()
        self.addCleanup(store.close)
        server = Server(self, clock=reactor, volatile=store, nodeId=nodeId)
        await server.started
        self.addCleanup(lambda: Deferred.fromCoroutine(server.manager.shutdown(0.0)))
        return server

    async def welcome(self, server, accountId):
        peer = server.tcp()
        self.peers.append(peer)
        peer.send({"t": "hello", "id": 1, "token": server.token(accountId),
                   "client_version": "1", "platform": "test"})
        replies = await self.until(peer, lambda r: r)
        self.assertEqual(replies[0]["t"], "welcome", replies)
        peer.welcome = replies[0]
        return peer

    async def until(self, peer, predicate, timeout=5.0):
        reactor = realReactor()
        seen = []
        waited = 0.0
        while not predicate(seen):
            if waited > timeout:
                self.fail(f"timed out; received {seen}")
            await deferLater(reactor, 0.01)
            waited += 0.01
            seen.extend(peer.received())
        return seen

    async def test_replacedAcrossProcesses(self):
        """
        On Redis a hello on node B ends the account's session on node A with replaced; a
        logout releases only its own claim.
        """
        url, prefix, cleaner = requireRedis()
        self.addCleanup(cleaner)
        self.peers = []
        # Peers lose their connections before the servers shut down.
        a = await self.server(url, prefix, "proc-a")
        b = await self.server(url, prefix, "proc-b")
        self.addCleanup(lambda: [peer.lose() for peer in self.peers])
        first = await self.welcome(a, 21)
        second = await self.welcome(b, 21)
        replies = await self.until(first, lambda r: r)
        self.assertEqual(replies[-1]["code"], errors.REPLACED)
        self.assertTrue(first.closed)
        owners = await b.volatile.hgetall(ownersKey(21))
        self.assertEqual(list(owners), [ownerField("proc-b", second.welcome["session_id"])])
        # Logging out releases the claim, but only one's own.
        second.send({"t": "bye"})
        await self.until(second, lambda r: r)
        second.lose()
        for attempt in range(500):
            if not await b.volatile.hgetall(ownersKey(21)):
                break
            await deferLater(realReactor(), 0.01)
        else:
            self.fail("the claim was not released")

    async def test_claimScriptOnRedis(self):
        """Redis runs the claim script's Lua to the same results as the memory store's Python."""
        url, prefix, cleaner = requireRedis()
        self.addCleanup(cleaner)
        store = makeVolatileStore(url, realReactor(), prefix, timeout=2.0)
        store.open()
        self.addCleanup(store.close)
        await runClaims(self, store, "owners:test")
