"""The matching loop: per queue under its lease, form matches, run their ready checks, and create the instance once everyone accepted."""

import secrets

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.task import LoopingCall, deferLater
from twisted.logger import Logger

from mmoshard.matchmaking import takeover
from mmoshard.matchmaking.announcing import Announcer
from mmoshard.matchmaking.data import Proposal
from mmoshard.matchmaking.events import Settle
from mmoshard.matchmaking.views import allAccepted, matchedRecords, proposalBody
from mmoshard.store.errors import SQLUnavailable, StoreError, VolatileUnavailable
from mmoshard.store.slots import everyBatch

# Weight of the newest wait in a queue's moving average (its ETA).
_EWMA = 0.2

# Seconds between two removals of a held queue's tickets nobody refreshed
# (their grace is tens of seconds: a pass need not look each time).
EXPIRE_EVERY = 1.0

# Seconds before a ready check whose end failed on an unavailable store is
# tried again, doubling with each failure up to TIMEOUT_RETRY_MAX.
TIMEOUT_RETRY = 1.0
TIMEOUT_RETRY_MAX = 30.0

def etaKey(queue):
    """@return: the volatile key of C{queue}'s expected wait, written by its lease holder."""
    return f"mm:eta:{queue}"


def newMatchId(queue):
    """@return: a new match id, C{<queue>/<random hex>}."""
    return f"{queue}/{secrets.token_hex(8)}"


class MatchLoop:
    """
    Every C{match_interval}, for each queue: take its lease, or renew it
    when a third of its TTL has passed (L{TicketStore.lease}); when held,
    expire tickets nobody refreshed (at most every L{EXPIRE_EVERY} s),
    send again the C{mm.matched} that did not all go out (L{Announcer}),
    read the waiting tickets oldest first, form matches and propose them
    (atomically: a ticket taken meanwhile makes its proposal lose), send
    each member C{mm.proposal}, and time the ready check from the stored
    C{expires_at}.  When everyone accepted (an L{Settle} from the accepting
    node, the timer, or a resume) the holder checks the parties are whole,
    calls L{IInstances.create}, completes the proposal exactly once and
    sends each member C{mm.matched} with its admission ticket.  A node
    taking a lease over resumes the proposals in flight from the store.
    A node without L{IInstances} takes no lease.
    """

    log = Logger()

    def __init__(self, service, makeCopy=None):
        """
        @param makeCopy: callable(store, queue) -> the matcher's copy of a
            queue's waiting tickets (None: L{WaitingCopy}).
        """
        if makeCopy is None:
            from mmoshard.matchmaking.waitingcopy import WaitingCopy as makeCopy
        self.makeCopy = makeCopy
        self.copies = {}  # queue -> its WaitingCopy, while held
        self.service = service
        self.config = service.config
        self.store = service.store
        self.clock = service.clock
        self.metrics = service.metrics
        self.held = set()  # queues whose lease this node holds
        self.timers = {}  # match id -> (queue, IDelayedCall) of its ready check
        self.settling = set()  # match ids being finished here
        self.ending = set()  # match ids whose ready check is being timed out here
        self.endedAt = {}  # match id -> when it ended here (forget), for adopt's reads in flight
        self.adoptSoon = set()  # held queues whose proposals no timer covers are taken up next pass
        self.looking = set()  # held queues whose look (L{_look}) is out
        self.proposing = set()  # match ids being stored by proposeMany here
        self.waits = {}  # queue -> moving average of the wait to a proposal (s)
        self.statsAt = {}  # queue -> when its stats were last read
        self.expiredAt = {}  # queue -> when its unrefreshed tickets were last removed
        self.announcer = Announcer(service, self.spawn, self.settling.__contains__,
                                   self.held.__contains__)
        self.retryIn = {}  # match id -> seconds before its ready check's end is tried again
        self.placements = {}  # match id -> (queue, the instance made for it), until it completes
        self.stopping = False
        self.renewAt = {}  # held queue -> when its lease is renewed next
        self.renewing = set()  # queues whose lease request is out
        self.etas = {}  # queue -> (the holder's expected wait, when read) on other nodes
        self.tasks = set()
        self.looping = None
        self.passing = {}  # queue -> the Deferred of its pass in progress

    # -- lifetime ---------------------------------------------------------------

    def start(self):
        service = self.service
        service.courier.handlers[Settle] = self.onSettle
        if service.instances is None:
            return
        self.looping = LoopingCall(self.tick)
        self.looping.clock = self.clock
        self.looping.start(self.config.match_interval, now=True)

    async def stop(self):
        """Stop matching; hand the leases back so another node takes the queues over at once."""
        self.stopping = True
        if self.looping is not None and self.looping.running:
            self.looping.stop()
        if self.passing:
            await DeferredList(list(self.passing.values()))
        for _, timer in self.timers.values():
            if timer.active():
                timer.cancel()
        self.timers.clear()
        if self.tasks:
            await DeferredList(list(self.tasks))
        for queue in sorted(self.held):
            try:
                await self.store.releaseLease(queue, self.service.nodeId)
            except StoreError as e:
                self.log.warn("mm lease of {queue} not released: {why}", queue=queue, why=e)
            self.metrics.leases.labels(queue).set(0)
            self.metrics.clearStats(queue)
        self.held.clear()
        self.copies.clear()
        self.renewAt.clear()

    def spawn(self, coro, what, match=None):
        """Run C{coro} in the background, its failure logged."""
        d = Deferred.fromCoroutine(coro)
        self.tasks.add(d)

        def failed(f):
            if f.check(StoreError):
                self.log.warn("mm {what} of {match} failed: {why}", what=what, match=match,
                              why=f.getErrorMessage())
            else:
                self.log.failure("mm {what} of {match} failed", f, what=what, match=match)

        d.addErrback(failed)
        d.addBoth(lambda _: self.tasks.discard(d))
        return d

    # -- the pass -------------------------------------------------------------------

    def tick(self):
        """
        Start a pass of each queue not in one already.  Each queue's passes
        follow on their own: a slow one (a lease taken over, resuming its
        proposals in a reconnection storm) does not hold back another
        queue's, such as the next lease to take over.  A held queue whose
        pass is still going when its renewal falls due is renewed beside it:
        a pass of many slow round trips is not to cost the lease.
        """
        now = self.clock.seconds()
        for spec in self.service.queues.values():
            queue = spec.name
            if (queue in self.passing and queue in self.held and queue not in self.renewing
                    and self.renewAt.get(queue, now) <= now):
                self._renew(spec)
            self._startPass(spec)

    def _renew(self, spec):
        """Renew C{spec}'s lease now, beside its pass in progress."""
        self.spawn(self.lease(spec), "lease renewal", spec.name)

    def _look(self, queue, again):
        """
        Beside the pass (which does not wait for it): send again what did
        not all go out (when C{again}), then take up the proposals no timer
        here covers (L{adopt}); one look per queue at a time.
        """
        if queue in self.looking:
            return
        self.looking.add(queue)

        async def look():
            try:
                if again:
                    await self.announcer.again(queue)
                if queue in self.held:
                    await self.adopt(queue)
                    self.adoptSoon.discard(queue)
            finally:
                self.looking.discard(queue)

        self.spawn(look(), "look for the untold and untimed", queue)

    def _startPass(self, spec):
        """@return: the Deferred of C{spec}'s pass: the one in progress, or one started now."""
        queue = spec.name
        d = self.passing.get(queue)
        if d is None:
            d = self.passing[queue] = Deferred.fromCoroutine(self.passQueue(spec))

            def over(_):
                self.passing.pop(queue, None)

            d.addBoth(over)
        return d

    async def runPass(self):
        """One pass of every queue (those in one: that pass), all done."""
        specs = list(self.service.queues.values())
        await DeferredList([self._startPass(spec) for spec in specs])

    async def passQueue(self, spec):
        """One pass over queue C{spec}; never fails (a failure is logged, the next pass tries again)."""
        queue = spec.name
        began = self.clock.seconds()
        try:
            if not await self.lease(spec):
                return
            now = self.clock.seconds()
            if self.expiredAt.get(queue, -1e18) + EXPIRE_EVERY <= now:
                self.expiredAt[queue] = now
                for ticket in await self.store.expire(queue, now):
                    self.service.removed(ticket, "gone")  # (removed: whoever holds the queue)
            # Each step below, after a round trip, first asks whether the
            # lease is still this node's: a renewal beside this pass may
            # have found it taken (lost) meanwhile.
            if queue in self.held and self.announcer.due(queue, now):
                self.adoptSoon.add(queue)
                self._look(queue, again=True)
            elif queue in self.held and queue in self.adoptSoon:
                self._look(queue, again=False)
            copy = self.copies.get(queue)
            if copy is None:
                return
            tickets = (await copy.refresh())[:self.config.scan_limit]
            if queue in self.held and self.statsAt.get(queue, -1e18) + self.config.stats_interval <= now:
                await self.refreshStats(queue, now)
            if sum(len(t.members) for t in tickets) >= spec.teams * spec.team_size:
                limit = self.config.passLimit(self.service.admitting)
                if limit < self.config.max_matches_per_pass:
                    # Tickets arriving now are answered first; the backlog is
                    # matched in full once the burst is admitted.
                    self.metrics.yielded.labels(queue).inc()
                matches = self.service.formMatches(spec, tickets, now, limit=limit)
                if matches and queue in self.held:
                    byId = {t.id: t for t in tickets}
                    await self.propose(spec, copy, matches, byId, now)
        except StoreError as e:
            self.log.warn("mm pass of {queue} failed: {why}", queue=queue, why=e)
        except Exception:
            self.log.failure("mm pass of {queue} failed", queue=queue)
        finally:
            self.metrics.passSeconds.labels(queue).observe(max(0.0, self.clock.seconds() - began))

    async def lease(self, spec):
        """
        Take C{spec}'s lease, or renew it once a third of C{lease_ttl} has
        passed since the last renewal was sent (the store's expiry counts
        from later than that); @return: whether this node holds it now.
        """
        queue = spec.name
        sent = self.clock.seconds()
        if queue in self.held and (sent < self.renewAt.get(queue, sent) or queue in self.renewing):
            return True  # (or a renewal is out: its answer tells)
        self.renewing.add(queue)
        try:
            held = await self.store.lease(queue, self.service.nodeId, self.config.lease_ttl)
        finally:
            self.renewing.discard(queue)
        if not held:
            self.renewAt.pop(queue, None)
            if queue in self.held:
                self.lost(queue)
            return False
        self.renewAt[queue] = sent + self.config.lease_ttl / 3
        if queue not in self.held:
            self.held.add(queue)
            self.copies[queue] = self.makeCopy(self.store, queue)
            self.metrics.leases.labels(queue).set(1)
            self.log.info("mm node {node_id} holds the lease of {queue}",
                          node_id=self.service.nodeId, queue=queue)
            try:
                await self.resume(queue)
            except BaseException:
                # Not resumed: the next pass takes the queue up again.
                self.held.discard(queue)
                self.copies.pop(queue, None)
                self.metrics.leases.labels(queue).set(0)
                raise
        return queue in self.held  # (a renewal beside may have lost it meanwhile)

    def lost(self, queue):
        """Another node took C{queue}'s lease: stop timing its ready checks here."""
        self.held.discard(queue)
        self.copies.pop(queue, None)
        self.statsAt.pop(queue, None)
        self.renewAt.pop(queue, None)
        self.announcer.drop(queue)
        self.adoptSoon.discard(queue)
        self.placements = {m: v for m, v in self.placements.items() if v[0] != queue}
        self.endedAt = {m: at for m, at in self.endedAt.items() if not m.startswith(queue + "/")}
        self.metrics.leases.labels(queue).set(0)
        self.metrics.clearStats(queue)
        for match, (q, timer) in list(self.timers.items()):
            if q == queue:
                if timer.active():
                    timer.cancel()
                del self.timers[match]
                self.retryIn.pop(match, None)
        self.log.warn("mm node {node_id} lost the lease of {queue}",
                      node_id=self.service.nodeId, queue=queue)

    async def resume(self, queue):
        """Take over C{queue}'s proposals in flight (L{takeover.resume})."""
        await takeover.resume(self, queue)

    async def adopt(self, queue):
        """Take up C{queue}'s proposals in flight no timer here covers (L{takeover.adopt})."""
        await takeover.adopt(self, queue)

    async def refreshStats(self, queue, now):
        stats = await self.store.stats(queue)
        if queue not in self.held:
            return  # (lost meanwhile: the gauges are the new holder's)
        self.statsAt[queue] = now
        self.metrics.showStats(queue, stats)
        wait = self.waits.get(queue)
        if wait is not None:
            await self.service.volatile.set(etaKey(queue), f"{wait:.3f}",
                                          ttl=3 * self.config.stats_interval)

    async def eta(self, queue):
        """
        @return: the seconds a new ticket of C{queue} may expect to wait, or
            None when unknown: the holder's own average, else what the
            holder wrote (read at most once per C{stats_interval}).
        """
        if queue in self.held and queue in self.waits:
            return round(self.waits[queue], 1)
        now = self.clock.seconds()
        cached = self.etas.get(queue)
        if cached is None or cached[1] + self.config.stats_interval <= now:
            try:
                raw = await self.service.volatile.get(etaKey(queue))
            except StoreError:
                # Only an estimate: the request it answers succeeded.
                return cached[0] if cached is not None else None
            cached = self.etas[queue] = (round(float(raw), 1) if raw is not None else None, now)
        return cached[0]

    # -- proposals ----------------------------------------------------------------------

    async def propose(self, spec, copy, matches, byId, now):
        """Store a proposal per match (each atomically, in one round trip) and start the ready checks that won."""
        queue = spec.name
        expires = now + self.config.readyTimeout(spec)
        proposals = [Proposal(newMatchId(queue), queue, tuple(byId[i] for i in m.tickets),
                              tuple(m.slots), now, expires) for m in matches]
        ids = {p.match_id for p in proposals}
        self.proposing |= ids  # (not for a look beside to take up: timed below)
        try:
            won = await self.store.proposeMany(proposals)
        except StoreError:
            # Perhaps stored all the same (an answer past its deadline):
            # the next pass takes up what is there.
            self.adoptSoon.add(queue)
            raise
        finally:
            self.proposing -= ids
        taken = []
        for p, ok in zip(proposals, won):
            if ok:
                taken.extend(t.id for t in p.tickets)
                self.proposed(p, now)
        if len(taken) < sum(len(p.tickets) for p in proposals):
            self.log.info("mm {count} proposal(s) of {queue} lost to a ticket that changed",
                          count=won.count(False), queue=queue)
        copy.discard(taken)

    def proposed(self, p, now):
        queue = p.queue
        self.metrics.proposals.labels(queue).inc()
        wait = self.metrics.wait.labels(queue)
        for ticket in p.tickets:
            waited = max(0.0, now - ticket.created)
            wait.observe(waited)
            old = self.waits.get(queue)
            self.waits[queue] = waited if old is None else old + _EWMA * (waited - old)
        self.time(p, now)
        self.log.info("mm proposal {match} of {queue}: tickets {tickets}, ready check until "
                      "{expires_at:.1f}", match=p.match_id, queue=queue,
                      tickets=[t.id for t in p.tickets], expires_at=p.expires_at)
        send = self.service.courier.send
        for slot in p.slots:
            send([slot.character_id], "mm.proposal", proposalBody(p, slot.character_id, now))

    def time(self, p, now):
        """Time the ready check of C{p} from its stored C{expires_at}, when this node holds its queue."""
        if p.match_id in self.timers or p.queue not in self.held:
            return  # (lost meanwhile: the holder adopts it, from the store)
        delay = max(0.0, p.expires_at - now)
        timer = self.clock.callLater(delay, self.expired, p.queue, p.match_id)
        self.timers[p.match_id] = (p.queue, timer)

    def forget(self, match):
        """Proposal C{match} is over: stop timing it."""
        entry = self.timers.pop(match, None)
        if entry is not None:
            # (Timed here: this node holds its queue, and its adopt prunes these.)
            self.endedAt[match] = self.clock.seconds()
            if entry[1].active():
                entry[1].cancel()

    def expired(self, queue, match):
        self.timers.pop(match, None)
        if queue in self.held:
            self.spawn(self.timedOut(queue, match), "ready check timeout", match)

    async def timedOut(self, queue, match):
        self.ending.add(match)
        try:
            p = await self.store.proposal(match)
            if p is None:
                # Ended: by a decline elsewhere, or by a complete whose answer
                # was lost (its mm.matched go out as unannounced; its
                # instance stands).
                self.placements.pop(match, None)
                self.retryIn.pop(match, None)
                return
            if allAccepted(p):
                await self.finish(p)
                return
            late = [t.id for t in p.tickets if not set(t.characterIds) <= set(p.accepted)]
            await self.service.endProposal(p, late, "timeout")
        except (VolatileUnavailable, SQLUnavailable):
            self.retryLater(queue, match)
            raise
        finally:
            self.ending.discard(match)
            # (Its timer gone: adopt's reads in flight are stale about it.)
            self.endedAt[match] = self.clock.seconds()
        self.retryIn.pop(match, None)

    def retryLater(self, queue, match, accepted=False):
        """
        The end of ready check C{match} failed on an unavailable store: try
        again (after 1 s, doubling up to 30 s) while this node holds the
        queue, else its members would stay in a ready check that never
        ends, unable to queue again.  When everyone C{accepted}, that is
        sooner than the check's own timer, if it is still to come.
        """
        if self.stopping or queue not in self.held:
            return
        delay = self.retryIn.get(match, TIMEOUT_RETRY)
        if match in self.timers:
            timer = self.timers[match][1]
            if not accepted or not timer.active() or timer.getTime() <= self.clock.seconds() + delay:
                return
            timer.cancel()
        self.retryIn[match] = min(TIMEOUT_RETRY_MAX, 2 * delay)
        self.timers[match] = (queue, self.clock.callLater(delay, self.expired, queue, match))

    # -- everyone accepted --------------------------------------------------------------

    async def settle(self, p):
        """
        Every member of C{p} accepted (the last accept was on this node):
        finish it here when this node holds its queue, else tell the holder.
        """
        if p.queue in self.held:
            self.spawn(self.finish(p), "finishing", p.match_id)
            return
        holder = await self.store.leaseHolder(p.queue)
        if holder:
            self.service.courier.post(holder, Settle(p.queue, p.match_id))

    def onSettle(self, message):
        if message.queue in self.held:
            self.spawn(self.settled(message.match), "finishing", message.match)

    async def settled(self, match):
        p = await self.store.proposal(match)
        if p is not None and allAccepted(p):
            await self.finish(p)

    async def finish(self, p):
        """Create the instance of accepted proposal C{p}, complete it once, tell every member."""
        match = p.match_id
        if match in self.settling:
            return
        self.settling.add(match)
        try:
            broken = await self.brokenParties(p)
            if broken:
                await self.service.endProposal(p, broken, "party_changed")
                return
            # (Kept until it completes: a try again after a store failure
            # uses the same instance rather than making another.)
            placement = self.placements.get(match, (None, None))[1]
            if placement is None:
                placement = await self.create(p)
                if placement is None:
                    await self.service.endProposal(p, [], "no_instance")
                    return
                self.placements[match] = (p.queue, placement)
            records = matchedRecords(p, placement, self.clock.seconds() + self.config.matched_ttl)
            completed = await self.store.complete(match, records, ttl=self.config.matched_ttl)
            self.placements.pop(match, None)
            self.retryIn.pop(match, None)
            if completed is None:
                # Ended meanwhile (a decline won, or another holder finished
                # it): this copy has nobody to admit.
                self.log.warn("mm proposal {match} ended before it completed: instance "
                              "{instance_id} closed", match=match,
                              instance_id=placement.instance_id)
                await self.service.instances.close(placement.instance_id)
                return
            self.forget(match)
            if self.config.test_pause_announce:
                await deferLater(self.clock, self.config.test_pause_announce, lambda: None)
            self.matched(p, placement, records)
        except (VolatileUnavailable, SQLUnavailable):
            # (A Settle's finish has no timer behind it once the ready
            # check's own fired and found this one in progress.)
            self.retryLater(p.queue, match, accepted=True)
            raise
        finally:
            self.settling.discard(match)

    async def brokenParties(self, p):
        """@return: the ids of C{p}'s party tickets whose party is not the ticket's members any more."""
        parties = self.service.parties
        if parties is None:
            return []
        party = [t for t in p.tickets if t.party_id]
        if not party:
            return []
        # A read's own StoreError, not DeferredList's FirstError around it.
        found = await everyBatch([t.party_id for t in party], parties.members)
        return [t.id for t, members in zip(party, found)
                if sorted(int(c) for c in members) != sorted(t.characterIds)]

    async def create(self, p):
        """@return: the L{Placement} of C{p}'s new instance, or None when every try failed."""
        spec = self.service.queues[p.queue]
        roster = [s.character_id for s in p.slots]
        teams = None
        if spec.teams > 1:
            teams = [[s.character_id for s in p.slots if s.team == i] for i in range(spec.teams)]
        tries = 1 + self.config.instance_retries
        for attempt in range(tries):
            try:
                return await self.service.instances.create(spec.template, roster, teams=teams,
                                                           matchId=p.match_id)
            except Exception as e:
                # InstanceError (a world module: not imported here) has a code.
                code = getattr(e, "code", type(e).__name__)
                self.metrics.instanceFailures.labels(p.queue, code).inc()
                self.log.warn("mm instance of {template} for {match} not created ({code}: {why}); "
                              "try {attempt} of {tries}", template=spec.template, match=p.match_id,
                              code=code, why=e, attempt=attempt + 1, tries=tries)
                if attempt + 1 < tries:
                    await deferLater(self.clock, getattr(e, "retry_after", None) or 1.0,
                                     lambda: None)
        return None

    def matched(self, p, placement, records):
        queue, match = p.queue, p.match_id
        now = self.clock.seconds()
        self.metrics.matches.labels(queue).inc()
        ttm = self.metrics.timeToMatch.labels(queue)
        for ticket in p.tickets:
            ttm.observe(max(0.0, now - ticket.created))
        self.log.info("mm match {match} of {queue}: instance {instance_id} on node {node} for "
                      "{members}", match=match, queue=queue, instance_id=placement.instance_id,
                      node=placement.node, members=list(p.characterIds))
        self.announcer.announce(queue, match, records)
