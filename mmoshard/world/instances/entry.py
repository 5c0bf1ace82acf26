"""Entering and leaving instances: the party's copy, lockout checks, entrance and exit portals, return points, eviction and logging in inside a closed copy."""

import attrs
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from mmoshard.store.errors import StoreError
from mmoshard.wire.errors import UNAVAILABLE_RETRY_AFTER, ProtocolError
from mmoshard.world.instances import errors
from mmoshard.world.instances.arena import arenaSpawn
from mmoshard.world.instances.copies import copyKey, mapCopy, ownerKey
from mmoshard.world.instances.errors import InstanceError
from mmoshard.world.instances.ids import instanceZoneId, parseInstanceZone
from mmoshard.world.instances.returns import (
    dropReturn, landAt, loadReturn, lockoutOf, lockoutsOf, saveReturn,
)
from mmoshard.world.zones import Rect

# Seconds a client is told to wait when an instance could not be reached.
RETRY_AFTER = 5.0
# The keys outlive the instance they name by this much (an instance lives
# max_duration at most; a stale key is checked against the instance anyway).
KEY_MARGIN = 60.0
# Times a new copy tries to become its party's over copies that are gone.
MAP_TRIES = 3


@attrs.frozen
class EntrancePortal:
    """
    The entrance of template C{template} in an open-world zone: walking into
    C{rect} is C{world.instance.enter {template}}; the way back out comes
    out at C{arrive} (x, y, z), outside the rectangle.
    """

    rect: Rect
    template: str
    arrive: tuple
    name: str = ""  # the template's, for players

    def clientView(self):
        """@return: what a client is told of this entrance (docs/world.md, the zone of world.enter)."""
        return {"kind": "instance", "rect": self.rect.corners(), "to": self.template,
                "name": self.name}


@attrs.frozen
class ExitPortal:
    """The exit of an instance's layout: walking into C{rect} is C{world.instance.leave}."""

    rect: Rect

    def clientView(self):
        """@return: what a client is told of this exit (docs/world.md, the zone of world.enter)."""
        return {"kind": "exit", "rect": self.rect.corners(), "to": None}


def withEntrances(spec, templates):
    """@return: zone spec C{spec} with the entrance portals of C{templates} (InstanceSpecs) that lie in it."""
    extra = tuple(EntrancePortal(t.entrance.rect, t.id, tuple(t.entrance.arrive), t.name)
                  for t in templates if t.entrance is not None and t.entrance.zone == spec.id)
    return attrs.evolve(spec, portals=spec.portals + extra) if extra else spec


def instanceLayout(template, instanceId):
    """@return: the zone spec of instance C{instanceId} of C{template}: its layout, renamed, with its exit portal."""
    layout = template.layout
    return attrs.evolve(layout, id=instanceZoneId(template.id, instanceId),
                        portals=layout.portals + (ExitPortal(template.exit),))


def clientEndpoints(endpoints):
    """@return: the endpoints a client is sent to ({tcp, websocket}) of C{endpoints}."""
    return {k: v for k, v in endpoints.items() if k in ("tcp", "websocket")}


class Entry:
    """
    Moves players into and out of instances, exactly as zone transfers do
    (L{mmoshard.world.transfer.Transfers.moveTo}): the copy hosted here is
    entered at once (C{world.zone}), one hosted elsewhere with a ticket
    (C{world.transfer}).  docs/instances.md, "Entering and leaving", has the
    rules.

    @ivar instances: the L{IInstances} provider of this process (its
        C{create}, C{locate}, C{reopen} and C{admit}); set by the service.
    @ivar pending: the character ids with an entry or exit in flight.
    """

    log = Logger()

    def __init__(self, config, zones, roster, transfers, saves, leases, tasks, sql, volatile,
                 parties, clock, nodeId):
        """
        @param config: the [world] L{WorldConfig} (its C{templates}, C{specs}, C{start_zone}).
        @param zones: the zones of this process, by id (instances come and go).
        @param parties: the L{IParties} (None: everyone is solo).
        """
        self.config = config
        self.templates = config.templates
        self.zones = zones
        self.roster = roster
        self.transfers = transfers
        self.saves = saves
        self.leases = leases
        self.tasks = tasks
        self.sql = sql
        self.volatile = volatile
        self.parties = parties
        self.clock = clock
        self.nodeId = nodeId
        self.instances = None
        self.pending = set()

    # --- which copy -------------------------------------------------------------

    def spec(self, template):
        """@return: the InstanceSpec of C{template}. @raise InstanceError: unknown."""
        spec = self.templates.get(template)
        if spec is None:
            raise InstanceError(errors.UNKNOWN_TEMPLATE, f"no instance template {template!r}")
        return spec

    async def party(self, characterId):
        """@return: C{(party id, member ids, leader first)}; C{(None, [characterId])} for a solo character."""
        parties = self.parties
        if parties is None:
            return None, [characterId]
        pid = await parties.partyOf(characterId)
        if pid is None:
            return None, [characterId]
        members = list(await parties.members(pid))
        if characterId not in members:
            # Left between the two reads.
            return None, [characterId]
        return pid, members

    def provider(self):
        """@return: the L{IInstances} of this process. @raise InstanceError: C{instance.unavailable} when there is none."""
        if self.instances is None:
            raise InstanceError(errors.UNAVAILABLE, "instances are not available here",
                                retry_after=RETRY_AFTER)
        return self.instances

    async def locate(self, instanceId):
        """
        @return: the L{Placement} of open instance C{instanceId} (re-created
            if its host died), or None when it is closed (or closing).
        @raise InstanceError: C{instance.unavailable}, C{instance.no_capacity}.
        """
        return await _openOrNone(self.provider().locate(instanceId))

    async def reopen(self, instanceId):
        """
        @return: the L{Placement} of instance C{instanceId}, re-opened if it
            closed while a lockout on it still runs (re-created if its host
            died); None when it is closed for good or unknown.
        @raise InstanceError: C{instance.unavailable}, C{instance.no_capacity}.
        """
        return await _openOrNone(self.provider().reopen(instanceId))

    async def partyCopy(self, spec, characterId, partyId, members, bound):
        """
        @return: the L{Placement} of the copy of C{spec} the character's
            party (or the character alone) plays: the one mapped to it if
            still open; else, asked by the leader (or a solo character), its
            bound copy (re-opened if it has closed) or a new one.
        @raise InstanceError: L{errors.NOT_LEADER} for a member when the
            party has no copy; L{errors.LOCKED} for a leader bound to a
            copy that cannot be re-opened (unknown).
        """
        key = copyKey(partyId, characterId, spec.id)
        raw = await self.volatile.get(key)
        # Alone, a character bound to another copy than its own goes to the
        # bound one (nobody is waiting for it in its own, which closes empty).
        elsewhere = partyId is None and bound is not None and raw is not None and \
            int(raw) != bound.instance_id
        if raw is not None and not elsewhere:
            placement = await self.locate(int(raw))
            if placement is not None:
                return placement
        if partyId is not None and characterId != members[0]:
            raise InstanceError(errors.NOT_LEADER, "the party has no copy of this instance: "
                                "its leader enters first")
        created = False
        if bound is not None:
            # Its saved copy: re-opened, with its killed bosses dead, if it closed.
            placement = await self.reopen(bound.instance_id)
            if placement is None:
                raise _locked(bound, "bound to a copy that cannot be re-opened")
        else:
            placement = await self.provider().create(spec.id, list(members), partyId)
            created = True
        ttl = spec.max_duration + KEY_MARGIN
        ours = placement.instance_id
        # Only over what it read (nothing, or a copy that is gone): two
        # requests of one party at once map one copy, never both theirs.
        held = await mapCopy(self.volatile, key, raw, ours, ttl)
        tries = 1
        while held != ours:
            theirs = await self.locate(held)
            if theirs is not None:
                # Another request of the party made its copy meanwhile: that one wins.
                if created:
                    self.tasks.track(self.instances.close(ours)).addErrback(
                        self._failed, "closing an extra copy", ours)
                return theirs
            if tries == MAP_TRIES:
                self.log.warn("instance {instance_id} ({template}) entered unmapped: the copy "
                              "key of {owner} keeps changing", instance_id=ours, template=spec.id,
                              owner=f"party {partyId}" if partyId else f"character {characterId}")
                break
            held = await mapCopy(self.volatile, key, str(held).encode(), ours, ttl)
            tries += 1
        await self.volatile.set(ownerKey(ours), partyId or "", ttl=ttl)
        self.log.info("instance {instance_id} ({template}) is the copy of {owner}",
                      instance_id=placement.instance_id, template=spec.id,
                      owner=f"party {partyId}" if partyId else f"character {characterId}")
        return placement

    async def claim(self, spec, characterId, partyId, members, instanceId):
        """A leader (or solo character) inside copy C{instanceId} with no copy mapped: the copy becomes its party's."""
        if partyId is not None and characterId != members[0]:
            return
        key = copyKey(partyId, characterId, spec.id)
        raw = await self.volatile.get(key)
        if raw is not None and (int(raw) == instanceId or await self.locate(int(raw)) is not None):
            return
        ttl = spec.max_duration + KEY_MARGIN
        if await mapCopy(self.volatile, key, raw, instanceId, ttl) == instanceId:
            await self.volatile.set(ownerKey(instanceId), partyId or "", ttl=ttl)

    # --- entering ---------------------------------------------------------------

    def busy(self, characterId):
        """@return: True while an entry or exit of the character is in flight."""
        return characterId in self.pending

    async def enterTemplate(self, player, template, entrance=None):
        """
        C{world.instance.enter {template}} (or walking into C{entrance}, an
        L{EntrancePortal}): take C{player} into its party's copy.

        @return: the reply C{{instance_id, template, zone, node}}.
        @raise InstanceError: refused (nothing moved).
        """
        spec = self.spec(template)
        if spec.arena:
            raise InstanceError(errors.BAD_TICKET, f"{spec.name} is entered only with the "
                                "ticket of its match")
        cid = player.characterId
        self.pending.add(cid)
        try:
            partyId, members = await self.party(cid)
            if len(members) > spec.party_size:
                raise InstanceError(errors.PARTY_FULL, f"{spec.name} takes {spec.party_size} "
                                    f"players; the party has {len(members)}")
            bound = await lockoutOf(self.sql, cid, template, self.clock.seconds())
            current = parseInstanceZone(player.zone.id)
            if current is not None and current[0] == template:
                if bound is None or bound.instance_id == current[1]:
                    await self.claim(spec, cid, partyId, members, current[1])
                return self._reply(template, current[1], self.nodeId)
            placement = await self.partyCopy(spec, cid, partyId, members, bound)
            if bound is not None and bound.instance_id != placement.instance_id:
                raise _locked(bound, "bound to another copy of this instance")
            await self._moveIn(player, spec, placement, entrance)
            return self._reply(template, placement.instance_id, placement.node)
        finally:
            self.pending.discard(cid)

    async def enterTicket(self, player, ticket):
        """
        C{world.instance.enter {ticket}}: take C{player} into the instance an
        admission ticket of a L{Placement} names (for this character only).

        @return: the reply C{{instance_id, template, zone, node}}.
        @raise InstanceError: refused (nothing moved).
        """
        provider = self.provider()
        cid = player.characterId
        self.pending.add(cid)
        try:
            instanceId = await provider.admit(ticket, cid)
            placement = await self.locate(instanceId)
            if placement is None:
                raise InstanceError(errors.CLOSED, f"instance {instanceId} has closed")
            spec = self.spec(placement.template)
            bound = await lockoutOf(self.sql, cid, spec.id, self.clock.seconds())
            if bound is not None and bound.instance_id != instanceId:
                raise _locked(bound, "bound to another copy of this instance")
            if player.zone.id != placement.zone:
                await self._moveIn(player, spec, placement, None)
            return self._reply(spec.id, instanceId, placement.node)
        finally:
            self.pending.discard(cid)

    def _reply(self, template, instanceId, node):
        return {"instance_id": instanceId, "template": template,
                "zone": instanceZoneId(template, instanceId), "node": node}

    async def _moveIn(self, player, spec, placement, entrance):
        cid = player.characterId
        zone = self.zones.get(placement.zone)
        if (zone is not None and cid not in zone.observers
                and len(zone.observers) >= spec.party_size):
            raise InstanceError(errors.PARTY_FULL, f"{spec.name} already holds "
                                f"{spec.party_size} players")
        source = player.zone
        point = self._returnFrom(player, entrance)
        if not await saveReturn(self.sql, cid, placement.instance_id, point):
            # From an instance entered before return points were kept: its entrance.
            came = parseInstanceZone(source.id)
            fallback = self.fallback(came[0] if came else spec.id)
            await saveReturn(self.sql, cid, placement.instance_id, fallback)
        host = None if placement.node == self.nodeId else clientEndpoints(placement.endpoints)
        arrive = spec.layout.spawns[0]
        if spec.arena:
            arrive = await arenaSpawn(self.volatile, self.zones, spec, placement.instance_id, cid)
        moved = await self.transfers.moveTo(player, placement.zone, arrive, host)
        if not moved:
            raise InstanceError(errors.UNAVAILABLE, f"instance {placement.instance_id} "
                                "could not be reached", retry_after=RETRY_AFTER)
        self.log.info("character {character_id} entered instance {instance_id} ({template}) "
                      "on {node} from {zone}", character_id=cid,
                      instance_id=placement.instance_id, template=spec.id,
                      node=placement.node, zone=source.id)

    def _returnFrom(self, player, entrance):
        """@return: C{(zone, (x, y, z))} the player comes back to, or None when it comes from an instance."""
        zone = player.zone
        if parseInstanceZone(zone.id) is not None:
            return None
        if entrance is not None:
            return zone.id, entrance.arrive
        e = player.entity
        for p in zone.spec.portals:
            # Not back into the entrance it stands in.
            if type(p) is EntrancePortal and p.rect.contains(e.x, e.z):
                return zone.id, p.arrive
        return zone.id, (e.x, e.y, e.z)

    def fallback(self, template):
        """@return: C{(zone, (x, y, z))} out of C{template} with no return point: its entrance, else the start zone."""
        spec = self.templates.get(template)
        if spec is not None and spec.entrance is not None:
            return spec.entrance.zone, tuple(spec.entrance.arrive)
        cfg = self.config
        zone = cfg.start_zone or next(iter(cfg.specs))
        return zone, tuple(cfg.specs[zone].spawns[0])

    # --- leaving ------------------------------------------------------------------

    async def leave(self, player):
        """
        C{world.instance.leave}: take C{player} back to where it entered from.

        @return: the reply C{{zone}} (the zone it goes to).
        @raise InstanceError: not in an instance, or the way out is not
            reachable now (it stays inside).
        """
        inside = parseInstanceZone(player.zone.id)
        if inside is None:
            raise InstanceError(errors.NOT_IN_INSTANCE, "not in an instance")
        cid = player.characterId
        self.pending.add(cid)
        try:
            zone = await self.out(player, inside, "leave")
        finally:
            self.pending.discard(cid)
        if zone is None:
            raise InstanceError(errors.UNAVAILABLE, "the way out is not available now",
                                retry_after=RETRY_AFTER)
        return {"zone": zone}

    async def out(self, player, inside, why):
        """
        Take C{player} out of instance C{inside} ((template, id)) to its
        return point, else its template's entrance.

        @return: the zone it went to, or None when it did not go.
        """
        template, instanceId = inside
        cid = player.characterId
        point = await loadReturn(self.sql, cid)
        ways = [self.fallback(template)]
        if point is not None:
            ways.insert(0, (point.zone, point.arrive))
        for zone, arrive in ways:
            if await self.transfers.moveTo(player, zone, arrive):
                self.log.info("character {character_id} left instance {instance_id} "
                              "({template}) for {zone}: {why}", character_id=cid,
                              instance_id=instanceId, template=template, zone=zone, why=why)
                if point is not None:
                    self.tasks.track(dropReturn(self.sql, cid, instanceId)).addErrback(
                        self._failed, "dropping a return point", instanceId)
                return zone
            if player.state != "live" or player.zone.id != instanceZoneId(template, instanceId):
                return None
        return None

    def onEvict(self, player):
        """IInstances' C{onEvict}: L{evict} in the background. @return: its Deferred."""
        d = self.tasks.track(Deferred.fromCoroutine(self.evict(player)))
        return d.addErrback(self._crashed, "eviction", player.characterId)

    async def evict(self, player):
        """
        The instance C{player} is in closes, or it is out of the instance's
        party past the grace: send it to its return point.  When no way out
        can be reached, it is saved there and logged out (C{world.kicked}):
        it comes back there.
        """
        inside = parseInstanceZone(player.zone.id)
        cid = player.characterId
        if inside is None or player.state != "live" or cid in self.pending:
            return
        self.pending.add(cid)
        try:
            if await self.out(player, inside, "evicted") is not None:
                return
        finally:
            self.pending.discard(cid)
        if player.state != "live":
            return
        template, instanceId = inside
        point = await loadReturn(self.sql, cid)
        zone, arrive = (point.zone, point.arrive) if point is not None else self.fallback(template)
        if player.state != "live":
            return
        self.roster.detach(player)
        player.session.send("world.kicked", {"reason": "instance closed"})
        x, y, z = arrive
        saved = await self.saves.rows([(zone, x, y, z, cid)], "evict")
        self.log.warn("character {character_id} logged out of closing instance {instance_id}: "
                      "no way out reachable (return point {zone} {saved})", character_id=cid,
                      instance_id=instanceId, zone=zone, saved="saved" if saved else "not saved")
        if cid not in self.roster.byCharacter and cid not in self.roster.entering:
            try:
                await self.leases.release(cid)
            except Exception as e:
                self.log.warn("lease of character {character_id} not released: {why}",
                              character_id=cid, why=e)

    # --- portals ------------------------------------------------------------------

    def portal(self, entity, portal):
        """The zones' portal handler: entrances and exits of instances here, other portals to L{Transfers}."""
        kind = type(portal)
        if kind is EntrancePortal:
            self._through(entity, self._walkIn, portal)
        elif kind is ExitPortal:
            self._through(entity, self._walkOut, portal)
        else:
            self.transfers.portal(entity, portal)

    def _through(self, entity, walk, portal):
        player = self.roster.byCharacter.get(entity.id)
        if player is None or player.state != "live" or player.characterId in self.pending:
            return
        d = self.tasks.track(Deferred.fromCoroutine(walk(player, portal)))
        d.addErrback(self._crashed, "portal", player.characterId)

    async def _walkIn(self, player, portal):
        source = player.zone
        try:
            await self.enterTemplate(player, portal.template, portal)
        except (InstanceError, ProtocolError, StoreError) as e:
            code, message, details = _explain(e)
            self.log.info("character {character_id} refused at the entrance of {template}: "
                          "{code}", character_id=player.characterId, template=portal.template,
                          code=code)
            if player.state == "live" and player.zone is source:
                ax, _, az = portal.arrive
                source.teleport(player.entity, ax, az)
                player.session.send("world.instance.refused", {"template": portal.template,
                                                               "code": code, "message": message,
                                                               **details})
        except Exception:
            self.log.failure("entrance of {template} failed for character {character_id}",
                             template=portal.template, character_id=player.characterId)

    async def _walkOut(self, player, portal):
        inside = parseInstanceZone(player.zone.id)
        if inside is None:
            return
        cid = player.characterId
        source = player.zone
        self.pending.add(cid)
        try:
            zone = await self.out(player, inside, "exit")
        except Exception:
            self.log.failure("exit of instance {instance_id} failed for character {character_id}",
                             instance_id=inside[1], character_id=cid)
            zone = None
        finally:
            self.pending.discard(cid)
        if zone is None and player.state == "live" and player.zone is source:
            sx, _, sz = source.spec.spawns[0]
            source.teleport(player.entity, sx, sz)
            player.session.send("world.transfer_failed", {"zone": source.id})

    # --- logging in -----------------------------------------------------------------

    async def landing(self, row):
        """
        C{WorldHandlers.landing}: a character whose saved zone is an
        instance not hosted here enters its host (re-created there if it
        died), or, when the instance has closed, its return point.

        @return: C{(row, host)}: the row to enter with, the endpoints of the
            node to redirect to (None: the directory's).
        @raise ProtocolError: the instance's host did not answer.
        """
        inside = parseInstanceZone(row.zone)
        if inside is None:
            return row, None
        template, instanceId = inside
        try:
            placement = await self.locate(instanceId)
        except InstanceError as e:
            raise ProtocolError(e.code, e.message, e.retry_after, e.details)
        if placement is not None:
            host = None if placement.zone in self.zones else clientEndpoints(placement.endpoints)
            return row, host
        point = await loadReturn(self.sql, row.id)
        zone, arrive = (point.zone, point.arrive) if point is not None else self.fallback(template)
        await landAt(self.sql, row.id, instanceId, zone, arrive)
        self.log.info("character {character_id} logs in out of closed instance {instance_id} "
                      "({template}): at {zone}", character_id=row.id, instance_id=instanceId,
                      template=template, zone=zone)
        x, y, z = arrive
        return attrs.evolve(row, zone=zone, x=float(x), y=float(y), z=float(z)), None

    # --- lockouts ----------------------------------------------------------------------

    async def lockouts(self, characterId):
        """@return: the character's running lockouts, C{[{template, instance_id, reset_at}]}."""
        found = await lockoutsOf(self.sql, characterId, self.clock.seconds())
        return [{"template": b.template, "instance_id": b.instance_id, "reset_at": b.reset_at}
                for b in found]

    def _crashed(self, failure, what, characterId):
        self.log.failure("instance {what} of character {character_id} failed", failure,
                         what=what, character_id=characterId)

    def _failed(self, failure, what, instanceId):
        self.log.warn("{what} of instance {instance_id} failed: {why}", what=what,
                      instance_id=instanceId, why=failure.getErrorMessage())


async def _openOrNone(d):
    """@return: what C{d} (a locate or reopen) fires with; None for C{instance.closed}."""
    try:
        return await d
    except InstanceError as e:
        if e.code == errors.CLOSED:
            return None
        raise


def _locked(bound, why):
    return InstanceError(errors.LOCKED, f"{why} until its reset", reset_at=bound.reset_at,
                         instance_id=bound.instance_id)


def _explain(e):
    """@return: C{(code, message, details)} of an InstanceError or ProtocolError."""
    if isinstance(e, InstanceError):
        return e.code, e.message, dict(e.details)
    if isinstance(e, StoreError):
        return "server.unavailable", "a database is not answering", {
            "retry_after": UNAVAILABLE_RETRY_AFTER}
    info = e.info
    return info.code, info.message, dict(info.details)
