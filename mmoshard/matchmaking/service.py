"""The matchmaking service: wires the parts together, keeps this node's matchmaking sessions, and ends tickets when sessions, parties or bans say so."""

import attrs
from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, ensureDeferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from mmoshard.interfaces import ISessionListener
from mmoshard.matchmaking.events import KIND, Courier
from mmoshard.matchmaking.handlers import Handlers
from mmoshard.matchmaking.loop import MatchLoop
from mmoshard.matchmaking.metrics import MatchmakingMetrics
from mmoshard.partychanges import subscribeChanges
from mmoshard.store.errors import StoreError

# Session end reasons after which the player goes on elsewhere: its ticket
# stays (refreshed by the node of its next session, else expired after the
# grace).  Any other end removes it.
# "moved": the session resumed on another node (docs/protocol.md), where the
# client's mm.hello binds the character again.
KEEPS_TICKET = frozenset({"replaced", "shutdown", "moved"})

# Events after which a character is no longer in the proposal it was shown.
_PROPOSAL_ENDS = frozenset({"mm.matched", "mm.requeued", "mm.removed"})


@attrs.define(eq=False)
class MMUser:
    """A character that said mm.hello on a session of this node."""

    session: object  # ISession
    cid: int
    accountId: int
    name: str
    cls: str
    proposal: str | None = None  # the match id of the last mm.proposal it was shown
    banned: bool = False
    # rated queue -> (its rating there, when read): kept for [matchmaking]
    # rating_cache seconds, and forgotten when a match of that queue is made
    # (its result changes the rating).
    ratings: dict = attrs.field(factory=dict)

    def deliver(self, type, body):
        """Send event C{type} to the session, remembering the proposal it is in."""
        if type == "mm.proposal":
            self.proposal = body["match"]
        elif type in _PROPOSAL_ENDS and body.get("match") == self.proposal:
            self.proposal = None
        if type == "mm.matched":
            self.ratings.pop(body.get("queue"), None)
        self.session.send(type, body)

    def rating(self, queue, now, keep):
        """@return: its rating in C{queue} read less than C{keep} seconds ago, else None."""
        kept = self.ratings.get(queue)
        if kept is None or now - kept[1] >= keep:
            return None
        return kept[0]


@implementer(ISessionListener)
class MatchmakingService(Service):
    """
    One matchmaking node.  Characters say C{mm.hello} on a session; this
    node then delivers their events, refreshes their tickets' liveness and
    ends their tickets when their sessions end.  L{MatchLoop} matches the
    queues whose lease this node holds; L{Handlers} serves the requests;
    L{Courier} carries events to other nodes.  docs/matchmaking.md.
    """

    log = Logger()

    def __init__(self, config, reactor, nodeId, metrics, sql, volatile, router, resumeGrace,
                 locator=None, parties=None, instances=None, results=None, verifier=None,
                 admin=None, store=None, formMatches=None, makeCopy=None):
        """
        @param config: the L{MatchmakingConfig}.
        @param metrics: the node's Prometheus registry.
        @param resumeGrace: C{[session] resume_grace}: how long a ticket
            outlives its members' sessions unless C{config.resume_grace} says.
        @param locator: the L{ILocator} (None: this node's sessions only).
        @param parties: the L{IParties} (None: every ticket is solo).
        @param instances: the L{IInstances} (None: this node takes no
            lease: it admits tickets and relays events, others match).
        @param results: the L{IMatchResults} (None: every rating 1500).
        @param verifier: the L{ITokenVerifier}, whose revocations tell a ban.
        @param admin: the L{IAdminSite} (None: no GET /matchmaking/queues).
        @param store: the L{TicketStore} (None: one on C{volatile}).
        @param formMatches: the matcher (None: L{mmoshard.matchmaking.matcher.formMatches}).
        @param makeCopy: see L{MatchLoop} (None: the store's C{WaitingCopy}).
        """
        self.setName("matchmaking")
        self.config = config
        self.queues = config.queues
        self.clock = reactor
        self.nodeId = nodeId
        self.sql = sql
        self.volatile = volatile
        self.router = router
        self.locator = locator
        self.parties = parties
        self.instances = instances
        self.results = results
        self.verifier = verifier
        self.admin = admin
        self.grace = config.grace(resumeGrace)
        # The leases on connections of their own: in a reconnection storm the
        # sessions' requests queue for seconds, and a lease that waits
        # behind them runs out under a live holder, or is taken over late.
        self.leaseStore = None  # (one this service opens and closes)
        if store is None:
            from mmoshard.matchmaking.store import TicketStore

            leases = volatile.dedicated()
            if leases is not volatile:
                self.leaseStore = leases
            store = TicketStore(volatile, reactor, grace=self.grace, leases=leases)
        self.store = store
        if formMatches is None:
            from mmoshard.matchmaking.matcher import formMatches
        self.formMatches = formMatches
        self.users = {}  # character id -> MMUser
        self.bySession = {}  # session id -> MMUser
        self.admitting = 0  # mm.queue requests in progress here ([matchmaking] admission_first)
        self.metrics = MatchmakingMetrics(metrics, self.users.__len__)
        self.courier = Courier(volatile, nodeId, reactor, locator, self.users.get, self.metrics)
        self.handlers = Handlers(self)
        self.loop = MatchLoop(self, makeCopy)
        # Members' liveness: refreshed a few times per grace.
        self.touchEvery = min(max(self.grace / 3.0, 0.5), 10.0)
        self.touchTTL = self.grace + self.touchEvery
        self.toucher = None
        self.partySubscription = None
        self.hooks = set()

    # -- lifetime ------------------------------------------------------------

    def startService(self):
        Service.startService(self)
        return Deferred.fromCoroutine(self._start())

    async def _start(self):
        if self.leaseStore is not None:
            self.leaseStore.open()
        await self.courier.start()
        self.partySubscription = await subscribeChanges(self.volatile, self.partyChanged)
        if self.router is not None:
            self.router.addHandlers("mm", self.handlers.table())
            self.router.addListener(self)
        if self.verifier is not None:
            self.verifier.addRevocationObserver(self.revoked)
        if self.admin is not None:
            from mmoshard.matchmaking.admin import mountAdmin

            mountAdmin(self.admin, self)
        self.toucher = LoopingCall(self.touch)
        self.toucher.clock = self.clock
        self.toucher.start(self.touchEvery, now=False)
        self.loop.start()
        self.log.info("matchmaking on node {node_id} started: queues {queues}, "
                      "{matching}", node_id=self.nodeId, queues=sorted(self.queues),
                      matching="matching under leases" if self.instances is not None
                      else "admitting only (no IInstances here: other nodes match)")

    def stopService(self):
        Service.stopService(self)
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self):
        if self.toucher is not None and self.toucher.running:
            self.toucher.stop()
        if self.verifier is not None:
            self.verifier.removeRevocationObserver(self.revoked)
        await self.loop.stop()
        if self.hooks:
            await DeferredList(list(self.hooks))
        if self.partySubscription is not None:
            subscription, self.partySubscription = self.partySubscription, None
            try:
                await subscription.unsubscribe()
            except StoreError:
                pass
        await self.courier.stop()
        if self.leaseStore is not None:
            await self.leaseStore.close()  # (after the loop handed its leases back)

    # -- this node's characters ----------------------------------------------

    def bind(self, user):
        """Make C{user} the character of its session (replacing an older session of it here)."""
        old = self.users.get(user.cid)
        if old is not None and old.session.sessionId != user.session.sessionId:
            self.bySession.pop(old.session.sessionId, None)
            user.proposal = old.proposal
        self.users[user.cid] = user
        self.bySession[user.session.sessionId] = user

    def userFor(self, session):
        """@return: the L{MMUser} of C{session}, or None before mm.hello."""
        return self.bySession.get(session.sessionId)

    def touch(self):
        """Refresh the liveness of every character with a session here (LoopingCall)."""
        if not self.users:
            return None
        d = ensureDeferred(self.store.touch(list(self.users), self.touchTTL))
        d.addErrback(lambda f: self.log.warn(
            "mm liveness of {count} character(s) not refreshed: {why}", count=len(self.users),
            why=f.getErrorMessage()))
        return d

    # -- ending tickets --------------------------------------------------------

    def notify(self, tickets, type, body, skip=None):
        """Send event C{type}/C{body} to every member of C{tickets} (but C{skip})."""
        cids = [cid for t in tickets for cid in t.characterIds if cid != skip]
        if cids:
            return self.courier.send(cids, type, body)
        return None

    async def stateOf(self, cid):
        """
        @return: the L{CharacterState} of C{cid} (read atomically), its
            C{matched} None when it entered that instance already (the
            record is then forgotten).
        """
        state = await self.store.stateOf(cid)
        record = state.matched
        if record is None or self.locator is None:
            return state
        location = await self.locator.where(cid)
        if location is not None and location.instance_id == record.instance:
            await self.store.dismiss(cid, record.match_id)
            return attrs.evolve(state, matched=None)
        return state

    async def withdraw(self, cid, reason, by=None):
        """
        Take C{cid}'s ticket out of matchmaking, whole (a party's too):
        cancelled while waiting, or dropped from its proposal (the others
        requeued in their place).  Its members are told C{mm.removed
        {reason}}; C{by} is the character whose act caused it.

        @return: the ticket removed, or None (it had none, or another
            node's removal won).
        """
        store = self.store
        for _ in range(2):
            claim = await store.claim(cid)
            if claim is None:
                return None
            if claim.match_id is None:
                cancelled = await store.cancel(claim.ticket.id)
                if cancelled is not None:
                    self.removed(cancelled, reason, by)
                    return cancelled
                # Proposed meanwhile: look again.
                continue
            p = await store.proposal(claim.match_id)
            if p is not None and await self.endProposal(p, [claim.ticket.id], reason, by):
                return claim.ticket
            return None
        return None

    def removed(self, ticket, reason, by=None, match=None):
        """Count and tell the members of removed C{ticket}."""
        self.metrics.removed.labels(ticket.queue, reason).inc()
        self.log.info("mm ticket {ticket} of {queue} removed ({reason}, character {character_id}): "
                      "{members}", ticket=ticket.id, queue=ticket.queue, reason=reason,
                      character_id=by, members=list(ticket.characterIds))
        body = {"reason": reason, "queue": ticket.queue, "ticket": ticket.id, "character_id": by}
        if match is not None:
            body["match"] = match
        # Who cancelled or declined has the answer to its request.
        self.notify([ticket], "mm.removed", body,
                    skip=by if reason in ("cancelled", "declined") else None)

    async def endProposal(self, proposal, dropIds, reason, by=None):
        """
        End ready check C{proposal} unsuccessfully: the tickets C{dropIds}
        are removed (C{mm.removed}), the others go back to their place in
        the queue (C{mm.requeued}).

        @return: True when this call ended it (False: it was over already).
        """
        outcome = await self.store.requeueOutcome(proposal.match_id, list(dropIds))
        if outcome is None:
            return False
        queue, match = proposal.queue, proposal.match_id
        self.loop.forget(match)
        self.metrics.declines.labels(queue, reason).inc()
        self.log.info("mm proposal {match} of {queue} failed ({reason}, character {character_id}): "
                      "tickets {dropped} removed, {requeued} requeued", match=match, queue=queue,
                      reason=reason, character_id=by, dropped=[t.id for t in outcome.removed],
                      requeued=[t.id for t in outcome.requeued])
        for ticket in outcome.removed:
            self.removed(ticket, reason, by, match)
        for ticket in outcome.requeued:
            self.notify([ticket], "mm.requeued", {"reason": reason, "queue": queue,
                                                  "ticket": ticket.id, "match": match,
                                                  "character_id": by})
        return True

    def _hook(self, coro, what, cid):
        d = Deferred.fromCoroutine(coro)
        self.hooks.add(d)

        def failed(f):
            if f.check(StoreError):
                self.log.warn("mm {what} of character {character_id} failed: {why}", what=what,
                              character_id=cid, why=f.getErrorMessage())
            else:
                self.log.failure("mm {what} of character {character_id} failed", f, what=what,
                                 character_id=cid)

        d.addErrback(failed)
        d.addBoth(lambda _: self.hooks.discard(d))
        return d

    # -- party changes, bans ------------------------------------------------------

    def partyChanged(self, change):
        """
        A party changed (chat announced it): a ticket of that party is
        removed (C{party_changed}).  Every node with one of its members
        tries; the store lets exactly one removal happen.
        """
        if change.event == "created":
            return None
        local = [cid for cid in change.everyone if cid in self.users]
        if not local:
            return None
        return self._hook(self._partyChanged(change, local), "party change", change.subject)

    async def _partyChanged(self, change, local):
        for cid in local:
            ticket = await self.store.ticketOf(cid)
            if ticket is not None and ticket.party_id == change.party_id:
                if tuple(m.character_id for m in ticket.members) == tuple(change.members):
                    # The ticket was made from the party as this change left it
                    # (its announcement came after the mm.queue): nothing to undo.
                    return
                await self.withdraw(cid, "party_changed", change.subject)
                return

    def revoked(self, sids, accounts, reason):
        """Revocations heard (ITokenVerifier): a banned account's characters here are marked, their sessions end next."""
        if reason != "ban" or not accounts:
            return
        for user in self.users.values():
            if user.accountId in accounts:
                user.banned = True

    # -- ISessionListener -------------------------------------------------------------

    def sessionStarted(self, session):
        pass

    def sessionLinkDead(self, session):
        # The ticket waits for the resume: this node keeps refreshing it.
        pass

    def sessionResumed(self, session):
        pass

    def sessionMoved(self, session, fromNode):
        # The character's ticket stays where it is in the store; the client's
        # mm.hello on this node binds it here and takes its events.
        self.log.info("mm session {session_id} of account {account_id} moved here from node "
                      "{from_node}", session_id=session.sessionId, account_id=session.accountId,
                      from_node=fromNode)

    def sessionEnded(self, session, reason):
        user = self.bySession.pop(session.sessionId, None)
        if user is None:
            return None
        if self.users.get(user.cid) is user:
            del self.users[user.cid]
        return self._hook(self._ended(user, reason), "session end", user.cid)

    async def _ended(self, user, reason):
        cid = user.cid
        if self.locator is not None:
            await self.locator.unbind(cid, KIND, user.session.sessionId)
        if user.banned or reason not in KEEPS_TICKET:
            why = "banned" if user.banned else "gone"
            await self.withdraw(cid, why, cid)
        self.log.info("mm character {character_id} of account {account_id} left node {node_id} "
                      "({reason})", character_id=cid, account_id=user.accountId,
                      node_id=self.nodeId, reason=reason)
