"""The world service's parts on their own, each built from its narrow collaborators: roster, saves, leases."""

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from mmoshard.store.errors import VolatileUnavailable
from mmoshard.store.volatile import MemoryStore
from mmoshard.world.lease import LeaseKeeper, Leases, leaseKey
from mmoshard.world.players import Player, Roster, Tasks, ZoneChat
from mmoshard.world.progression import loadCharacter
from mmoshard.world.saves import SAVE_BATCH_DELAY, Saves
from mmoshard.world.sim import PLAYER, Entity
from mmoshard.world.test.harness import FakeChannels, SyncSQL, WorldHarness
from mmoshard.world.test.helpers import FakeSession, makeZone


class PartsMixin:
    """A zone, a roster with recording zone chat and characters in a synchronous database."""

    def setUp(self):
        self.zone, self.clock = makeZone(id="vale")
        self.sql = SyncSQL()
        self.tasks = Tasks()
        self.channels = FakeChannels()
        self.roster = Roster(ZoneChat(self.channels, self.tasks))

    def player(self, accountId, x=10.0, z=10.0):
        """@return: a L{Player} for a new character of C{accountId}, not yet in the roster."""
        cid = self.sql.makeCharacter(accountId, f"P{accountId}", "vale", x, 0.0, z)
        row = self.successResultOf(loadCharacter(self.sql, cid))
        entity = Entity(cid, PLAYER, x, 0.0, z, name=row.name)
        return Player(row, entity, self.zone, FakeSession(accountId))


class RosterTests(PartsMixin, TestCase):
    def test_addDetachReattach(self):
        """
        Adding spawns and indexes a player and joins its zone chat; detaching undoes
        all three, once however often it is called; reattaching makes it live again.
        """
        p = self.player(1)
        cid = p.characterId
        self.roster.add(p)
        self.assertIs(self.roster.bySession[p.session], p)
        self.assertIs(self.roster.byCharacter[cid], p)
        self.assertIn(cid, self.zone.observers)
        self.roster.detach(p)
        self.roster.detach(p)
        self.assertEqual((self.roster.bySession, self.roster.byCharacter), ({}, {}))
        self.assertNotIn(cid, self.zone.entities)
        self.assertEqual(p.state, "gone")
        self.roster.reattach(p, self.zone)
        self.assertEqual((p.state, len(self.roster)), ("live", 1))
        self.assertEqual(self.channels.calls,
                         [("join", cid, "vale"), ("leave", cid, "vale"), ("join", cid, "vale")])

    def test_detachKeepsANewerSessionsEntry(self):
        """Detaching an old player of a character that entered again leaves the new one indexed."""
        old = self.player(1)
        self.roster.add(old)
        new = Player(old.row, Entity(old.characterId, PLAYER, 10.0, 0.0, 10.0), self.zone,
                     FakeSession(1, "s2"))
        self.roster.byCharacter[old.characterId] = new
        self.roster.detach(old)
        self.assertIs(self.roster.byCharacter[old.characterId], new)

    def test_progressedTellsLivePlayersOnly(self):
        """A progression change is sent to the player while it is live here, and dropped after."""
        p = self.player(1)
        self.roster.add(p)
        self.roster.progressed(p.characterId, (2, 10))
        self.roster.detach(p)
        self.roster.progressed(p.characterId, (3, 0))
        self.assertEqual(p.session.of("world.progress"), [{"result": (2, 10)}])

    def test_drainWaitsForTrackedWork(self):
        """Tasks.drain fires only once every tracked Deferred has, failures included."""
        first, second = Deferred(), Deferred()
        self.tasks.track(first)
        self.tasks.track(second)
        drained = Deferred.fromCoroutine(self.tasks.drain())
        first.callback(None)
        self.assertNoResult(drained)
        second.errback(RuntimeError("failed in the background"))
        self.successResultOf(drained)
        self.assertEqual(self.tasks.pending, set())

    def test_drainWaitsForWorkTrackedMeanwhile(self):
        """Work tracked while drain waits (started by tracked work) is waited for too."""
        first, later = Deferred(), Deferred()

        def startLater(result):
            self.tasks.track(later)

        self.tasks.track(first).addCallback(startLater)
        drained = Deferred.fromCoroutine(self.tasks.drain())
        first.callback(None)
        self.assertNoResult(drained)
        later.callback(None)
        self.successResultOf(drained)


class SavesTests(PartsMixin, TestCase):
    def setUp(self):
        super().setUp()
        self.batches = []
        self.saves = Saves(self.sql, self.clock, self.tasks, self.roster.byCharacter, 2,
                           self.batches.append)

    def test_logoutSavesShareOneTransaction(self):
        """
        Saves asked for within the batch delay share one transaction, the newest
        position of a character wins, and every caller hears once it is committed.
        """
        a, b = self.player(1), self.player(2)
        waiters = [self.saves.soon(a), self.saves.soon(b)]
        a.entity.x = 11.5
        waiters.append(self.saves.soon(a))
        before = self.sql.transactions
        for d in waiters:
            self.assertNoResult(d)
        self.clock.advance(SAVE_BATCH_DELAY)
        for d in waiters:
            self.successResultOf(d)
        self.assertEqual(self.sql.transactions - before, 1)
        self.assertEqual(self.batches, [2])
        self.assertEqual(self.sql.row(a.characterId)[:2], ("vale", 11.5))

    def test_soonSaysWhetherItSaved(self):
        """A logout save's waiter fires with True once committed, False when the save failed."""
        p = self.player(1)
        ok = self.saves.soon(p)
        self.clock.advance(SAVE_BATCH_DELAY)
        self.assertIs(self.successResultOf(ok), True)
        self.sql.down = True
        failed = self.saves.soon(p)
        self.clock.advance(SAVE_BATCH_DELAY)
        self.assertIs(self.successResultOf(failed), False)
        self.flushLoggedErrors()

    def test_periodicSavesRetryAfterAFailure(self):
        """
        A periodic save covers the players of its slot whose position changed; when
        it fails their positions stay unsaved and the slot's next turn writes them.
        """
        players = [self.player(i) for i in (1, 2)]
        for p in players:
            self.roster.add(p)
            p.entity.x = 20.0
        odd = [p for p in players if p.characterId % 2 == 1]
        self.sql.down = True
        self.saves.periodic(1)
        self.assertEqual([p.saved for p in odd], [None])
        self.sql.down = False
        self.saves.periodic(3)
        self.assertEqual([p.saved for p in odd], [("vale", 20.0, 0.0, 10.0)])
        self.assertEqual(self.batches, [1])
        before = self.sql.transactions
        self.saves.periodic(5)  # unchanged since: nothing written
        self.assertEqual(self.sql.transactions, before)
        self.flushLoggedErrors()


class LeaseKeeperTests(PartsMixin, TestCase):
    def setUp(self):
        super().setUp()
        self.volatile = MemoryStore(self.clock, "t:")
        self.volatile.open()
        self.addCleanup(self.volatile.close)
        self.keeper = LeaseKeeper(Leases(self.volatile, "world-a", 15.0), self.roster, self.clock)

    def lease(self, cid):
        return self.successResultOf(self.volatile.get(leaseKey(cid)))

    def test_lostLeaseKicksThePlayer(self):
        """A refresh that finds a lease taken by another node kicks and removes its player."""
        kept, lost = self.player(1), self.player(2)
        for p in (kept, lost):
            self.roster.add(p)
            self.successResultOf(Deferred.fromCoroutine(self.keeper.acquire(p.characterId)))
        self.successResultOf(self.volatile.set(leaseKey(lost.characterId), "world-b", ttl=15.0))
        self.successResultOf(Deferred.fromCoroutine(self.keeper.refresh()))
        self.assertEqual(lost.session.of("world.kicked"), [{"reason": "lease lost"}])
        self.assertEqual(list(self.roster.byCharacter), [kept.characterId])
        self.assertEqual(kept.session.of("world.kicked"), [])
        self.assertEqual(self.lease(kept.characterId), b"world-a")

    def test_releaseAllReleasesOnlyOurs(self):
        """At stop every lease still ours is released; one another node holds is left alone."""
        mine, taken = self.player(1), self.player(2)
        for p in (mine, taken):
            self.successResultOf(Deferred.fromCoroutine(self.keeper.acquire(p.characterId)))
        self.successResultOf(self.volatile.set(leaseKey(taken.characterId), "world-b", ttl=15.0))
        self.successResultOf(Deferred.fromCoroutine(self.keeper.releaseAll()))
        self.assertIsNone(self.lease(mine.characterId))
        self.assertEqual(self.lease(taken.characterId), b"world-b")
        self.assertEqual(self.keeper.leases.held, set())

    def test_releaseAllSurvivesAnUnreachableStore(self):
        """Releasing at stop with the store unreachable logs and returns: the leases run out."""
        p = self.player(1)
        self.successResultOf(Deferred.fromCoroutine(self.keeper.acquire(p.characterId)))
        def down(*args):
            raise VolatileUnavailable("store down (test)")

        self.volatile.evalScript = lambda *args: succeed(None).addCallback(down)
        self.successResultOf(Deferred.fromCoroutine(self.keeper.releaseAll()))
        self.assertEqual(self.keeper.leases.held, set())

    def live(self, accountId):
        """@return: a player in the roster whose lease this node took."""
        p = self.player(accountId)
        self.roster.add(p)
        self.successResultOf(Deferred.fromCoroutine(self.keeper.acquire(p.characterId)))
        return p

    def test_absentLeaseTakenBack(self):
        """
        A lease absent from the store (lost by a restart) within a TTL of the last
        confirmation is taken back, atomically, and its player is not kicked.
        """
        p = self.live(1)
        self.clock.advance(5.0)
        self.successResultOf(Deferred.fromCoroutine(self.keeper.refresh()))
        self.successResultOf(self.volatile.delete(leaseKey(p.characterId)))
        self.clock.advance(14.0)  # 14 s since the last confirmation: under the TTL
        self.successResultOf(Deferred.fromCoroutine(self.keeper.refresh()))
        self.assertEqual(p.session.of("world.kicked"), [])
        self.assertEqual(self.lease(p.characterId), b"world-a")
        self.assertEqual(self.successResultOf(self.volatile.ttl(leaseKey(p.characterId))), 15.0)
        self.assertIn(p.characterId, self.roster.byCharacter)

    def test_absentLeaseAfterATTLWithoutRefreshKicks(self):
        """
        After a TTL or more without a successful refresh an absent lease may have run
        out and been another node's meanwhile: its player is kicked, nothing retaken.
        """
        p = self.live(1)
        self.clock.advance(5.0)
        self.successResultOf(Deferred.fromCoroutine(self.keeper.refresh()))
        real = self.volatile.evalScript

        def down(*args):
            raise VolatileUnavailable("store down (test)")

        self.volatile.evalScript = lambda *args: succeed(None).addCallback(down)
        for _ in range(3):
            self.clock.advance(5.0)
            self.successResultOf(Deferred.fromCoroutine(self.keeper.refresh()))
        self.volatile.evalScript = real
        self.assertIsNone(self.lease(p.characterId))  # ran out meanwhile
        self.successResultOf(Deferred.fromCoroutine(self.keeper.refresh()))
        self.assertEqual(p.session.of("world.kicked"), [{"reason": "lease lost"}])
        self.assertIsNone(self.lease(p.characterId))
        self.assertEqual(self.roster.byCharacter, {})
        self.flushLoggedErrors()

    def test_ticketHeldLeaseIsLost(self):
        """A lease a transfer ticket holds is not ours: a refresh neither extends nor takes it."""
        p = self.live(1)
        self.successResultOf(self.volatile.set(leaseKey(p.characterId), "xfer:abc", ttl=30.0))
        self.successResultOf(Deferred.fromCoroutine(self.keeper.refresh()))
        self.assertEqual(self.lease(p.characterId), b"xfer:abc")
        self.assertEqual(p.session.of("world.kicked"), [{"reason": "lease lost"}])


class LeaseScriptTests(TestCase):
    """The refresh script in Lua on a real Redis and in Python on the memory store: the same answers."""

    async def check(self, store):
        leases = Leases(store, "world-a", 15.0)
        for cid in (1, 2, 3):
            await leases.acquire(cid)
        await store.delete(leaseKey(2))
        await store.set(leaseKey(3), "world-b", ttl=15.0)
        self.assertEqual(await leases.refresh(retake=False), ([2, 3], []))
        self.assertIsNone(await store.get(leaseKey(2)))
        self.assertEqual(await leases.refresh(retake=True), ([3], [2]))
        self.assertEqual([await store.get(leaseKey(c)) for c in (1, 2, 3)],
                         [b"world-a", b"world-a", b"world-b"])
        self.assertGreater(await store.ttl(leaseKey(2)), 14.0)

    def test_memory(self):
        """The Python refresh extends ours, takes back an absent lease only when asked, reports the rest."""
        clock = Clock()
        store = MemoryStore(clock, "t:")
        store.open()
        self.addCleanup(store.close)
        self.successResultOf(Deferred.fromCoroutine(self.check(store)))

    async def test_redis(self):
        """The Lua refresh does the same on a real Redis."""
        from twisted.internet import reactor

        from mmoshard.store.volatile import makeVolatileStore
        from mmoshard.testing import requireRedis

        url, prefix, cleaner = requireRedis()
        self.addCleanup(cleaner)
        store = makeVolatileStore(url, reactor, prefix)
        store.open()
        self.addCleanup(store.close)
        await self.check(store)


class WorldAdminTests(TestCase):
    """The world role's admin routes, in memory."""

    def stub(self, h):
        from treq.testing import StubTreq
        from twisted.web.resource import Resource

        from mmoshard.world.admin import makeWorldAdmin

        root = Resource()
        root.putChild(b"world", makeWorldAdmin(h.world))
        return StubTreq(root)

    def answer(self, stub, d):
        stub.flush()
        response = self.successResultOf(d)
        return response.code, self.successResultOf(response.json())

    def test_ticks_and_profile(self):
        """/world/ticks lists each zone's recent tick durations; a tick profile is a POST (a GET is a 405), answered once its seconds have passed."""
        h = WorldHarness(self)
        h.clock.advance(1.0)
        stub = self.stub(h)
        code, ticks = self.answer(stub, stub.get("http://127.0.0.1/world/ticks?seconds=30"))
        self.assertEqual(code, 200)
        self.assertTrue(ticks["greenvale"], ticks)
        code, body = self.answer(stub, stub.get("http://127.0.0.1/world/profile?seconds=1"))
        self.assertEqual((code, body["error"]["code"]), (405, "request.method_not_allowed"))
        d = stub.post("http://127.0.0.1/world/profile?seconds=1", data=b"",
                      headers={"Content-Type": "application/json"})
        stub.flush()
        self.assertNoResult(d)
        h.clock.advance(1.1)
        code, body = self.answer(stub, d)
        self.assertEqual((code, body["seconds"]), (200, 1.0))
        self.assertIn("tick", body["profile"])
