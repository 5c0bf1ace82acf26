"""The M1 workload's plan: which characters play which class in which ticket (solo or party) of which queue, who declines, and when a waiting ticket can be matched."""

import hashlib
import random

import attrs

DUNGEON = "dungeon5"
ARENA = "arena2v2"
# Ticket sizes (members) and their shares: mixed solo and parties of 2-5
# (../shared/BENCHMARKS.md, M1); a rated 2v2 team is at most a pair.
DUNGEON_SIZES = ((1, 0.50), (2, 0.20), (3, 0.15), (4, 0.08), (5, 0.07))
ARENA_SIZES = ((1, 0.60), (2, 0.40))


@attrs.frozen
class Member:
    """A character of the plan: its id (also its account's), class and that class's role."""

    character_id: int
    cls: str
    role: str


@attrs.frozen
class Group:
    """One ticket's worth of players: a solo player or a party (its leader first), bound to one queue."""

    index: int
    queue: str
    members: tuple  # of Member

    @property
    def leader(self):
        return self.members[0]

    @property
    def size(self):
        return len(self.members)


def _pick(rng, shares):
    x = rng.random()
    for value, share in shares:
        x -= share
        if x < 0:
            return value
    return shares[-1][0]


def roleClasses(classRoles):
    """@return: role -> its classes, sorted (from class -> role, e.g. L{mmoshard.bots.w2.classRoles})."""
    out = {}
    for cls, role in sorted(classRoles.items()):
        out.setdefault(role, []).append(cls)
    return out


def planGroups(tickets, classRoles, seed=1, arenaShare=0.25, firstId=1,
               quotas=(("tank", 1), ("healer", 1), ("damage", 3))):
    """
    The M1 population, seeded: C{tickets} groups, each a solo player or a
    party, a share C{arenaShare} of them for the rated 2v2 queue and the
    rest for the 5-player queue.  A dungeon group's roles are a random
    part of one team ({quotas}: a tank, a healer, three damage), so every
    party fits the quotas and the roles of all groups come in the quotas'
    proportions; an arena group's classes are any.  Characters are
    numbered from C{firstId} in order.

    @param classRoles: class -> role (etc/classes.toml).
    @return: the list of L{Group}s.
    """
    rng = random.Random(seed)
    byRole = roleClasses(classRoles)
    every = sorted(classRoles)
    team = [role for role, count in quotas for _ in range(count)]
    groups = []
    cid = firstId
    for index in range(tickets):
        if rng.random() < arenaShare:
            queue = ARENA
            classes = [rng.choice(every) for _ in range(_pick(rng, ARENA_SIZES))]
        else:
            queue = DUNGEON
            roles = rng.sample(team, _pick(rng, DUNGEON_SIZES))
            classes = [rng.choice(byRole[role]) for role in roles]
        members = []
        for cls in classes:
            members.append(Member(cid, cls, classRoles[cls]))
            cid += 1
        groups.append(Group(index, queue, tuple(members)))
    return groups


def characterPlan(groups):
    """@return: every character of C{groups} as (character id, class), for the bench to create."""
    return [(m.character_id, m.cls) for g in groups for m in g.members]


def declines(matchId, seed, share):
    """
    Whether the ready check C{matchId} is declined: the same answer for
    every bot (a hash of the seed and the match id), true for a share
    C{share} of matches.  The roster's first member is the one who
    declines; everyone else accepts.
    """
    digest = hashlib.sha1(f"{seed}:{matchId}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2.0 ** 32 < share


def quantile(values, q):
    """@return: the C{q} quantile of C{values} (nearest rank), -1 when there are none."""
    if not values:
        return -1.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


# --- could a waiting ticket be matched? -----------------------------------------------------


class Shadow:
    """
    The generator's copy of one queue's waiting tickets (those it queued
    and has no proposal for yet, oldest first by their admission), and the
    question M1 asks of each new one: would the matcher place it at once?
    L{check} runs the matcher itself (C{formMatches}, pure) on the copy and
    marks each ticket admitted since the last check that it puts in a
    match.  Every member's rating is taken as 1500 (the bench's players
    have no results).
    """

    def __init__(self, spec, formMatches):
        self.spec = spec
        self.formMatches = formMatches
        self.waiting = {}  # ticket id -> (Ticket, group)
        self.fresh = []  # groups admitted since the last check

    def add(self, owner, members, ticketId, created, fresh=False):
        """
        Ticket C{ticketId} of C{members} (plan L{Member}s) waits, admitted at
        C{created}; C{owner} is what L{check} answers for it; C{fresh}: look
        at it at the next check.
        """
        from mmoshard.matchmaking.data import Member as MMMember, Ticket

        group = owner
        members = tuple(MMMember(m.character_id, (m.role,), 1500.0, "", m.cls) for m in members)
        self.waiting[ticketId] = (Ticket(ticketId, self.spec.name, members, created,
                                         "p" if len(members) > 1 else None), group)
        if fresh:
            self.fresh.append((ticketId, group))

    def remove(self, ticketId):
        """The ticket waits no more. @return: whether it was admitted since the last check (unchecked)."""
        self.waiting.pop(ticketId, None)
        for i, (tid, _) in enumerate(self.fresh):
            if tid == ticketId:
                del self.fresh[i]
                return True
        return False

    def check(self, now):
        """@return: the groups admitted since the last check that the matcher would place now."""
        fresh, self.fresh = self.fresh, []
        if not fresh:
            return []
        tickets = sorted((t for t, _ in self.waiting.values()), key=lambda t: (t.created, t.id))
        placed = {tid for m in self.formMatches(self.spec, tickets, now) for tid in m.tickets}
        return [group for tid, group in fresh if tid in placed and tid in self.waiting]
