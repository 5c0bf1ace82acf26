"""Saved copies: a closed copy on which a lockout still runs is re-opened, same id and killed bosses dead, when a bound character enters its template."""

from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.trial.unittest import TestCase

from mmoshard.world.instances import errors
from mmoshard.world.instances.copies import ownerKey, soloKey
from mmoshard.world.instances.host import hostKey
from mmoshard.world.instances.store import closeInstance, createInstance, loadInstance, reopenInstance
from mmoshard.world.instances.test.test_entry import DUNGEON, EntryTestCase
from mmoshard.world.instances.test.test_host import ThreeNodeTestCase, beat, settle
from mmoshard.world.test.dbfixture import makeCharacters, openStore


class SavedEntryTestCase(EntryTestCase):
    """The shipped dungeon on one world node: its foreman killed for real, then the copy left to close."""

    def killForeman(self, client, cid):
        """C{cid} (solo or leading its party) enters a copy and kills its foreman there. @return: the copy's id."""
        iid = self.entered(client, template=DUNGEON)["instance_id"]
        instance = self.h.world.instances.host.instances[iid]
        hero = self.h.world.roster.byCharacter[cid].entity
        foreman = instance.encounter.fights["foreman"].brain.entity
        instance.zone.combat.damage(hero, foreman, 10 ** 6)
        self.h.advance(0.1)
        self.assertEqual(self.successResultOf(self.h.world.instances.reopen(iid)).instance_id, iid)
        return iid

    def leaveAndClose(self, client, iid):
        """The character leaves the copy, which closes empty_timeout seconds later."""
        client.request("world.instance.leave")
        self.h.advance(1.0, DUNGEON_EMPTY + 2)
        self.assertNotIn(f"{DUNGEON}/{iid}", self.h.world.zones)
        self.assertIsNotNone(self.row(iid).closed_at)
        # The directory entry, whose heartbeat loop does not run in tests.
        self.successResultOf(self.h.directory.beat())

    def row(self, iid):
        return self.successResultOf(loadInstance(self.sql, iid))

    def lockout(self, cid):
        return self.sql.conn.execute(
            "SELECT instance_id, reset_at FROM instance_lockouts WHERE character_id = ? AND "
            "template = ?", (cid, DUNGEON)).fetchone()


# The shipped dungeon's empty_timeout (etc/instances.toml: the default).
DUNGEON_EMPTY = 300


class ReenterTests(SavedEntryTestCase):
    def test_boundCharacterReentersItsClosedCopy(self):
        """
        A character bound by a boss kill whose copy closed after
        empty_timeout enters the template again: the same copy is re-opened
        (same id, row open again on this node, max_duration counting from
        now), the killed boss is not spawned, the trash is back, and it
        enters it.
        """
        cid = self.character(1)
        c = self.login(1, cid)
        iid = self.killForeman(c, cid)
        self.assertEqual(self.lockout(cid)[0], iid)
        self.leaveAndClose(c, iid)
        now = self.h.clock.seconds()
        reply = self.entered(c, template=DUNGEON)
        self.assertEqual((reply["instance_id"], reply["zone"]), (iid, f"{DUNGEON}/{iid}"))
        self.assertEqual(self.zoneOf(cid), f"{DUNGEON}/{iid}")
        instance = self.h.world.instances.host.instances[iid]
        self.assertEqual((instance.killed, instance.reopened, instance.adopted),
                         ({"foreman"}, True, False))
        self.assertEqual(sorted(instance.encounter.fights), ["captain"])
        self.assertEqual(len(instance.encounter.trash), 12)
        bosses = sorted(b.spawnId for b in instance.zone.npcs.brains.values() if b.encounter)
        self.assertEqual(bosses, [f"{DUNGEON}/{iid}:boss:captain"])
        row = self.row(iid)
        self.assertEqual((row.closed_at, row.node_id, row.created_at), (None, "world-a", now))
        self.assertEqual(self.successResultOf(self.h.volatile.get(soloKey(cid, DUNGEON))),
                         str(iid).encode())
        self.assertEqual(self.successResultOf(self.h.volatile.get(hostKey(iid))), b"world-a")
        # Open again for a whole max_duration from the re-opening, as long as someone is inside.
        self.h.advance(1.0, 30)
        self.assertIn(instance.zone.id, self.h.world.zones)

    def test_afterTheResetANewCopy(self):
        """
        Once the lockout has reset, the copy that closed stays closed:
        entering makes a new copy with every boss, and reopen answers None.
        """
        cid = self.character(1)
        c = self.login(1, cid)
        iid = self.killForeman(c, cid)
        self.leaveAndClose(c, iid)
        # The reset comes in 10 s (not the real one, up to a day away: the session would time out).
        self.sql.conn.execute("UPDATE instance_lockouts SET reset_at = ? WHERE character_id = ?",
                              (self.h.clock.seconds() + 10.0, cid))
        self.sql.conn.commit()
        self.h.advance(1.0, 11)
        self.successResultOf(self.h.directory.beat())
        other = self.entered(c, template=DUNGEON)["instance_id"]
        self.assertNotEqual(other, iid)
        self.assertIsNone(self.successResultOf(self.h.world.instances.reopen(iid)))
        self.assertIsNotNone(self.row(iid).closed_at)
        self.assertNotIn(f"{DUNGEON}/{iid}", self.h.world.zones)
        instance = self.h.world.instances.host.instances[other]
        self.assertEqual(sorted(instance.encounter.fights), ["captain", "foreman"])

    def test_boundLeaderReopensForItsParty(self):
        """
        A leader bound to a closed copy re-opens it as its (new) party's
        copy: a member asking first is told only the leader makes it, then
        the member (not bound) follows the leader into the re-opened copy,
        which the party owns.
        """
        leader, member = self.character(1), self.character(2)
        cl, cm = self.login(1, leader), self.login(2, member)
        iid = self.killForeman(cl, leader)
        self.leaveAndClose(cl, iid)
        self.party(leader, member, pid="p2")
        self.assertEqual(self.refused(cm, template=DUNGEON)["code"], errors.NOT_LEADER)
        self.assertEqual(self.entered(cl, template=DUNGEON)["instance_id"], iid)
        self.assertEqual(self.entered(cm, template=DUNGEON)["instance_id"], iid)
        self.assertEqual(self.zoneOf(member), f"{DUNGEON}/{iid}")
        self.assertEqual(self.successResultOf(self.h.volatile.get(ownerKey(iid))), b"p2")
        self.assertEqual(self.h.world.instances.host.instances[iid].killed, {"foreman"})

    def test_boundMemberOfAnotherCopyStaysLocked(self):
        """A member bound to a closed copy is not re-opened into it by the party's entry: it is locked out of the party's new copy."""
        member, leader = self.character(1), self.character(2)
        cm, cl = self.login(1, member), self.login(2, leader)
        saved = self.killForeman(cm, member)
        self.leaveAndClose(cm, saved)
        self.party(leader, member, pid="p3")
        fresh = self.entered(cl, template=DUNGEON)["instance_id"]
        self.assertNotEqual(fresh, saved)
        reply = self.refused(cm, template=DUNGEON)
        self.assertEqual((reply["code"], reply["instance_id"]), (errors.LOCKED, saved))
        self.assertIsNotNone(self.row(saved).closed_at)

    def test_entrancePortalReopens(self):
        """Walking into the entrance portal re-opens the bound character's closed copy, as the request does."""
        cid = self.character(1, 293.0, 60.0)
        c = self.login(1, cid)
        iid = self.killForeman(c, cid)
        self.leaveAndClose(c, iid)
        e = self.h.world.roster.byCharacter[cid].entity
        self.h.world.zones["greenvale"].teleport(e, 293.0, 60.0)
        c.events("world.zone")
        c.walk(296.5, 60.0)
        [moved] = c.events("world.zone")
        self.assertEqual(moved["zone"]["id"], f"{DUNGEON}/{iid}")


def bindTo(sql, account, iid, resetAt, template="crypt"):
    """A new character of C{account}, bound to copy C{iid} of C{template} until C{resetAt}. @return: its id."""
    cid = sql.makeCharacter(account, f"Saved{account}", "greenvale", 100.0, 0.0, 100.0)
    sql.conn.execute("INSERT INTO instance_lockouts (character_id, template, instance_id, reset_at) "
                     "VALUES (?, ?, ?, ?)", (cid, template, iid, resetAt))
    sql.conn.commit()
    return cid


class ReopenHostTests(ThreeNodeTestCase):
    """IInstances.reopen across three nodes sharing a store and database."""

    def closedSaved(self, killed=("warden",)):
        """@return: the Placement of a crypt copy made on A, with a kill and a running lockout, then closed."""
        p = self.created(self.a)
        for encounter in killed:
            self.a.sql.conn.execute(
                "INSERT INTO instance_kills (instance_id, encounter, killed_at, roster, seed) "
                "VALUES (?, ?, 1, '[11]', 's')", (p.instance_id, encounter))
        bindTo(self.a.sql, 91, p.instance_id, self.a.clock.seconds() + 3600.0)
        self.successResultOf(self.a.world.instances.close(p.instance_id))
        self.assertIsNotNone(self.successResultOf(loadInstance(self.a.sql, p.instance_id)).closed_at)
        beat(*self.nodes())
        return p

    def reopen(self, h, iid):
        d = h.world.instances.reopen(iid)
        settle(h)
        return d

    def hosting(self, zone):
        return [h.world.nodeId for h in self.nodes() if zone in h.world.zones]

    def test_twoNodesRaceToReopen(self):
        """Two nodes re-opening the same closed copy at once: one wins the host key and hosts it, the other answers that node."""
        p = self.closedSaved()
        self.b.sql.holding = True  # b's re-opening waits on its database, holding the key
        db = Deferred.fromCoroutine(self.b.world.instances.host.adopt(p.instance_id, reopen=True))
        dc = Deferred.fromCoroutine(self.c.world.instances.host.adopt(p.instance_id, reopen=True))
        self.assertEqual(self.successResultOf(dc), {"node": "world-b"})
        self.assertNoResult(db)
        self.b.sql.unhold()
        self.assertEqual(self.successResultOf(db)["zone"], p.zone)
        self.assertEqual(self.hosting(p.zone), ["world-b"])
        instance = self.b.world.zones[p.zone].instance
        self.assertEqual((instance.id, instance.killed, instance.reopened), (p.instance_id, {"warden"}, True))
        row = self.successResultOf(loadInstance(self.a.sql, p.instance_id))
        self.assertEqual((row.closed_at, row.node_id), (None, "world-b"))
        # Every node finds it there now, through reopen or locate; nobody re-opens it again.
        beat(*self.nodes())
        for h in self.nodes():
            self.assertEqual(self.successResultOf(self.reopen(h, p.instance_id)).node, "world-b")
            self.assertEqual(self.successResultOf(h.world.instances.locate(p.instance_id)).node,
                             "world-b")
        self.assertEqual(self.hosting(p.zone), ["world-b"])

    def test_reopenedThroughTheStore(self):
        """A node offering nothing asks the least-loaded node that offers the template (an Adopt with reopen) to re-open it."""
        p = self.closedSaved()
        self.a.world.instances.host.offered = ()
        self.successResultOf(self.a.world.instances.start())
        beat(*self.nodes())
        where = self.successResultOf(self.reopen(self.a, p.instance_id))
        self.assertEqual((where.instance_id, where.zone, where.tickets), (p.instance_id, p.zone, {}))
        self.assertEqual(self.hosting(p.zone), [where.node])
        self.assertIn(where.node, ("world-b", "world-c"))

    def test_notReopenableWithoutARunningLockout(self):
        """A closed copy whose lockouts have all reset (or that nobody was bound to) stays closed: reopen and locate answer None."""
        p = self.closedSaved()
        self.a.clock.advance(3601)
        beat(*self.nodes())
        self.assertIsNone(self.successResultOf(self.reopen(self.b, p.instance_id)))
        unbound = self.created(self.a)
        self.successResultOf(self.a.world.instances.close(unbound.instance_id))
        self.assertIsNone(self.successResultOf(self.reopen(self.b, unbound.instance_id)))
        self.assertIsNone(self.successResultOf(self.reopen(self.b, 4242)))
        self.assertEqual(self.hosting(p.zone) + self.hosting(unbound.zone), [])
        for iid in (p.instance_id, unbound.instance_id):
            self.assertIsNotNone(self.successResultOf(loadInstance(self.a.sql, iid)).closed_at)
            self.assertIsNone(self.successResultOf(self.a.volatile.get(hostKey(iid))))

    def test_locateDoesNotReopen(self):
        """locate (a login inside the copy, a ticket) never re-opens a closed copy, lockout or not."""
        p = self.closedSaved()
        self.assertIsNone(self.successResultOf(self.a.world.instances.locate(p.instance_id)))
        self.assertEqual(self.hosting(p.zone), [])

    def test_pastMaxDurationReopensForAWholeDuration(self):
        """A copy first made longer than max_duration ago is re-opened with max_duration counted from the re-opening."""
        p = self.closedSaved()
        self.a.advance(1.0, 700)  # the crypt's max_duration is 600 s
        bindTo(self.a.sql, 92, p.instance_id, self.a.clock.seconds() + 3600.0)
        beat(*self.nodes())
        where = self.successResultOf(self.reopen(self.a, p.instance_id))
        host = {h.world.nodeId: h for h in self.nodes()}[where.node]
        host.advance(1.0, 30)
        self.assertEqual(self.hosting(p.zone), [where.node])
        self.assertIsNone(self.successResultOf(loadInstance(self.a.sql, p.instance_id)).closed_at)

    def test_closingAnswersUnavailable(self):
        """While its host is still closing the copy (someone inside), reopen answers instance.unavailable with a short retry_after."""
        p = self.created(self.a)
        bindTo(self.a.sql, 91, p.instance_id, self.a.clock.seconds() + 3600.0)
        cid = self.a.sql.makeCharacter(1, "Hero", "greenvale", 100.0, 0.0, 100.0)
        self.enterInstance(self.a, p, cid, 1)
        self.a.world.instances.onEvict = lambda player: None  # it stays inside
        self.a.world.instances.close(p.instance_id)
        failure = self.failureResultOf(self.reopen(self.a, p.instance_id))
        self.assertEqual((failure.value.code, failure.value.retry_after), (errors.UNAVAILABLE, 1.0))
        # Nor elsewhere: its row is closed, and its host holds the key.
        beat(*self.nodes())
        failure = self.failureResultOf(self.reopen(self.b, p.instance_id))
        self.assertEqual((failure.value.code, failure.value.retry_after), (errors.UNAVAILABLE, 1.0))


def _txn_bind(cursor, cid, iid, resetAt):
    cursor.execute("INSERT INTO instance_lockouts (character_id, template, instance_id, reset_at) "
                   "VALUES (?, 'crypt', ?, ?)", (cid, iid, resetAt))


class _ReopenStoreTests:
    """reopenInstance on a real database: one conditional UPDATE, the same on both dialects."""

    dialect = None

    def setUp(self):
        return ensureDeferred(self._setUp())

    async def _setUp(self):
        self.sql = await openStore(self, reactor, self.dialect)
        self.cids = await makeCharacters(self.sql, 1, ["Ann", "Bob"])

    async def closedCopy(self, resetAt=None):
        iid = await createInstance(self.sql, "crypt", "n1", "p1", 100.0)
        await closeInstance(self.sql, iid, 200.0)
        if resetAt is not None:
            await self.sql.runInteraction(_txn_bind, self.cids[0], iid, resetAt)
        return iid

    async def test_reopenedWhileALockoutRuns(self):
        """A closed row with a lockout running on it is opened again on the new node, created_at now; nothing else is."""
        saved = await self.closedCopy(resetAt=1000.0)
        row, reopened = await reopenInstance(self.sql, saved, "n2", 500.0)
        self.assertTrue(reopened)
        self.assertEqual((row.id, row.node_id, row.party_id, row.created_at, row.closed_at),
                         (saved, "n2", "p1", 500.0, None))
        # Open now: a second call moves it as an adoption does, without re-opening.
        row, reopened = await reopenInstance(self.sql, saved, "n3", 600.0)
        self.assertEqual((reopened, row.node_id, row.created_at, row.closed_at), (False, "n3", 500.0, None))

    async def test_notAfterTheReset(self):
        """A closed row whose lockouts have all reset (or that has none) stays closed; an unknown id is None."""
        reset = await self.closedCopy(resetAt=500.0)
        unbound = await self.closedCopy()
        for iid in (reset, unbound):
            row, reopened = await reopenInstance(self.sql, iid, "n2", 500.0)
            self.assertEqual((reopened, row.node_id, row.closed_at), (False, "n1", 200.0))
        self.assertEqual(await reopenInstance(self.sql, 4242, "n2", 500.0), (None, False))


class MariaDBReopenStoreTests(_ReopenStoreTests, TestCase):
    dialect = "mysql"


class SQLiteReopenStoreTests(_ReopenStoreTests, TestCase):
    dialect = "sqlite"
