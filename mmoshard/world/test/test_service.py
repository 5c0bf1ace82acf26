"""The world role in-process: enter/move/leave over the session protocol, leases, saves, chat hook, transfers."""

from prometheus_client import generate_latest
from twisted.trial.unittest import TestCase

from mmoshard.world.lease import leaseKey
from mmoshard.world.test.harness import FakeChannels, WorldHarness, events
from mmoshard.world.test.helpers import moves, requireNative


class EnterTests(TestCase):
    def setUp(self):
        self.channels = FakeChannels()
        self.h = WorldHarness(self, channels=self.channels)
        self.sql = self.h.sql
        self.hero = self.sql.makeCharacter(1, "Hero", "greenvale", 100.0, 0.0, 100.0)
        self.other = self.sql.makeCharacter(2, "Other", "greenvale", 120.0, 0.0, 100.0)

    def lease(self, cid):
        return self.successResultOf(self.h.volatile.get(leaseKey(cid)))

    def test_enterSpawnsAtSavedPosition(self):
        """
        Entering spawns the character at its saved position, takes its lease, joins zone
        chat, and entering again answers the same.
        """
        p = self.h.client(1)
        reply = self.h.enter(p, self.hero)
        self.assertEqual((reply["zone"]["id"], reply["x"], reply["z"]), ("greenvale", 100.0, 100.0))
        self.assertEqual(self.lease(self.hero), b"world-a")
        self.assertEqual(self.channels.calls, [("join", self.hero, "greenvale")])
        self.assertEqual(self.h.enter(p, self.hero)["x"], 100.0)  # idempotent

    def test_enterDescribesTheZoneMap(self):
        """
        The zone of the world.enter reply has what a client draws and moves by: its size,
        blocked terrain and tile, portals (to zones and into instances), graveyard and pvp.
        """
        zone = self.h.enter(self.h.client(1), self.hero)["zone"]
        self.assertEqual((zone["size"], zone["tile"], zone["pvp"]), ([1024.0, 1024.0], 4.0, False))
        self.assertEqual(zone["blocked"], [[300.0, 300.0, 340.0, 320.0], [600.0, 100.0, 608.0, 400.0]])
        self.assertEqual(zone["graveyard"], [150.0, 40.0])
        self.assertIn({"kind": "zone", "rect": [1000.0, 500.0, 1024.0, 524.0], "to": "ashfall"},
                      zone["portals"])
        self.assertIn({"kind": "instance", "rect": [296.0, 56.0, 304.0, 64.0], "to": "deadmines",
                       "name": "The Dead Mines"}, zone["portals"])

    def test_unplacedCharacterAtStartZone(self):
        """A character never placed enters at the start zone's first spawn point."""
        cid = self.sql.makeCharacter(3, "New")
        reply = self.h.enter(self.h.client(3), cid)
        self.assertEqual((reply["zone"]["id"], reply["x"], reply["z"]), ("greenvale", 128.0, 64.0))

    def test_invalidSavedPositionGoesToSpawn(self):
        """A character saved on blocked terrain enters at the zone's first spawn point."""
        cid = self.sql.makeCharacter(3, "Walled", "greenvale", 320.0, 0.0, 310.0)  # in the mill
        reply = self.h.enter(self.h.client(3), cid)
        self.assertEqual((reply["x"], reply["z"]), (128.0, 64.0))

    def test_otherAccountsCharacterRefused(self):
        """
        Another account's character or an unknown one is refused as no such character,
        and no lease is taken.
        """
        reply = self.h.enter(self.h.client(2), self.hero)
        self.assertEqual((reply["t"], reply["code"]), ("error", "world.no_such_character"))
        reply = self.h.enter(self.h.client(2), 999)
        self.assertEqual(reply["code"], "world.no_such_character")
        self.assertIsNone(self.lease(self.hero))

    def test_badRequests(self):
        """
        A malformed character_id is a bad request; leaving without entering is refused
        as not in the world.
        """
        p = self.h.client(1)
        for bad in ("1", None, -1, 2 ** 40):
            self.assertEqual(self.h.enter(p, bad)["code"], "protocol.bad_request")
        self.assertEqual(self.h.request(p, "world.leave")["code"], "world.not_in_world")

    def test_storageDownRefusesEnterCleanly(self):
        """
        With the database down, enter is refused as unavailable with a retry hint and
        leaves nothing entering.
        """
        self.sql.down = True
        reply = self.h.enter(self.h.client(1), self.hero)
        self.assertEqual((reply["code"], reply["retry_after"]), ("server.unavailable", 5.0))
        self.assertEqual(self.h.world.roster.entering, set())

    def test_playersSeeEachOtherAndMoves(self):
        """Two players see each other enter and move, and a too-fast move draws a correction."""
        a, b = self.h.client(1), self.h.client(2)
        self.h.enter(a, self.hero)
        self.h.enter(b, self.other)
        self.h.advance()
        [u] = events(a, "world.u")
        # The players (greenvale's NPCs near them enter too).
        self.assertEqual([s[0] for s in u["e"] if s[1] == "p"], [self.other])
        events(b, "world.u")
        b.send({"t": "world.move", "x": 120.5, "z": 100.0, "vx": 5.0, "vz": 0.0, "ct": 9, "k": 0})
        self.h.advance()
        [u] = events(a, "world.u")
        self.assertEqual(moves(u)[self.other][:2], (120.5, 100.0))
        b.send({"t": "world.move", "x": 400.0, "z": 100.0, "k": 0})
        self.h.advance()
        [c] = events(b, "world.correct")
        self.assertEqual((c["x"], c["k"]), (120.5, 1))

    def test_leaveSavesAndReleases(self):
        """world.leave saves the position, releases the lease and leaves zone chat."""
        p = self.h.client(1)
        self.h.enter(p, self.hero)
        p.send({"t": "world.move", "x": 101.0, "z": 100.0, "k": 0})
        self.h.advance(0.1, 2)
        self.assertEqual(self.h.request(p, "world.leave"), {"t": "world.leave", "id": self.h.lastId, "ok": True})
        self.assertEqual(self.sql.row(self.hero)[:4], ("greenvale", 101.0, 0.0, 100.0))
        self.assertIsNone(self.lease(self.hero))
        self.assertEqual(self.channels.calls[-1], ("leave", self.hero, "greenvale"))

    def test_logoutSaves(self):
        """Ending the session saves the position, releases the lease and removes the player."""
        p = self.h.client(1)
        self.h.enter(p, self.hero)
        p.send({"t": "world.move", "x": 102.0, "z": 100.0, "k": 0})
        self.h.advance()
        p.send({"t": "bye", "id": 5})
        self.h.advance()
        self.assertEqual(self.sql.row(self.hero)[1], 102.0)
        self.assertIsNone(self.lease(self.hero))
        self.assertEqual(self.h.world.roster.byCharacter, {})

    def test_newSessionOfSameAccountKeepsTheLease(self):
        """
        A new session of the same account takes the character over without losing the
        lease to the old session's logout.
        """
        first = self.h.client(1)
        self.h.enter(first, self.hero)
        second = self.h.client(1)  # replaces the first session
        self.assertEqual(self.h.enter(second, self.hero)["character_id"], self.hero)
        self.h.advance(0.1, 3)  # the first session's logout save and release run
        self.assertEqual(self.lease(self.hero), b"world-a")
        self.assertIn(self.hero, self.h.world.roster.byCharacter)
        self.h.advance(1.0, 20)
        self.assertIn(self.hero, self.h.world.roster.byCharacter)
        self.assertEqual(self.lease(self.hero), b"world-a")

    def test_linkDeadKeepsCharacterUntilGraceExpires(self):
        """
        A link-dead player stays in the world through the resume grace, then is saved,
        released and seen leaving.
        """
        a, b = self.h.client(1), self.h.client(2)
        self.h.enter(a, self.hero)
        self.h.enter(b, self.other)
        a.send({"t": "world.move", "x": 103.0, "z": 100.0, "k": 0})
        self.h.advance()
        a.protocol.connectionLost(None)
        self.h.advance(1.0)
        self.assertIn(self.hero, self.h.world.roster.byCharacter)
        self.h.advance(5.0)  # resume grace
        self.h.advance()
        self.assertNotIn(self.hero, self.h.world.roster.byCharacter)
        self.assertEqual(self.sql.row(self.hero)[1], 103.0)
        self.assertIsNone(self.lease(self.hero))
        self.h.advance()
        self.assertIn([self.hero], [u.get("l") for u in events(b, "world.u")])

    def test_periodicSavesAreStaggeredAndBatched(self):
        """
        Periodic saves write every changed position over the save interval in batched
        transactions, and nothing when nothing changed.
        """
        peers = []
        cids = [self.sql.makeCharacter(10 + i, f"P{i}", "greenvale", 200.0 + i, 0.0, 200.0)
                for i in range(60)]
        for i, cid in enumerate(cids):
            p = self.h.client(10 + i)
            self.h.enter(p, cid)
            peers.append(p)
        for i, p in enumerate(peers):
            p.send({"t": "world.move", "x": 200.5 + i, "z": 200.0, "k": 0})
        self.h.advance()
        before = self.sql.transactions
        self.h.advance(1.0, 30)
        # 30 one-second slots: 60 changed characters saved in 30 transactions at most.
        self.assertLessEqual(self.sql.transactions - before, 30)
        for i, cid in enumerate(cids):
            self.assertEqual(self.sql.row(cid)[1], 200.5 + i)
        before = self.sql.transactions
        self.h.advance(1.0, 30)
        self.assertEqual(self.sql.transactions, before)  # nothing changed, nothing written

    def test_shutdownSavesEveryoneInOneTransaction(self):
        """Stopping the service saves every live player in one transaction and releases every lease."""
        cids = [self.sql.makeCharacter(10 + i, f"P{i}", "greenvale", 200.0, 0.0, 200.0 + i)
                for i in range(20)]
        for i, cid in enumerate(cids):
            p = self.h.client(10 + i)
            self.h.enter(p, cid)
            p.send({"t": "world.move", "x": 201.0, "z": 200.0 + i, "k": 0})
        self.h.advance()
        before = self.sql.transactions
        self.successResultOf(self.h.stop())
        self.assertEqual(self.sql.transactions - before, 1)
        self.assertEqual({self.sql.row(c)[1] for c in cids}, {201.0})
        for cid in cids:
            self.assertIsNone(self.lease(cid))

    def test_leaseRefreshedWhileLive(self):
        """A live player's lease is refreshed and outlives its TTL."""
        self.h.enter(self.h.client(1), self.hero)
        self.h.advance(1.0, 60)
        self.assertEqual(self.lease(self.hero), b"world-a")

    def test_metrics(self):
        """The registry exposes players, corrections, AOI pairs, tick counts and traffic per zone."""
        a, b = self.h.client(1), self.h.client(2)
        self.h.enter(a, self.hero)
        self.h.enter(b, self.other)
        b.send({"t": "world.move", "x": 400.0, "z": 100.0, "k": 0})
        self.h.advance(0.1, 11)
        text = generate_latest(self.h.node.metrics).decode()
        self.assertIn('mmoshard_world_players{zone="greenvale"} 2.0', text)
        self.assertIn('mmoshard_world_corrections_total{zone="greenvale"} 1.0', text)
        # Each player sees the other, and the NPCs near them.
        zone = self.h.world.zones["greenvale"]
        npcs = sum(len(zone.visibleOf(zone.entities[c]) - {self.hero, self.other}) for c in (self.hero, self.other))
        self.assertIn(f'mmoshard_world_aoi_pairs{{zone="greenvale"}} {2.0 + npcs}', text)
        self.assertIn('mmoshard_world_tick_seconds_count{zone="greenvale"} 11.0', text)
        self.assertIn('mmoshard_world_ticks_skipped_total{zone="greenvale"} 0.0', text)
        self.assertIn("mmoshard_world_tick_overruns_total", text)
        self.assertIn("mmoshard_world_bytes_out_per_client", text)
        # The shipped packs stand at their homes or patrol, counted by AI state.
        brains = self.h.world.zones["greenvale"].npcs.brains.values()
        for state in ("idle", "patrol"):
            n = sum(b.state == state for b in brains)
            self.assertIn(f'mmoshard_world_npcs{{state="{state}",zone="greenvale"}} {float(n)}', text)


class ResumeMixin:
    """A resumed session starts its view afresh, whichever interest space runs."""

    engine = None

    def test_resumeResetsTheView(self):
        """A resumed session gets world.reset and its view re-entered afresh, then moves as before."""
        h = WorldHarness(self, interest=self.engine)
        self.assertEqual(next(iter(h.world.zones.values())).space.native, self.engine == "native")
        hero = h.sql.makeCharacter(1, "Hero", "greenvale", 100.0, 0.0, 100.0)
        other = h.sql.makeCharacter(2, "Other", "greenvale", 120.0, 0.0, 100.0)
        a, b = h.client(1), h.client(2)
        h.enter(a, hero)
        h.enter(b, other)
        h.advance()
        first = events(a, "world.u")[0]["e"]
        self.assertEqual([s[0] for s in first if s[1] == "p"], [other])
        npcs = sorted(s[0] for s in first if s[1] == "n")  # greenvale's NPCs near them
        a.lose()
        b.send({"t": "world.move", "x": 121.0, "z": 100.0, "vx": 5.0, "vz": 0.0, "ct": 9, "k": 0})
        h.advance()
        again = h.resume(a)
        [reset] = events(again, "world.reset")
        self.assertEqual((reset["zone"]["id"], reset["x"], reset["z"]), ("greenvale", 100.0, 100.0))
        h.advance()
        # The client dropped every entity: what is in view enters again, where it is now.
        [u] = events(again, "world.u")
        self.assertEqual([(s[0], s[5]) for s in u["e"] if s[1] == "p"], [(other, 121.0)])
        self.assertEqual(sorted(s[0] for s in u["e"] if s[1] == "n"), npcs)
        self.assertNotIn("m", u)
        b.send({"t": "world.move", "x": 122.0, "z": 100.0, "vx": 5.0, "vz": 0.0, "ct": 10, "k": 0})
        h.advance()
        [u] = events(again, "world.u")
        self.assertEqual(set(u), {"t", "m"})
        self.assertEqual(moves(u)[other][:2], (122.0, 100.0))


class PythonResumeTests(ResumeMixin, TestCase):
    engine = "python"


class NativeResumeTests(ResumeMixin, TestCase):
    engine = "native"

    def setUp(self):
        requireNative()


class LeaseTests(TestCase):
    def setUp(self):
        self.a = WorldHarness(self, "world-a")
        self.b = self.a.peerOf("world-b")
        self.hero = self.a.sql.makeCharacter(1, "Hero", "greenvale", 100.0, 0.0, 100.0)

    def test_liveInOneProcessOnly(self):
        """A character live in one process is refused by another as busy."""
        self.a.enter(self.a.client(1), self.hero)
        reply = self.b.enter(self.b.client(1), self.hero)
        self.assertEqual((reply["code"], reply["retry_after"]), ("world.character_busy", 1.0))

    def test_secondProcessAfterLeave(self):
        """After leaving one process a character enters another."""
        pa = self.a.client(1)
        self.a.enter(pa, self.hero)
        self.a.request(pa, "world.leave")
        self.assertEqual(self.b.enter(self.b.client(1), self.hero)["x"], 100.0)

    def test_leaseExpiresWhenOwnerStopsRefreshing(self):
        """
        When its owner stops refreshing, a lease blocks other processes until its TTL,
        then frees the character.
        """
        self.a.enter(self.a.client(1), self.hero)
        # The owner "crashes": its loops stop, nothing is released.
        self.a.world.housekeeping.stop()
        for loop in self.a.world.loops.values():
            loop.stop()
        self.a.advance(1.0, 14)
        self.assertEqual(self.b.enter(self.b.client(1), self.hero)["code"], "world.character_busy")
        self.a.advance(1.0, 2)
        self.assertEqual(self.b.enter(self.b.client(1), self.hero)["character_id"], self.hero)


class TransferTests(TestCase):
    def test_localPortal(self):
        """
        A portal to a zone of the same process moves the player there at once, tells the
        client and saves it.
        """
        h = WorldHarness(self)
        cid = h.sql.makeCharacter(1, "Hero", "greenvale", 1000.0, 0.0, 498.0)
        p = h.client(1)
        h.enter(p, cid)
        p.send({"t": "world.move", "x": 1001.0, "z": 500.5, "k": 0})
        h.advance(0.1, 2)
        [z] = events(p, "world.zone")
        self.assertEqual((z["zone"]["id"], z["x"], z["z"], z["k"]), ("ashfall", 40.0, 256.0, 1))
        self.assertEqual(h.world.roster.byCharacter[cid].zone.id, "ashfall")
        self.assertEqual(h.sql.row(cid)[:2], ("ashfall", 40.0))

    def test_remotePortalHandsLeaseToTicket(self):
        """
        A portal to another node's zone saves the target position, hands the lease to a
        ticket only the target accepts, and redirects later enters.
        """
        a = WorldHarness(self, "world-a", zones=["greenvale"])
        b = a.peerOf("world-b", zones=["ashfall"])
        self.successResultOf(a.directory.beat())
        cid = a.sql.makeCharacter(1, "Hero", "greenvale", 1000.0, 0.0, 498.0)
        p = a.client(1)
        a.enter(p, cid)
        p.send({"t": "world.move", "x": 1001.0, "z": 500.5, "k": 0})
        a.advance(0.1, 2)
        [t] = events(p, "world.transfer")
        self.assertEqual((t["zone"], t["tcp"]), ("ashfall", "world-b.example:7000"))
        self.assertEqual(a.sql.row(cid)[:2], ("ashfall", 40.0))
        self.assertEqual(a.world.roster.byCharacter, {})
        lease = self.successResultOf(a.volatile.get(leaseKey(cid)))
        self.assertEqual(lease, b"xfer:" + t["ticket"].encode())
        # Entering on A again is redirected; without the ticket B refuses.
        self.assertEqual(a.enter(a.client(1), cid)["redirect"]["zone"], "ashfall")
        self.assertEqual(b.enter(b.client(1), cid)["code"], "world.character_busy")
        reply = b.enter(b.client(1), cid, ticket=t["ticket"])
        self.assertEqual((reply["zone"]["id"], reply["x"], reply["z"]), ("ashfall", 40.0, 256.0))
        self.assertEqual(self.successResultOf(b.volatile.get(leaseKey(cid))), b"world-b")

    def test_unhostedTargetKeepsPlayer(self):
        """
        A portal to a zone nobody hosts fails the transfer and teleports the player to
        the spawn point, still live.
        """
        a = WorldHarness(self, "world-a", zones=["greenvale"])
        cid = a.sql.makeCharacter(1, "Hero", "greenvale", 1000.0, 0.0, 498.0)
        p = a.client(1)
        a.enter(p, cid)
        p.send({"t": "world.move", "x": 1001.0, "z": 500.5, "k": 0})
        a.advance(0.1, 2)
        self.assertEqual(len(events(p, "world.transfer_failed")), 1)
        player = a.world.roster.byCharacter[cid]
        self.assertEqual((player.state, player.entity.x), ("live", 128.0))

    def test_transferSaveFailureKeepsPlayer(self):
        """When the transfer save fails the player stays live here and keeps its lease."""
        a = WorldHarness(self, "world-a", zones=["greenvale"])
        a.peerOf("world-b", zones=["ashfall"])
        self.successResultOf(a.directory.beat())
        cid = a.sql.makeCharacter(1, "Hero", "greenvale", 1000.0, 0.0, 498.0)
        p = a.client(1)
        a.enter(p, cid)
        a.sql.down = True
        p.send({"t": "world.move", "x": 1001.0, "z": 500.5, "k": 0})
        a.advance(0.1, 2)
        self.assertEqual(len(events(p, "world.transfer_failed")), 1)
        self.assertIn(cid, a.world.roster.byCharacter)
        self.assertEqual(self.successResultOf(a.volatile.get(leaseKey(cid))), b"world-a")
        self.flushLoggedErrors()
