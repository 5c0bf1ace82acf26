"""The chat SQL functions on SQLite and on MariaDB: friends, requests, blocks and mutes."""

import os

from twisted.internet import reactor
from twisted.internet.defer import gatherResults
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from mmoshard.chat import social
from mmoshard.chat.config import ChatConfig
from mmoshard.chat.test.backends import NAMES, insertCharacters
from mmoshard.store.sql import SQLStore, migrate
from mmoshard.testing import requireMySQL


class SocialTests:
    async def makeSocial(self, **config):
        store = SQLStore(reactor, await self.databaseURL())
        store.open()
        self.addCleanup(store.close)
        await migrate(store)
        chars = await store.runInteraction(insertCharacters, NAMES, 1000.0)
        self.ids = {name: row[0] for name, row in chars.items()}
        self.clock = Clock()
        self.clock.advance(2000)
        return social.Social(store, self.clock, ChatConfig(**config))

    async def test_requests_friends_blocks(self):
        """Friend requests, crossing requests, the friends limit, blocks ending friendships and silent requests, unblock, remove, cancel."""
        s = await self.makeSocial(max_friends=2)
        a, b, c, d = (self.ids[n] for n in ("alice", "bob", "carol", "dave"))
        self.assertEqual(await s.friendRequest(a, b), social.SENT)
        self.assertEqual(await s.friendRequest(a, b), social.SENT)  # idempotent
        state = await s.load(b)
        self.assertEqual(state.incoming, ((a, "Alice"),))
        self.assertEqual(await s.acceptRequest(b, a), social.ACCEPTED)
        self.assertEqual(await s.acceptRequest(b, a), None)
        self.assertEqual(await s.friendRequest(b, a), social.ALREADY)
        # Crossing requests make friends at once.
        await s.friendRequest(c, a)
        self.assertEqual(await s.friendRequest(a, c), social.ACCEPTED)
        self.assertEqual(await s.friendRequest(a, d), social.TOO_MANY)
        self.assertEqual([n for _, n in (await s.load(a)).friends], ["Bob", "Carol"])
        # A block ends the friendship; the blocked side's requests go nowhere.
        self.assertEqual(await s.block(b, a), (True, True))
        self.assertEqual(await s.block(b, a), (False, False))
        self.assertTrue(await s.isBlocked(b, a))
        self.assertFalse(await s.isBlocked(a, b))
        self.assertEqual(await s.friendRequest(a, b), social.SILENT)
        self.assertEqual((await s.load(b)).incoming, ())
        self.assertEqual((await s.load(b)).blocks, ((a, "Alice"),))
        self.assertTrue(await s.unblock(b, a))
        self.assertFalse(await s.unblock(b, a))
        self.assertTrue(await s.removeFriend(c, a))
        self.assertFalse(await s.removeFriend(c, a))
        await s.friendRequest(d, c)
        self.assertTrue(await s.cancelRequest(d, c))
        self.assertFalse(await s.declineRequest(c, d))

    async def test_mutes_expire(self):
        """A mute is loaded until it expires, and unmute lifts it."""
        s = await self.makeSocial()
        a = self.ids["alice"]
        await s.mute(a, 2060.0, "spam", self.ids["opal"])
        state = await s.load(a)
        self.assertEqual((state.muted_until, state.mute_reason), (2060.0, "spam"))
        self.clock.advance(61)
        self.assertIsNone((await s.load(a)).muted_until)
        await s.mute(a, 5000.0, None, None)
        self.assertTrue(await s.unmute(a))
        self.assertIsNone((await s.load(a)).muted_until)

    async def test_readsAtOnceShareATransaction(self):
        """Loads and character reads made while one is out go together, one transaction for all, and each gets its own friends, blocks, requests and mute (a hello storm's reads)."""
        s = await self.makeSocial()
        a, b, c, d = (self.ids[n] for n in ("alice", "bob", "carol", "dave"))
        await s.friendRequest(a, b)
        await s.acceptRequest(b, a)
        await s.block(c, a)
        await s.friendRequest(d, a)
        await s.mute(b, 2060.0, "spam", self.ids["opal"])
        alone = {cid: await s.load(cid) for cid in (a, b, c, d)}
        self.assertEqual((alone[a].friends, alone[a].incoming, alone[d].outgoing, alone[c].blocks),
                         (((b, "Bob"),), ((d, "Dave"),), ((a, "Alice"),), ((a, "Alice"),)))
        self.assertEqual(alone[b].mute_reason, "spam")
        calls = []
        real = s.sql.runInteraction
        s.sql.runInteraction = lambda f, *args: calls.append(f.__name__) or real(f, *args)
        loads = [s.load(cid) for cid in (a, b, c, d)]
        rows = [s.character(cid) for cid in (a, b, 999999)]
        self.assertEqual(dict(zip((a, b, c, d), await gatherResults(loads))), alone)
        self.assertEqual([r and r.name for r in await gatherResults(rows)], ["Alice", "Bob", None])
        # At most the first of each went alone (none when a read was still out);
        # the rest waited and went together.
        self.assertLessEqual(calls.count("_txn_loadSocial"), 2)
        self.assertLessEqual(calls.count("_txn_characters"), 2)

    async def test_characters(self):
        """Characters are found by id and case-insensitive name, with the operator flag of their account."""
        s = await self.makeSocial()
        row = await s.characterByName("OPAL")
        self.assertEqual((row.name, row.is_operator), ("Opal", True))
        self.assertIsNone(await s.characterByName("nobody"))
        self.assertEqual((await s.character(self.ids["bob"])).name, "Bob")
        self.assertIsNone(await s.character(999999))


class SQLiteSocialTests(SocialTests, TestCase):
    async def databaseURL(self):
        return "sqlite:///" + os.path.abspath(self.mktemp()) + ".sqlite3"


class MySQLSocialTests(SocialTests, TestCase):
    async def databaseURL(self):
        url, drop = requireMySQL()
        self.addCleanup(drop)
        return url
