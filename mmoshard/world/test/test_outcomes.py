"""Honest outcomes on a Clock: a failed save never leaves a ghost or answers ok, and a lost lease nobody holds is taken back."""

from twisted.trial.unittest import TestCase

from mmoshard.world.lease import leaseKey
from mmoshard.world.test.harness import WorldHarness, events


class OutcomeMixin:
    """Two nodes (greenvale on A, ashfall on B) sharing a store and a database; a character at A's portal."""

    def setUp(self):
        self.a = WorldHarness(self, "world-a", zones=["greenvale"])
        self.b = self.a.peerOf("world-b", zones=["ashfall"])
        self.successResultOf(self.a.directory.beat())
        self.sql = self.a.sql
        self.cid = self.sql.makeCharacter(1, "Hero", "greenvale", 1000.0, 0.0, 498.0)

    def lease(self):
        return self.successResultOf(self.a.volatile.get(leaseKey(self.cid)))

    def enterA(self):
        p = self.a.client(1)
        self.a.enter(p, self.cid)
        return p

    def intoPortal(self, p):
        p.send({"t": "world.move", "x": 1001.0, "z": 500.5, "k": 0})
        self.a.advance(0.1, 2)

    def bye(self, p):
        p.send({"t": "bye", "id": 99})
        self.a.advance(0.1)

    def assertOutAndReleased(self):
        """The character is no longer live on node A and its lease is released."""
        self.assertEqual(self.a.world.roster.byCharacter, {})
        self.assertIsNone(self.lease())


class GhostTests(OutcomeMixin, TestCase):
    def test_logoutDuringFailedTransferSaveReleases(self):
        """
        A session that ends while its transfer save hangs, the save then failing: the
        character is not put back, its lease is released, another node can take it.
        """
        p = self.enterA()
        self.sql.holding = True
        self.intoPortal(p)
        self.assertEqual(len(self.sql.held), 1)  # the transfer save, hanging
        self.bye(p)
        self.sql.down = True
        self.sql.unhold()
        self.a.advance(0.1, 3)
        self.assertOutAndReleased()
        self.assertEqual(self.a.world.leases.leases.held, set())
        # Nothing was saved: the row is the last save's, in greenvale.
        self.sql.down = False
        self.assertEqual(self.sql.row(self.cid)[:4], ("greenvale", 1000.0, 0.0, 498.0))
        c = self.b.peerOf("world-c", zones=["greenvale"])
        reply = c.enter(c.client(1), self.cid)
        self.assertEqual((reply["zone"]["id"], reply["x"]), ("greenvale", 1000.0))
        self.flushLoggedErrors()

    def test_failedTransferSaveKeepsALiveSession(self):
        """The same failed save with the session still open puts the player back, live and leased."""
        p = self.enterA()
        self.sql.holding = True
        self.intoPortal(p)
        self.sql.down = True
        self.sql.unhold()
        self.a.advance(0.1, 3)
        self.assertEqual(len(events(p, "world.transfer_failed")), 1)
        self.assertEqual(self.a.world.roster.byCharacter[self.cid].state, "live")
        self.assertEqual(self.lease(), b"world-a")
        self.flushLoggedErrors()

    def test_enteredAgainDuringTransferSaveKeepsTheLease(self):
        """
        A new session entering the character here while its transfer save runs: the
        transfer is dropped when the save ends, the lease stays this node's, and the
        new player's own save writes where it stands.
        """
        p = self.enterA()
        self.sql.holding = True
        self.intoPortal(p)
        self.sql.holding = False  # the transfer save still hangs; what follows runs
        again = self.a.client(1)
        self.assertEqual(self.a.enter(again, self.cid)["zone"]["id"], "greenvale")
        self.sql.unhold()  # the transfer save commits
        self.a.advance(0.1, 3)
        self.assertEqual(events(again, "world.transfer"), [])
        self.assertEqual(self.lease(), b"world-a")
        self.a.advance(1.0, 6)  # refreshes: not kicked
        self.assertEqual(self.a.world.roster.byCharacter[self.cid].session.sessionId,
                         again.welcome["session_id"])
        self.assertEqual(self.a.request(again, "world.leave")["ok"], True)
        self.assertEqual(self.sql.row(self.cid)[:2], ("greenvale", 1000.0))

    def test_logoutWithFailedSaveReleases(self):
        """A logout whose save fails still takes the character out and releases its lease."""
        p = self.enterA()
        self.sql.down = True
        self.bye(p)
        self.a.advance(0.1, 2)
        self.assertOutAndReleased()
        self.flushLoggedErrors()


class LeaveTests(OutcomeMixin, TestCase):
    def test_failedLeaveSaveIsAnError(self):
        """
        world.leave whose save fails answers world.save_failed with retry_after; the
        character stays live, leased and saved where it was, and a retry leaves.
        """
        p = self.enterA()
        p.send({"t": "world.move", "x": 1001.0, "z": 497.0, "k": 0})
        self.a.advance(0.1, 2)
        self.sql.down = True
        reply = self.a.request(p, "world.leave")
        self.assertEqual((reply["t"], reply["code"], reply["retry_after"]),
                         ("error", "world.save_failed", 5.0))
        player = self.a.world.roster.byCharacter[self.cid]
        self.assertEqual((player.state, player.entity.x), ("live", 1001.0))
        self.assertIn(self.cid, self.a.world.zones["greenvale"].entities)
        self.a.advance(1.0, 5)  # lease refreshes go on
        self.assertEqual(self.lease(), b"world-a")
        self.sql.down = False
        self.assertEqual(self.a.request(p, "world.leave")["ok"], True)
        self.assertEqual(self.sql.row(self.cid)[:4], ("greenvale", 1001.0, 0.0, 497.0))
        self.assertOutAndReleased()
        self.flushLoggedErrors()

    def test_movesIgnoredWhileLeaving(self):
        """Between world.leave and its save's outcome the character stands still."""
        p = self.enterA()
        self.sql.holding = True
        p.send({"t": "world.leave", "id": 7})
        self.a.advance(0.1)
        p.send({"t": "world.move", "x": 1001.0, "z": 497.0, "k": 0})
        self.a.advance(0.1, 2)
        self.assertEqual(self.a.world.roster.byCharacter[self.cid].entity.x, 1000.0)
        self.sql.unhold()
        self.a.advance(0.1)
        [reply] = [m for m in p.received() if m.get("id") == 7]
        self.assertEqual(reply["ok"], True)
        self.assertEqual(self.sql.row(self.cid)[1], 1000.0)

    def test_sessionEndDuringFailingLeave(self):
        """A session ending while its world.leave save hangs and fails: out, and the lease released."""
        p = self.enterA()
        self.sql.holding = True
        p.send({"t": "world.leave", "id": 7})
        self.a.advance(0.1)
        self.bye(p)
        self.sql.down = True
        self.sql.unhold()
        self.a.advance(0.1, 3)
        self.assertOutAndReleased()
        self.flushLoggedErrors()


class LeaseRestartTests(OutcomeMixin, TestCase):
    def test_leaseLostByTheStoreIsTakenBack(self):
        """
        A lease the store lost (a Redis restart) while this node refreshed it is taken
        back at the next refresh: the player is not kicked.
        """
        p = self.enterA()
        self.successResultOf(self.a.volatile.delete(leaseKey(self.cid)))
        self.a.advance(1.0, 6)
        self.assertEqual(events(p, "world.kicked"), [])
        self.assertEqual(self.lease(), b"world-a")
        self.assertIn(self.cid, self.a.world.roster.byCharacter)

    def test_leaseTakenMeanwhileKicks(self):
        """A lease lost and taken by another node meanwhile kicks the player here."""
        p = self.enterA()
        self.successResultOf(self.a.volatile.set(leaseKey(self.cid), "world-c", ttl=15.0))
        self.a.advance(1.0, 6)
        self.assertEqual([e["reason"] for e in events(p, "world.kicked")], ["lease lost"])
        self.assertEqual(self.a.world.roster.byCharacter, {})
