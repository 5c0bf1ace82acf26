"""Reward grants written together: grants.grantMany on MariaDB and SQLite (one transaction, each key once, a refused or failed grant losing none of the others) and the rewards' group commit."""

import random

from twisted.internet import reactor
from twisted.internet.defer import DeferredList, ensureDeferred
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from mmoshard.store.errors import SQLUnavailable
from mmoshard.world.combat.rewards import BATCH, GrantQueue
from mmoshard.world.grants import ExpGrant, ItemGrant, grantMany
from mmoshard.world.progression import (
    INVENTORY_SLOTS, InventoryFull, Progression, expForLevel, loadCharacter,
)
from mmoshard.world.test.dbfixture import makeCharacter, openStore
from mmoshard.world.test.harness import SyncSQL


class Watched:
    """An ISQLStore's runInteraction, counted by function name; C{breakNext} makes the next batch fail after its writes."""

    def __init__(self, sql):
        self.sql = sql
        self.dialect = sql.dialect
        self.calls = []
        self.breakNext = None

    def runInteraction(self, func, *args, **kwargs):
        self.calls.append(func.__name__)
        if func.__name__ == "_txn_grantMany" and self.breakNext is not None:
            why, self.breakNext = self.breakNext, None

            def broken(cursor, *a, **kw):
                func(cursor, *a, **kw)  # every write done, then the transaction fails
                raise why

            return self.sql.runInteraction(broken, *args, **kwargs)
        return self.sql.runInteraction(func, *args, **kwargs)


async def outcomes(deferreds):
    """@return: [(True, result) or (False, exception)] of C{deferreds}, in order."""
    done = await DeferredList(deferreds, consumeErrors=True)
    return [(ok, r if ok else r.value) for ok, r in done]


class _GrantManyTests:
    dialect = None

    async def _setUp(self):
        self.store = await openStore(self, reactor, self.dialect)
        self.sql = Watched(self.store)
        self.a = await makeCharacter(self.store, 1, "Alpha")
        self.b = await makeCharacter(self.store, 2, "Beta")
        self.changes = []
        self.levels = []
        self.prog = Progression(self.sql, reactor, lambda c, r: self.changes.append((c, r)),
                                lambda c, level: self.levels.append((c, level)))

    def setUp(self):
        return ensureDeferred(self._setUp())

    async def exp(self, cid):
        row = await loadCharacter(self.store, cid)
        return row.level, row.exp

    async def ledger(self, cid):
        rows = await self.store.runQuery(
            "SELECT idem_key FROM progression_ledger WHERE character_id = ? ORDER BY idem_key", (cid,))
        return [k for (k,) in rows]

    async def test_oneTransaction(self):
        """Exp and loot for two characters go in one transaction and answer as the one-grant calls do; the players are told each."""
        got = await outcomes(grantMany(self.prog, [
            ExpGrant(self.b, 30, "kill:1"), ItemGrant(self.a, "pelt", 2, "loot:1:pelt", 20),
            ExpGrant(self.a, expForLevel(1) + 5, "kill:1"), ItemGrant(self.a, "fang", 1, "loot:1:fang"),
        ]))
        self.assertEqual(got, [(True, (1, 30)), (True, 0), (True, (2, 5)), (True, 1)])
        self.assertEqual(self.sql.calls, ["_txn_grantMany"])
        self.assertEqual(await self.exp(self.a), (2, 5))
        self.assertEqual(await self.prog.inventory(self.a), {0: ("pelt", 2), 1: ("fang", 1)})
        self.assertEqual(await self.ledger(self.a), ["kill:1", "loot:1:fang", "loot:1:pelt"])
        self.assertCountEqual(self.changes, [(self.b, (1, 30)), (self.a, 0), (self.a, (2, 5)),
                                             (self.a, 1)])
        self.assertCountEqual(self.levels, [(self.b, 1), (self.a, 2)])

    async def test_keysStillOnce(self):
        """A key granted before, or twice in one batch, is applied once: its first result comes back."""
        await self.prog.grantExp(self.a, 40, "kill:1")
        got = await outcomes(grantMany(self.prog, [
            ExpGrant(self.a, 40, "kill:1"), ExpGrant(self.b, 10, "kill:2"),
            ExpGrant(self.b, 10, "kill:2"), ItemGrant(self.b, "pelt", 1, "loot:2"),
        ]))
        self.assertEqual(got, [(True, (1, 40)), (True, (1, 10)), (True, (1, 10)), (True, 0)])
        self.assertEqual((await self.exp(self.a), await self.exp(self.b)), ((1, 40), (1, 10)))

    async def test_refusedGrantFailsAlone(self):
        """A full inventory and a character that is gone fail their own grants, writing nothing for them; the rest of the batch commits."""
        for slot in range(INVENTORY_SLOTS):
            await self.prog.addItem(self.b, "rock", 1, f"fill:{slot}", slot=slot, stack=1)
        full = await self.prog.inventory(self.b)
        got = await outcomes(grantMany(self.prog, [
            ExpGrant(self.a, 20, "kill:1"), ItemGrant(self.b, "pelt", 1, "loot:1", 20),
            ExpGrant(self.b, 20, "kill:1"), ExpGrant(999_999, 20, "kill:1"),
            ItemGrant(self.a, "pelt", 1, "loot:1", 20),
        ]))
        self.assertEqual([ok for ok, _ in got], [True, False, True, False, True])
        self.assertIsInstance(got[1][1], InventoryFull)
        self.assertIsInstance(got[3][1], KeyError)
        self.assertEqual(self.sql.calls.count("_txn_grantMany"), 1)
        self.assertEqual(await self.prog.inventory(self.b), full)
        self.assertNotIn("loot:1", await self.ledger(self.b))
        self.assertEqual((await self.exp(self.a), await self.exp(self.b)), ((1, 20), (1, 20)))

    async def test_failedTransactionGrantsOneByOne(self):
        """A batch whose transaction fails after its writes is rolled back, and each grant is written on its own: all land, once."""
        self.sql.breakNext = SQLUnavailable("the commit failed (test)")
        got = await outcomes(grantMany(self.prog, [
            ExpGrant(self.a, 20, "kill:1"), ExpGrant(self.b, 25, "kill:1"),
            ItemGrant(self.a, "pelt", 3, "loot:1"),
        ]))
        self.assertEqual(got, [(True, (1, 20)), (True, (1, 25)), (True, 0)])
        self.assertEqual(self.sql.calls, ["_txn_grantMany", "_txn_grantExp", "_txn_grantExp",
                                          "_txn_addItem"])
        self.assertEqual((await self.exp(self.a), await self.exp(self.b)), ((1, 20), (1, 25)))
        self.assertEqual(await self.prog.inventory(self.a), {0: ("pelt", 3)})

    async def test_badArgumentsFailAlone(self):
        """A grant with a bad count or key fails at once; the others are written."""
        got = await outcomes(grantMany(self.prog, [
            ItemGrant(self.a, "pelt", 0, "loot:1"), ExpGrant(self.a, 5, ""),
            ExpGrant(self.a, 5, "kill:1"),
        ]))
        self.assertEqual([ok for ok, _ in got], [False, False, True])
        self.assertEqual(await self.exp(self.a), (1, 5))
        self.assertEqual(self.sql.calls, ["_txn_grantExp"])  # one left: written as one


    async def test_sameAsOneByOne(self):
        """
        Random grants (level-ups, stacks topped up and filled, keys repeated,
        a nearly full inventory, a character that is gone) written in one
        batch answer and leave the database exactly as the same grants
        written one by one, in order.
        """
        other = await openStore(self, reactor, self.dialect)
        oneByOne = Progression(other, reactor)
        ids = {}
        for store in (self.store, other):
            ids[store] = [await makeCharacter(store, 10 + i, f"Many{i}") for i in range(3)]
        rng = random.Random(11)
        for store, prog in ((self.store, self.prog), (other, oneByOne)):
            full = ids[store][2]
            for slot in range(INVENTORY_SLOTS - 2):
                await prog.addItem(full, "rock", 1, f"fill:{slot}", slot=slot, stack=1)
        start = len(self.sql.calls)
        for round_ in range(4):
            plan = []
            for i in range(40):
                who = rng.choice([0, 0, 1, 2, 3])
                key = f"r{round_}:{rng.randint(0, 30)}"
                if rng.random() < 0.5:
                    plan.append(("exp", who, rng.randint(0, 300), "kill:" + key))
                else:
                    item, stack = rng.choice([("pelt", 5), ("fang", None), ("ore", 3)])
                    plan.append(("item", who, item, rng.randint(1, 7), "loot:" + key, stack))

            def grants(store):
                cids = ids[store] + [999_999]
                return [ExpGrant(cids[p[1]], p[2], p[3]) if p[0] == "exp"
                        else ItemGrant(cids[p[1]], p[2], p[3], p[4], p[5]) for p in plan]

            together = await outcomes(grantMany(self.prog, grants(self.store)))
            alone = []
            for g in grants(other):
                alone += await outcomes(grantMany(oneByOne, [g]))
            self.assertEqual([(ok, r if ok else type(r)) for ok, r in together],
                             [(ok, r if ok else type(r)) for ok, r in alone])
            self.assertEqual(await self.dump(self.store, ids[self.store]),
                             await self.dump(other, ids[other]))
        # One transaction each time: none fell back to one by one.
        self.assertEqual(self.sql.calls[start:], ["_txn_grantMany"] * 4)

    async def dump(self, store, cids):
        """Levels, inventories and ledgers of C{cids}, with their ids replaced by their places."""
        prog = Progression(store, reactor)
        out = []
        for i, cid in enumerate(cids):
            row = await loadCharacter(store, cid)
            ledger = await store.runQuery(
                "SELECT idem_key, kind, result FROM progression_ledger WHERE character_id = ? "
                "ORDER BY idem_key", (cid,))
            out.append((i, row.level, row.exp, await prog.inventory(cid), [tuple(r) for r in ledger]))
        return out


class MariaDBGrantManyTests(_GrantManyTests, TestCase):
    dialect = "mysql"


class SQLiteGrantManyTests(_GrantManyTests, TestCase):
    dialect = "sqlite"


class GrantQueueTests(TestCase):
    """The rewards' group commit over a database that answers when the test says."""

    def setUp(self):
        self.sql = SyncSQL()
        self.sql.holding = True
        self.watched = Watched(self.sql)
        self.prog = Progression(self.watched, Clock())
        self.queue = GrantQueue(self.prog)

    def character(self, n):
        self.sql.holding = False
        cid = self.sql.makeCharacter(n, f"Char{n}")
        self.sql.holding = True
        return cid

    def test_writesAtOnceThenTogether(self):
        """The first grant is written at once; those asked for while it is in flight go together in the next write."""
        a, b = self.character(1), self.character(2)
        first = self.queue.submit(ExpGrant(a, 10, "kill:1"))
        self.assertEqual((len(self.sql.held), self.queue.writes), (1, 1))
        rest = [self.queue.submit(ExpGrant(b, 10, "kill:1")),
                self.queue.submit(ItemGrant(a, "pelt", 1, "loot:1")),
                self.queue.submit(ItemGrant(b, "pelt", 1, "loot:1"))]
        self.assertEqual(len(self.sql.held), 1)  # waiting behind the first
        self.sql.unhold()
        self.assertEqual(self.successResultOf(first), (1, 10))
        self.assertEqual(self.queue.writes, 2)
        self.assertEqual(self.watched.calls, ["_txn_grantExp", "_txn_grantMany"])
        self.assertEqual([self.successResultOf(d) for d in rest], [(1, 10), 0, 0])
        self.assertEqual(self.sql.row(a)[4:6], (1, 10))
        self.assertFalse(self.queue.writing)

    def test_batchesAreBounded(self):
        """No write carries more than BATCH grants; the rest follow in the next."""
        a = self.character(1)
        first = self.queue.submit(ExpGrant(a, 1, "kill:0"))
        more = [self.queue.submit(ExpGrant(a, 1, f"kill:{i}")) for i in range(1, BATCH + 3)]
        self.sql.unhold()
        self.successResultOf(first)
        for d in more:
            self.successResultOf(d)
        self.assertEqual(self.watched.calls, ["_txn_grantExp", "_txn_grantMany", "_txn_grantMany"])
        self.assertEqual(self.queue.writes, 3)  # 1, then BATCH, then 2
        [(count,)] = self.sql.conn.execute("SELECT COUNT(*) FROM progression_ledger").fetchall()
        self.assertEqual(count, BATCH + 3)

    def test_failureReachesItsOwnGrant(self):
        """A grant that fails (an outage) fails only for whoever asked for it; the queue goes on."""
        a = self.character(1)
        self.sql.holding = False
        self.sql.down = True
        failed = self.queue.submit(ExpGrant(a, 5, "kill:1"))
        self.failureResultOf(failed, SQLUnavailable)
        self.sql.down = False
        self.assertEqual(self.successResultOf(self.queue.submit(ExpGrant(a, 5, "kill:1"))), (1, 5))
        self.assertFalse(self.queue.writing)

