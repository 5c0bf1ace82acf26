"""The matcher on hand-made queues: the shipped queues' rules, one at a time, and a queue of 20,000 tickets."""

import random

import attrs
from twisted.trial.unittest import TestCase

from mmoshard.matchmaking.data import Member, Ticket
from mmoshard.matchmaking.loading import loadQueues
from mmoshard.matchmaking.matcher import fits, formMatches, window
from mmoshard.matchmaking.test.reference import matchProblems

QUEUES = loadQueues("etc/queues.toml")
DUNGEON = QUEUES["dungeon5"]
RAID = QUEUES["raid10"]
ARENA = QUEUES["arena2v2"]


class Queue:
    """Makes tickets with increasing ids and character ids."""

    def __init__(self, spec):
        self.spec = spec
        self.tickets = []
        self.next = 1

    def add(self, created, *roles, ratings=None):
        """Queue a ticket of one member per entry of C{roles} (a role name or a tuple of them)."""
        members = []
        for i, r in enumerate(roles):
            members.append(Member(self.next, r if isinstance(r, tuple) else (r,),
                                  rating=ratings[i] if ratings else 1500.0))
            self.next += 1
        ticket = Ticket(f"t{len(self.tickets)}", self.spec.name, tuple(members), created=float(created))
        self.tickets.append(ticket)
        return ticket

    def match(self, now, limit=None):
        matches = formMatches(self.spec, self.tickets, now, limit)
        byId = {t.id: t for t in self.tickets}
        for m in matches:
            problems = matchProblems(self.spec, m, byId, now)
            assert not problems, problems
        return matches


def roles(match):
    return {s.character_id: s.role for s in match.slots}


class UnratedTests(TestCase):
    """dungeon5 and raid10: exact quotas, whole parties, the oldest first."""

    def test_fiveSolos(self):
        """A tank, a healer and three damage dealers make one dungeon group, each in its role."""
        q = Queue(DUNGEON)
        for i, r in enumerate(["damage", "tank", "damage", "healer", "damage"]):
            q.add(i, r)
        [m] = q.match(10)
        self.assertEqual(m.tickets, ("t0", "t1", "t2", "t3", "t4"))
        self.assertEqual(roles(m), {1: "damage", 2: "tank", 3: "damage", 4: "healer", 5: "damage"})
        self.assertEqual({s.team for s in m.slots}, {0})

    def test_quotasExact(self):
        """Four damage dealers and no healer make no group: quotas are exact, not a minimum."""
        q = Queue(DUNGEON)
        for i, r in enumerate(["tank", "damage", "damage", "damage", "damage"]):
            q.add(i, r)
        self.assertEqual(q.match(10), [])
        q.add(9, "healer")
        [m] = q.match(10)
        self.assertEqual(m.tickets, ("t0", "t1", "t2", "t3", "t5"))

    def test_partyNeverSplit(self):
        """A party of three goes in whole, with the solo players it needs; a party that would overflow waits."""
        q = Queue(DUNGEON)
        q.add(0, "tank", "damage", "damage")
        q.add(1, "damage", "damage")  # the group has room for one more damage dealer only
        q.add(2, "damage")
        q.add(3, "healer")
        [m] = q.match(10)
        self.assertEqual(m.tickets, ("t0", "t2", "t3"))
        self.assertEqual([s.ticket_id for s in m.slots], ["t0", "t0", "t0", "t2", "t3"])

    def test_chosenRoles(self):
        """A member who chose tank or damage plays the one the group lacks."""
        q = Queue(DUNGEON)
        q.add(0, ("tank", "damage"))
        q.add(1, "damage", "damage", "damage")
        q.add(2, "healer")
        [m] = q.match(10)
        self.assertEqual(roles(m)[1], "tank")
        q = Queue(DUNGEON)
        q.add(0, ("tank", "damage"))
        q.add(1, "tank", "healer", "damage", "damage")
        [m] = q.match(10)
        self.assertEqual(roles(m)[1], "damage")

    def test_oldestFirst(self):
        """Of two tanks, the one who queued first goes; the other keeps waiting."""
        q = Queue(DUNGEON)
        q.add(0, "damage", "damage", "damage")
        q.add(1, "tank")
        q.add(2, "tank")
        q.add(3, "healer")
        [m] = q.match(10)
        self.assertEqual(m.tickets, ("t0", "t1", "t3"))

    def test_oldestMatchableFirst(self):
        """A ticket that cannot be matched yet does not hold up younger ones that can (before it starves)."""
        q = Queue(DUNGEON)
        q.add(0, "tank", "tank")  # two tanks never fit one group
        q.add(1, "healer", "damage")  # needs a tank and two damage dealers
        q.add(2, "tank", "healer", "damage", "damage")
        q.add(3, "damage")
        [m] = q.match(10)
        self.assertEqual(m.tickets, ("t2", "t3"))
        self.assertFalse(fits(DUNGEON, q.tickets[0].members))

    def test_starvingTicketHoldsWhatItNeeds(self):
        """Once a ticket waited starvation_s, a younger group may not take the damage dealer it needs; before, it may."""
        q = Queue(DUNGEON)
        q.add(0, "tank", "healer")  # needs three damage dealers
        q.add(50, "tank", "healer", "damage", "damage")
        q.add(55, "damage")
        early = q.match(DUNGEON.starvation_s - 1)
        self.assertEqual([m.tickets for m in early], [("t1", "t2")])
        self.assertEqual(q.match(DUNGEON.starvation_s), [])
        q.add(70, "damage", "damage")
        [m] = q.match(DUNGEON.starvation_s + 20)
        self.assertEqual(m.tickets, ("t0", "t2", "t3"))

    def test_raid(self):
        """A raid group takes two tanks, two healers and six damage dealers, parties whole."""
        q = Queue(RAID)
        q.add(0, "tank", "healer", "damage", "damage", "damage")
        q.add(1, "tank")
        q.add(2, "damage", "damage")
        q.add(3, "damage", "damage")
        q.add(4, "healer")
        q.add(5, "damage")
        [m] = q.match(10)
        self.assertEqual(m.tickets, ("t0", "t1", "t2", "t4", "t5"))

    def test_characterOnce(self):
        """A character in two tickets (which the store forbids) is placed once, from the older ticket."""
        q = Queue(DUNGEON)
        q.add(0, "tank")
        twin = q.add(1, "tank")
        q.tickets[1] = attrs.evolve(twin, members=(attrs.evolve(twin.members[0], character_id=1),))
        for i, r in enumerate(["healer", "damage", "damage", "damage", "tank", "healer", "damage", "damage", "damage"]):
            q.add(2 + i, r)
        matches = q.match(20)
        self.assertEqual([m.tickets[0] for m in matches], ["t0", "t6"])
        self.assertNotIn("t1", [t for m in matches for t in m.tickets])

    def test_fits(self):
        """fits() tells which tickets could ever take places in a queue's team."""
        m = lambda cid, *roles: Member(cid, roles)  # noqa: E731
        self.assertTrue(fits(DUNGEON, [m(1, "tank"), m(2, "damage", "healer")]))
        self.assertFalse(fits(DUNGEON, [m(1, "healer"), m(2, "healer")]))
        self.assertFalse(fits(DUNGEON, [m(i, "damage") for i in range(6)]))
        self.assertFalse(fits(DUNGEON, [m(1, "tank"), m(1, "damage")]))
        self.assertFalse(fits(DUNGEON, []))
        self.assertTrue(fits(ARENA, [m(1, "healer"), m(2, "healer")]))
        self.assertFalse(fits(ARENA, [m(1, "healer"), m(2, "healer"), m(3, "tank")]))


class RatedTests(TestCase):
    """arena2v2: teams within the window, which the server widens, balanced."""

    def test_windowWidens(self):
        """A player 100 points from the others waits until the window reached 100, then plays."""
        q = Queue(ARENA)
        q.add(0, "damage", ratings=[1500])
        for i in range(3):
            q.add(0, "damage", ratings=[1600])
        self.assertEqual(q.match(0), [])
        self.assertEqual(window(ARENA, 9.9), 99.5)
        self.assertEqual(q.match(9.9), [])
        [m] = q.match(10)
        self.assertEqual(m.tickets, ("t0", "t1", "t2", "t3"))

    def test_windowCapped(self):
        """The window stops at window_cap: 500 points apart never play, however long they wait."""
        q = Queue(ARENA)
        q.add(0, "damage", "damage", ratings=[1500, 1500])
        q.add(0, "damage", "damage", ratings=[2000, 2000])
        self.assertEqual(window(ARENA, 1e6), ARENA.window_cap)
        self.assertEqual(q.match(1e6), [])

    def test_balanced(self):
        """Four solo players are split so the team ratings are as close as can be."""
        q = Queue(ARENA)
        for r in (1400, 1450, 1550, 1600):
            q.add(0, "damage", ratings=[r])
        [m] = q.match(60)
        teams = m.teams(2)
        self.assertEqual({frozenset(teams[0]), frozenset(teams[1])}, {frozenset({1, 4}), frozenset({2, 3})})

    def test_partyVersusSolos(self):
        """A party plays as one team; two solo players near its rating make the other."""
        q = Queue(ARENA)
        q.add(0, "damage", "healer", ratings=[1500, 1520])
        q.add(1, "damage", ratings=[1490])
        q.add(2, "damage", ratings=[1530])
        [m] = q.match(5)
        self.assertEqual(m.teams(2), ((1, 2), (3, 4)))

    def test_unbalancedPartyWaits(self):
        """Two solo players far apart from a party's rating are not put against it (their team would be 75 points off)."""
        q = Queue(ARENA)
        q.add(0, "damage", ratings=[1500])
        q.add(0, "damage", "damage", ratings=[1550, 1550])
        q.add(0, "damage", ratings=[1450])
        self.assertEqual(q.match(0), [])
        q.add(0, "damage", ratings=[1500])
        [m] = q.match(0)
        self.assertEqual(set(m.tickets), {"t0", "t1", "t3"})


class BigQueueTests(TestCase):
    """20,000 waiting tickets, as M1 queues them."""

    def test_twentyThousand(self):
        """A dungeon queue of 20,000 solo players and parties of 2 to 5 forms as many valid groups as asked, oldest first."""
        rnd = random.Random(17)
        q = Queue(DUNGEON)
        for i in range(20000):
            size = rnd.choice([1, 1, 1, 2, 3, 4, 5])
            q.add(i * 0.01, *[rnd.choice(["tank", "healer", "damage", "damage", "damage"]) for _ in range(size)])
        matches = q.match(200.0, limit=300)
        self.assertEqual(len(matches), 300)
        self.assertEqual(matches[0].tickets[0], "t0")
        firsts = [int(m.tickets[0][1:]) for m in matches]
        self.assertEqual(firsts, sorted(firsts))
