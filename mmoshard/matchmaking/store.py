"""TicketStore: the matchmaking state in the volatile store — tickets, claims, proposals, liveness, the per-queue lease."""

import math
import re

import attrs
from twisted.logger import Logger

from mmoshard.batching import Batcher
from mmoshard.matchmaking import errors
from mmoshard.matchmaking.codec import (
    Codec, decodeMatched, encodeMatched, encodeProposal, encodeTicket,
)
from mmoshard.matchmaking.matchedscripts import MATCHED_SCRIPTS
from mmoshard.matchmaking.proposalscripts import PROPOSAL_SCRIPTS
from mmoshard.matchmaking.scriptlib import luaSource, twin
from mmoshard.matchmaking.scripts import TICKET_SCRIPTS
from mmoshard.store.common import Script, formatFloat

# add() and accept() calls arriving while a script call is out go together
# in the next one (up to MAX_BATCH); a second call overlaps the first once
# OVERLAP wait.  Idle, a call goes at once.
MAX_BATCH = 500
OVERLAP = 100
MAX_IN_FLIGHT = 2
# Tickets named in one "queued" log event at most.
LOG_TICKETS = 50

# Steps of a queue's history of tickets that left waiting kept for
# changes() readers, and how often it is trimmed (in steps).
GONE_KEEP = 50_000
GONE_TRIM_EVERY = 1_000

_SCRIPTS = {}


def scriptsFor(keep=GONE_KEEP, every=GONE_TRIM_EVERY):
    """@return: the matchmaking L{Script}s by name, for this history size (built once)."""
    key = (int(keep), int(every))
    if key not in _SCRIPTS:
        _SCRIPTS[key] = {
            name: Script(name=name, lua=luaSource(lua, keep, every), python=twin(py, keep, every))
            for name, (lua, py) in {**TICKET_SCRIPTS, **PROPOSAL_SCRIPTS, **MATCHED_SCRIPTS}.items()
        }
    return _SCRIPTS[key]


@attrs.frozen
class Claim:
    """What a character holds: its ticket, and the match whose proposal holds that ticket (None while waiting)."""

    ticket: object  # Ticket
    match_id: str = None


@attrs.frozen
class CharacterState:
    """A character's matchmaking state read at one instant (L{TicketStore.stateOf})."""

    ticket: object = None  # Ticket, waiting or proposed
    proposal: object = None  # Proposal holding that ticket
    matched: object = None  # Matched stored by its last completed match (only without a ticket)


@attrs.frozen
class Cursor:
    """
    Where a reader of L{TicketStore.changes} stands: entries read up to
    C{step}; its copy was whole as of step C{since}.  L{START} reads from
    scratch.
    """

    step: int = 0
    since: int = 0


START = Cursor()


@attrs.frozen
class Changes:
    """
    What L{TicketStore.changes} read: the L{Cursor} to pass next time;
    C{reset}: forget what you had, C{entered} is the queue from the start;
    C{more}: call again, a page was full; tickets that entered waiting (or
    came back) and ids of tickets that left it since the cursor.
    """

    cursor: Cursor
    reset: bool
    more: bool
    entered: tuple  # of Ticket
    left: tuple  # of ticket ids


@attrs.frozen
class Requeue:
    """What ending a proposal did: the proposal as it was, the tickets back waiting, the tickets removed."""

    proposal: object  # Proposal
    requeued: tuple  # of Ticket
    removed: tuple  # of Ticket


@attrs.frozen
class QueueStats:
    """
    A queue's numbers: waiting tickets and members, waiting members who may
    play each role (a member with two roles counts in both), seconds the
    oldest waiting ticket has waited (0 when none), proposals in flight.
    """

    queue: str
    tickets: int
    members: int
    roles: dict
    oldest_wait: float
    proposals: int


_WORD = re.compile(r"\S+")


def _member(value):
    """A sorted-set member a script returned, as str: bytes from Redis, str from the memory twin."""
    return value if isinstance(value, str) else value.decode("utf-8")


def _word(value, what):
    value = str(value)
    if not _WORD.fullmatch(value):
        raise ValueError(f"{what} {value!r} must be non-empty without spaces")
    return value


def _queuedText(ticket):
    """@return: a ticket as the queued log line names it: id, queue, leader, then each member and its roles."""
    members = ", ".join(f"{m.character_id} {'|'.join(m.roles)}" for m in ticket.members)
    return f"{ticket.id} in {ticket.queue} by {ticket.members[0].character_id} ({members})"


def _ticketArgs(ticket):
    """The six ADD arguments of a ticket, checked."""
    _word(ticket.id, "ticket id")
    _word(ticket.queue, "queue")
    if not ticket.members:
        raise ValueError(f"ticket {ticket.id} has no members")
    cids = [str(int(m.character_id)) for m in ticket.members]
    if len(set(cids)) != len(cids):
        raise ValueError(f"ticket {ticket.id} names a character twice")
    roles = [_word(r, "role") for m in ticket.members for r in dict.fromkeys(m.roles)]
    return [ticket.id, ticket.queue, encodeTicket(ticket), formatFloat(float(ticket.created)),
            " ".join(cids), " ".join(roles)]


class TicketStore:
    """
    The matchmaking state of a shard, on an L{IVolatileStore} shared by
    every matchmaking node (docs/matchmaking.md "State in the volatile
    store").  Every method is one round trip: one script, atomic on Redis
    as on the memory store, whatever the batch.

    @param volatile: the L{IVolatileStore}.
    @param clock: an C{IReactorTime}; its C{seconds()} stamps liveness
        deadlines and queue waits (nodes' clocks are assumed in step).
    @param grace: seconds a new ticket's members count as alive before any
        node L{touch}es them: the session-resume grace.
    @param namespace: the key prefix of this state inside the store's own;
        its hash tag (C{{mm}}) keeps every key the scripts derive from it in
        one Redis Cluster slot.
    """

    log = Logger()

    def __init__(self, volatile, clock, grace=30.0, namespace="{mm}:", goneKeep=GONE_KEEP,
                 goneTrimEvery=GONE_TRIM_EVERY, leases=None):
        """
        @param leases: the L{IVolatileStore} (same backend) the lease calls
            go through, so that they do not wait behind the others (None:
            C{volatile}).
        """
        self.volatile = volatile
        self.leases = volatile if leases is None else leases
        self.clock = clock
        self.grace = grace
        self.namespace = namespace
        self.codec = Codec()
        self._scripts = scriptsFor(goneKeep, goneTrimEvery)
        self._adds = Batcher(self._sendAdds, MAX_BATCH, OVERLAP, MAX_IN_FLIGHT)
        self._accepts = Batcher(self._sendAccepts, MAX_BATCH, OVERLAP, MAX_IN_FLIGHT)

    async def _run(self, name, args, on=None):
        store = self.volatile if on is None else on
        return await store.evalScript(self._scripts[name], [self.namespace], args)

    def _tickets(self, blobs):
        return [self.codec.ticket(b) for b in blobs if b is not None]

    def _proposal(self, read):
        raw, accepted, blobs = read
        return self.codec.proposal(
            raw, [b for b in blobs if b is not None], [int(a) for a in accepted])

    # -- tickets ---------------------------------------------------------------

    async def add(self, ticket):
        """
        Put C{ticket} in its queue, waiting, atomically with a claim on
        each of its members.

        Adds that arrive while one is out go together in the next script
        call (one round trip for the batch, each ticket judged on its own in
        arrival order); idle, an add goes at once.

        @raise MatchmakingError: C{mm.already_queued} (its C{details} has
            the C{character_id}) when a member already holds a ticket (in
            any queue, waiting or in a proposal); nothing is written.
        @raise ValueError: for a malformed ticket, or an id already in use.
        """
        result = await self._adds.submit((ticket, _ticketArgs(ticket)))
        if result is not None:
            raise result

    async def _sendAdds(self, items):
        tickets = [t for t, _ in items]
        results = await self._addArgs(tickets, [a for _, a in items])
        self._logQueued([t for t, r in zip(tickets, results) if r is None])
        return results

    def _logQueued(self, tickets):
        """
        One event per admission round trip (up to L{LOG_TICKETS} tickets
        each), not per ticket: each names its tickets, queues, leaders,
        members and roles, so an operator greps a ticket or character id
        as before, but a storm of thousands of tickets a second is not as
        many formatted lines and writes (a tenth of the node's CPU in M1's
        fill).
        """
        for i in range(0, len(tickets), LOG_TICKETS):
            some = tickets[i:i + LOG_TICKETS]
            self.log.info("mm {count} tickets queued: {tickets}", count=len(some),
                          tickets="; ".join(_queuedText(t) for t in some))

    async def addMany(self, tickets):
        """
        L{add} many tickets in one round trip, each on its own: a ticket
        refused does not stop the others (a later ticket naming a member
        of an earlier one in the batch is refused).

        @return: per ticket, None (added) or the error L{add} would raise:
            L{MatchmakingError}, or C{ValueError} for an id in use.
        @raise ValueError: for a malformed ticket (nothing is written).
        """
        if not tickets:
            return []
        return await self._addArgs(tickets, [_ticketArgs(t) for t in tickets])

    async def _addArgs(self, tickets, ticketArgs):
        args = [formatFloat(self.clock.seconds() + self.grace)]
        for one in ticketArgs:
            args.extend(one)
        results = await self._run("mm_add", args)
        out = []
        for ticket, result in zip(tickets, results):
            if result == 1:
                # add() logs what it admitted (_logQueued); addMany's callers their own.
                out.append(None)
            elif result == 0:
                out.append(ValueError(f"ticket id {ticket.id} is already in use"))
            else:
                out.append(self._alreadyQueued(ticket, int(result)))
        return out

    @staticmethod
    def _alreadyQueued(ticket, cid):
        member = next((m for m in ticket.members if m.character_id == cid), None)
        who = member.name if member is not None and member.name else f"character {cid}"
        return errors.MatchmakingError(
            errors.ALREADY_QUEUED, f"{who} is already queued or in a match",
            details={"character_id": cid})

    async def get(self, ticketId):
        """@return: the ticket (waiting or in a proposal), or None."""
        (found,) = await self.getMany([ticketId])
        return found

    async def getMany(self, ticketIds):
        """@return: per id, its ticket or None, in one round trip."""
        if not ticketIds:
            return []
        blobs = await self._run("mm_get", [str(t) for t in ticketIds])
        return [None if b is None else self.codec.ticket(b) for b in blobs]

    async def ticketOf(self, characterId):
        """@return: the ticket character C{characterId} is in (waiting or in a proposal), or None."""
        claim = await self.claim(characterId)
        return None if claim is None else claim.ticket

    async def claim(self, characterId):
        """@return: the L{Claim} of character C{characterId}, or None."""
        (found,) = await self.claims([characterId])
        return found

    async def claims(self, characterIds):
        """@return: per character id, its L{Claim} or None, in one round trip."""
        if not characterIds:
            return []
        reads = await self._run("mm_claims", [int(c) for c in characterIds])
        out = []
        for read in reads:
            if read is None or read[0] is None:
                out.append(None)
            else:
                match = None if read[1] is None else read[1].decode("utf-8")
                out.append(Claim(self.codec.ticket(read[0]), match))
        return out

    async def cancel(self, ticketId):
        """
        Remove a waiting ticket and free its members' claims.

        @return: the ticket removed, or None when there is no such ticket
            or it is in a proposal (a decline ends that: L{requeue}).
        """
        blob = await self._run("mm_cancel", [str(ticketId)])
        if blob is None:
            return None
        ticket = self.codec.ticket(blob)
        self.log.debug("ticket {ticket} cancelled", ticket=ticket.id)
        return ticket

    async def count(self, queue):
        """@return: how many tickets wait in C{queue} (not those in proposals)."""
        return await self.volatile.zcard(f"{self.namespace}q:{queue}")

    async def waiting(self, queue, limit):
        """@return: up to C{limit} waiting tickets of C{queue}, oldest first (by created, then id)."""
        if limit <= 0:
            return []
        return self._tickets(await self._run("mm_waiting", [queue, int(limit)]))

    async def changes(self, queue, cursor=START, limit=5000):
        """
        What changed in C{queue}'s waiting tickets since C{cursor}: the way
        a matcher keeps its copy of a queue current in one small round trip
        a pass, instead of reading the whole queue
        (L{mmoshard.matchmaking.waitingcopy.WaitingCopy} does it).

        @param cursor: the C{cursor} of the last L{Changes}, L{START} at first.
        @param limit: entries per page; a page never splits one step.
        @return: L{Changes}.
        """
        upto, since, reset, more, blobs, gone = await self._run(
            "mm_changes", [queue, int(cursor.step), int(cursor.since), max(1, int(limit))])
        return Changes(
            cursor=Cursor(int(upto), int(since)), reset=bool(reset), more=bool(more),
            entered=tuple(self._tickets(blobs)),
            left=tuple(g.decode("utf-8") for g in gone))

    async def stats(self, queue):
        """@return: the L{QueueStats} of C{queue}."""
        tickets, flat, oldest, proposals = await self._run("mm_stats", [queue])
        counters = {flat[i].decode(): int(flat[i + 1]) for i in range(0, len(flat), 2)}
        roles = {k[2:]: v for k, v in counters.items() if k.startswith("r:") and v > 0}
        wait = 0.0 if oldest is None else max(0.0, self.clock.seconds() - float(oldest))
        return QueueStats(queue=queue, tickets=tickets, members=counters.get("members", 0),
                          roles=roles, oldest_wait=wait, proposals=proposals)

    # -- liveness --------------------------------------------------------------

    async def touch(self, characterIds, ttl):
        """
        Members alive: each of C{characterIds} that holds a ticket counts
        as alive for C{ttl} more seconds (a deadline only moves later).  Any
        node hosting a member's session calls it, batched, well within
        C{ttl}; the ticket outlives the node that took it.

        @return: how many of them hold a ticket.
        """
        if not characterIds:
            return 0
        if not ttl > 0 or math.isinf(ttl):
            raise ValueError(f"ttl must be a positive number of seconds, not {ttl!r}")
        deadline = formatFloat(self.clock.seconds() + float(ttl))
        return await self._run("mm_touch", [deadline, *[int(c) for c in characterIds]])

    async def expire(self, queue, now=None, limit=1000):
        """
        Remove the waiting tickets of C{queue} with a member no node
        touched for its liveness (up to C{limit} members looked at); a
        ticket in a proposal is left to its ready check.

        @return: the removed tickets (tell their members mm.removed).
        """
        now = self.clock.seconds() if now is None else now
        blobs = await self._run("mm_expire", [queue, formatFloat(float(now)), int(limit)])
        tickets = self._tickets(blobs)
        for ticket in tickets:
            self.log.info("ticket {ticket} of {character_ids} removed: a member stayed gone "
                          "past the resume grace", ticket=ticket.id,
                          character_ids=ticket.characterIds)
        return tickets

    # -- the lease -------------------------------------------------------------

    async def lease(self, queue, nodeId, ttl):
        """
        Take the lease of C{queue} for C{nodeId} for C{ttl} seconds, or
        renew it if C{nodeId} holds it.

        @return: True when C{nodeId} holds it now.
        """
        ms = max(1, round(float(ttl) * 1000))
        return bool(await self._run("mm_lease", [queue, _word(nodeId, "node id"), ms],
                                    on=self.leases))

    async def releaseLease(self, queue, nodeId):
        """Give the lease of C{queue} up if C{nodeId} holds it. @return: True if it did."""
        return bool(await self._run("mm_release", [queue, str(nodeId)], on=self.leases))

    async def leaseHolder(self, queue):
        """@return: the id of the node holding C{queue}'s lease, or None."""
        holder = await self.leases.get(f"{self.namespace}lease:{queue}")
        return None if holder is None else holder.decode("utf-8")

    # -- proposals ---------------------------------------------------------------

    async def propose(self, proposal):
        """
        Offer a match: atomically, when every one of its tickets waits in
        its queue (not cancelled, not in another proposal), they all move
        into the proposal and their claims point at it.

        @return: True, or False when nothing changed.
        """
        (done,) = await self.proposeMany([proposal])
        return done

    async def proposeMany(self, proposals):
        """@return: per proposal, what L{propose} would; one round trip, each on its own."""
        if not proposals:
            return []
        args = []
        for p in proposals:
            _word(p.match_id, "match id")
            tids = [t.id for t in p.tickets]
            args.extend([p.match_id, p.queue, encodeProposal(p), formatFloat(float(p.expires_at)),
                         len(tids), *tids])
        # A proposal that won is logged by the loop ("mm proposal ...").
        return [result == 1 for result in await self._run("mm_propose", args)]

    async def accept(self, matchId, characterId):
        """
        Character C{characterId} accepts the proposal C{matchId}.  Accepts
        that arrive while one is out go together in the next script call
        (each judged on its own, in arrival order), as L{add}s do.

        @return: the proposal after it (all accepted when
            C{proposal.accepted} holds every character), or None when there
            is no such proposal (any more) or the character is not in it.
        """
        read = await self._accepts.submit((str(matchId), int(characterId)))
        return None if read is None else self._proposal(read)

    async def _sendAccepts(self, items):
        args = []
        for matchId, characterId in items:
            args.extend((matchId, characterId))
        return await self._run("mm_accept", args)

    async def proposal(self, matchId):
        """@return: the proposal in flight C{matchId}, or None."""
        (read,) = await self._run("mm_proposal", [str(matchId)])
        return None if read is None else self._proposal(read)

    async def extend(self, proposal, expiresAt):
        """
        Move the end of C{proposal}'s ready check to C{expiresAt} (a new
        lease holder resuming it). @return: the proposal after it, or None
        when it had ended.
        """
        later = attrs.evolve(proposal, expires_at=expiresAt)
        read = await self._run("mm_extend", [later.match_id, encodeProposal(later),
                                             formatFloat(float(expiresAt))])
        return None if read is None else self._proposal(read)

    async def proposals(self, queue, limit=100_000):
        """@return: the proposals in flight of C{queue}, soonest to expire first (for a new lease holder to resume)."""
        return [self._proposal(r) for r in await self._run("mm_proposals", [queue, int(limit)])]

    async def proposalIds(self, queue, limit=100_000):
        """@return: the match ids of C{queue}'s proposals in flight, soonest to expire first."""
        ids = await self._run("mm_proposal_ids", [queue, int(limit)])
        return [_member(m) for m in ids]

    async def requeue(self, matchId, dropTickets=()):
        """
        End proposal C{matchId}: the tickets in C{dropTickets} (ids or
        tickets) are removed and their claims freed; the others wait again
        with their original created, in their old place.

        @return: the requeued tickets ([] when the proposal had already
            ended: L{requeueOutcome} tells that apart).
        """
        outcome = await self.requeueOutcome(matchId, dropTickets)
        return [] if outcome is None else list(outcome.requeued)

    async def requeueOutcome(self, matchId, dropTickets=()):
        """@return: L{requeue}'s whole L{Requeue}, or None when the proposal had already ended."""
        drop = [str(getattr(t, "id", t)) for t in dropTickets]
        read = await self._run("mm_requeue", [str(matchId), *drop])
        if read is None:
            return None
        proposal, back, gone = read
        outcome = Requeue(self._proposal(proposal), tuple(self._tickets(back)),
                          tuple(self._tickets(gone)))
        self.log.info("match {match} ended: tickets {requeued} requeued, {removed} removed",
                      match=matchId, requeued=[t.id for t in outcome.requeued],
                      removed=[t.id for t in outcome.removed])
        return outcome

    async def complete(self, matchId, records=(), ttl=300.0):
        """
        The match was made: once, atomically, the proposal ends, its tickets
        are removed and their claims freed — and, in the same step, each
        member's L{Matched} in C{records} is stored for C{ttl} seconds (read
        by L{matchedOf}) and the match is marked not yet announced (read by
        L{unannounced} until L{announced}), so that a node dying before its
        C{mm.matched} events went out loses nothing.

        @return: the proposal, or None when it had already been completed
            or requeued (then nothing is written).
        """
        args = [str(matchId)]
        if records:
            args += [int(math.ceil(ttl * 1000)), formatFloat(self.clock.seconds() + ttl)]
            for r in records:
                args += [int(r.character_id), encodeMatched(r)]
        read = await self._run("mm_complete", args)
        if read is None:
            return None
        # Logged by the caller with its instance ("mm match ... instance"),
        # once per match.
        return self._proposal(read)

    # -- matched records ------------------------------------------------------------------

    async def stateOf(self, characterId):
        """@return: the L{CharacterState} of C{characterId}: its ticket, proposal and stored L{Matched}, read atomically."""
        (ticket, proposal, matched) = await self._run("mm_state", [int(characterId)])
        return CharacterState(
            self.codec.ticket(ticket) if ticket is not None else None,
            self._proposal(proposal) if proposal is not None else None,
            decodeMatched(matched) if matched is not None else None)

    async def matchedOf(self, characterId):
        """@return: the L{Matched} stored for C{characterId} by L{complete}, or None (expired, entered, queued again)."""
        (raw,) = await self._run("mm_matched", [int(characterId)])
        return None if raw is None else decodeMatched(raw)

    async def unannounced(self, queue, limit=1000):
        """
        @return: C{queue}'s completed matches whose C{mm.matched} may not have
            gone out (their node died between L{complete} and L{announced}),
            as (match id, the members' L{Matched} still stored) pairs;
            expired ones are forgotten.
        """
        read = await self._run("mm_unannounced",
                               [queue, formatFloat(self.clock.seconds()), int(limit)])
        return [(_member(match), [decodeMatched(b) for b in blobs]) for match, blobs in read]

    async def announced(self, queue, matchIds):
        """Every member of C{matchIds} (of C{queue}) was sent its C{mm.matched}: they are no longer L{unannounced}."""
        if matchIds:
            await self._run("mm_announced", [queue, *(str(m) for m in matchIds)])

    async def dismiss(self, characterId, matchId):
        """Forget C{characterId}'s stored L{Matched} if it is of C{matchId} (it entered). @return: whether it was."""
        return bool(await self._run("mm_dismiss", [int(characterId), str(matchId)]))
