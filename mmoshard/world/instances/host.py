"""The instances hosted by one world process: the runtime Instance at zone.instance, creating, adopting and re-opening copies, tickets, closing."""

import secrets

import attrs
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from mmoshard.instancewire import ADMIT, hostKey, ticketKey  # noqa: F401 (re-exported)
from mmoshard.store.errors import StoreError
from mmoshard.world.instances import errors
from mmoshard.world.instances.arena import Arena, checkMatch, matchKey
from mmoshard.world.instances.errors import InstanceError
from mmoshard.world.instances.entry import instanceLayout
from mmoshard.world.instances.kills import killedEncounters
from mmoshard.world.instances.store import adoptInstance, closeInstance, createInstance, reopenInstance
from mmoshard.world.lease import REFRESH, RELEASE
from mmoshard.world.zones import Portal, Rect

# Instance.closing of an instance whose host key another node took.
LOST = "lost"

# Seconds an admission ticket (IInstances.create's Placement) stays valid.
TICKET_TTL = 300.0


@attrs.define(eq=False)
class Instance:
    """
    One instance hosted by this process, at C{zone.instance}.

    @ivar id: the deployment-unique instance id (SQL C{instances.id}).
    @ivar spec: its template's L{mmoshard.world.instances.data.InstanceSpec}.
    @ivar zone: the L{mmoshard.world.sim.Zone} of its copy of the layout,
        id C{"<template>/<id>"}.
    @ivar partyId: the party it was made for (None: none).
    @ivar createdAt: when it was first created (kept by an adoption):
        C{max_duration} counts from here.
    @ivar killed: the encounter ids killed in it (C{instance_kills}):
        those bosses stay dead.
    @ivar emptySince: since when nobody is inside (None: someone is).
    @ivar encounter: set by the encounters helper (its state of the
        instance's bosses).
    @ivar closing: None while open, else why it closes (C{empty},
        C{max_duration}, C{closed}); nobody is let in any more.
    @ivar adopted: re-created here after its host died.
    @ivar reopened: re-opened here after it had closed, for the lockouts on it.
    @ivar arena: an arena copy's L{mmoshard.world.instances.arena.Arena}, else None.
    """

    id: int
    spec: object
    zone: object
    partyId: str | None
    createdAt: float
    killed: set = attrs.field(factory=set)
    emptySince: float | None = None
    encounter: object = None
    closing: str | None = None
    adopted: bool = False
    reopened: bool = False
    arena: object = None
    _finishing: bool = attrs.field(default=False, repr=False)
    _waiters: list = attrs.field(factory=list, repr=False)

    @property
    def template(self):
        return self.spec.id

    def players(self):
        """@return: the number of players inside."""
        return len(self.zone.observers)



class InstanceHost:
    """
    The instances of this world process: it creates them (a SQL row, the
    host key, a zone from the template's layout through
    L{WorldService.addZone}, one admission ticket per character), adopts
    the open instances of a process that died, keeps their host keys
    (C{instance:host:<id>}, refreshed like character leases), and closes
    them after C{empty_timeout} seconds without players or
    C{max_duration} in all, or when asked, sending the players inside out
    first through L{onEvict}.

    @ivar onEvict: callable(player) sending a player out of a closing
        instance; the default takes it to its template's entrance arrive
        point (the entry helper sets one sending it to its return point).
    @ivar opened: callables(instance) run when an instance is made or
        adopted here (its zone exists, nobody is inside yet).
    @ivar closed: callables(instance) run when an instance closed here.
    """

    log = Logger()

    def __init__(self, world, sql, volatile, clock, nodeId, templates, offered,
                 maxInstances, hostTtl, refreshEvery):
        """
        @param world: the L{WorldService} (addZone, removeZone, roster, transfers).
        @param templates: template id -> InstanceSpec.
        @param offered: the template ids this process creates instances of.
        @param maxInstances: instances this process hosts at most.
        @param hostTtl: seconds a host key outlives this process.
        @param refreshEvery: seconds between two host key refreshes.
        """
        self.world = world
        self.sql = sql
        self.volatile = volatile
        self.clock = clock
        self.nodeId = nodeId
        self.templates = templates
        self.offered = tuple(offered)
        self.maxInstances = maxInstances
        self.hostTtl = hostTtl
        self.refreshEvery = max(1, int(refreshEvery))
        self.instances = {}  # id -> Instance
        self.onEvict = self.toEntrance
        self.opened = []
        self.closed = []
        self._adopting = {}  # id -> [Deferred] waiting for the adoption in progress
        self._confirmed = clock.seconds()

    def hosts(self, instanceId):
        """@return: True when this process hosts C{instanceId} (closing or not, not lost to another)."""
        instance = self.instances.get(int(instanceId))
        return instance is not None and instance.closing != LOST

    @property
    def full(self):
        return len(self.instances) >= self.maxInstances

    def value(self, instance):
        """@return: what a Create or Adopt reply carries for C{instance} (tickets apart)."""
        return {"instance_id": instance.id, "template": instance.template,
                "zone": instance.zone.id, "node": self.nodeId}

    # --- creating ------------------------------------------------------------------

    def _check(self, template):
        if template not in self.templates:
            raise InstanceError(errors.UNKNOWN_TEMPLATE, f"no template {template!r}")
        if template not in self.offered:
            raise InstanceError(errors.NO_CAPACITY, f"node {self.nodeId} does not offer {template!r}")
        if self.full:
            raise InstanceError(errors.NO_CAPACITY, f"node {self.nodeId} hosts {len(self.instances)} "
                                "instances, its maximum")

    async def create(self, template, roster, partyId=None, teams=None, matchId=None):
        """
        Make a new instance of C{template} here for the characters C{roster}
        (an arena: for the C{teams} of match C{matchId}, its match kept
        under L{matchKey} for the entries on other nodes).

        @return: L{value} plus C{tickets} (character id -> admission ticket).
        @raise InstanceError: C{instance.unknown_template}, C{instance.no_capacity}
            (not offered here, or full), C{instance.unavailable} (a store is
            down), C{instance.bad_match} (an arena without its teams).
        """
        self._check(template)
        spec = self.templates[template]
        match = checkMatch(template, roster, teams, matchId) if spec.arena else None
        if match is not None:
            roster = match.roster
        now = self.clock.seconds()
        try:
            iid = await createInstance(self.sql, template, self.nodeId, partyId, now)
        except StoreError as e:
            raise InstanceError(errors.UNAVAILABLE, f"instance not created: {e}", retry_after=5.0)
        try:
            # A new id: nobody else can hold its key.
            await self.volatile.set(hostKey(iid), self.nodeId, ttl=self.hostTtl)
            if match is not None:
                await self.volatile.set(matchKey(iid), match.encode(), ttl=spec.max_duration)
        except StoreError as e:
            await self._abandonRow(iid)
            raise InstanceError(errors.UNAVAILABLE, f"instance not created: {e}", retry_after=5.0)
        instance = self._open(template, iid, partyId, now, set(), match=match)
        tickets = await self.issueTickets(iid, roster)
        self.log.info("instance {instance_id} of {template} created on node {node_id} for "
                      "party {party_id} match {match}: characters {character_ids}",
                      instance_id=iid, template=template, node_id=self.nodeId, party_id=partyId,
                      match=matchId, character_ids=",".join(map(str, roster)))
        return dict(self.value(instance), tickets=tickets)

    async def issueTickets(self, instanceId, roster):
        """@return: {character id: a new one-time admission ticket into C{instanceId}}."""
        tickets = {}
        for cid in roster:
            ticket = secrets.token_urlsafe(16)
            try:
                await self.volatile.set(ticketKey(ticket), f"{int(instanceId)}:{int(cid)}",
                                        ttl=TICKET_TTL)
            except StoreError as e:
                raise InstanceError(errors.UNAVAILABLE, f"tickets not issued: {e}", retry_after=5.0)
            tickets[int(cid)] = ticket
        return tickets

    async def _abandonRow(self, iid):
        """Close the row of an instance that could not be made (nobody knows its id)."""
        try:
            await closeInstance(self.sql, iid, self.clock.seconds())
        except StoreError as e:
            # Open without a host: closed by the first locate after its max_duration.
            self.log.warn("instance {instance_id} not made and its row not closed: {why}",
                          instance_id=iid, why=e)

    def _open(self, template, iid, partyId, createdAt, killed, adopted=False, reopened=False,
              match=None):
        spec = self.templates[template]
        zone = self.world.addZone(instanceLayout(spec, iid))
        instance = Instance(iid, spec, zone, partyId, createdAt, killed=set(killed),
                            emptySince=self.clock.seconds(), adopted=adopted, reopened=reopened)
        zone.instance = instance
        if match is not None:
            world = self.world
            instance.arena = Arena(instance, match, world.matchResults, world.roster, world.tasks,
                                   self.clock, lambda reason: self.close(iid, reason))
            instance.arena.start()
        self.instances[iid] = instance
        for f in self.opened:
            try:
                f(instance)
            except Exception:
                self.log.failure("opening instance {instance_id}: a listener failed", instance_id=iid)
        return instance

    # --- adopting ------------------------------------------------------------------

    async def adopt(self, instanceId, reopen=False):
        """
        Host open instance C{instanceId} here, re-created from SQL (its
        killed encounters stay dead), when no other node holds its host key.
        With C{reopen}, a closed instance on which a lockout still runs is
        re-opened the same way (its row open again, hosted here).

        @return: L{value} of the instance; or C{{"node": holder}} when
            another node holds its key (it hosts the instance, adopts or
            re-opens it).
        @raise InstanceError: C{instance.closed} (closed, and not
            re-openable; or no such instance), C{instance.no_capacity},
            C{instance.unavailable} (a store is down; or the instance is
            closing here).
        """
        iid = int(instanceId)
        instance = self.instances.get(iid)
        if instance is not None:
            if instance.closing is not None:
                # Closing here: re-opened (or adopted elsewhere) once it has closed.
                raise InstanceError(errors.UNAVAILABLE, f"instance {iid} is closing",
                                    retry_after=1.0)
            return self.value(instance)
        if iid in self._adopting:
            d = Deferred()
            self._adopting[iid].append(d)
            return await d
        self._adopting[iid] = []
        try:
            result = await self._adopt(iid, reopen)
        except Exception as e:
            for d in self._adopting.pop(iid):
                d.errback(e)
            raise
        for d in self._adopting.pop(iid):
            d.callback(result)
        return result

    async def _adopt(self, iid, reopen):
        if self.full:
            raise InstanceError(errors.NO_CAPACITY, f"node {self.nodeId} hosts {len(self.instances)} "
                                "instances, its maximum")
        reopened = False
        try:
            taken = await self.volatile.set(hostKey(iid), self.nodeId, ttl=self.hostTtl, nx=True)
            if not taken:
                holder = await self.volatile.get(hostKey(iid))
                if holder is not None and holder.decode() != self.nodeId:
                    return {"node": holder.decode()}
                if holder is None:
                    raise InstanceError(errors.UNAVAILABLE, "the instance's host changed",
                                        retry_after=1.0)
                # Ours (a restart under the same node id): adopt it again.
            try:
                if reopen:
                    row, reopened = await reopenInstance(self.sql, iid, self.nodeId,
                                                         self.clock.seconds())
                else:
                    row = await adoptInstance(self.sql, iid, self.nodeId)
                if row is None or row.closed_at is not None:
                    await self._releaseKeys([iid])
                    raise InstanceError(errors.CLOSED, f"instance {iid} is closed")
                spec = self.templates.get(row.template)
                if spec is not None and spec.arena:
                    # Its fight died with its host: the match counts for nobody.
                    await closeInstance(self.sql, iid, self.clock.seconds())
                    await self._releaseKeys([iid])
                    self.log.warn("arena instance {instance_id} closed: its host is gone, its "
                                  "match void", instance_id=iid)
                    raise InstanceError(errors.CLOSED, f"arena {iid} ended with its host")
                if row.template not in self.templates or row.template not in self.offered or self.full:
                    # A row re-opened here stays open without a host: the
                    # next node asked adopts it.
                    await self._releaseKeys([iid])
                    self._check(row.template)
                killed = await killedEncounters(self.sql, iid)
            except StoreError:
                await self._releaseKeys([iid])
                raise
        except StoreError as e:
            raise InstanceError(errors.UNAVAILABLE, f"instance not adopted: {e}", retry_after=5.0)
        instance = self._open(row.template, iid, row.party_id, row.created_at, killed,
                              adopted=not reopened, reopened=reopened)
        if reopened:
            self.log.info("instance {instance_id} of {template} re-opened on node {node_id} for "
                          "the lockouts on it; killed encounters: {killed}", instance_id=iid,
                          template=row.template, node_id=self.nodeId,
                          killed=",".join(sorted(killed)) or "none")
            return self.value(instance)
        self.log.warn("instance {instance_id} of {template} adopted by node {node_id} "
                      "(its host is gone); killed encounters: {killed}", instance_id=iid,
                      template=row.template, node_id=self.nodeId,
                      killed=",".join(sorted(killed)) or "none")
        return self.value(instance)

    async def _releaseKeys(self, ids):
        try:
            await self.volatile.evalScript(RELEASE, [hostKey(i) for i in ids], [self.nodeId])
        except StoreError as e:
            # They run out within the host TTL.
            self.log.warn("host keys of instances {instance_ids} not released: {why}",
                          instance_ids=",".join(map(str, ids)), why=e)

    # --- closing -------------------------------------------------------------------

    def close(self, instanceId, reason="closed"):
        """
        Close C{instanceId}, hosted here: the players inside are sent out
        (L{onEvict}), then its SQL row is closed and its zone removed.

        @return: a Deferred firing with None once it is closed.
        @raise KeyError: it is not hosted here.
        """
        instance = self.instances[int(instanceId)]
        if instance.closing == LOST:
            raise KeyError(instanceId)
        d = Deferred()
        instance._waiters.append(d)
        if instance.closing is None:
            instance.closing = reason
            self.log.info("instance {instance_id} of {template} closes: {reason}",
                          instance_id=instance.id, template=instance.template, reason=reason)
            # Its row first: every process's locate answers it closed (not
            # a placement to a copy that would send the player back out),
            # reopen "closing", while the players inside are sent out.
            self.world.tasks.track(Deferred.fromCoroutine(self._closeRow(instance.id)))
            self._evict(instance)
            self._finishIfEmpty(instance)
        return d

    async def _closeRow(self, iid):
        try:
            await closeInstance(self.sql, iid, self.clock.seconds())
        except StoreError as e:
            # Closed once it is empty (_finish), tried again each second.
            self.log.warn("instance {instance_id} closes, its row not closed yet: {why}",
                          instance_id=iid, why=e)

    def _evict(self, instance):
        zone = instance.zone
        byCharacter = self.world.roster.byCharacter
        for eid in list(zone.observers):
            player = byCharacter.get(eid)
            if player is None or player.state != "live" or player.zone is not zone:
                continue
            try:
                self.onEvict(player)
            except Exception:
                self.log.failure("evicting character {character_id} from instance {instance_id}",
                                 character_id=eid, instance_id=instance.id)

    def toEntrance(self, player):
        """The default L{onEvict}: through a portal to the template's entrance arrive point."""
        spec = player.zone.instance.spec
        entrance = spec.entrance
        if entrance is not None:
            portal = Portal(entrance.rect, entrance.zone, entrance.arrive)
        else:
            # No entrance: the start zone's first spawn point.
            cfg = self.world.config
            zid = cfg.start_zone or next(z for z in cfg.hosted if "/" not in z)
            portal = Portal(Rect(0.0, 0.0, 0.0, 0.0), zid, cfg.specs[zid].spawns[0])
        self.world.transfers.portal(player.entity, portal)

    def _finishIfEmpty(self, instance):
        if instance.zone.observers or instance._finishing:
            return
        instance._finishing = True
        self.world.tasks.track(Deferred.fromCoroutine(self._finish(instance)))

    async def _finish(self, instance):
        iid = instance.id
        try:
            await closeInstance(self.sql, iid, self.clock.seconds())
        except StoreError as e:
            # Tried again on the next second.
            self.log.warn("instance {instance_id} not closed yet: {why}", instance_id=iid, why=e)
            instance._finishing = False
            return
        instance._finishing = False
        if instance.zone.observers:
            # Someone came in meanwhile: out first, removed on a later second.
            self._evict(instance)
            return
        self._drop(instance)
        await self._releaseKeys([iid])
        self.log.info("instance {instance_id} of {template} closed on node {node_id}",
                      instance_id=iid, template=instance.template, node_id=self.nodeId)
        for f in self.closed:
            try:
                f(instance)
            except Exception:
                self.log.failure("closing instance {instance_id}: a listener failed", instance_id=iid)
        waiters, instance._waiters = instance._waiters, []
        for d in waiters:
            d.callback(None)

    def _drop(self, instance):
        self.instances.pop(instance.id, None)
        self.world.removeZone(instance.zone.id)

    # --- every second ------------------------------------------------------------------

    def everySecond(self, second):
        """Close what is due, go on with closings, and refresh the host keys every C{refreshEvery} seconds."""
        now = self.clock.seconds()
        for instance in list(self.instances.values()):
            try:
                self._second(instance, now)
            except Exception:
                # The others (and the world's second: saves, leases) go on.
                self.log.failure("instance {instance_id} on node {node_id}: its second failed",
                                 instance_id=instance.id, node_id=self.nodeId)
        if self.instances and second % self.refreshEvery == 0:
            self.world.tasks.track(Deferred.fromCoroutine(self.refresh()))

    def _second(self, instance, now):
        if instance.closing == LOST:
            self._evict(instance)
            if not instance.zone.observers:
                self._drop(instance)
            return
        if instance.closing is not None:
            self._evict(instance)
            self._finishIfEmpty(instance)
            return
        if instance.arena is not None:
            instance.arena.second(now)
            if instance.closing is not None:
                return
        spec = instance.spec
        if instance.zone.observers:
            instance.emptySince = None
        elif instance.emptySince is None:
            instance.emptySince = now
        elif now - instance.emptySince >= spec.empty_timeout:
            self.world.tasks.track(self.close(instance.id, "empty"))
            return
        if now - instance.createdAt >= spec.max_duration:
            self.world.tasks.track(self.close(instance.id, "max_duration"))

    async def refresh(self):
        """
        Extend the host keys of the instances hosted here; one the store
        lost while this node confirmed its keys less than a TTL ago is taken
        back.  An instance whose key another node holds is dropped here
        without closing it (that node hosts it now).
        """
        started = self.clock.seconds()
        ids = list(self.instances)
        retake = "1" if started - self._confirmed < self.hostTtl else "0"
        try:
            changed = await self.volatile.evalScript(
                REFRESH, [hostKey(i) for i in ids], [self.nodeId, int(self.hostTtl * 1000), retake])
        except StoreError as e:
            self.log.warn("host keys of node {node_id} not refreshed: {why}", node_id=self.nodeId,
                          why=e)
            return
        self._confirmed = started
        for i in changed or ():
            i = int(i)
            if i > 0:
                self._lost(ids[i - 1])

    def _lost(self, iid):
        instance = self.instances.get(iid)
        if instance is None or instance.closing is not None:
            return
        self.log.error("instance {instance_id}: its host key is lost to another node; "
                       "dropping it on node {node_id}", instance_id=iid, node_id=self.nodeId)
        instance.closing = LOST
        # Out first, then dropped without closing its row: it lives on elsewhere.
        self._evict(instance)
        if not instance.zone.observers:
            self._drop(instance)

    async def release(self, instanceId):
        """
        Hand open instance C{instanceId} to whichever node adopts it next
        (a drain): drop it here without closing its row, and release its
        host key.  Its players must be out already (saved where they stand).

        @raise KeyError: it is not hosted here.
        """
        instance = self.instances[int(instanceId)]
        instance.closing = LOST
        self._drop(instance)
        await self._releaseKeys([instance.id])
        self.log.info("instance {instance_id} of {template} released by node {node_id} for "
                      "another node to adopt; killed encounters: {killed}",
                      instance_id=instance.id, template=instance.template, node_id=self.nodeId,
                      killed=",".join(sorted(instance.killed)) or "none")

    async def stop(self):
        """At stop: release the host keys, so another node adopts the instances (still open) at once."""
        ids = list(self.instances)
        if ids:
            await self._releaseKeys(ids)
