"""IProgression on MariaDB and SQLite: level-ups, items, and retried calls that never duplicate."""

from twisted.internet import reactor
from twisted.internet.defer import DeferredList, ensureDeferred
from twisted.trial.unittest import TestCase

from mmoshard.world.progression import (
    BadSlot, InventoryFull, NoSuchItem, Progression, expForLevel, loadCharacter, savePositions,
)
from mmoshard.world.test.dbfixture import makeCharacter, makeCharacters, openStore


class _ProgressionTests:
    dialect = None

    async def _setUp(self):
        self.sql = await openStore(self, reactor, self.dialect)
        self.cid = await makeCharacter(self.sql, 1, "Hero")
        self.changes = []
        self.prog = Progression(self.sql, reactor, lambda c, r: self.changes.append((c, r)))

    def setUp(self):
        return ensureDeferred(self._setUp())

    async def test_grantExpLevelsUp(self):
        """Granting enough exp levels the character up and keeps the remainder, in the database too."""
        level, exp = await self.prog.grantExp(self.cid, expForLevel(1) + expForLevel(2) + 5, "q1")
        self.assertEqual((level, exp), (3, 5))
        row = await loadCharacter(self.sql, self.cid)
        self.assertEqual((row.level, row.exp), (3, 5))

    async def test_retriedGrantNeverDuplicates(self):
        """A grant retried with the same idempotency key returns the first result and changes nothing."""
        first = await self.prog.grantExp(self.cid, 50, "kill-42")
        again = await self.prog.grantExp(self.cid, 50, "kill-42")
        self.assertEqual(first, (1, 50))
        self.assertEqual(again, (1, 50))
        row = await loadCharacter(self.sql, self.cid)
        self.assertEqual(row.exp, 50)

    async def test_concurrentRetriesApplyOnce(self):
        """Concurrent grants with one idempotency key apply once."""
        results = await DeferredList(
            [self.prog.grantExp(self.cid, 30, "same") for _ in range(5)], consumeErrors=True
        )
        self.assertTrue(all(ok for ok, _ in results), results)
        row = await loadCharacter(self.sql, self.cid)
        self.assertEqual(row.exp, 30)

    async def test_items(self):
        """
        Items stack, are removed and moved between slots; retried keys change nothing
        and live changes are reported.
        """
        slot = await self.prog.addItem(self.cid, "potion", 3, "loot-1")
        self.assertEqual(slot, 0)
        self.assertEqual(await self.prog.addItem(self.cid, "potion", 3, "loot-1"), 0)
        self.assertEqual(await self.prog.addItem(self.cid, "potion", 2, "loot-2"), 0)
        self.assertEqual(await self.prog.addItem(self.cid, "sword", 1, "loot-3"), 1)
        self.assertEqual(await self.prog.inventory(self.cid), {0: ("potion", 5), 1: ("sword", 1)})
        self.assertEqual(await self.prog.removeItem(self.cid, "potion", 4, "use-1"), 1)
        self.assertEqual(await self.prog.removeItem(self.cid, "potion", 4, "use-1"), 1)
        with self.assertRaises(ValueError):
            await self.prog.removeItem(self.cid, "potion", 2, "use-2")
        await self.prog.moveItem(self.cid, 0, 1, "mv-1")
        await self.prog.moveItem(self.cid, 0, 1, "mv-1")  # retried: not swapped back
        self.assertEqual(await self.prog.inventory(self.cid), {0: ("sword", 1), 1: ("potion", 1)})
        await self.prog.moveItem(self.cid, 0, 7, "mv-2")
        self.assertEqual(await self.prog.inventory(self.cid), {1: ("potion", 1), 7: ("sword", 1)})
        self.assertIn((self.cid, 1), self.changes)

    async def test_useItemTakesOneOnceUnderARetriedKey(self):
        """
        useItem takes one of the item from the slot and says it applied; the
        same key again takes nothing and says it did not (the effect must not
        be applied twice); a new key takes the last one and empties the slot.
        """
        await self.prog.addItem(self.cid, "potion", 2, "loot-1")
        self.assertEqual(await self.prog.useItem(self.cid, 0, "potion", "req:use:a"), (True, 1))
        self.assertEqual(await self.prog.useItem(self.cid, 0, "potion", "req:use:a"), (False, 1))
        self.assertEqual(await self.prog.inventory(self.cid), {0: ("potion", 1)})
        self.assertEqual(await self.prog.useItem(self.cid, 0, "potion", "req:use:b"), (True, 0))
        self.assertEqual(await self.prog.inventory(self.cid), {})
        with self.assertRaises(NoSuchItem):
            await self.prog.useItem(self.cid, 0, "potion", "req:use:c")

    async def test_useItemRefusesTheWrongItemOrSlot(self):
        """useItem of an item the slot does not hold, or of a slot out of range, changes nothing."""
        await self.prog.addItem(self.cid, "sword", 1, "loot-1")
        with self.assertRaises(NoSuchItem):
            await self.prog.useItem(self.cid, 0, "potion", "k1")
        with self.assertRaises(BadSlot):
            await self.prog.useItem(self.cid, 64, "sword", "k2")
        self.assertEqual(await self.prog.inventory(self.cid), {0: ("sword", 1)})

    async def test_destroyItem(self):
        """
        destroyItem takes some or all of a slot's stack, once per key, and
        refuses more than the slot holds, an empty slot and a bad slot.
        """
        await self.prog.addItem(self.cid, "ore", 5, "loot-1")
        self.assertEqual(await self.prog.destroyItem(self.cid, 0, 2, "d1"), ("ore", 3))
        self.assertEqual(await self.prog.destroyItem(self.cid, 0, 2, "d1"), ("ore", 3))
        with self.assertRaises(NoSuchItem):
            await self.prog.destroyItem(self.cid, 0, 4, "d2")
        self.assertEqual(await self.prog.destroyItem(self.cid, 0, None, "d3"), ("ore", 0))
        self.assertEqual(await self.prog.inventory(self.cid), {})
        with self.assertRaises(NoSuchItem):
            await self.prog.destroyItem(self.cid, 0, None, "d4")
        with self.assertRaises(BadSlot):
            await self.prog.destroyItem(self.cid, -1, None, "d5")
        self.assertRaises(ValueError, self.prog.destroyItem, self.cid, 0, 0, "d6")

    async def test_addItemKeepsStacksAtTheirSize(self):
        """
        With a stack size, addItem tops up the item's stack and spills into
        empty slots; with no room for all of it, it adds none.
        """
        await self.prog.addItem(self.cid, "potion", 15, "l1", stack=20)
        self.assertEqual(await self.prog.addItem(self.cid, "potion", 30, "l2", stack=20), 0)
        self.assertEqual(await self.prog.inventory(self.cid),
                         {0: ("potion", 20), 1: ("potion", 20), 2: ("potion", 5)})
        with self.assertRaises(InventoryFull):
            await self.prog.addItem(self.cid, "potion", 20 * 62, "l3", stack=20)
        with self.assertRaises(InventoryFull):
            await self.prog.addItem(self.cid, "potion", 16, "l4", stack=20, slot=2)
        self.assertEqual(len(await self.prog.inventory(self.cid)), 3)

    async def test_failedChangeLeavesNoLedgerRow(self):
        """A refused change records no ledger row, so its key can be used again later."""
        with self.assertRaises(ValueError):
            await self.prog.removeItem(self.cid, "gem", 1, "k")
        await self.prog.addItem(self.cid, "gem", 1, "g")
        # The key of the failed call is still free: retrying it now works.
        self.assertEqual(await self.prog.removeItem(self.cid, "gem", 1, "k"), 0)

    async def test_badArguments(self):
        """Negative amounts, empty keys and zero counts are refused with ValueError."""
        for call in (lambda: self.prog.grantExp(self.cid, -1, "k"),
                     lambda: self.prog.grantExp(self.cid, 1, ""),
                     lambda: self.prog.addItem(self.cid, "x", 0, "k")):
            self.assertRaises(ValueError, call)

    async def test_batchedPositionSave(self):
        """savePositions writes several characters' positions in one call."""
        other = await makeCharacter(self.sql, 2, "Other")
        n = await savePositions(self.sql, [("vale", 1.5, 0.0, 2.5, self.cid),
                                           ("vale", 3.0, 0.0, 4.0, other)])
        self.assertEqual(n, 2)
        row = await loadCharacter(self.sql, other)
        self.assertEqual((row.zone, row.x, row.z), ("vale", 3.0, 4.0))

    async def test_manyPositionsSavedInChunks(self):
        """More rows than one statement carries: every position lands, exactly."""
        ids = [self.cid] + await makeCharacters(self.sql, 2, [f"Many{i}" for i in range(1, 1203)])
        rows = [("vale", i + 0.25, 0.0, 1e6 - i * 0.5, cid) for i, cid in enumerate(ids)]
        self.assertEqual(await savePositions(self.sql, rows), len(ids))
        for i in (0, 499, 500, 1001, len(ids) - 1):
            row = await loadCharacter(self.sql, ids[i])
            self.assertEqual((row.zone, row.x, row.y, row.z), ("vale", i + 0.25, 0.0, 1e6 - i * 0.5))


class MariaDBProgressionTests(_ProgressionTests, TestCase):
    dialect = "mysql"


class SQLiteProgressionTests(_ProgressionTests, TestCase):
    dialect = "sqlite"
