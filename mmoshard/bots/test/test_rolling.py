"""Tests of the rolling-restart run's judgement: the SQL check for grants counted twice, and the verdict against the targets."""

import os

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from mmoshard.bots.rolling import TARGETS, verdict
from mmoshard.bots.rollinghunt import checkGrants
from mmoshard.store.sql import SQLStore, migrate
from mmoshard.world.grants import ExpGrant, _txn_grantMany
from mmoshard.world.test.dbfixture import insertCharacter


class GrantCheckTests(TestCase):
    """Two characters granted exp for kills, some in one batch (their ledger rows share a time)."""

    async def setUp(self):
        self.sql = SQLStore(reactor, "sqlite:///" + os.path.abspath(self.mktemp()) + ".sqlite3")
        self.sql.open()
        self.addCleanup(self.sql.close)
        await migrate(self.sql)
        self.one = await self.sql.runInteraction(insertCharacter, 1, "One", "field", 0, 0, 0)
        self.two = await self.sql.runInteraction(insertCharacter, 2, "Two", "field", 0, 0, 0)
        await self.sql.runInteraction(_txn_grantMany, [
            ExpGrant(self.one, 40, "kill:a:b:1"), ExpGrant(self.one, 40, "kill:a:b:2"),
            ExpGrant(self.two, 40, "kill:a:b:1")], 100.0)
        await self.sql.runInteraction(_txn_grantMany, [ExpGrant(self.one, 40, "kill:a:b:3")], 101.0)

    async def test_exactlyOnce(self):
        """Grants written once each, several to a character in one batch, count nothing twice."""
        self.assertEqual(await checkGrants(self.sql),
                         {"exp_grants": 4, "loot_grants": 0, "granted_twice": 0, "exp_mismatch": 0})

    async def test_expAppliedAgain(self):
        """Exp a character got again without its ledger row is counted, as is exp a stale save took away."""
        def tamper(cursor):
            cursor.execute("UPDATE characters SET exp = exp + 40 WHERE id = ?", (self.one,))
            cursor.execute("UPDATE characters SET exp = 0 WHERE id = ?", (self.two,))

        await self.sql.runInteraction(tamper)
        self.assertEqual((await checkGrants(self.sql))["exp_mismatch"], 2)


class VerdictTests(TestCase):
    def test_targets(self):
        """Every target met: no complaint; a session ended or a pause over 2 s: each named with its target."""
        figures = {name: 0 for name in TARGETS}
        self.assertEqual(verdict(figures), [])
        figures.update(sessions_ended=1, pause_max_s=2.5)
        self.assertEqual(verdict(figures), ["sessions_ended=1 (target 0)",
                                            "pause_max_s=2.5 (target <=2.0)"])
        self.assertEqual(verdict({}), [f"{name}=None (target {'<=' if name == 'pause_max_s' else ''}"
                                       f"{target})" for name, target in TARGETS.items()])
