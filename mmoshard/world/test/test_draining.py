"""Draining a world node on a Clock: its players handed to the zone's standby, enters redirected, the standby taking the zone over, and the [world] drain keys."""

from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from mmoshard.interfaces import IDraining
from mmoshard.world.config import makeConfig
from mmoshard.world.lease import leaseKey
from mmoshard.world.test.harness import WorldHarness, events


class DrainTests(TestCase):
    """Node A runs greenvale; node B runs ashfall and stands by for greenvale."""

    def setUp(self):
        self.a = WorldHarness(self, "world-a", zones=["greenvale"])
        self.b = self.a.peerOf("world-b", zones=["ashfall"], standby=["greenvale"])
        self.successResultOf(self.a.directory.beat())
        self.sql = self.a.sql

    def drainA(self):
        d = self.a.world.drain()
        self.a.advance(0.1, 10)
        self.successResultOf(d)

    def test_worldServiceIsDraining(self):
        """The world service provides IDraining, which the node runs before it stops."""
        verifyObject(IDraining, self.a.world)
        self.assertEqual(self.a.world.drainDeadline, 30.0)

    def test_standbyIsPublishedNotRun(self):
        """A standby zone is published as such and not run until taken over."""
        b = self.b
        self.assertNotIn("greenvale", b.world.zones)
        self.assertEqual((b.directory.info["zones"], b.directory.info["standby"]),
                         (["ashfall"], ["greenvale"]))

    def test_playersHandedToStandby(self):
        """
        Draining hands every player of the zone, where it stands, to the standby with a
        ticket; entering there with it takes the zone over and the character plays on.
        """
        cid = self.sql.makeCharacter(1, "Hero", "greenvale", 100.0, 0.0, 100.0)
        p = self.a.client(1)
        self.assertEqual(self.a.enter(p, cid)["zone"]["id"], "greenvale")
        self.drainA()
        [t] = events(p, "world.transfer")
        self.assertEqual((t["zone"], t["tcp"]), ("greenvale", "world-b.example:7000"))
        self.assertEqual(self.a.world.roster.byCharacter, {})
        self.assertEqual(self.a.directory.info["zones"], [])
        self.assertEqual(self.successResultOf(self.a.volatile.get(leaseKey(cid))),
                         b"xfer:" + t["ticket"].encode())
        q = self.b.client(1)
        reply = self.b.enter(q, cid, ticket=t["ticket"])
        self.assertEqual((reply["zone"]["id"], reply["x"], reply["z"]), ("greenvale", 100.0, 100.0))
        self.assertIn("greenvale", self.b.world.zones)
        self.assertEqual(self.b.directory.info["standby"], [])
        self.assertEqual(self.successResultOf(self.a.volatile.get(leaseKey(cid))), b"world-b")

    def test_zoneSavedInOneTransaction(self):
        """Draining saves every player of a zone, where it stands, in one transaction, not one each."""
        cids = [self.sql.makeCharacter(n, f"Hero{n}", "greenvale", 100.0 + n, 0.0, 100.0)
                for n in (1, 2, 3)]
        for n, cid in zip((1, 2, 3), cids):
            self.a.enter(self.a.client(n), cid)
        calls = []
        run = self.sql.runInteraction

        def recording(func, *args, **kwargs):
            calls.append((func.__name__, args))
            return run(func, *args, **kwargs)

        self.sql.runInteraction = recording
        self.drainA()
        saves = [args[0] for name, args in calls if name == "_txn_savePositions"]
        self.assertEqual([sorted((r[4], r[1]) for r in rows) for rows in saves],
                         [[(cid, 101.0 + i) for i, cid in enumerate(cids)]])

    def test_enterWhileDrainingIsRedirected(self):
        """A character entering a draining node is sent to its zone's standby, not entered."""
        self.drainA()
        cid = self.sql.makeCharacter(1, "Hero", "greenvale", 100.0, 0.0, 100.0)
        reply = self.a.enter(self.a.client(1), cid)
        self.assertEqual(reply["redirect"]["tcp"], "world-b.example:7000")
        self.assertEqual(self.a.world.roster.byCharacter, {})

    def test_standbyRedirectsWhileActiveLives(self):
        """The standby sends a character to the zone's live node rather than take the zone over."""
        cid = self.sql.makeCharacter(1, "Hero", "greenvale", 100.0, 0.0, 100.0)
        reply = self.b.enter(self.b.client(1), cid)
        self.assertEqual(reply["redirect"]["tcp"], "world-a.example:7000")
        self.assertNotIn("greenvale", self.b.world.zones)

    def test_zoneWithoutOtherNodeKeepsPlayers(self):
        """A zone nobody else hosts or stands by for keeps its players through the drain."""
        cid = self.sql.makeCharacter(1, "Hero", "ashfall", 40.0, 0.0, 256.0)
        p = self.b.client(1)
        self.b.enter(p, cid)
        d = self.b.world.drain()
        self.b.advance(0.1, 10)
        self.successResultOf(d)
        self.assertEqual(events(p, "world.transfer"), [])
        self.assertIn(cid, self.b.world.roster.byCharacter)


class DrainConfigTests(TestCase):
    def test_keysAndDefaults(self):
        """[world] standby, drain and drain_deadline are read, with handover and 30 s by default."""
        cfg = makeConfig(zones=["ashfall"], standby=["greenvale"])
        self.assertEqual((cfg.standby, cfg.drain, cfg.drain_deadline, cfg.hosted),
                         (("greenvale",), "handover", 30.0, ("ashfall",)))
        cfg = makeConfig(standby=["greenvale"], drain="finish", drain_deadline=120.0)
        self.assertNotIn("greenvale", cfg.hosted)
        self.assertEqual((cfg.drain, cfg.drain_deadline), ("finish", 120.0))

    def test_mistakesReported(self):
        """An unknown standby zone, one also hosted, and an unknown drain mode are all refused."""
        for bad, words in [({"standby": ["nowhere"]}, "unknown zone"),
                           ({"zones": ["greenvale"], "standby": ["greenvale"]}, "not both"),
                           ({"drain": "wait"}, "must be one of")]:
            with self.assertRaises(ValueError) as e:
                makeConfig(**bad)
            self.assertIn(words, str(e.exception))


class FinishTests(TestCase):
    """Node A runs greenvale and hosts the dungeon's copies, draining with drain = "finish"; B stands by."""

    def setUp(self):
        from mmoshard.world.instances.test.test_entry import DUNGEON, Client, FakeParties

        self.dungeon, self.Client = DUNGEON, Client
        parties = FakeParties()
        self.a = WorldHarness(self, "world-a", parties=parties, zones=["greenvale"],
                              instances=[DUNGEON], drain="finish", drain_deadline=20.0)
        self.b = self.a.peerOf("world-b", zones=["ashfall"], standby=["greenvale"])
        self.successResultOf(self.a.directory.beat())
        self.sql = self.a.sql

    def login(self, account):
        cid = self.sql.makeCharacter(account, f"Char{account}", "greenvale", 200.0, 0.0, 200.0)
        c = self.Client(self.a, account)
        self.assertEqual(c.request("world.enter", character_id=cid)["t"], "world.enter")
        return cid, c

    def test_instancesFinishFirst(self):
        """
        With drain = "finish" the open world is handed over at once, while the player in an
        instance plays on; when it comes out it is handed over too, and the drain ends.
        """
        outside, co = self.login(1)
        inside, ci = self.login(2)
        self.assertEqual(ci.request("world.instance.enter", template=self.dungeon)["t"],
                         "world.instance.enter")
        d = self.a.world.drain()
        self.a.advance(0.1, 30)
        self.assertEqual(len(co.events("world.transfer")), 1)
        self.assertNoResult(d)
        self.assertEqual(list(self.a.world.roster.byCharacter), [inside])
        self.assertEqual(ci.request("world.instance.leave")["zone"], "greenvale")
        self.a.advance(0.1, 10)
        self.successResultOf(d)
        [t] = ci.events("world.transfer")
        self.assertEqual((t["zone"], t["tcp"]), ("greenvale", "world-b.example:7000"))
        self.assertEqual(self.a.world.roster.byCharacter, {})

    def test_deadlineEndsTheWait(self):
        """A player who stays in its instance holds the drain no longer than drain_deadline."""
        inside, ci = self.login(2)
        ci.request("world.instance.enter", template=self.dungeon)
        d = self.a.world.drain()
        self.a.advance(1.0, 18)
        self.assertNoResult(d)
        self.a.advance(1.0, 2)
        self.successResultOf(d)
        self.assertIn(inside, self.a.world.roster.byCharacter)
