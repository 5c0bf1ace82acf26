"""The boss kill on SQLite and MariaDB: kill record, lockouts, exp and loot in one transaction, written once, the same loot from the same seed, retried through outages."""

import json
import time
from types import SimpleNamespace

import attrs

from twisted.internet import reactor
from twisted.internet.defer import DeferredList, ensureDeferred, fail
from twisted.internet.task import Clock, deferLater
from twisted.trial.unittest import TestCase

from mmoshard.store.errors import SQLUnavailable
from mmoshard.world.combat.data import LootEntry
from mmoshard.world.instances.kills import (
    KILL_TRIES, Kill, Kills, expKey, killedEncounters, lootKey, rollKill,
)
from mmoshard.world.instances.resets import nextReset
from mmoshard.world.instances.test.bossfixture import CRYPT, ITEMS, LOOT
from mmoshard.world.progression import INVENTORY_SLOTS, expForLevel
from mmoshard.world.test.dbfixture import makeCharacters, openStore
from mmoshard.world.test.harness import SyncSQL
from mmoshard.world.test.helpers import FakeSession

NOW = 1_800_000_000.0


class FakeRoster:
    """What Kills tells through: world.progress and level-ups recorded, live players' sessions."""

    def __init__(self, live=()):
        self.progress = []
        self.levels = []
        self.byCharacter = {cid: SimpleNamespace(session=FakeSession()) for cid in live}

    def progressed(self, cid, result):
        self.progress.append((cid, result))

    def leveled(self, cid, level):
        self.levels.append((cid, level))

    def loot(self, cid):
        return self.byCharacter[cid].session.of("world.loot")


def _txn_instance(cursor, template):
    cursor.execute("INSERT INTO instances (template, node_id, created_at) VALUES (?, 'n1', 0)",
                   (template,))
    return cursor.lastrowid


def _txn_state(cursor, instanceId, cids):
    """Everything a kill may write, for comparing before and after."""
    marks = ", ".join("?" * len(cids))
    return (
        cursor.execute("SELECT instance_id, encounter, killed_at, roster, seed FROM instance_kills "
                       "WHERE instance_id = ?", (instanceId,)).fetchall(),
        cursor.execute(f"SELECT character_id, template, instance_id, reset_at FROM "
                       f"instance_lockouts WHERE character_id IN ({marks}) ORDER BY character_id",
                       cids).fetchall(),
        cursor.execute(f"SELECT id, level, exp FROM characters WHERE id IN ({marks}) ORDER BY id",
                       cids).fetchall(),
        cursor.execute(f"SELECT character_id, slot, item_id, count FROM inventory WHERE "
                       f"character_id IN ({marks}) ORDER BY character_id, slot", cids).fetchall(),
        cursor.execute(f"SELECT character_id, idem_key FROM progression_ledger WHERE "
                       f"character_id IN ({marks}) ORDER BY character_id, idem_key", cids).fetchall(),
    )


def held(inventory, cid):
    """@return: {item: count} character C{cid} holds, of (character, slot, item, count) rows."""
    out = {}
    for c, _, item, n in inventory:
        if c == cid:
            out[item] = out.get(item, 0) + n
    return out


class Boom(Exception):
    """The transaction fails half-way (test)."""


def kill(instanceId, roster, seed="5eed", encounter="ogre", loot=LOOT, exp=500):
    return Kill(instance_id=instanceId, template="crypt", encounter=encounter, killed_at=NOW,
                roster=tuple(roster), seed=seed, exp=exp, loot=loot,
                reset_at=nextReset(CRYPT, NOW), boss=2 ** 31 + 5)


class _KillTests:
    dialect = None

    async def _setUp(self):
        self.sql = await openStore(self, reactor, self.dialect)
        self.cids = await makeCharacters(self.sql, 1, ["Ann", "Bob", "Cid"])
        self.iid = await self.sql.runInteraction(_txn_instance, "crypt")
        self.roster = FakeRoster(self.cids[:2])
        self.kills = Kills(self.sql, reactor, ITEMS, self.roster)

    def setUp(self):
        return ensureDeferred(self._setUp())

    def state(self, iid=None):
        return self.sql.runInteraction(_txn_state, iid or self.iid, self.cids)

    def expected(self, seed, cid):
        """@return: the (item, count) a character rolls with C{seed}, in the table's order."""
        return list(rollKill(LOOT, seed, cid).items())

    async def test_killWritesEverything(self):
        """One kill writes the kill row (roster, seed), each character's lockout, exp and seeded loot; players are told after."""
        result = await self.kills.record(kill(self.iid, self.cids))
        self.assertTrue(result.first)
        self.assertEqual((result.seed, result.roster), ("5eed", tuple(self.cids)))
        kills, lockouts, chars, inventory, ledger = await self.state()
        [(iid, encounter, killedAt, roster, seed)] = kills
        self.assertEqual((iid, encounter, killedAt, json.loads(roster), seed),
                         (self.iid, "ogre", NOW, self.cids, "5eed"))
        reset = nextReset(CRYPT, NOW)
        self.assertEqual([tuple(r) for r in lockouts],
                         [(cid, "crypt", self.iid, reset) for cid in self.cids])
        level, exp = 3, 500 - expForLevel(1) - expForLevel(2)
        self.assertEqual([tuple(r) for r in chars], [(cid, level, exp) for cid in self.cids])
        for cid, reward in zip(self.cids, result.rewards):
            rolled = self.expected("5eed", cid)
            self.assertEqual(reward.character_id, cid)
            self.assertEqual(reward.exp, (level, exp))
            self.assertEqual([(i, n) for i, n, _ in reward.items], rolled)
            self.assertEqual(held(inventory, cid), dict(rolled))
            keys = sorted(k for c, k in ledger if c == cid)
            self.assertEqual(keys, sorted([expKey(kill(self.iid, ()), cid)]
                                          + [lootKey(kill(self.iid, ()), cid, i) for i, _ in rolled]))
        self.assertEqual(expKey(kill(self.iid, ()), 5), f"boss:{self.iid}:ogre:5")
        self.assertIn((self.cids[0], [level, exp]), self.roster.progress)
        self.assertIn((self.cids[0], level), self.roster.levels)
        [loot] = self.roster.loot(self.cids[0])
        self.assertEqual(loot["from"], 2 ** 31 + 5)
        self.assertEqual([(i["item"], i["count"]) for i in loot["items"]],
                         self.expected("5eed", self.cids[0]))

    async def test_secondWriteChangesNothing(self):
        """The same kill written again (another seed, another roster) changes nothing and answers the first result."""
        first = await self.kills.record(kill(self.iid, self.cids))
        before = await self.state()
        again = await self.kills.record(kill(self.iid, self.cids[:1], seed="other"))
        self.assertFalse(again.first)
        self.assertEqual((again.seed, again.roster, again.rewards),
                         (first.seed, first.roster, first.rewards))
        self.assertEqual(await self.state(), before)

    async def test_sameSeedSameLoot(self):
        """Two kills with one seed roll the same items for each character; the items are what rollKill says."""
        other = await self.sql.runInteraction(_txn_instance, "crypt")
        a = await self.kills.record(kill(self.iid, self.cids, seed="abc"))
        # In another copy, after the reset of the first kill's lockouts.
        later = NOW + 8 * 86400
        b = await self.kills.record(attrs.evolve(
            kill(other, self.cids, seed="abc", encounter="witch"), killed_at=later,
            reset_at=nextReset(CRYPT, later)))
        self.assertEqual([[(i, n) for i, n, _ in r.items] for r in a.rewards],
                         [[(i, n) for i, n, _ in r.items] for r in b.rewards])
        self.assertEqual([[(i, n) for i, n, _ in r.items] for r in a.rewards],
                         [self.expected("abc", cid) for cid in self.cids])

    async def test_failureHalfWayWritesNothing(self):
        """A transaction failing after every write, in the pause before its commit, leaves nothing: no kill, lockout, exp or item."""
        before = await self.state()
        slept = []

        def explode(seconds):
            slept.append(seconds)
            raise Boom("the process dies before the commit (test)")

        broken = Kills(self.sql, reactor, ITEMS, self.roster, pause=0.25, sleep=explode)
        self.assertIsNone(await broken.record(kill(self.iid, self.cids)))
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 1)
        self.assertEqual(slept, [0.25])
        self.assertEqual(await self.state(), before)
        self.assertEqual(self.roster.progress, [])
        self.assertEqual(await killedEncounters(self.sql, self.iid), set())
        # Run again: written whole, with the same loot.
        slept.clear()
        paused = Kills(self.sql, reactor, ITEMS, self.roster, pause=0.25, sleep=slept.append)
        result = await paused.record(kill(self.iid, self.cids))
        self.assertTrue(result.first)
        self.assertEqual(slept, [0.25])
        self.assertEqual([[(i, n) for i, n, _ in r.items] for r in result.rewards],
                         [self.expected("5eed", cid) for cid in self.cids])

    async def test_killedEncounters(self):
        """killedEncounters lists the bosses killed in one instance, none of another's."""
        other = await self.sql.runInteraction(_txn_instance, "crypt")
        await self.kills.record(kill(self.iid, self.cids))
        await self.kills.record(kill(self.iid, self.cids, encounter="witch"))
        await self.kills.record(kill(other, self.cids[:1]))
        self.assertEqual(await killedEncounters(self.sql, self.iid), {"ogre", "witch"})
        self.assertEqual(await killedEncounters(self.sql, other), {"ogre"})

    async def test_lockoutRebinds(self):
        """A character's older lockout to the template (another copy, reset since) is replaced by this kill's."""
        other = await self.sql.runInteraction(_txn_instance, "crypt")
        weekAgo = attrs.evolve(kill(other, self.cids[:1]), killed_at=NOW - 8 * 86400,
                               reset_at=nextReset(CRYPT, NOW - 8 * 86400))
        await self.kills.record(weekAgo)
        await self.kills.record(kill(self.iid, self.cids[:1], encounter="witch"))
        _, lockouts, _, _, _ = await self.state()
        self.assertEqual([tuple(r)[:3] for r in lockouts], [(self.cids[0], "crypt", self.iid)])

    async def test_boundElsewhereLeftOut(self):
        """A character present but bound to another copy until after the kill (it got in while that kill was written) is left out: no lockout change, exp or loot."""
        other = await self.sql.runInteraction(_txn_instance, "crypt")
        await self.kills.record(kill(other, self.cids[:1]))
        before = await self.state()
        result = await self.kills.record(kill(self.iid, self.cids))
        self.assertEqual(result.roster, tuple(self.cids[1:]))
        self.assertEqual(result.bound, ((self.cids[0], other),))
        self.assertEqual([r.character_id for r in result.rewards], self.cids[1:])
        kills, lockouts, chars, inventory, _ = await self.state()
        self.assertEqual(json.loads(kills[0][3]), self.cids[1:])
        self.assertEqual(tuple(lockouts[0])[:3], (self.cids[0], "crypt", other))
        self.assertEqual(chars[0], before[2][0])
        self.assertEqual(held(inventory, self.cids[0]), held(before[3], self.cids[0]))
        # Written again (a lost answer), the first result: the roster without it.
        again = await self.kills.record(kill(self.iid, self.cids))
        self.assertEqual((again.first, again.roster), (False, tuple(self.cids[1:])))

    async def test_deletedCharacterLeftOut(self):
        """A character deleted before the write is left out of the roster and gets nothing; the others are written."""
        await self.sql.runInteraction(lambda c: c.execute(
            "UPDATE characters SET deleted_at = 1 WHERE id = ?", (self.cids[1],)))
        result = await self.kills.record(kill(self.iid, self.cids))
        self.assertEqual(result.roster, (self.cids[0], self.cids[2]))
        _, lockouts, chars, inventory, _ = await self.state()
        self.assertNotIn(self.cids[1], [r[0] for r in lockouts])
        self.assertNotIn(self.cids[1], [r[0] for r in inventory])
        self.assertEqual(tuple(chars[1])[1:], (1, 0))

    async def test_fullInventoryLosesOnlyThoseItems(self):
        """A character without room loses the items that do not fit (said in the result); its exp, lockout and the others' loot are written."""
        cid = self.cids[0]

        def fill(cursor):
            for slot in range(INVENTORY_SLOTS):
                cursor.execute("INSERT INTO inventory (character_id, slot, item_id, count) "
                               "VALUES (?, ?, ?, 1)", (cid, slot, f"junk{slot}"))

        await self.sql.runInteraction(fill)
        result = await self.kills.record(kill(self.iid, self.cids))
        full = result.rewards[0]
        self.assertEqual((full.items, full.lost), ((), tuple(self.expected("5eed", cid))))
        self.assertIsNotNone(full.exp)
        self.assertEqual([(i, n) for i, n, _ in result.rewards[1].items],
                         self.expected("5eed", self.cids[1]))
        again = await self.kills.record(kill(self.iid, self.cids))
        self.assertEqual(again.rewards, result.rewards)

    async def test_concurrentKillsInTwoCopies(self):
        """Kills in two copies at once with the same characters: one binds and rewards them, the other leaves them out; neither fails."""
        other = await self.sql.runInteraction(_txn_instance, "crypt")
        results = await DeferredList([self.kills.write(kill(i, self.cids, encounter="witch"))
                                      for i in (self.iid, other)], consumeErrors=True)
        self.assertTrue(all(ok and r is not None for ok, r in results), results)
        a, b = sorted((r for _, r in results), key=lambda r: len(r.roster))
        self.assertEqual((a.roster, b.roster), ((), tuple(self.cids)))
        self.assertEqual([cid for cid, _ in a.bound], self.cids)
        _, lockouts, _, inventory, _ = await self.state()
        self.assertEqual(len({r[2] for r in lockouts}), 1)
        self.assertEqual(held(inventory, self.cids[0]),
                         dict(self.expected("5eed", self.cids[0])))

    async def test_concurrentKillsOfManyCopies(self):
        """Kills of many copies at once, each with its own characters, are all written (none lost to a deadlock on the lockout rows)."""
        pairs = []
        for n in range(6):
            cids = await makeCharacters(self.sql, 2, [f"a{n}", f"b{n}", f"c{n}", f"d{n}"])
            copies = [await self.sql.runInteraction(_txn_instance, "crypt") for _ in range(2)]
            pairs.append([self.kills.write(kill(copies[0], cids[0::2])),
                          self.kills.write(kill(copies[1], cids[1::2]))])
        for pair in pairs:
            results = await DeferredList(pair, consumeErrors=True)
            self.assertEqual([len(r.roster) for _, r in results if r is not None], [2, 2])
        self.assertEqual(self.kills.failed, 0)

    async def test_grantCommittedWhileTheKillWaits(self):
        """An item granted by another transaction that holds the character while the kill starts is counted: the kill adds to the stack as it is after that commit."""
        cid = self.cids[0]
        await self.sql.runInteraction(lambda c: c.execute(
            "INSERT INTO inventory (character_id, slot, item_id, count) VALUES (?, 0, 'coin', 5)",
            (cid,)))

        def grant(cursor):
            lock = " FOR UPDATE" if cursor.dialect == "mysql" else ""
            cursor.execute("SELECT id FROM characters WHERE id = ?" + lock, (cid,))
            cursor.execute("UPDATE inventory SET count = 7 WHERE character_id = ? AND slot = 0",
                           (cid,))
            time.sleep(0.3)  # the kill starts meanwhile and waits for the character

        granting = self.sql.runInteraction(grant)
        await deferLater(reactor, 0.1, lambda: None)
        coin = (LootEntry("coin", 1.0, 1, 1),)
        result = await self.kills.record(kill(self.iid, [cid], loot=coin))
        await granting
        self.assertEqual(result.rewards[0].items, (("coin", 1, 0),))
        _, _, _, inventory, _ = await self.state()
        self.assertEqual(held(inventory, cid), {"coin": 8})

    async def test_concurrentWritesOnce(self):
        """Two writes of one kill at once (different seeds): one writes, the other answers its result."""
        results = await DeferredList([self.kills.write(kill(self.iid, self.cids, seed=s))
                                      for s in ("s1", "s2")], consumeErrors=True)
        self.assertTrue(all(ok for ok, _ in results), results)
        a, b = (r for _, r in results)
        self.assertEqual(sorted([a.first, b.first]), [False, True])
        self.assertEqual((a.seed, a.rewards), (b.seed, b.rewards))
        _, _, chars, inventory, _ = await self.state()
        self.assertEqual(tuple(chars[0])[1:], (3, 0))
        self.assertEqual(held(inventory, self.cids[0]), dict(self.expected(a.seed, self.cids[0])))


class MariaDBKillTests(_KillTests, TestCase):
    dialect = "mysql"


class SQLiteKillTests(_KillTests, TestCase):
    dialect = "sqlite"


class LosingSQL(SyncSQL):
    """SyncSQL whose next C{down} kill writes fail as an outage, and the next C{lose} commit but answer one."""

    def __init__(self):
        SyncSQL.__init__(self)
        self.downs = 0
        self.lose = 0
        self.seeds = []

    def runInteraction(self, func, *args, **kwargs):
        if args and isinstance(args[0], Kill):  # a kill's write
            self.seeds.append(args[0].seed)
            if self.downs:
                self.downs -= 1
                return fail(SQLUnavailable("database blinked (test)"))
            if self.lose:
                self.lose -= 1
                d = SyncSQL.runInteraction(self, func, *args, **kwargs)
                d.addCallback(lambda _: fail(SQLUnavailable("answer lost after the commit (test)")))
                return d
        return SyncSQL.runInteraction(self, func, *args, **kwargs)


class OutageTests(TestCase):
    def setUp(self):
        self.sql = LosingSQL()
        self.clock = Clock()
        self.cids = [self.sql.makeCharacter(1, n) for n in ("Ann", "Bob")]
        self.iid = self.sql.runInteraction(_txn_instance, "crypt").result
        self.roster = FakeRoster(self.cids)
        self.kills = Kills(self.sql, self.clock, ITEMS, self.roster)

    def test_outageRetriedWithTheSameSeed(self):
        """A kill the database refused is written again after 1 s, then 2 s, with the same seed; players are told once, after."""
        self.sql.downs = 2
        d = self.kills.write(kill(self.iid, self.cids, seed="fixed"))
        self.assertNoResult(d)
        self.clock.advance(1.0)
        self.assertNoResult(d)
        self.assertEqual(self.roster.progress, [])
        self.clock.advance(2.0)
        result = self.successResultOf(d)
        self.assertTrue(result.first)
        self.assertEqual(self.sql.seeds, ["fixed"] * 3)
        self.assertEqual([(i, n) for i, n, _ in result.rewards[0].items],
                         list(rollKill(LOOT, "fixed", self.cids[0]).items()))
        self.assertEqual(len(self.roster.loot(self.cids[0])), 1)

    def test_lostAnswerAnsweredTheFirstResult(self):
        """A write that committed but whose answer was lost is answered its first result on the retry: nothing twice, told once."""
        self.sql.lose = 1
        d = self.kills.write(kill(self.iid, self.cids))
        self.clock.advance(1.0)
        result = self.successResultOf(d)
        self.assertFalse(result.first)
        inventory = self.sql.conn.execute(
            "SELECT character_id, slot, item_id, count FROM inventory").fetchall()
        self.assertEqual(held(inventory, self.cids[0]), rollKill(LOOT, "5eed", self.cids[0]))
        self.assertEqual(len(self.roster.loot(self.cids[0])), 1)
        self.assertEqual(self.roster.levels, [(self.cids[0], 3), (self.cids[1], 3)])

    def test_givenUp(self):
        """A database away through every try: the kill is given up (None), logged, nothing written."""
        self.sql.downs = KILL_TRIES
        d = self.kills.write(kill(self.iid, self.cids))
        self.clock.pump([30.0] * KILL_TRIES)
        self.assertIsNone(self.successResultOf(d))
        self.assertEqual(self.kills.failed, 1)
        self.assertEqual(self.sql.conn.execute("SELECT COUNT(*) FROM instance_kills").fetchone(), (0,))
