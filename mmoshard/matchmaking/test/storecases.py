"""What the TicketStore contract tests share: a store per node on memory or the test Redis, ticket and proposal makers, running calls at once."""

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import Clock

from mmoshard.matchmaking.data import Matched, Member, Proposal, Slot, Ticket
from mmoshard.matchmaking.store import TicketStore
from mmoshard.store.test.fixtures import ClusterFixture, MemoryFixture, RedisFixture

# Store time starts here (epoch-like seconds), on a Clock for both backends:
# the store only uses it to stamp deadlines and waits it is given.
START = 1000.0
GRACE = 30.0


def ticket(tid, *cids, queue="dungeon5", created=100.0, roles=("damage",), party=None,
           node="n1"):
    """A ticket of members C{cids} (each C{roles}), named after their id."""
    members = tuple(Member(character_id=c, roles=tuple(roles), rating=1500.0 + c, name=f"P{c}",
                           cls="warrior") for c in cids)
    return Ticket(id=tid, queue=queue, members=members, created=created, party_id=party,
                  node=node)


def proposal(mid, *tickets, expires=1020.0, created=START):
    """A proposal of C{tickets}, every member a damage dealer in team 0."""
    slots = tuple(Slot(character_id=m.character_id, ticket_id=t.id, role=m.roles[0], team=0)
                  for t in tickets for m in t.members)
    return Proposal(match_id=mid, queue=tickets[0].queue, tickets=tuple(tickets), slots=slots,
                    created=created, expires_at=expires)


def records(p, instance=1, ttl=300.0):
    """The Matched of every member of proposal C{p}."""
    return tuple(Matched(character_id=s.character_id, match_id=p.match_id, queue=p.queue,
                         instance=instance, template="deadmines", zone="deadmines", node="w1",
                         endpoints=(("tcp", "127.0.0.1:1"), ("websocket", "ws://x")),
                         ticket=f"adm-{s.character_id}", team=s.team, role=s.role,
                         expires_at=START + ttl) for s in p.slots)


def atOnce(*coroutines):
    """Start every coroutine before awaiting any (on Redis they race), then gather their results."""
    return gatherResults([Deferred.fromCoroutine(c) for c in coroutines])


class StoreCase:
    """
    C{self.ts} a L{TicketStore} on C{self.store} (the fixture's volatile
    store) and C{self.mmClock}; L{node} gives another node's TicketStore
    over its own connection to the same state.
    """

    def setUp(self):
        super().setUp()
        self.ts = self.node()

    def node(self, **options):
        """A TicketStore over a fresh connection to this test's shared state."""
        options.setdefault("grace", GRACE)
        volatile = self.store if not hasattr(self, "ts") else self.makeStore("a:")
        return TicketStore(volatile, self.mmClock, **options)


class OnMemory(MemoryFixture):
    """Memory stores sharing one view; store time and the view's expiry both on C{self.clock}."""

    def setUp(self):
        super().setUp()
        self.clock.advance(START)
        self.mmClock = self.clock


class OnRedis(RedisFixture):
    """The test Redis under a fresh prefix; store time on a Clock, key TTLs in real time."""

    def setUp(self):
        super().setUp()
        self.mmClock = Clock()
        self.mmClock.advance(START)


class OnCluster(ClusterFixture):
    """The test Redis Cluster under a fresh prefix; store time on a Clock, key TTLs in real time."""

    def setUp(self):
        super().setUp()
        self.mmClock = Clock()
        self.mmClock.advance(START)
