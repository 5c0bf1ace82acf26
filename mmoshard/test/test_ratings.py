"""Glicko-2 ratings, and IMatchResults on SQLite and MariaDB: each match applied exactly once, on every node."""

import os
import tempfile

from twisted.application.service import Service
from twisted.internet import reactor
from twisted.internet.defer import DeferredList, ensureDeferred
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from mmoshard.config import parseConfig
from mmoshard.interfaces import IMatchResults
from mmoshard.node import buildNode
from mmoshard.ratings import (
    INITIAL, PERIOD, Rating, SqlMatchResults, checkReport, idle, rateMatch, update,
)
from mmoshard.role import Role
from mmoshard.store.sql import SQLStore, migrate
from mmoshard.testing import requireMySQL


class Glicko2Tests(TestCase):
    """The rating arithmetic."""

    def test_glickmansExample(self):
        """The worked example of Glickman's Glicko-2 paper: 1500/200 beats 1400/30, loses to 1550/100 and 1700/300."""
        new = update(Rating(1500.0, 200.0, 0.06), [(1400.0, 30.0, 1.0), (1550.0, 100.0, 0.0), (1700.0, 300.0, 0.0)])
        # The paper rounds its intermediate values: its 1464.06 is 1464.05 unrounded.
        self.assertLess(abs(new.rating - 1464.06), 0.015)
        self.assertLess(abs(new.rd - 151.52), 0.015)
        self.assertLess(abs(new.volatility - 0.05999), 0.00001)
        self.assertEqual(new.games, 1)

    def test_winnersUpLosersDown(self):
        """Between equal newcomers the winners gain what the losers lose, and everyone's deviation shrinks."""
        [[a, b], [c, d]] = rateMatch([[INITIAL, INITIAL], [INITIAL, INITIAL]], 0)
        self.assertGreater(a.rating, 1500)
        self.assertEqual(a, b)
        self.assertEqual(c, d)
        self.assertAlmostEqual(a.rating - 1500, 1500 - c.rating, places=6)
        self.assertLess(a.rd, INITIAL.rd)
        self.assertEqual((a.games, c.games), (1, 1))

    def test_upsetCountsMore(self):
        """Beating a stronger team gains more than beating a weaker one."""
        strong, weak = Rating(1700.0, 80.0), Rating(1300.0, 80.0)
        me = Rating(1500.0, 80.0)
        [[upset], _] = rateMatch([[me], [strong]], 0)
        [[expected], _] = rateMatch([[me], [weak]], 0)
        self.assertGreater(upset.rating - me.rating, expected.rating - me.rating)

    def test_draw(self):
        """A draw between equals changes no rating; a draw against a stronger team raises the weaker."""
        [[a], [b]] = rateMatch([[INITIAL], [INITIAL]], None)
        self.assertAlmostEqual(a.rating, 1500.0, places=6)
        [[low], [high]] = rateMatch([[Rating(1400.0, 60.0)], [Rating(1600.0, 60.0)]], None)
        self.assertGreater(low.rating, 1400.0)
        self.assertLess(high.rating, 1600.0)

    def test_idleWidensDeviation(self):
        """Whole days without a match widen the deviation, up to a newcomer's; less than a day or a newcomer changes nothing."""
        r = Rating(1600.0, 50.0, 0.06, games=30)
        self.assertEqual(idle(r, PERIOD - 1), r)
        self.assertGreater(idle(r, 10 * PERIOD).rd, idle(r, PERIOD).rd)
        self.assertGreater(idle(r, PERIOD).rd, 50.0)
        self.assertEqual(idle(r, 1e12).rd, INITIAL.rd)
        self.assertEqual(idle(r, 10 * PERIOD).rating, 1600.0)
        self.assertEqual(idle(INITIAL, 1e9), INITIAL)

    def test_badReports(self):
        """A malformed report is refused, naming what is wrong."""
        for args, fragment in [
            (("", "q", [[1], [2]], 0), "match id"),
            (("m", "q", [[1]], 0), "two teams"),
            (("m", "q", [[1], []], 0), "two teams"),
            (("m", "q", [[1], [1]], 0), "twice"),
            (("m", "q", [[1], ["2"]], 0), "ints"),
            (("m", "q", [[1], [2]], 2), "winner"),
            (("m", "q", [[1], [2]], True), "winner"),
            (("m", "", [[1], [2]], None), "queue"),
        ]:
            with self.assertRaises(ValueError) as e:
                checkReport(*args)
            self.assertIn(fragment, str(e.exception))
        self.assertEqual(checkReport("m", "q", ((1, 2), (3, 4)), None), [[1, 2], [3, 4]])


def insertCharacters(cursor, count):
    cursor.execute("INSERT INTO accounts (id, username, username_lower, password_hash, created_at) "
                   "VALUES (1, 'acct', 'acct', 'x', 0)")
    ids = []
    for i in range(count):
        cursor.execute("INSERT INTO characters (account_id, name, name_lower, class, zone, x, y, z, created_at) "
                       "VALUES (1, ?, ?, 'warrior', '', 0, 0, 0, 0)", (f"Hero{i}", f"hero{i}"))
        ids.append(cursor.lastrowid)
    return ids


class _SqlMatchResultsTests:
    """IMatchResults on one SQL dialect."""

    dialect = None

    async def _setUp(self):
        if self.dialect == "mysql":
            url, dropper = requireMySQL()
            self.addCleanup(dropper)
        else:
            url = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "ratings.sqlite3")
        self.sql = SQLStore(reactor, url, 1, 4)
        self.sql.open()
        self.addCleanup(self.sql.close)
        await migrate(self.sql)
        self.ids = await self.sql.runInteraction(insertCharacters, 8)
        self.clock = Clock()
        self.clock.advance(1_000_000)
        self.results = SqlMatchResults(self.sql, self.clock)

    def setUp(self):
        return ensureDeferred(self._setUp())

    async def rows(self):
        return [tuple(r) for r in await self.sql.runQuery(
            "SELECT character_id, queue, games FROM mm_ratings ORDER BY character_id, queue")]

    def test_provides(self):
        """SqlMatchResults provides IMatchResults."""
        verifyObject(IMatchResults, self.results)

    async def test_unratedAreNewcomers(self):
        """A character never rated in a queue has the initial rating there."""
        got = await self.results.ratings("arena2v2", self.ids[:2])
        self.assertEqual(got, {self.ids[0]: INITIAL, self.ids[1]: INITIAL})

    async def test_reportApplies(self):
        """A report raises the winners and lowers the losers of that queue only, and answers the new ratings."""
        a, b, c, d = self.ids[:4]
        answer = await self.results.report("arena2v2/1", "arena2v2", [[a, b], [c, d]], 0)
        self.assertEqual(set(answer), {a, b, c, d})
        self.assertGreater(answer[a], 1500.0)
        self.assertLess(answer[c], 1500.0)
        stored = await self.results.ratings("arena2v2", [a, c])
        self.assertEqual((stored[a].rating, stored[a].games), (answer[a], 1))
        self.assertEqual(stored[c].rating, answer[c])
        self.assertEqual(await self.results.ratings("arena3v3", [a]), {a: INITIAL})
        [row] = await self.sql.runQuery("SELECT queue, winner, reported_at FROM mm_results WHERE match_id = ?",
                                        ("arena2v2/1",))
        self.assertEqual(tuple(row), ("arena2v2", 0, 1_000_000.0))

    async def test_secondReportChangesNothing(self):
        """Reporting a match again, even with another winner, changes nothing and answers the first result."""
        a, b, c, d = self.ids[:4]
        first = await self.results.report("arena2v2/7", "arena2v2", [[a, b], [c, d]], 0)
        again = await self.results.report("arena2v2/7", "arena2v2", [[a, b], [c, d]], 1)
        self.assertEqual(again, first)
        self.assertEqual(await self.rows(), [(cid, "arena2v2", 1) for cid in (a, b, c, d)])
        stored = await self.results.ratings("arena2v2", [a])
        self.assertEqual(stored[a].rating, first[a])

    async def test_concurrentReportsOnce(self):
        """Five reports of one match at once apply it once; all answer the same ratings."""
        a, b, c, d = self.ids[:4]
        answers = await DeferredList(
            [self.results.report("arena2v2/9", "arena2v2", [[a, b], [c, d]], i % 2) for i in range(5)],
            consumeErrors=True)
        self.assertTrue(all(ok for ok, _ in answers), answers)
        self.assertEqual(len({tuple(sorted(r.items())) for _, r in answers}), 1)
        self.assertEqual(await self.rows(), [(cid, "arena2v2", 1) for cid in (a, b, c, d)])

    async def test_concurrentMatchesNoLostUpdate(self):
        """Two different matches of one character reported at once both count: no update is lost."""
        a, b, c, d, e, f = self.ids[:6]
        answers = await DeferredList([
            self.results.report("arena2v2/20", "arena2v2", [[a, b], [c, d]], 0),
            self.results.report("arena2v2/21", "arena2v2", [[a, e], [f, d]], 0),
        ], consumeErrors=True)
        self.assertTrue(all(ok for ok, _ in answers), answers)
        games = {cid: g for cid, _, g in await self.rows()}
        self.assertEqual((games[a], games[d], games[b], games[e]), (2, 2, 1, 1))

    async def test_deletedCharacterSkipped(self):
        """A character deleted before the report is not rated; the others are."""
        a, b, c = self.ids[:3]
        await self.sql.runQuery("DELETE FROM characters WHERE id = ?", (c,))
        answer = await self.results.report("arena1v1x/1", "arena", [[a, b], [c, 999999]], 1)
        self.assertEqual(set(answer), {a, b})
        self.assertLess(answer[a], 1500.0)

    async def test_idleBetweenMatches(self):
        """Days without a match widen the deviation the next match starts from."""
        a, b = self.ids[:2]
        await self.results.report("duel/1", "duel", [[a], [b]], 0)
        after = (await self.results.ratings("duel", [a]))[a]
        self.clock.advance(5 * PERIOD)
        later = (await self.results.ratings("duel", [a]))[a]
        self.assertEqual(later.rating, after.rating)
        self.assertGreater(later.rd, after.rd)

    async def test_badReportWritesNothing(self):
        """A malformed report fails with ValueError and writes nothing."""
        with self.assertRaises(ValueError):
            await self.results.report("m", "arena2v2", [[self.ids[0]], [self.ids[0]]], 0)
        self.assertEqual(await self.rows(), [])
        self.assertEqual(list(await self.sql.runQuery("SELECT match_id FROM mm_results")), [])


class SQLiteMatchResultsTests(_SqlMatchResultsTests, TestCase):
    dialect = "sqlite"


class MariaDBMatchResultsTests(_SqlMatchResultsTests, TestCase):
    dialect = "mysql"


class NodeWiringTests(TestCase):
    """The node core provides IMatchResults, whatever roles the node runs."""

    def test_everyNodeProvides(self):
        """A node whose only role requires IMatchResults builds, and is given the SQL provider."""
        seen = []
        needer = Role(name="needer", factory=lambda ctx: seen.append(ctx.require(IMatchResults)) or Service(),
                      requires=(IMatchResults,))
        config = parseConfig({"sql": {"url": "sqlite:///" + self.mktemp() + ".db"},
                              "node": {"id": "n1", "var_dir": self.mktemp()},
                              "listen": {"http": "", "tcp": "", "websocket": "", "admin": ""}},
                             [needer], env={})
        root = buildNode(config, Clock(), [needer])
        provider = root.node.lookup(IMatchResults)
        self.assertIsInstance(provider, SqlMatchResults)
        verifyObject(IMatchResults, provider)
        self.assertEqual(seen, [provider])

