"""Stand-ins for the TicketStore and the matcher while their branches are not merged: the same API, in memory, simple."""

import attrs

from mmoshard.matchmaking import errors
from mmoshard.matchmaking.data import Match, Slot
from mmoshard.matchmaking.errors import MatchmakingError


@attrs.frozen
class QueueStats:
    queue: str
    tickets: int
    members: int
    roles: dict
    oldest_wait: float
    proposals: int


@attrs.frozen
class Claim:
    ticket: object
    match_id: str = None


@attrs.frozen
class Requeue:
    proposal: object
    requeued: tuple
    removed: tuple


class SimpleCopy:
    """A matcher's copy of a queue that reads it whole at every refresh (the WaitingCopy API)."""

    def __init__(self, store, queue):
        self.store = store
        self.queue = queue

    async def refresh(self):
        return await self.store.waiting(self.queue, 10 ** 9)

    def discard(self, ticketIds):
        pass


class MemoryTicketStore:
    """The TicketStore API (BRIEF17, mmstore) over dicts, shared by every node of a test."""

    def __init__(self, clock, liveness=30.0):
        self.clock = clock
        self.liveness = liveness
        self.tickets = {}  # id -> Ticket
        self.state = {}  # ticket id -> None (waiting) or match id
        self.claims = {}  # cid -> ticket id
        self.props = {}  # match id -> Proposal
        self.alive = {}  # cid -> until
        self.leases = {}  # queue -> (node, until)

    async def add(self, ticket):
        for cid in ticket.characterIds:
            if cid in self.claims:
                raise MatchmakingError(errors.ALREADY_QUEUED, f"character {cid} is already queued",
                                       details={"character_id": cid})
        self.tickets[ticket.id] = ticket
        self.state[ticket.id] = None
        for cid in ticket.characterIds:
            self.claims[cid] = ticket.id
            self.alive[cid] = self.clock.seconds() + self.liveness

    def _drop(self, tid):
        ticket = self.tickets.pop(tid)
        del self.state[tid]
        for cid in ticket.characterIds:
            self.claims.pop(cid, None)
        return ticket

    async def get(self, ticketId):
        return self.tickets.get(ticketId)

    async def ticketOf(self, characterId):
        tid = self.claims.get(characterId)
        return self.tickets.get(tid) if tid else None

    async def claim(self, characterId):
        tid = self.claims.get(characterId)
        if tid is None:
            return None
        return Claim(self.tickets[tid], self.state[tid])

    async def cancel(self, ticketId):
        if ticketId in self.state and self.state[ticketId] is None:
            return self._drop(ticketId)
        return None

    async def count(self, queue):
        return sum(1 for t in self.tickets.values() if t.queue == queue)

    def _waiting(self, queue):
        found = [t for tid, t in self.tickets.items()
                 if t.queue == queue and self.state[tid] is None]
        return sorted(found, key=lambda t: (t.created, t.id))

    async def waiting(self, queue, limit):
        return self._waiting(queue)[:limit]

    async def propose(self, proposal):
        if not all(self.state.get(t.id, "gone") is None for t in proposal.tickets):
            return False
        for t in proposal.tickets:
            self.state[t.id] = proposal.match_id
        self.props[proposal.match_id] = proposal
        return True

    async def proposeMany(self, proposals):
        return [await self.propose(p) for p in proposals]

    async def accept(self, matchId, characterId):
        p = self.props.get(matchId)
        if p is None or characterId not in p.characterIds:
            return None
        p = self.props[matchId] = attrs.evolve(p, accepted=p.accepted | {characterId})
        return p

    async def proposal(self, matchId):
        return self.props.get(matchId)

    async def proposals(self, queue):
        return [p for p in self.props.values() if p.queue == queue]

    async def requeueOutcome(self, matchId, dropTickets=()):
        p = self.props.pop(matchId, None)
        if p is None:
            return None
        back, gone = [], []
        for t in p.tickets:
            if t.id in dropTickets:
                gone.append(self._drop(t.id))
            else:
                self.state[t.id] = None
                back.append(t)
        return Requeue(p, tuple(back), tuple(gone))

    async def complete(self, matchId):
        p = self.props.pop(matchId, None)
        if p is not None:
            for t in p.tickets:
                self._drop(t.id)
        return p

    async def touch(self, characterIds, ttl):
        until = self.clock.seconds() + ttl
        for cid in characterIds:
            if cid in self.claims:
                self.alive[cid] = until

    async def expire(self, queue, now):
        gone = [t for t in self._waiting(queue)
                if any(self.alive.get(c, 0) < now for c in t.characterIds)]
        return [self._drop(t.id) for t in gone]

    async def lease(self, queue, nodeId, ttl):
        now = self.clock.seconds()
        holder = self.leases.get(queue)
        if holder is None or holder[1] <= now or holder[0] == nodeId:
            self.leases[queue] = (nodeId, now + ttl)
            return True
        return False

    async def releaseLease(self, queue, nodeId):
        holder = self.leases.get(queue)
        if holder is not None and holder[0] == nodeId:
            del self.leases[queue]

    async def leaseHolder(self, queue):
        holder = self.leases.get(queue)
        if holder is None or holder[1] <= self.clock.seconds():
            return None
        return holder[0]

    async def stats(self, queue):
        waiting = self._waiting(queue)
        byRole = {}
        for t in waiting:
            for m in t.members:
                for r in m.roles:
                    byRole[r] = byRole.get(r, 0) + 1
        oldest = self.clock.seconds() - waiting[0].created if waiting else 0.0
        return QueueStats(queue, len(waiting), sum(len(t.members) for t in waiting), byRole,
                          oldest, sum(1 for p in self.props.values() if p.queue == queue))


def greedyMatches(spec, tickets, now, limit=None):
    """A simple matcher: oldest first, each ticket whole in one team, roles greedily within the quotas."""
    matches, used = [], set()
    while True:
        left = [dict(spec.quotas) for _ in range(spec.teams)]
        sizes = [0] * spec.teams
        slots, taken = [], []
        for t in tickets:
            if t.id in used:
                continue
            for team in range(spec.teams):
                if sizes[team] + len(t.members) > spec.team_size:
                    continue
                quota = dict(left[team])
                placed = []
                for m in t.members:
                    role = next((r for r in m.roles if not spec.quotas or quota.get(r, 0) > 0), None)
                    if role is None:
                        break
                    if spec.quotas:
                        quota[role] -= 1
                    placed.append(Slot(m.character_id, t.id, role, team))
                if len(placed) == len(t.members):
                    left[team] = quota
                    sizes[team] += len(t.members)
                    slots += placed
                    taken.append(t.id)
                    break
        if sizes != [spec.team_size] * spec.teams or len(matches) == limit:
            return matches
        used.update(taken)
        matches.append(Match(spec.name, tuple(taken), tuple(slots)))
