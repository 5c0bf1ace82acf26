"""The mm.* requests: hello, queue, cancel, status, accept and decline (docs/matchmaking.md "Protocol")."""

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from mmoshard.batching import Batcher, RandomHex, keyed
from mmoshard.matchmaking import errors
from mmoshard.matchmaking.data import ROLES, Member, Ticket
from mmoshard.matchmaking.errors import MatchmakingError
from mmoshard.matchmaking.events import KIND, Courier
from mmoshard.matchmaking.matcher import fits
from mmoshard.matchmaking.views import (
    allAccepted, matchedBody, proposalBody, queueView, ticketOfMember, ticketView,
)
from mmoshard.store.errors import StoreError
from mmoshard.store.slots import everyBatch
from mmoshard.store.sql import placeholders
from mmoshard.wire.errors import ProtocolError

# The requests of the role (docs/matchmaking.md "Protocol").
REQUEST_TYPES = ("mm.hello", "mm.queue", "mm.cancel", "mm.status", "mm.accept", "mm.decline")

# Longest match id or queue name taken from a client.
MAX_ID = 128


def error(code, message, **details):
    return MatchmakingError(code, message, details=details or None)


# Ids are positive signed 64-bit integers (every id column).
MAX_INT = 2 ** 63 - 1


def intArg(message, key):
    value = message.get(key)
    if type(value) is not int or not 0 < value <= MAX_INT:
        raise error(errors.BAD_REQUEST, f"{key} must be a positive integer")
    return value


def strArg(message, key):
    value = message.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID or not value.isprintable():
        raise error(errors.BAD_REQUEST,
                    f"{key} must be a string of 1..{MAX_ID} printable characters")
    return value


def rolesArg(value, what):
    """@return: the tuple of roles C{value} lists (a non-empty list of distinct ROLES)."""
    if (not isinstance(value, list) or not value or len(value) > len(ROLES)
            or any(r not in ROLES for r in value) or len(set(value)) != len(value)):
        raise error(errors.BAD_REQUEST,
                    f"{what} must be a non-empty list of distinct roles of {', '.join(ROLES)}")
    return tuple(value)


class Handlers:
    """The session side of matchmaking: checks each request and answers it, or with a typed L{MatchmakingError}."""

    log = Logger()

    def __init__(self, service):
        self.service = service
        # Reads that many requests make at once go together (one round trip,
        # one thread hop), as the store's adds and accepts do: a storm of
        # hellos and queues is then a few reads, not one or two each.
        self._characterReads = Batcher(keyed(self.characters))
        self._partyReads = Batcher(keyed(lambda ids: service.parties.partiesOf(ids)))
        self._ratingReads = Batcher(self._readRatings)
        self._ticketIds = RandomHex(8)
        # queue -> its mmoshard_mm_tickets_total child (labels() is a locked lookup).
        self._queuedCounts = {}

    def table(self):
        """@return: the mm.* request handlers, for L{IMessageRouter.addHandlers}."""
        return {
            "mm.hello": self._wrap(self.hello, needUser=False),
            "mm.queue": self._wrap(self.queue),
            "mm.cancel": self._wrap(self.cancel),
            "mm.status": self._wrap(self.status),
            "mm.accept": self._wrap(self.accept),
            "mm.decline": self._wrap(self.decline),
        }

    def _wrap(self, fn, needUser=True):
        service = self.service
        refused = service.metrics.refused

        def handler(session, message):
            try:
                subject = session
                if needUser:
                    subject = service.userFor(session)
                    if subject is None:
                        raise error(errors.NO_HELLO, "say mm.hello first")
                d = Deferred.fromCoroutine(fn(subject, message))
            except ProtocolError as e:
                refused.labels(e.info.code).inc()
                raise
            return d.addErrback(self._translate)

        return handler

    def _translate(self, failure):
        refused = self.service.metrics.refused
        if failure.check(StoreError):
            self.log.warn("mm request failed on a store: {why}", why=failure.getErrorMessage())
            refused.labels(errors.UNAVAILABLE).inc()
            raise MatchmakingError(errors.UNAVAILABLE, "matchmaking is unavailable, try again",
                                   retry_after=5.0)
        if failure.check(ProtocolError):
            refused.labels(failure.value.info.code).inc()
        return failure

    # -- characters --------------------------------------------------------------

    async def _readRatings(self, items):
        """@return: per (queue, character ids) of C{items}, id -> rating: one L{IMatchResults.ratings} per queue."""
        byQueue = {}
        for queue, cids in items:
            byQueue.setdefault(queue, set()).update(cids)
        found = {}
        # Rated queues are few (one shipped): one read after the other.
        for queue in sorted(byQueue):
            found[queue] = await self.service.results.ratings(queue, sorted(byQueue[queue]))
        return [{cid: found[queue].get(cid) for cid in cids} for queue, cids in items]

    async def characters(self, ids):
        """@return: character id -> (account id, name, class) of the live characters C{ids}."""
        rows = await self.service.sql.runQuery(
            f"SELECT id, account_id, name, class FROM characters "
            f"WHERE id IN ({placeholders(len(ids))}) AND deleted_at IS NULL", tuple(ids))
        return {int(r[0]): (int(r[1]), r[2], r[3]) for r in rows}

    async def online(self, cids):
        """@raise MatchmakingError: C{mm.member_offline} naming the first of C{cids} with no matchmaking session."""
        service = self.service
        remote = [cid for cid in cids if cid not in service.users]
        if not remote:
            return
        if service.locator is None:
            raise error(errors.MEMBER_OFFLINE, "a party member is not online",
                        character_id=remote[0])
        # everyBatch raises a read's own StoreError (mm.unavailable), where
        # DeferredList's fireOnOneErrback would wrap it (internal).
        found = await everyBatch(remote, service.locator.where)
        for cid, location in zip(remote, found):
            if Courier.nodeOf(location) is None:
                raise error(errors.MEMBER_OFFLINE, "a party member is not online in matchmaking",
                            character_id=cid)

    async def ratings(self, queue, cids):
        """
        @return: character id -> its rating in rated C{queue}: what this
            node's sessions keep (L{MMUser.rating}), the rest read with
            L{IMatchResults.ratings} and kept by those of this node.
        """
        service = self.service
        now = service.clock.seconds()
        users = service.users
        found = {}
        for cid in cids:
            user = users.get(cid)
            if user is not None:
                rating = user.rating(queue, now, service.config.rating_cache)
                if rating is not None:
                    found[cid] = rating
        missing = [cid for cid in cids if cid not in found]
        if missing:
            read = await self._ratingReads.submit((queue, tuple(missing)))
            for cid in missing:
                rating = read.get(cid)
                found[cid] = float(rating.rating) if rating is not None else 1500.0
                if cid in users:
                    users[cid].ratings[queue] = (found[cid], now)
        return found

    # -- requests ---------------------------------------------------------------------

    async def hello(self, session, message):
        from mmoshard.matchmaking.service import MMUser

        service = self.service
        cid = intArg(message, "character_id")
        user = service.userFor(session)
        if user is not None and user.cid != cid:
            raise error(errors.BAD_REQUEST, "this session already speaks as another character")
        if user is None:
            row = await self._characterReads.submit(cid)
            if row is None or row[0] != session.accountId:
                raise error(errors.NOT_YOUR_CHARACTER, "no such character on this account")
            user = MMUser(session, cid, row[0], row[1], row[2])
            service.bind(user)
            self.log.info("mm character {character_id} of account {account_id} on node {node_id}",
                          character_id=cid, account_id=row[0], node_id=service.nodeId)
            await self._readRatingsOf(user)
        if service.locator is not None:
            await service.locator.bind(cid, KIND, session.sessionId)
        await service.store.touch([cid], service.touchTTL)
        state = await self.state(user)
        proposal = state.pop("_proposal")
        if proposal is not None and cid not in proposal.accepted:
            # A ready check began while it was away: ask again.
            user.deliver("mm.proposal", proposalBody(proposal, cid, service.clock.seconds()))
        if state["matched"] is not None:
            # Matched while it was away (or its node died before telling it).
            user.deliver("mm.matched", state["matched"])
        return dict(state, character_id=cid, name=user.name, **{"class": user.cls},
                    role=service.config.classRoles.get(user.cls),
                    queues=[queueView(s) for _, s in sorted(service.queues.items())])

    async def _readRatingsOf(self, user):
        """
        Read a character's ratings in the rated queues as it says mm.hello,
        with the hellos that arrive together (one read per batch and queue):
        kept C{rating_cache} seconds, so its mm.queue then reads none.  A
        failed read is logged and left to mm.queue to make again.
        """
        service = self.service
        if service.results is None or service.config.rating_cache <= 0:
            return
        for name in self._ratedQueues():
            try:
                await self.ratings(name, [user.cid])
            except StoreError as e:
                self.log.warn("mm ratings of character {character_id} in {queue} not read at "
                              "hello: {why}", character_id=user.cid, queue=name, why=e)

    def _ratedQueues(self):
        return sorted(name for name, spec in self.service.queues.items() if spec.rated)

    async def state(self, user):
        """The character's ticket, proposal and stored mm.matched, as mm.status answers them (and C{_proposal})."""
        service = self.service
        now = service.clock.seconds()
        state = await service.stateOf(user.cid)
        ticket, proposal, matched = state.ticket, state.proposal, state.matched
        user.proposal = proposal.match_id if proposal is not None else None
        return {
            "ticket": ticketView(ticket, now) if ticket is not None else None,
            "proposal": proposalBody(proposal, user.cid, now) if proposal is not None else None,
            "matched": matchedBody(matched) if matched is not None else None,
            "_proposal": proposal,
        }

    async def status(self, user, message):
        state = await self.state(user)
        del state["_proposal"]
        return state

    async def queue(self, user, message):
        # Counted while in progress: the match loop yields to a burst of them
        # ([matchmaking] admission_first).
        self.service.admitting += 1
        try:
            return await self._queue(user, message)
        finally:
            self.service.admitting -= 1

    async def _queue(self, user, message):
        service = self.service
        name = message.get("queue")
        spec = service.queues.get(name) if isinstance(name, str) else None
        if spec is None:
            raise error(errors.UNKNOWN_QUEUE, f"no queue {name!r}", queues=sorted(service.queues))
        chosen = self._chosenRoles(message.get("roles"), user.cid)
        members, partyId = await self._party(user)
        if len(members) > spec.team_size:
            raise error(errors.PARTY_TOO_LARGE,
                        f"{spec.title or name} takes teams of {spec.team_size}")
        unknown = [cid for cid in chosen if cid not in members]
        if unknown:
            raise error(errors.BAD_REQUEST, "roles names a character not in your party",
                        character_id=unknown[0])
        # The rows of members who said mm.hello on this node were read then;
        # only the others' are read.
        users = service.users
        rows = {cid: (users[cid].accountId, users[cid].name, users[cid].cls)
                for cid in members if cid in users}
        rows[user.cid] = (user.accountId, user.name, user.cls)
        others = [cid for cid in members if cid not in rows]
        if others:
            rows.update(await self.characters(others))
        missing = [cid for cid in members if cid not in rows]
        if missing:
            raise error(errors.MEMBER_OFFLINE, "a party member no longer exists",
                        character_id=missing[0])
        await self.online([cid for cid in members if cid != user.cid])
        ratings = {}
        if spec.rated and service.results is not None:
            ratings = await self.ratings(name, members)
        built = []
        for cid in members:
            _, charName, cls = rows[cid]
            roles = self._roles(spec, cid, chosen.get(cid), cls)
            built.append(Member(cid, roles, ratings.get(cid, 1500.0), charName, cls))
        if not fits(spec, built):
            raise error(errors.ROLE_UNAVAILABLE, "your party cannot fill distinct places of one "
                        f"team ({', '.join(f'{n} {r}' for r, n in sorted(spec.quotas.items()))})")
        ticket = Ticket(self._ticketIds.next(), name, tuple(built), service.clock.seconds(),
                        partyId, service.nodeId)
        await service.store.add(ticket)
        counted = self._queuedCounts.get(name)
        if counted is None:
            counted = self._queuedCounts[name] = service.metrics.queued.labels(name)
        counted.inc()
        view = ticketView(ticket, ticket.created)
        service.notify([ticket], "mm.queued", dict(view, leader=user.cid), skip=user.cid)
        return {"ticket": ticket.id, "queue": name, "eta_s": await service.loop.eta(name),
                "members": view["members"]}

    @staticmethod
    def _chosenRoles(raw, cid):
        """@return: character id -> the roles it chose (C{roles}: a list, its own; a map, by member)."""
        if raw is None:
            return {}
        if isinstance(raw, list):
            return {cid: rolesArg(raw, "roles")}
        if not isinstance(raw, dict) or len(raw) > 40:
            raise error(errors.BAD_REQUEST, "roles must be a list of roles, or a map of "
                        "character id to such lists")
        chosen = {}
        for key, value in raw.items():
            try:
                member = int(key)
            except (TypeError, ValueError, OverflowError):
                raise error(errors.BAD_REQUEST, "the keys of roles are character ids") from None
            chosen[member] = rolesArg(value, f"roles[{key}]")
        return chosen

    def _roles(self, spec, cid, chosen, cls):
        """@return: the roles C{cid} may play in C{spec}: those it chose, else its class's; only the queue's."""
        roles = chosen
        if roles is None:
            role = self.service.config.classRoles.get(cls)
            roles = (role,) if role else ROLES
        if spec.quotas:
            roles = tuple(r for r in roles if spec.quotas.get(r, 0) > 0)
            if not roles:
                raise error(errors.ROLE_UNAVAILABLE, f"no place in {spec.name} for the roles "
                            "of a member", character_id=cid)
        return roles

    async def _party(self, user):
        """@return: (the members queued, leader first; the party id or None)."""
        parties = self.service.parties
        if parties is None:
            return [user.cid], None
        found = await self._partyReads.submit(user.cid)
        if found is None:
            return [user.cid], None
        partyId, members = found
        if user.cid not in members:
            return [user.cid], None
        if members[0] != user.cid:
            raise error(errors.NOT_LEADER, "only the party leader queues the party",
                        character_id=members[0])
        return members, partyId

    async def cancel(self, user, message):
        ticket = await self.service.withdraw(user.cid, "cancelled", user.cid)
        if ticket is None:
            raise error(errors.NOT_QUEUED, "you are in no queue")
        return {"ticket": ticket.id, "queue": ticket.queue}

    async def accept(self, user, message):
        service = self.service
        match = strArg(message, "match")
        proposal = await service.store.accept(match, user.cid)
        if proposal is None:
            raise error(errors.UNKNOWN_MATCH, "no such ready check for you, or it is over")
        user.proposal = match
        if allAccepted(proposal):
            await service.loop.settle(proposal)
        return {"match": match, "accepted": len(proposal.accepted),
                "total": len(proposal.characterIds)}

    async def decline(self, user, message):
        service = self.service
        match = strArg(message, "match")
        proposal = await service.store.proposal(match)
        ticket = ticketOfMember(proposal, user.cid) if proposal is not None else None
        if ticket is None or not await service.endProposal(proposal, [ticket.id], "declined",
                                                           user.cid):
            raise error(errors.UNKNOWN_MATCH, "no such ready check for you, or it is over")
        user.proposal = None
        return {"match": match, "ticket": ticket.id}
