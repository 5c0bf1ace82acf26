"""Return points on MariaDB and SQLite: saved once per character, replaced, and concurrent entries without deadlocks."""

from twisted.internet import reactor
from twisted.internet.defer import DeferredList, ensureDeferred
from twisted.trial.unittest import TestCase

from mmoshard.world.instances.returns import saveReturn
from mmoshard.world.test.dbfixture import makeCharacter, openStore


class _ReturnTests:
    dialect = None

    async def _setUp(self):
        self.sql = await openStore(self, reactor, self.dialect)
        self.cids = [await makeCharacter(self.sql, i, f"Hero{i}") for i in range(1, 21)]

    def setUp(self):
        return ensureDeferred(self._setUp())

    async def rows(self):
        return await self.sql.runQuery(
            "SELECT character_id, instance_id, zone, x FROM instance_returns ORDER BY character_id")

    async def test_savedThenReplaced(self):
        """A second entry replaces the character's return point: one row, the newest."""
        cid = self.cids[0]
        self.assertTrue(await saveReturn(self.sql, cid, 1, ("greenvale", (10.0, 0.0, 20.0))))
        self.assertTrue(await saveReturn(self.sql, cid, 2, ("ashfall", (30.0, 0.0, 40.0))))
        rows = [tuple(r) for r in await self.rows()]
        self.assertEqual(rows, [(cid, 2, "ashfall", 30.0)])

    async def test_concurrentEntriesAllSaved(self):
        """Twenty characters entering at once all get their return point (no deadlock on MariaDB)."""
        results = await DeferredList(
            [saveReturn(self.sql, cid, 7, ("greenvale", (float(i), 0.0, 1.0)))
             for i, cid in enumerate(self.cids)], consumeErrors=True)
        self.assertEqual([ok for ok, _ in results], [True] * len(self.cids), results)
        self.assertEqual(len(await self.rows()), len(self.cids))


class MariaDBReturnTests(_ReturnTests, TestCase):
    dialect = "mysql"


class SQLiteReturnTests(_ReturnTests, TestCase):
    dialect = "sqlite"
