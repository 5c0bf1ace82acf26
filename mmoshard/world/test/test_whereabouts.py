"""The world keeps ILocator current: world.enter, zone moves, instance enter and leave, transfers between nodes, logout."""

from twisted.internet.defer import Deferred

from mmoshard.locator import Location
from mmoshard.world.instances.test.test_entry import DUNGEON, EntryTestCase, FakeParties
from mmoshard.world.test.harness import WorldHarness


class OneNodeTests(EntryTestCase):
    def test_enter_move_instance_leave(self):
        """A player is located with its world session in its zone, follows zone moves and an instance (template and id), and is forgotten at world.leave."""
        h = self.h
        cid = self.character(1)
        c = self.login(1, cid)
        sid = c.peer.welcome["session_id"]
        self.assertEqual(h.where(cid), Location(cid, (("world", "world-a", sid),), "world-a",
                                                "greenvale", None))
        player = h.world.roster.byCharacter[cid]
        moving = Deferred.fromCoroutine(
            h.world.transfers.moveTo(player, "ashfall", (40.0, 0.0, 256.0)))
        h.advance(0.1, 3)  # the batched save
        self.assertTrue(self.successResultOf(moving))
        self.assertEqual(h.where(cid).zone, "ashfall")
        reply = self.entered(c, template=DUNGEON)
        where = h.where(cid)
        self.assertEqual((where.zone, where.instance_id, where.node),
                         (DUNGEON, reply["instance_id"], "world-a"))
        c.request("world.instance.leave")
        self.assertEqual((h.where(cid).zone, h.where(cid).instance_id), ("ashfall", None))
        c.request("world.leave")
        self.assertIsNone(h.where(cid))

    def test_session_end_forgets(self):
        """A player whose session ends (logout without world.leave) is forgotten."""
        h = self.h
        cid = self.character(1)
        c = self.login(1, cid)
        self.assertIsNotNone(h.where(cid))
        c.peer.lose()
        h.advance(6.0)  # past the resume grace
        h.advance(0.1, 5)
        self.assertIsNone(h.where(cid))


class TwoNodeTests(EntryTestCase):
    def setUp(self):
        self.parties = FakeParties()
        self.a = self.h = WorldHarness(self, "world-a", parties=self.parties, zones=["greenvale"])
        self.b = self.a.peerOf("world-b", zones=["ashfall"])
        self.sql = self.a.sql
        for h in (self.a, self.b):
            self.successResultOf(h.directory.beat())

    def test_transfer_to_another_node(self):
        """A transfer to a zone on another node moves the player's location there; the old node's entry goes."""
        a, b = self.a, self.b
        cid = self.character(1)
        c = self.login(1, cid)
        player = a.world.roster.byCharacter[cid]
        moving = Deferred.fromCoroutine(a.world.transfers.moveTo(player, "ashfall",
                                                                  (40.0, 0.0, 256.0)))
        a.advance(0.1, 3)
        self.assertTrue(self.successResultOf(moving))
        [transfer] = c.events("world.transfer")
        self.assertIsNone(a.where(cid))
        there = self.login(1, cid, h=b, ticket=transfer["ticket"])
        where = b.where(cid)
        self.assertEqual((where.node, where.zone, where.session("world")),
                         ("world-b", "ashfall", ("world-b", there.peer.welcome["session_id"])))
