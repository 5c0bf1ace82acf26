"""Hosting instances in-process: create on the least-loaded node, tickets, closing, adoption after a crash, IInstances."""

from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from mmoshard.interfaces import IInstances
from mmoshard.world.instances import errors
from mmoshard.world.instances.data import Entrance, InstanceSpec, Placement
from mmoshard.world.instances.errors import InstanceError
from mmoshard.world.instances.host import TICKET_TTL, Instance, hostKey
from mmoshard.world.instances.store import loadInstance
from mmoshard.world.test.harness import WorldHarness, events
from mmoshard.world.zones import Portal, Rect, ZoneSpec

ROSTER = [11, 12, 13]


def crypt(id="crypt", **overrides):
    """A small hand-built template whose entrance is in greenvale."""
    layout = ZoneSpec(id=id, width=100.0, depth=100.0, spawns=((10.0, 0.0, 10.0),))
    values = dict(id=id, name="The Crypt", kind="dungeon", party_size=5, layout=layout,
                  exit=Rect(0.0, 0.0, 2.0, 2.0),
                  entrance=Entrance("greenvale", Rect(300.0, 300.0, 304.0, 304.0), (310.0, 0.0, 310.0)),
                  bosses=(), empty_timeout=60.0, max_duration=600.0)
    values.update(overrides)
    return InstanceSpec(**values)


TEMPLATES = {"crypt": crypt(), "vault": crypt("vault")}


def settle(h, turns=6):
    """Let the memory store deliver what was published (it delivers from the clock)."""
    for _ in range(turns):
        h.clock.advance(0)


def beat(*harnesses):
    """Write each node's directory entry now (its heartbeat loop does not run in tests)."""
    for h in harnesses:
        h.testCase.successResultOf(Deferred.fromCoroutine(h.directory.beat()))


class HostTestCase(TestCase):
    """Two world nodes sharing a clock, a memory store and a database."""

    def setUp(self):
        self.a = WorldHarness(self, "world-a", templates=TEMPLATES, zones=["greenvale"])
        self.b = self.a.peerOf("world-b", templates=TEMPLATES, zones=["greenvale"])
        beat(self.a, self.b)

    def nodes(self):
        return (self.a, self.b)

    def create(self, h, template="crypt", roster=ROSTER, partyId=None):
        d = h.world.instances.create(template, roster, partyId)
        settle(h)
        return d

    def created(self, h, template="crypt", roster=ROSTER, partyId=None):
        """@return: the Placement of a create from node C{h} that must succeed."""
        return self.successResultOf(self.create(h, template, roster, partyId))

    def refused(self, d):
        """@return: the code of the InstanceError C{d} failed with."""
        return self.failureResultOf(d, InstanceError).value.code

    def hostOf(self, placement):
        return {h.world.instances.nodeId: h for h in self.nodes()}[placement.node]

    def enterInstance(self, host, placement, cid, account):
        """Character C{cid} (placed in the instance's zone) enters the hosting node."""
        host.sql.conn.execute("UPDATE characters SET zone = ?, x = 10, z = 10 WHERE id = ?",
                              (placement.zone, cid))
        host.sql.conn.commit()
        peer = host.client(account)
        reply = host.enter(peer, cid)
        self.assertEqual(reply["zone"]["id"], placement.zone)
        return peer

    def crash(self, h):
        """Node C{h} dies: its loops stop, its inbox and directory entry go, nothing is released."""
        h.world.housekeeping.stop()
        for loop in h.world.loops.values():
            loop.stop()
        self.successResultOf(h.world.instances.subscription.unsubscribe())
        self.successResultOf(h.volatile.delete(f"dir:proc:{h.world.nodeId}"))


class CreateTests(HostTestCase):
    def test_leastLoaded(self):
        """A create goes to the least-loaded node offering the template; ties go to the first node id."""
        first = self.created(self.b)
        self.assertEqual(first.node, "world-a")
        beat(self.a, self.b)
        second = self.created(self.a)
        self.assertEqual((second.node, second.endpoints), ("world-b", {"tcp": "world-b.example:7000"}))
        self.assertIsInstance(second, Placement)
        self.assertEqual(second.zone, f"crypt/{second.instance_id}")
        self.assertEqual(sorted(second.tickets), ROSTER)
        self.assertEqual(len(set(second.tickets.values())), 3)

    def test_onlyNodesOfferingIt(self):
        """A node not offering the template is never chosen, however idle."""
        b = self.a.peerOf("world-c", templates=TEMPLATES, offered=["vault"], zones=["greenvale"])
        beat(self.a, b)
        for _ in range(3):
            self.assertEqual(self.created(b).node in ("world-a", "world-b"), True)
        self.assertEqual(self.created(self.a, "vault").node in ("world-a", "world-b", "world-c"), True)
        self.assertFalse(b.world.instances.host.instances and
                         any(i.template == "crypt" for i in b.world.instances.host.instances.values()))

    def test_noCapacity(self):
        """No node offering the template, or every one full: instance.no_capacity; an unknown one: unknown_template."""
        for h in self.nodes():
            h.world.instances.host.offered = ("vault",)
            self.successResultOf(h.world.instances.start())
        beat(self.a, self.b)
        self.assertEqual(self.refused(self.create(self.a)), errors.NO_CAPACITY)
        self.assertEqual(self.refused(self.create(self.a, "nowhere")), errors.UNKNOWN_TEMPLATE)
        for h in self.nodes():
            h.world.instances.host.maxInstances = 1
        self.created(self.a, "vault")
        self.created(self.a, "vault")
        # Both full now, whether the directory says so yet or not.
        self.assertEqual(self.refused(self.create(self.a, "vault")), errors.NO_CAPACITY)
        beat(self.a, self.b)
        self.assertEqual(self.refused(self.create(self.b, "vault")), errors.NO_CAPACITY)

    def test_fullNodePassesOn(self):
        """A node the directory shows with room but full by now answers no_capacity: the next one takes it."""
        self.a.world.instances.host.maxInstances = 0
        self.assertEqual(self.created(self.b).node, "world-b")

    def test_unavailableAfterTimeout(self):
        """A node that does not answer: instance.unavailable once instance_timeout has passed, not before."""
        self.a.world.instances.host.offered = ()
        self.successResultOf(self.a.world.instances.start())
        beat(self.a)
        self.b.sql.holding = True  # b hangs on its database
        d = self.create(self.a)
        self.a.clock.advance(4.9)
        self.assertNoResult(d)
        self.a.clock.advance(0.2)
        failure = self.failureResultOf(d, InstanceError)
        self.assertEqual((failure.value.code, failure.value.retry_after), (errors.UNAVAILABLE, 5.0))
        self.b.sql.unhold()

    def test_nobodyListening(self):
        """A node in the directory that no longer listens is skipped; if it was the only one: unavailable at once."""
        self.a.world.instances.host.offered = ()
        self.successResultOf(self.a.world.instances.start())
        beat(self.a)
        self.successResultOf(self.b.world.instances.subscription.unsubscribe())
        self.assertEqual(self.refused(self.create(self.a)), errors.UNAVAILABLE)

    def test_idsUnique(self):
        """Instance ids are unique across the nodes: one SQL row each, on the node hosting it."""
        ids = []
        for i in range(6):
            h = self.nodes()[i % 2]
            p = self.created(h)
            beat(self.a, self.b)
            ids.append(p.instance_id)
            row = self.successResultOf(loadInstance(h.sql, p.instance_id))
            self.assertEqual((row.template, row.node_id, row.closed_at), ("crypt", p.node, None))
        self.assertEqual(len(set(ids)), 6)

    def test_hostedAndListed(self):
        """The instance's zone is hosted (zone.instance its Instance, tick loop running) and listed in the directory."""
        p = self.created(self.a, partyId="party-1")
        host = self.hostOf(p)
        zone = host.world.zones[p.zone]
        self.assertIsInstance(zone.instance, Instance)
        self.assertEqual((zone.instance.id, zone.instance.partyId, zone.instance.killed),
                         (p.instance_id, "party-1", set()))
        self.assertIsNone(host.world.zones["greenvale"].instance)
        ticks = zone.stats.ticks
        host.advance(0.1, 3)
        self.assertGreater(zone.stats.ticks, ticks)
        self.assertEqual(self.successResultOf(host.volatile.get(hostKey(p.instance_id))), p.node.encode())
        beat(host)
        entries = self.successResultOf(self.b.directory.list())
        [entry] = [e for e in entries if e.node_id == p.node]
        self.assertIn(p.zone, entry.info["zones"])
        self.assertEqual(entry.load["instances"], 1)
        self.assertEqual(entry.info["instances"], ["crypt", "vault"])

    def test_provider(self):
        """The world role provides IInstances: the service's Instances, which verifies."""
        self.assertTrue(verifyObject(IInstances, self.a.world.instances))
        self.assertIs(self.a.node.lookup(IInstances), self.a.world.instances)


class TicketTests(HostTestCase):
    def admit(self, h, ticket, cid):
        return h.world.instances.admit(ticket, cid)

    def test_admitOnceForItsCharacter(self):
        """A ticket admits its own character once, on any node; another character's use leaves it in place."""
        p = self.created(self.a)
        ticket = p.tickets[11]
        self.assertEqual(self.refused(self.admit(self.a, ticket, 12)), errors.BAD_TICKET)
        self.assertEqual(self.successResultOf(self.admit(self.b, ticket, 11)), p.instance_id)
        self.assertEqual(self.refused(self.admit(self.a, ticket, 11)), errors.BAD_TICKET)
        self.assertEqual(self.refused(self.admit(self.a, "made-up", 11)), errors.BAD_TICKET)

    def test_expires(self):
        """A ticket not used within its TTL admits nobody."""
        p = self.created(self.a)
        self.a.clock.advance(TICKET_TTL + 1)
        self.assertEqual(self.refused(self.admit(self.a, p.tickets[12], 12)), errors.BAD_TICKET)


class ClosingTests(HostTestCase):
    def assertClosed(self, host, placement):
        self.assertNotIn(placement.zone, host.world.zones)
        self.assertNotIn(placement.instance_id, host.world.instances.host.instances)
        self.assertNotIn(placement.zone, host.world.loops)
        row = self.successResultOf(loadInstance(host.sql, placement.instance_id))
        self.assertIsNotNone(row.closed_at)
        self.assertIsNone(self.successResultOf(host.volatile.get(hostKey(placement.instance_id))))

    def test_emptyTimeout(self):
        """An instance nobody is in closes empty_timeout seconds after it was made, and the directory stops listing it."""
        p = self.created(self.a)
        self.a.advance(1.0, 58)
        self.assertIn(p.zone, self.a.world.zones)
        self.a.advance(1.0, 3)
        self.assertClosed(self.a, p)
        beat(self.a)
        [entry] = [e for e in self.successResultOf(self.b.directory.list()) if e.node_id == "world-a"]
        self.assertNotIn(p.zone, entry.info["zones"])

    def test_playerKeepsItOpenThenEmptyTimeout(self):
        """A player inside keeps it open; empty_timeout counts from when the last one left."""
        p = self.created(self.a)
        cid = self.a.sql.makeCharacter(1, "Hero", "greenvale", 100.0, 0.0, 100.0)
        peer = self.enterInstance(self.a, p, cid, 1)
        self.a.advance(1.0, 100)
        self.assertIn(p.zone, self.a.world.zones)
        self.a.request(peer, "world.leave")
        self.a.advance(1.0, 58)
        self.assertIn(p.zone, self.a.world.zones)
        self.a.advance(1.0, 3)
        self.assertClosed(self.a, p)

    def test_maxDurationEvictsFirst(self):
        """After max_duration the players inside go to the entrance's arrive point first (by default), then it closes."""
        p = self.created(self.a)
        cid = self.a.sql.makeCharacter(1, "Hero", "greenvale", 100.0, 0.0, 100.0)
        peer = self.enterInstance(self.a, p, cid, 1)
        self.a.advance(1.0, 601)
        [moved] = events(peer, "world.zone")
        self.assertEqual((moved["zone"]["id"], moved["x"], moved["z"]), ("greenvale", 310.0, 310.0))
        self.assertEqual(self.a.sql.row(cid)[:2], ("greenvale", 310.0))
        self.assertClosed(self.a, p)

    def test_onEvict(self):
        """A registered onEvict callback sends the players out instead; closing waits until they are out."""
        p = self.created(self.a)
        cid = self.a.sql.makeCharacter(1, "Hero", "greenvale", 100.0, 0.0, 100.0)
        self.enterInstance(self.a, p, cid, 1)
        evicted = []
        self.a.world.instances.onEvict = evicted.append
        d = self.a.world.instances.close(p.instance_id)
        self.assertEqual([e.characterId for e in evicted], [cid])
        self.assertNoResult(d)
        self.a.advance(1.0, 2)
        self.assertEqual(len(evicted), 3)  # asked again each second while still inside
        self.assertIn(p.zone, self.a.world.zones)
        player = evicted[0]
        self.a.world.transfers.portal(player.entity, Portal(Rect(0, 0, 0, 0), "greenvale", (200.0, 0.0, 200.0)))
        self.a.advance(1.0, 1)
        self.successResultOf(d)
        self.assertClosed(self.a, p)


    def test_closingIsClosedForOtherNodes(self):
        """While a closing copy still sends its players out, its row is closed: another node's locate answers None and reopen instance.unavailable, not a placement into it."""
        p = self.created(self.a)
        cid = self.a.sql.makeCharacter(1, "Hero", "greenvale", 100.0, 0.0, 100.0)
        self.enterInstance(self.a, p, cid, 1)
        self.a.world.instances.onEvict = lambda player: None  # it does not get out
        d = self.a.world.instances.close(p.instance_id)
        self.a.advance(1.0, 2)
        self.assertNoResult(d)
        self.assertIsNotNone(self.successResultOf(loadInstance(self.a.sql, p.instance_id)).closed_at)
        located = self.b.world.instances.locate(p.instance_id)
        settle(self.b)
        self.assertIsNone(self.successResultOf(located))
        reopened = self.b.world.instances.reopen(p.instance_id)
        settle(self.b)
        self.assertEqual(self.refused(reopened), errors.UNAVAILABLE)


    def test_failingSecondStopsNothingElse(self):
        """An instance whose second raises is logged; the other instances close on time and the world's second (saves, leases) goes on."""
        bad, good = self.created(self.a), self.created(self.a)
        host = self.a.world.instances.host
        broken = host.instances[bad.instance_id]
        self.patch(broken, "spec", None)  # its second reads spec.empty_timeout
        self.a.advance(1.0, 61)
        self.assertGreaterEqual(len(self.flushLoggedErrors(AttributeError)), 1)
        self.assertNotIn(good.instance_id, host.instances)
        self.assertTrue(self.a.world.housekeeping.running)
        self.patch(self.a.world.instances, "everySecond", lambda second: 1 / 0)
        second = self.a.world.second
        self.a.advance(1.0, 2)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 2)
        self.assertEqual(self.a.world.second, second + 2)


class ThreeNodeTestCase(HostTestCase):
    """Three world nodes sharing a clock, a memory store and a database."""

    def setUp(self):
        HostTestCase.setUp(self)
        self.c = self.a.peerOf("world-c", templates=TEMPLATES, zones=["greenvale"])
        beat(self.c)

    def nodes(self):
        return (self.a, self.b, self.c)


class AdoptionTests(ThreeNodeTestCase):
    def locate(self, h, iid):
        d = h.world.instances.locate(iid)
        settle(h)
        return d

    def test_locateHosted(self):
        """locate answers where a live instance is, from any node, without tickets."""
        p = self.created(self.a)
        for h in self.nodes():
            where = self.successResultOf(self.locate(h, p.instance_id))
            self.assertEqual((where.node, where.zone, where.tickets), ("world-a", p.zone, {}))

    def test_adoptedAfterHostDies(self):
        """
        An open instance whose host died is re-created with the same id by
        the least-loaded node on the next locate, once the dead host's key
        ran out (unavailable with retry_after before); its killed encounters
        stay killed and its SQL row names the new host.
        """
        p = self.created(self.a)
        iid = p.instance_id
        self.a.sql.conn.execute(
            "INSERT INTO instance_kills (instance_id, encounter, killed_at, roster, seed) "
            "VALUES (?, 'warden', 1, '[]', 's')", (iid,))
        self.a.sql.conn.commit()
        self.crash(self.a)
        beat(self.b, self.c)
        failure = self.failureResultOf(self.locate(self.b, iid), InstanceError)
        self.assertEqual(failure.value.code, errors.UNAVAILABLE)
        self.assertGreater(failure.value.retry_after, 10.0)
        self.b.advance(1.0, 16)
        beat(self.b, self.c)
        where = self.successResultOf(self.locate(self.c, iid))
        self.assertEqual((where.node, where.zone, where.instance_id), ("world-b", p.zone, iid))
        instance = self.b.world.zones[p.zone].instance
        self.assertEqual((instance.id, instance.killed, instance.adopted), (iid, {"warden"}, True))
        self.assertEqual(instance.createdAt, self.successResultOf(loadInstance(self.b.sql, iid)).created_at)
        self.assertEqual(self.successResultOf(loadInstance(self.b.sql, iid)).node_id, "world-b")
        # Everyone finds it there now; nobody else re-creates it.
        for h in (self.b, self.c):
            self.assertEqual(self.successResultOf(self.locate(h, iid)).node, "world-b")
        self.assertNotIn(p.zone, self.c.world.zones)

    def test_restartUnderTheSameNodeIdAdoptsAtOnce(self):
        """
        A node killed and restarted under the same node id before its host
        key ran out re-creates the instance it hosted on the first login
        into it, at once (its killed encounters dead, the key still its
        own): the character enters it there.  Other nodes answer that node
        and do not adopt it.  (It used to answer a placement on itself
        without hosting it: the login was redirected to the node itself
        until the key expired.)
        """
        p = self.created(self.a)
        iid = p.instance_id
        self.a.sql.conn.execute(
            "INSERT INTO instance_kills (instance_id, encounter, killed_at, roster, seed) "
            "VALUES (?, 'warden', 1, '[]', 's')", (iid,))
        self.a.sql.conn.commit()
        cid = self.a.sql.makeCharacter(1, "Hero", "greenvale", 100.0, 0.0, 100.0)
        self.enterInstance(self.a, p, cid, 1)
        self.crash(self.a)
        again = self.a.peerOf("world-a", templates=TEMPLATES, zones=["greenvale"])
        beat(again, self.b, self.c)
        self.assertEqual(self.successResultOf(again.volatile.get(hostKey(iid))), b"world-a")
        self.assertEqual(self.successResultOf(self.locate(self.b, iid)).node, "world-a")
        self.assertNotIn(p.zone, self.b.world.zones)
        peer = again.client(1)
        reply = again.enter(peer, cid)
        self.assertNotIn("redirect", reply)
        self.assertEqual(reply["zone"]["id"], p.zone)
        instance = again.world.zones[p.zone].instance
        self.assertEqual((instance.id, instance.killed, instance.adopted), (iid, {"warden"}, True))
        for h in (again, self.b, self.c):
            self.assertEqual(self.successResultOf(self.locate(h, iid)).node, "world-a")
        self.assertNotIn(p.zone, self.c.world.zones)

    def restartAfterCrash(self, **world):
        """Node a dies hosting a crypt, and is back under its node id with C{world}: @return: (the new node, the crypt's Placement)."""
        p = self.created(self.a)
        self.crash(self.a)
        again = self.a.peerOf("world-a", templates=TEMPLATES, zones=["greenvale"], **world)
        beat(again, self.b, self.c)
        return again, p

    def test_restartNotOfferingItReleases(self):
        """A node back under its node id that no longer offers the template lets its key go: another node adopts the instance at once."""
        again, p = self.restartAfterCrash(offered=("vault",))
        where = self.successResultOf(self.locate(again, p.instance_id))
        self.assertIn(where.node, ("world-b", "world-c"))
        self.assertIn(p.zone, self.hostOf(where).world.zones)
        self.assertNotIn(p.zone, again.world.zones)

    def test_restartFullWaitsForItsKey(self):
        """
        A node back under its node id that is full keeps its key: the
        instance is unavailable (retry_after: the key's time left) until the
        key runs out; then another node adopts it.
        """
        again, p = self.restartAfterCrash(max_instances=1)
        self.assertEqual(self.created(again, "vault").node, "world-a")
        failure = self.failureResultOf(self.locate(again, p.instance_id), InstanceError)
        self.assertEqual(failure.value.code, errors.UNAVAILABLE)
        self.assertGreater(failure.value.retry_after, 10.0)
        again.advance(1.0, 16)
        beat(again, self.b, self.c)
        self.assertIn(self.successResultOf(self.locate(again, p.instance_id)).node,
                      ("world-b", "world-c"))

    def test_onlyOneAdopter(self):
        """Two nodes adopting the same instance at once: one hosts it, the other answers that node."""
        p = self.created(self.a)
        self.crash(self.a)
        self.a.clock.advance(16)
        self.b.sql.holding = True  # b's adoption waits on its database, holding the key
        db = Deferred.fromCoroutine(self.b.world.instances.host.adopt(p.instance_id))
        dc = Deferred.fromCoroutine(self.c.world.instances.host.adopt(p.instance_id))
        self.assertEqual(self.successResultOf(dc), {"node": "world-b"})
        self.assertNoResult(db)
        self.b.sql.unhold()
        self.assertEqual(self.successResultOf(db)["zone"], p.zone)
        self.assertIn(p.zone, self.b.world.zones)
        self.assertNotIn(p.zone, self.c.world.zones)

    def test_closedNotAdopted(self):
        """A closed instance is never re-created: locate answers None, as for an unknown id; adopt refuses it."""
        p = self.created(self.a)
        self.successResultOf(self.a.world.instances.close(p.instance_id))
        self.assertIsNone(self.successResultOf(self.locate(self.b, p.instance_id)))
        self.assertIsNone(self.successResultOf(self.locate(self.b, 999)))
        self.assertEqual(self.refused(Deferred.fromCoroutine(
            self.b.world.instances.host.adopt(p.instance_id))), errors.CLOSED)

    def test_stopReleasesForAdoption(self):
        """A node stopping keeps its instances open in SQL but releases them: the next locate adopts at once."""
        p = self.created(self.a)
        self.successResultOf(self.a.stop())
        self.successResultOf(Deferred.fromCoroutine(self.a.directory.stop()))
        self.assertIsNone(self.successResultOf(self.b.volatile.get(hostKey(p.instance_id))))
        where = self.successResultOf(self.locate(self.c, p.instance_id))
        self.assertIn(where.node, ("world-b", "world-c"))

    def test_hostKeyRefreshed(self):
        """The host keeps its key alive past its TTL while it runs."""
        p = self.created(self.a)
        self.a.advance(1.0, 40)
        self.assertEqual(self.successResultOf(self.a.volatile.get(hostKey(p.instance_id))), b"world-a")


class CloseAndListTests(HostTestCase):
    def test_closeFromAnotherNode(self):
        """close() from another node closes it on its host (through the store); list() no longer has it."""
        p1 = self.created(self.a)
        p2 = self.created(self.a, "vault")
        listing = self.successResultOf(self.b.world.instances.list())
        self.assertEqual([(i["instance_id"], i["template"], i["node"], i["players"]) for i in listing],
                         [(p1.instance_id, "crypt", "world-a", 0), (p2.instance_id, "vault", "world-a", 0)])
        d = self.b.world.instances.close(p1.instance_id)
        settle(self.b)
        self.successResultOf(d)
        self.assertNotIn(p1.zone, self.a.world.zones)
        listing = self.successResultOf(self.b.world.instances.list())
        self.assertEqual([i["instance_id"] for i in listing], [p2.instance_id])

    def test_closeOrphanAndUnknown(self):
        """Closing an instance whose host died closes its row; an unknown id is instance.closed."""
        p = self.created(self.a)
        self.crash(self.a)
        self.a.clock.advance(16)
        self.successResultOf(self.b.world.instances.close(p.instance_id))
        self.assertIsNotNone(self.successResultOf(loadInstance(self.b.sql, p.instance_id)).closed_at)
        self.assertEqual(self.refused(self.b.world.instances.close(4242)), errors.CLOSED)

    def test_listPlayers(self):
        """list() counts the players inside, as their host publishes them in the directory."""
        p = self.created(self.a)
        host = self.hostOf(p)
        cid = host.sql.makeCharacter(1, "Hero", "greenvale", 100.0, 0.0, 100.0)
        self.enterInstance(host, p, cid, 1)
        host.advance(1.0, 1)
        beat(host)
        [listed] = self.successResultOf(self.b.world.instances.list())
        self.assertEqual((listed["players"], listed["node"]), (1, "world-a"))


class MetricsTests(HostTestCase):
    def test_oneSeriesPerTemplate(self):
        """The copies of a template share their metrics series and tick log: labelled by template, not by copy."""
        from prometheus_client import generate_latest

        self.created(self.a)
        self.created(self.a)
        self.a.advance(0.1, 3)
        text = generate_latest(self.a.node.metrics).decode()
        self.assertIn('mmoshard_world_players{zone="crypt"} 0.0', text)
        self.assertIn('mmoshard_world_tick_seconds_count{zone="crypt"} 6.0', text)
        self.assertNotIn('zone="crypt/', text)
        self.assertEqual(sorted(self.a.world.tickLog), ["crypt", "greenvale"])
        self.assertEqual(len(self.a.world.tickLog["crypt"]), 6)


class ShippedTemplateTests(TestCase):
    def test_shippedTemplatesHost(self):
        """Each shipped template (etc/instances.toml) makes a hosted copy of its layout, spawn point first."""
        h = WorldHarness(self)
        for template, spec in h.world.config.templates.items():
            # An arena is made for a match of two teams.
            match = {"teams": [[1], [2]], "matchId": "q/1"} if spec.arena else {}
            p = self.successResultOf(h.world.instances.create(template, [1, 2] if match else [1],
                                                              **match))
            zone = h.world.zones[p.zone]
            self.assertEqual((zone.spec.width, zone.spec.spawns), (spec.layout.width, spec.layout.spawns))
            self.assertIs(zone.instance.spec, spec)


class OrphanTests(HostTestCase):
    def test_expiredOrphanNotAdopted(self):
        """An instance whose host died and whose max_duration has passed is closed by the next locate, not re-created."""
        p = self.created(self.a)
        self.crash(self.a)
        self.b.advance(1.0, 601)
        beat(self.b)
        self.assertIsNone(self.successResultOf(self.b.world.instances.locate(p.instance_id)))
        self.assertIsNotNone(self.successResultOf(loadInstance(self.b.sql, p.instance_id)).closed_at)
        self.assertNotIn(p.zone, self.b.world.zones)

    def test_localCreateWithinTimeout(self):
        """A create this process makes itself also answers within instance_timeout when its database hangs."""
        self.b.world.instances.host.offered = ()
        self.a.sql.holding = True
        d = self.create(self.a)
        self.a.clock.advance(5.1)
        self.assertEqual(self.refused(d), errors.UNAVAILABLE)
        self.a.sql.unhold()
