"""Who is where across real twistd processes on MariaDB and Redis: GET /players/{id} follows world and chat sessions, and a kill -9'd node's entries vanish within the TTL."""

import os
import tempfile

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from mmoshard.locator import StoreLocator, entryKey
from mmoshard.testing import requireMySQL, requireRedis, startNodeProcess
from mmoshard.tokens import issueAccessToken
from mmoshard.wire.client import SessionClient
from mmoshard.world.test.worldprocess import sleep

KEY = "locator-process-test-key-0123456789"
# The nodes' [directory] ttl: how long a dead node's entries may outlive it.
TTL = 2.0


class LocatorProcessTests(TestCase):
    timeout = 120

    async def _setUp(self):
        from mmoshard.store.sql import SQLStore, migrate
        from mmoshard.store.volatile import makeVolatileStore

        self.sqlURL, dropper = requireMySQL()
        self.addCleanup(dropper)
        self.redisURL, self.prefix, cleaner = requireRedis()
        self.addCleanup(cleaner)
        self.sql = SQLStore(reactor, self.sqlURL, 1, 2)
        self.sql.open()
        self.addCleanup(self.sql.close)
        await migrate(self.sql)
        self.volatile = makeVolatileStore(self.redisURL, reactor, self.prefix)
        self.volatile.open()
        self.addCleanup(self.volatile.close)
        self.tmp = tempfile.mkdtemp()

    def setUp(self):
        return Deferred.fromCoroutine(self._setUp())

    async def startNode(self, name, roles):
        return await startNodeProcess(self, reactor, os.path.join(self.tmp, f"{name}.toml"), {
            "node": {"id": name, "roles": roles, "var_dir": os.path.join(self.tmp, name)},
            "sql": {"url": self.sqlURL},
            "volatile": {"url": self.redisURL, "prefix": self.prefix},
            "secrets": {"token_key": KEY},
            "directory": {"heartbeat": 0.5, "ttl": TTL},
            "session": {"one_session_per_account": False},
        })

    def token(self, accountId, login):
        return issueAccessToken(KEY, accountId, login, 3600, reactor.seconds())

    async def test_kill9_entries_vanish_within_ttl(self):
        """GET /players/{id} shows a character's world and chat sessions while their nodes live, past the TTL; a node killed with -9 drops out of it within the TTL."""
        from mmoshard.world.test.dbfixture import makeCharacter

        world = await self.startNode("world-a", ["world"])
        chat = await self.startNode("chat-b", ["chat"])
        cid = await makeCharacter(self.sql, 1, "Char1", "greenvale", 100.0, 0.0, 100.0)
        # Without resuming: a session to a killed node just ends.
        walker = SessionClient(reactor, world.address, self.token(1, "login-w"),
                               clientVersion="locator-test", autoResume=False)
        await walker.connect()
        self.addCleanup(walker.drop)
        await walker.request("world.enter", character_id=cid)
        talker = SessionClient(reactor, chat.address, self.token(1, "login-c"),
                               clientVersion="locator-test", autoResume=False)
        await talker.connect()
        self.addCleanup(talker.drop)
        await talker.request("chat.hello", character_id=cid)
        # Refreshed by both nodes: still there well past the TTL.
        await sleep(TTL * 1.5)
        code, body = await chat.get(f"/players/{cid}")
        self.assertEqual(code, 200, body)
        self.assertEqual((body["node"], body["zone"], body["instance_id"]),
                         ("world-a", "greenvale", None))
        self.assertEqual({(s["kind"], s["node"]) for s in body["sessions"]},
                         {("world", "world-a"), ("chat", "chat-b")})
        world.kill()
        await world.ended
        killedAt = reactor.seconds()
        # Nobody refreshes the dead node's entry now: it runs out within the TTL.
        left = await self.volatile.ttl(entryKey(cid, "world-a"))
        self.assertTrue(0 < left <= TTL, left)
        while True:
            code, body = await chat.get(f"/players/{cid}")
            if body["node"] is None:
                break
            # The TTL, and slack for this test's polling on a loaded machine.
            self.assertLess(reactor.seconds() - killedAt, TTL + 3.0, body)
            await sleep(0.1)
        self.assertEqual(body["sessions"], [{"kind": "chat", "node": "chat-b",
                                             "session_id": body["sessions"][0]["session_id"]}])
        # The last node dies too: nobody knows the character any more.
        chat.kill()
        await chat.ended
        await sleep(TTL + 0.5)
        probe = StoreLocator(self.volatile, reactor, "probe", TTL)
        self.assertIsNone(await probe.where(cid))
