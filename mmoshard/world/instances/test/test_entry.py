"""Entering and leaving instances in-process: the party's copy, portals, return points, lockouts, the party grace, tickets, logging in, two nodes."""

from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from mmoshard.testing import DictParties
from mmoshard.interfaces import IParties
from mmoshard.world.instances import errors
from mmoshard.world.instances.copies import ownerKey, partyKey
from mmoshard.world.instances.entry import EntrancePortal, ExitPortal
from mmoshard.world.instances.returns import loadReturn
from mmoshard.world.test.harness import WorldHarness

# The shipped dungeon (etc/instances.toml): its entrance in greenvale and its layout.
DUNGEON = "deadmines"
ENTRANCE_ARRIVE = (300.0, 0.0, 50.0)
SPAWN = (80.0, 12.0)


# IParties over a dict: party id -> member ids, leader first.
FakeParties = DictParties


class Client:
    """A player's connection to one harness node, keeping every message it got."""

    def __init__(self, h, accountId):
        self.h = h
        self.peer = h.client(accountId)
        self.inbox = []
        self.k = 0

    def pull(self):
        for m in self.peer.received():
            if m["t"] in ("world.zone", "world.correct", "world.reset") or m.get("id") == self.h.lastId:
                # The correction count the next move carries.
                self.k = m.get("k", self.k)
            self.inbox.append(m)

    def request(self, type, **body):
        """@return: the answer to request C{type}, keeping the events that came before it."""
        h = self.h
        h.lastId += 1
        rid = h.lastId
        self.peer.send(dict(body, t=type, id=rid))
        for _ in range(40):
            self.pull()
            for m in self.inbox:
                if m.get("id") == rid:
                    self.inbox.remove(m)
                    return m
            h.clock.advance(0.01)
        raise AssertionError(f"no reply to {type}")

    def events(self, type):
        """@return: (and forget) the events of C{type} received so far."""
        self.pull()
        found = [m for m in self.inbox if m["t"] == type]
        self.inbox = [m for m in self.inbox if m["t"] != type]
        return found

    def walk(self, x, z):
        """Move to (x, z) (at most 3.5 m from where it stands) and let the zone tick."""
        self.pull()
        self.peer.send({"t": "world.move", "x": x, "z": z, "k": self.k})
        self.h.advance(0.1, 6)


class EntryTestCase(TestCase):
    """One world node hosting every zone and offering every template, with parties."""

    def setUp(self):
        self.parties = FakeParties()
        self.h = WorldHarness(self, parties=self.parties, leave_party_grace=20.0)
        self.sql = self.h.sql

    def character(self, account, x=200.0, z=200.0, zone="greenvale"):
        return self.sql.makeCharacter(account, f"Char{account}", zone, x, 0.0, z)

    def login(self, account, cid, h=None, **extra):
        c = Client(h or self.h, account)
        reply = c.request("world.enter", character_id=cid, **extra)
        self.assertEqual(reply["t"], "world.enter", reply)
        c.zone = reply["zone"]["id"]
        return c

    def entered(self, client, **body):
        """@return: the reply of a world.instance.enter that must succeed."""
        reply = client.request("world.instance.enter", **body)
        self.assertEqual(reply["t"], "world.instance.enter", reply)
        return reply

    def refused(self, client, type="world.instance.enter", **body):
        reply = client.request(type, **body)
        self.assertEqual(reply["t"], "error", reply)
        return reply

    def zoneOf(self, cid, h=None):
        return (h or self.h).world.roster.byCharacter[cid].zone.id

    def returnOf(self, cid):
        return self.successResultOf(loadReturn(self.sql, cid))

    def bind(self, cid, instanceId, resetIn=3600.0, template=DUNGEON):
        self.sql.conn.execute(
            "INSERT INTO instance_lockouts (character_id, template, instance_id, reset_at) "
            "VALUES (?, ?, ?, ?)", (cid, template, instanceId, self.h.clock.seconds() + resetIn))
        self.sql.conn.commit()

    def party(self, *members, pid="p1"):
        self.parties.parties[pid] = list(members)


class PartyCopyTests(EntryTestCase):
    def test_fakePartiesIsIParties(self):
        """The tests' parties are a whole IParties."""
        self.assertTrue(verifyObject(IParties, self.parties))

    def test_leaderCreatesAndEnters(self):
        """The leader's request makes the party's copy and moves the leader in as a local transfer; its return point is where it stood."""
        leader, member = self.character(1, 200.0, 210.0), self.character(2)
        self.party(leader, member)
        c = self.login(1, leader)
        reply = self.entered(c, template=DUNGEON)
        iid = reply["instance_id"]
        zone = f"{DUNGEON}/{iid}"
        self.assertEqual((reply["zone"], reply["template"], reply["node"]), (zone, DUNGEON, "world-a"))
        [moved] = c.events("world.zone")
        self.assertEqual((moved["zone"]["id"], moved["x"], moved["z"]), (zone, *SPAWN))
        self.assertEqual(self.zoneOf(leader), zone)
        self.assertEqual(self.sql.row(leader)[:1], (zone,))
        point = self.returnOf(leader)
        self.assertEqual((point.instance_id, point.zone, point.x, point.z), (iid, "greenvale", 200.0, 210.0))
        self.assertEqual(self.successResultOf(self.h.volatile.get(partyKey("p1", DUNGEON))), str(iid).encode())
        self.assertEqual(self.successResultOf(self.h.volatile.get(ownerKey(iid))), b"p1")
        # Asking again from inside answers the same and moves nothing.
        self.assertEqual(self.entered(c, template=DUNGEON)["instance_id"], iid)
        self.assertEqual(c.events("world.zone"), [])

    def test_instanceZoneNamesItsExit(self):
        """The zone a player entering an instance is told of draws the layout's terrain and its exit."""
        c = self.login(1, self.character(1))
        self.entered(c, template=DUNGEON)
        [moved] = c.events("world.zone")
        zone = moved["zone"]
        self.assertEqual(zone["size"], [160.0, 480.0])
        self.assertIn([0.0, 250.0, 48.0, 270.0], zone["blocked"])
        self.assertEqual(zone["portals"], [{"kind": "exit", "rect": [72.0, 0.0, 88.0, 4.0], "to": None}])
        self.assertEqual(zone["graveyard"], [80.0, 16.0])

    def test_memberJoinsTheSameCopy(self):
        """A member entering after the leader gets the party's copy; before the leader it is refused."""
        leader, member = self.character(1), self.character(2)
        self.party(leader, member)
        m = self.login(2, member)
        self.assertEqual(self.refused(m, template=DUNGEON)["code"], errors.NOT_LEADER)
        self.assertEqual(self.zoneOf(member), "greenvale")
        iid = self.entered(self.login(1, leader), template=DUNGEON)["instance_id"]
        self.assertEqual(self.entered(m, template=DUNGEON)["instance_id"], iid)
        self.assertEqual(self.zoneOf(member), f"{DUNGEON}/{iid}")

    def test_soloPlayersHaveTheirOwn(self):
        """Characters with no party each get their own copy, and the same one again after leaving it."""
        a, b = self.character(1), self.character(2)
        ca, cb = self.login(1, a), self.login(2, b)
        first = self.entered(ca, template=DUNGEON)["instance_id"]
        second = self.entered(cb, template=DUNGEON)["instance_id"]
        self.assertNotEqual(first, second)
        self.assertEqual(ca.request("world.instance.leave")["zone"], "greenvale")
        self.assertEqual(self.entered(ca, template=DUNGEON)["instance_id"], first)

    def test_partySize(self):
        """A party larger than the template's party_size cannot enter; an unknown template is refused."""
        ids = [self.character(n) for n in range(1, 7)]
        self.party(*ids)
        c = self.login(1, ids[0])
        self.assertEqual(self.refused(c, template=DUNGEON)["code"], errors.PARTY_FULL)
        self.assertEqual(self.refused(c, template="nowhere")["code"], errors.UNKNOWN_TEMPLATE)
        self.assertEqual(self.zoneOf(ids[0]), "greenvale")

    def test_fullCopyRefusesMore(self):
        """A copy holding party_size players lets nobody else in."""
        ids = [self.character(n) for n in range(1, 7)]
        self.party(*ids[:5])
        clients = [self.login(n + 1, cid) for n, cid in enumerate(ids)]
        for c in clients[:5]:
            self.entered(c, template=DUNGEON)
        iid = self.entered(clients[0], template=DUNGEON)["instance_id"]
        # A sixth character, not in the party, with a ticket into that copy.
        tickets = self.successResultOf(self.h.world.instances.host.issueTickets(iid, [ids[5]]))
        self.assertEqual(self.refused(clients[5], ticket=tickets[ids[5]])["code"], errors.PARTY_FULL)
        self.assertEqual(self.zoneOf(ids[5]), "greenvale")

    def test_badRequests(self):
        """Neither or both of template and ticket, or a non-str, is a bad request; a character not in the world gets not_in_world."""
        c = self.login(1, self.character(1))
        for body in ({}, {"template": DUNGEON, "ticket": "x"}, {"template": 5}, {"ticket": ""}):
            self.assertEqual(self.refused(c, **body)["code"], "protocol.bad_request")
        outsider = Client(self.h, 2)
        self.assertEqual(self.refused(outsider, template=DUNGEON)["code"], "world.not_in_world")
        self.assertEqual(self.refused(c, "world.instance.leave")["code"], errors.NOT_IN_INSTANCE)


class PortalTests(EntryTestCase):
    def test_entranceDoesWhatTheRequestDoes(self):
        """Walking into the entrance takes the leader into a new copy and a member into the same; the way back is the entrance's arrive point."""
        zone = self.h.world.zones["greenvale"]
        [entrance] = [p for p in zone.spec.portals
                      if type(p) is EntrancePortal and p.template == DUNGEON]
        self.assertEqual(entrance.arrive, ENTRANCE_ARRIVE)
        leader, member = self.character(1, 293.0, 60.0), self.character(2, 293.0, 58.0)
        self.party(leader, member)
        cl, cm = self.login(1, leader), self.login(2, member)
        cl.walk(296.5, 60.0)
        [moved] = cl.events("world.zone")
        iid = int(moved["zone"]["id"].split("/")[1])
        self.assertEqual(self.returnOf(leader).arrive, ENTRANCE_ARRIVE)
        cm.walk(296.5, 58.0)
        [moved] = cm.events("world.zone")
        self.assertEqual(moved["zone"]["id"], f"{DUNGEON}/{iid}")

    def test_refusedAtTheEntrance(self):
        """A member walking in before its leader is told why and put back at the arrive point, outside."""
        leader, member = self.character(1), self.character(2, 293.0, 60.0)
        self.party(leader, member)
        cm = self.login(2, member)
        cm.walk(296.5, 60.0)
        [refusal] = cm.events("world.instance.refused")
        self.assertEqual((refusal["template"], refusal["code"]), (DUNGEON, errors.NOT_LEADER))
        e = self.h.world.roster.byCharacter[member].entity
        self.assertEqual((self.zoneOf(member), e.x, e.z), ("greenvale", 300.0, 50.0))
        [teleport] = cm.events("world.correct")
        self.assertEqual(teleport["why"], "teleport")

    def test_exitAndLeaveGoBack(self):
        """The exit portal and world.instance.leave both take the character back to its return point, which then goes."""
        cid = self.character(1, 250.0, 260.0)
        c = self.login(1, cid)
        iid = self.entered(c, template=DUNGEON)["instance_id"]
        copy = self.h.world.zones[f"{DUNGEON}/{iid}"]
        self.assertEqual([type(p) for p in copy.spec.portals], [ExitPortal])
        c.events("world.zone")
        for z in (8.5, 5.0, 2.0):
            c.walk(80.0, z)
        [back] = c.events("world.zone")
        self.assertEqual((back["zone"]["id"], back["x"], back["z"]), ("greenvale", 250.0, 260.0))
        self.assertEqual(self.sql.row(cid)[:4], ("greenvale", 250.0, 0.0, 260.0))
        self.assertIsNone(self.returnOf(cid))
        self.entered(c, template=DUNGEON)
        self.assertEqual(c.request("world.instance.leave"), {"t": "world.instance.leave",
                                                           "id": self.h.lastId, "zone": "greenvale"})
        [_, back] = c.events("world.zone")
        self.assertEqual((back["zone"]["id"], back["x"], back["z"]), ("greenvale", 250.0, 260.0))

    def test_noReturnPointGoesToTheEntrance(self):
        """A character inside with no return point leaves to the template's entrance arrive point."""
        cid = self.character(1)
        c = self.login(1, cid)
        self.entered(c, template=DUNGEON)
        self.sql.conn.execute("DELETE FROM instance_returns")
        self.sql.conn.commit()
        c.request("world.instance.leave")
        e = self.h.world.roster.byCharacter[cid].entity
        self.assertEqual((self.zoneOf(cid), e.x, e.y, e.z), ("greenvale", *ENTRANCE_ARRIVE))


class LockoutTests(EntryTestCase):
    def test_boundToAnotherCopy(self):
        """A member bound to another copy gets instance.locked with its reset time and copy; a leader bound to a copy that cannot be re-opened too."""
        leader, member = self.character(1), self.character(2)
        self.party(leader, member)
        iid = self.entered(self.login(1, leader), template=DUNGEON)["instance_id"]
        self.bind(member, 999, resetIn=500.0)
        m = self.login(2, member)
        reply = self.refused(m, template=DUNGEON)
        self.assertEqual((reply["code"], reply["reset_at"], reply["instance_id"]),
                         (errors.LOCKED, self.h.clock.seconds() + 500.0, 999))
        self.assertEqual(self.zoneOf(member), "greenvale")
        # Alone, the member leads its own party: its bound copy (999) is unknown, not re-opened.
        self.parties.parties.clear()
        self.assertEqual(self.refused(m, template=DUNGEON)["code"], errors.LOCKED)
        # After the reset it enters a copy of its own.
        self.h.clock.advance(501)
        self.successResultOf(self.h.directory.beat())
        self.assertNotEqual(self.entered(m, template=DUNGEON)["instance_id"], iid)

    def test_boundLeaderTakesItsPartyToItsCopy(self):
        """A leader bound to an open copy makes it its new party's copy, and the members enter it."""
        leader, member = self.character(1), self.character(2)
        cl, cm = self.login(1, leader), self.login(2, member)
        iid = self.entered(cl, template=DUNGEON)["instance_id"]
        cl.request("world.instance.leave")
        self.bind(leader, iid)
        self.party(leader, member, pid="p2")
        self.assertEqual(self.entered(cl, template=DUNGEON)["instance_id"], iid)
        self.assertEqual(self.entered(cm, template=DUNGEON)["instance_id"], iid)
        self.assertEqual(self.successResultOf(self.h.volatile.get(ownerKey(iid))), b"p2")

    def test_soloBoundElsewhereLeavesItsOwnCopy(self):
        """A character alone whose own copy is still open but who is bound to another enters its bound copy, not instance.locked."""
        cid = self.character(1)
        c = self.login(1, cid)
        own = self.entered(c, template=DUNGEON)["instance_id"]
        c.request("world.instance.leave")
        saved = self.successResultOf(self.h.world.instances.create(DUNGEON, [cid]))
        self.bind(cid, saved.instance_id)
        self.assertEqual(self.entered(c, template=DUNGEON)["instance_id"], saved.instance_id)
        self.assertIn(own, self.h.world.instances.host.instances)
        self.assertEqual(self.zoneOf(cid), saved.zone)

    def test_lockoutsListed(self):
        """world.instance.lockouts lists the running lockouts only."""
        cid = self.character(1)
        self.bind(cid, 7, resetIn=100.0)
        self.bind(cid, 8, resetIn=-1.0, template="emberforge")
        reply = self.login(1, cid).request("world.instance.lockouts")
        self.assertEqual(reply["lockouts"], [{"template": DUNGEON, "instance_id": 7,
                                              "reset_at": self.h.clock.seconds() + 100.0}])


class GraceTests(EntryTestCase):
    def inside(self):
        leader, member = self.character(1), self.character(2, 220.0, 230.0)
        self.party(leader, member)
        cl, cm = self.login(1, leader), self.login(2, member)
        iid = self.entered(cl, template=DUNGEON)["instance_id"]
        self.entered(cm, template=DUNGEON)
        cm.events("world.zone")
        return member, cm, iid

    def test_leavingThePartyEvictsAfterTheGrace(self):
        """A member who left the party is told within a poll, stays the grace, then goes back to its return point."""
        member, cm, iid = self.inside()
        self.parties.parties["p1"].remove(member)
        self.h.advance(1.0, 5)
        [grace] = cm.events("world.instance.grace")
        self.assertEqual((grace["instance_id"], grace["seconds"]), (iid, 20.0))
        self.h.advance(1.0, 19)
        self.assertEqual(self.zoneOf(member), f"{DUNGEON}/{iid}")
        self.h.advance(1.0, 2)
        [back] = cm.events("world.zone")
        self.assertEqual((back["zone"]["id"], back["x"], back["z"]), ("greenvale", 220.0, 230.0))

    def test_backInTimeStays(self):
        """A member back in the party within the grace is told so and stays."""
        member, cm, iid = self.inside()
        self.parties.parties["p1"].remove(member)
        self.h.advance(1.0, 5)
        self.assertEqual(len(cm.events("world.instance.grace")), 1)
        self.parties.parties["p1"].append(member)
        self.h.advance(1.0, 5)
        [over] = cm.events("world.instance.grace")
        self.assertIsNone(over["seconds"])
        self.h.advance(1.0, 30)
        self.assertEqual(self.zoneOf(member), f"{DUNGEON}/{iid}")

    def test_closingEvictsToReturnPoints(self):
        """A copy that closes sends everyone inside to their return points first."""
        member, cm, iid = self.inside()
        self.h.world.instances.close(iid)
        self.h.advance(0.1, 2)
        [back] = cm.events("world.zone")
        self.assertEqual((back["zone"]["id"], back["x"], back["z"]), ("greenvale", 220.0, 230.0))
        self.assertNotIn(f"{DUNGEON}/{iid}", self.h.world.zones)


class TicketAndLoginTests(EntryTestCase):
    def test_ticketAdmitsItsCharacterOnly(self):
        """A Placement's ticket admits its own character, once; another's ticket is refused."""
        a, b = self.character(1), self.character(2)
        placement = self.successResultOf(self.h.world.instances.create(DUNGEON, [a, b]))
        ca = self.login(1, a)
        self.assertEqual(self.refused(ca, ticket=placement.tickets[b])["code"], errors.BAD_TICKET)
        reply = self.entered(ca, ticket=placement.tickets[a])
        self.assertEqual((reply["instance_id"], reply["zone"]), (placement.instance_id, placement.zone))
        self.assertEqual(self.zoneOf(a), placement.zone)
        self.assertEqual(self.refused(ca, ticket=placement.tickets[a])["code"], errors.BAD_TICKET)
        cb = self.login(2, b)
        self.assertEqual(self.entered(cb, ticket=placement.tickets[b])["instance_id"], placement.instance_id)

    def test_loginInsideAClosedCopy(self):
        """A character saved inside a closed copy logs in at its return point (else the entrance), which then goes."""
        now = self.h.clock.seconds()
        self.sql.conn.execute("INSERT INTO instances (id, template, node_id, created_at, closed_at) "
                              "VALUES (41, ?, 'gone', ?, ?)", (DUNGEON, now - 100, now - 10))
        a, b = self.character(1, 80.0, 12.0, f"{DUNGEON}/41"), self.character(2, 80.0, 12.0, f"{DUNGEON}/41")
        self.sql.conn.execute("INSERT INTO instance_returns VALUES (?, 41, 'greenvale', 150, 0, 160)", (a,))
        self.sql.conn.commit()
        ca = self.login(1, a)
        self.assertEqual(ca.zone, "greenvale")
        e = self.h.world.roster.byCharacter[a].entity
        self.assertEqual((e.x, e.z), (150.0, 160.0))
        self.assertIsNone(self.returnOf(a))
        self.login(2, b)
        e = self.h.world.roster.byCharacter[b].entity
        self.assertEqual((self.zoneOf(b), e.x, e.y, e.z), ("greenvale", *ENTRANCE_ARRIVE))
        self.assertEqual(self.sql.row(b)[:4], ("greenvale", *ENTRANCE_ARRIVE))

    def test_loginInsideAnOpenCopy(self):
        """A character saved inside an open copy hosted here logs in there."""
        cid = self.character(1)
        c = self.login(1, cid)
        zone = self.entered(c, template=DUNGEON)["zone"]
        c.request("world.leave")
        self.assertEqual(self.login(1, cid).zone, zone)


class TwoNodeTests(EntryTestCase):
    def setUp(self):
        self.parties = FakeParties()
        self.a = self.h = WorldHarness(self, "world-a", parties=self.parties, zones=["greenvale"],
                                       instances=["emberforge"])
        self.b = self.a.peerOf("world-b", zones=["ashfall"], instances=[DUNGEON])
        self.sql = self.a.sql
        for h in (self.a, self.b):
            self.successResultOf(h.directory.beat())

    def test_copyOnAnotherNode(self):
        """A copy made on another node is entered and left with world.transfer tickets, as a zone transfer."""
        a, b = self.a, self.b
        leader, member = self.character(1, 200.0, 201.0), self.character(2)
        self.party(leader, member)
        cl = self.login(1, leader)
        reply = self.entered(cl, template=DUNGEON)
        self.assertEqual(reply["node"], "world-b")
        [transfer] = cl.events("world.transfer")
        self.assertEqual((transfer["zone"], transfer["tcp"]), (reply["zone"], "world-b.example:7000"))
        self.assertEqual(a.world.roster.byCharacter, {})
        inside = self.login(1, leader, h=b, ticket=transfer["ticket"])
        self.assertEqual(inside.zone, reply["zone"])
        # The member, on A, follows into the same copy on B.
        cm = self.login(2, member)
        self.assertEqual(self.entered(cm, template=DUNGEON)["instance_id"], reply["instance_id"])
        [follow] = cm.events("world.transfer")
        self.assertEqual(follow["zone"], reply["zone"])
        # Out again: back to A, where it stood.
        self.assertEqual(inside.request("world.instance.leave")["zone"], "greenvale")
        [back] = inside.events("world.transfer")
        self.assertEqual((back["zone"], back["tcp"]), ("greenvale", "world-a.example:7000"))
        home = self.login(1, leader, ticket=back["ticket"])
        e = a.world.roster.byCharacter[leader].entity
        self.assertEqual((home.zone, e.x, e.z), ("greenvale", 200.0, 201.0))


class AdoptionTests(EntryTestCase):
    def setUp(self):
        self.parties = FakeParties()
        self.a = self.h = WorldHarness(self, "world-a", parties=self.parties, zones=["greenvale"])
        self.b = self.a.peerOf("world-b", zones=["ashfall"])
        self.sql = self.a.sql
        for h in (self.a, self.b):
            self.successResultOf(h.directory.beat())

    def test_loginInsideACopyWhoseHostDied(self):
        """A character saved inside a copy whose node died logs in and finds the copy re-created, same id, on a live node."""
        a, b = self.a, self.b
        cid = self.character(1)
        value = self.successResultOf(b.world.instances.host.create(DUNGEON, [cid]))
        c = self.login(1, cid)
        self.entered(c, ticket=value["tickets"][cid])
        [transfer] = c.events("world.transfer")
        self.login(1, cid, h=b, ticket=transfer["ticket"])
        # B dies: its loops stop, its inbox and directory entry go, nothing is released.
        b.world.housekeeping.stop()
        for loop in b.world.loops.values():
            loop.stop()
        self.successResultOf(b.world.instances.subscription.unsubscribe())
        self.successResultOf(b.volatile.delete("dir:proc:world-b"))
        a.advance(1.0, 16)
        self.successResultOf(a.directory.beat())
        again = self.login(1, cid)
        self.assertEqual(again.zone, value["zone"])
        self.assertEqual(self.zoneOf(cid), value["zone"])
        self.assertEqual(a.world.instances.host.instances[value["instance_id"]].zone.id, value["zone"])
