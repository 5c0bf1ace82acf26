"""WorldService: hosts zones, runs their tick loops, and handles world.* messages, leases, saves and transfers."""

import secrets
from collections import deque

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from mmoshard.interfaces import ISessionListener
from mmoshard.store.errors import StoreError
from mmoshard.wire.errors import ProtocolError
from mmoshard.world.lease import CharacterBusy, Leases
from mmoshard.world.metrics import WorldMetrics
from mmoshard.world.progression import Progression, loadCharacter, savePositions
from mmoshard.world.sim import PLAYER, Entity, Zone
from mmoshard.world.ticker import FixedRateLoop

# Error codes of world.* requests (docs/world.md).
NO_CHARACTER = "world.no_such_character"
BUSY = "world.character_busy"
NOT_IN_WORLD = "world.not_in_world"
ALREADY = "world.already_entered"
FULL = "world.full"
BAD = "protocol.bad_request"
UNAVAILABLE = "server.unavailable"

# Logout/transfer saves wait this long to share a transaction.
SAVE_BATCH_DELAY = 0.05
# Recent tick durations kept per zone for /world/ticks (10 minutes at 10 Hz).
TICK_LOG = 6000
# Entity ids travel as uint32 in world.u records.
MAX_ENTITY_ID = 2 ** 32 - 1


class Player:
    """A character live in this process: its row, entity, zone and session."""

    __slots__ = ("row", "entity", "zone", "session", "saved", "state")

    def __init__(self, row, entity, zone, session):
        self.row = row
        self.entity = entity
        self.zone = zone
        self.session = session
        self.saved = None
        self.state = "live"  # live | leaving | transferring

    @property
    def characterId(self):
        return self.row.id

    def position(self):
        e = self.entity
        return (self.zone.id, e.x, e.y, e.z)


def zoneInfo(spec):
    return {"id": spec.id, "size": [spec.width, spec.depth], "tick_rate": spec.tick_rate,
            "aoi_radius": spec.aoi_radius, "max_speed": spec.max_speed}


@implementer(ISessionListener)
class WorldService(Service):
    """The world role's service: one L{Zone} and tick loop per hosted zone."""

    log = Logger()

    def __init__(self, config, reactor, nodeId, metrics, sql, volatile, router,
                 directory=None, admin=None, zoneChannels=None):
        """
        @param config: the C{[world]} section.
        @param metrics: the node's Prometheus registry.
        @param router: the L{IMessageRouter} world.* messages arrive by.
        @param directory: the L{IDirectory} (None: no transfers to other nodes).
        @param admin: the L{IAdminSite} (None: no /world admin routes).
        @param zoneChannels: the L{IZoneChannels} players join (None: no zone chat).
        """
        self.setName("world")
        self.config = cfg = config
        self.clock = reactor
        self.nodeId = nodeId
        self.sql = sql
        self.volatile = volatile
        self.router = router
        self.directory = directory
        self.admin = admin
        self.zoneChannels = zoneChannels
        self.zones = {zid: Zone(cfg.specs[zid], self.clock, cfg.interest) for zid in cfg.hosted}
        for zone in self.zones.values():
            zone.portalHandler = self._portal
        self.startZone = cfg.start_zone if cfg.start_zone in self.zones else None
        self.loops = {}
        self.bySession = {}  # Session (by identity: a resume keeps the object) -> Player
        self.byCharacter = {}
        self.entering = set()
        self.bytesPerClient = {}
        self.tickLog = {}
        self._lastBytes = {}
        self._saving = 0
        self._batch = []
        self._batchCall = None
        self._pending = set()
        self._housekeeping = None
        self._second = 0
        self.leases = Leases(volatile, nodeId, cfg.lease_ttl)
        self.progression = Progression(sql, self.clock, self._progressed)
        self.metrics = WorldMetrics(metrics, self)

    # --- lifetime ----------------------------------------------------------

    def startService(self):
        Service.startService(self)
        return Deferred.fromCoroutine(self._start())

    async def _start(self):
        router = self.router
        router.addHandlers("world", {
            "world.enter": self._onEnter,
            "world.move": self._onMove,
            "world.leave": self._onLeave,
        })
        router.addListener(self)
        directory = self.directory
        if directory is not None:
            directory.publish("zones", sorted(self.zones))
            directory.addLoadSource(
                "players", lambda: sum(len(z.observers) for z in self.zones.values())
            )
        for zid, zone in self.zones.items():
            loop = FixedRateLoop(self.clock, zone.spec.tickInterval, zone.tick,
                                 observe=self._observer(zid))
            self.loops[zid] = loop
            loop.start()
        admin = self.admin
        if admin is not None:
            from mmoshard.world.admin import makeWorldAdmin

            admin.putChild(b"world", makeWorldAdmin(self))
        self._housekeeping = LoopingCall(self._everySecond)
        self._housekeeping.clock = self.clock
        self._housekeeping.start(1.0, now=False)
        engines = {("native" if z.space.native else "python") for z in self.zones.values()}
        self.log.info("world of node {node_id} hosts zones {zones} (interest space: {engine})",
                      node_id=self.nodeId, zones=",".join(self.zones), engine=",".join(sorted(engines)))

    def _observer(self, zid):
        histogram = self.metrics.observer(zid)
        ring = self.tickLog[zid] = deque(maxlen=TICK_LOG)
        seconds = self.clock.seconds

        def observe(duration, overrun):
            histogram(duration, overrun)
            ring.append((seconds(), duration))

        return observe

    def stopService(self):
        Service.stopService(self)
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self):
        for loop in self.loops.values():
            loop.stop()
        if self._housekeeping is not None and self._housekeeping.running:
            self._housekeeping.stop()
        players = list(self.byCharacter.values())
        for p in players:
            self._detach(p)
        # One transaction for everyone, then one lease call.
        await self._saveRows([p.position() + (p.characterId,) for p in players], "shutdown")
        if self._pending:
            await DeferredList(list(self._pending), consumeErrors=True)
        await self._flushBatch()
        held = list(self.leases.held) if self.leases else []
        if held:
            try:
                await self.leases.release(*held)
            except StoreError as e:
                self.log.warn("releasing {count} leases at stop failed: {why}", count=len(held), why=e)
        self.log.info("world stopped: saved {count} characters", count=len(players))

    def _track(self, d):
        self._pending.add(d)
        d.addBoth(self._untrack, d)
        return d

    def _untrack(self, result, d):
        self._pending.discard(d)
        return result

    # --- handlers ----------------------------------------------------------

    def _onMove(self, session, message):
        player = self.bySession.get(session)
        if player is not None and player.state == "live":
            player.zone.queueMove(player.entity, message)
        return None

    def _onEnter(self, session, message):
        return Deferred.fromCoroutine(self._enter(session, message))

    async def _enter(self, session, message):
        cid = message.get("character_id")
        if type(cid) is not int or not 0 < cid <= MAX_ENTITY_ID:
            raise ProtocolError(BAD, "character_id must be a positive int")
        ticket = message.get("ticket")
        if ticket is not None and not isinstance(ticket, str):
            raise ProtocolError(BAD, "ticket must be a str")
        current = self.bySession.get(session)
        if current is not None:
            if current.characterId == cid:
                return self._entered(current)
            raise ProtocolError(ALREADY, "this session already plays another character")
        if cid in self.entering:
            raise ProtocolError(BUSY, "the character is entering", retry_after=1.0)
        if len(self.byCharacter) >= self.config.max_players:
            raise ProtocolError(FULL, "this world process is full", retry_after=5.0)
        self.entering.add(cid)
        try:
            return await self._enterLocked(session, cid, ticket)
        except StoreError as e:
            self.log.warn("character {character_id} (account {account_id}) cannot enter: {why}",
                          character_id=cid, account_id=session.accountId, why=e)
            raise ProtocolError(UNAVAILABLE, "the world's storage is unavailable", retry_after=5.0)
        finally:
            self.entering.discard(cid)

    async def _enterLocked(self, session, cid, ticket):
        log = dict(character_id=cid, account_id=session.accountId)
        row = await loadCharacter(self.sql, cid)
        if row is None or row.account_id != session.accountId:
            raise ProtocolError(NO_CHARACTER, "no such character on this account")
        zoneId = row.zone or self.startZone or next(iter(self.zones))
        old = self.byCharacter.get(cid)
        if old is not None:
            # The same account again in a new session: the newer one wins.
            self._detach(old)
            old.session.send("world.kicked", {"reason": "entered from another session"})
            await self._saveSoon(old)
            zoneId = old.zone.id
        zone = self.zones.get(zoneId)
        if zone is None:
            return await self._redirect(zoneId, row)
        try:
            await self.leases.acquire(cid, ticket)
        except CharacterBusy as e:
            self.log.info("character {character_id} (account {account_id}) busy in {holder}",
                          holder=e.holder, **log)
            raise ProtocolError(BUSY, "the character is live elsewhere", retry_after=1.0)
        if session.ended or session in self.bySession:
            await self.leases.release(cid)
            return None
        if row.zone:
            x, y, z = zone.spawnPoint(row.x, row.y, row.z)
        else:
            x, y, z = zone.spec.spawns[0]  # never placed: the zone's first spawn point
        entity = Entity(cid, PLAYER, x, y, z, name=row.name, cls=row.cls, level=row.level)
        player = Player(row, entity, zone, session)
        player.saved = (zone.id, x, y, z) if (row.zone, row.x, row.z) == (zone.id, x, z) else None
        zone.spawn(entity, session)
        self.bySession[session] = player
        self.byCharacter[cid] = player
        self._joinChat(cid, zone.id)
        self.log.info("character {character_id} (account {account_id}) entered {zone}",
                      zone=zone.id, **log)
        return self._entered(player)

    def _entered(self, player):
        e = player.entity
        return {"character_id": e.id, "zone": zoneInfo(player.zone.spec),
                "x": e.x, "y": e.y, "z": e.z, "k": e.corr, "name": e.name,
                "class": e.cls, "level": e.level, "exp": player.row.exp}

    async def _redirect(self, zoneId, row):
        host = await self.findZone(zoneId)
        if host is None:
            raise ProtocolError(BUSY, f"zone {zoneId!r} is not hosted right now", retry_after=5.0)
        return {"character_id": row.id, "redirect": {"zone": zoneId, **host}}

    async def findZone(self, zoneId):
        """@return: the endpoints ({tcp, websocket}) of a live process hosting C{zoneId}, or None."""
        directory = self.directory
        if directory is None:
            return None
        try:
            entries = await directory.endpointsFor("world")
        except StoreError:
            return None
        for entry in entries:
            if zoneId in entry.info.get("zones", ()) and entry.node_id != self.nodeId:
                return {k: v for k, v in entry.endpoints.items() if k in ("tcp", "websocket")}
        return None

    def _onLeave(self, session, message):
        player = self.bySession.get(session)
        if player is None:
            raise ProtocolError(NOT_IN_WORLD, "not in the world")
        return Deferred.fromCoroutine(self._leave(player, "leave", reply={"ok": True}))

    async def _leave(self, player, reason, reply=None):
        self._detach(player)
        await self._saveSoon(player)
        cid = player.characterId
        if cid in self.byCharacter or cid in self.entering:
            # Entered again here (a new session) meanwhile: the lease is its now.
            return reply
        try:
            await self.leases.release(cid)
        except StoreError as e:
            self.log.warn("lease of character {character_id} not released: {why}",
                          character_id=player.characterId, why=e)
        self.log.info("character {character_id} (account {account_id}) left {zone}: {reason}",
                      character_id=player.characterId, account_id=player.row.account_id,
                      zone=player.zone.id, reason=reason)
        return reply

    def _detach(self, player):
        """Take a player out of its zone and the indexes (no I/O)."""
        if player.state == "gone":
            return
        player.state = "gone"
        player.zone.despawn(player.entity)
        if self.bySession.get(player.session) is player:
            del self.bySession[player.session]
        if self.byCharacter.get(player.characterId) is player:
            del self.byCharacter[player.characterId]
        self._leaveChat(player.characterId, player.zone.id)

    # --- session listener ----------------------------------------------------

    def sessionStarted(self, session):
        pass

    def sessionLinkDead(self, session):
        player = self.bySession.get(session)
        if player is not None:
            e = player.entity
            if e.vx or e.vz:
                e.vx = e.vz = 0.0
                player.zone.space.move(e)

    def sessionResumed(self, session):
        player = self.bySession.get(session)
        if player is None:
            return
        # Updates are not replayed: start the client's view afresh.
        e = player.entity
        player.zone.resetView(e)
        session.send("world.reset", {"zone": zoneInfo(player.zone.spec), "x": e.x,
                                     "y": e.y, "z": e.z, "k": e.corr}, replayable=False)

    def sessionEnded(self, session, reason):
        player = self.bySession.get(session)
        if player is not None:
            self._track(Deferred.fromCoroutine(self._leave(player, reason)))

    # --- saves -------------------------------------------------------------

    def _saveSoon(self, player):
        """Save one player in the next batch. @return: a Deferred firing once committed."""
        d = Deferred()
        row = player.position() + (player.characterId,)
        self._batch.append((row, d))
        if self._batchCall is None:
            self._batchCall = self.clock.callLater(SAVE_BATCH_DELAY, self._flushBatch)
        return d

    def _flushBatch(self):
        if self._batchCall is not None and self._batchCall.active():
            self._batchCall.cancel()
        self._batchCall = None
        batch, self._batch = self._batch, []
        if not batch:
            return Deferred.fromCoroutine(_noop())
        rows = {}
        for row, _ in batch:
            rows[row[-1]] = row  # the newest position of a character wins
        d = self._track(Deferred.fromCoroutine(self._saveRows(list(rows.values()), "logout")))

        def done(result):
            for _, waiter in batch:
                waiter.callback(None)
            return result

        return d.addBoth(done)

    async def _saveRows(self, rows, why):
        if not rows:
            return 0
        try:
            n = await savePositions(self.sql, rows)
        except StoreError as e:
            self.log.error("saving {count} positions ({why}) failed: {error}",
                           count=len(rows), why=why, error=e)
            return 0
        self.metrics.saves.observe(n)
        return n

    def _periodicSave(self):
        """Save the players of this second's slot whose position changed."""
        slots = max(1, int(self.config.save_interval))
        slot = self._second % slots
        rows = []
        batch = []
        for p in self.byCharacter.values():
            if p.characterId % slots != slot or p.state != "live":
                continue
            pos = p.position()
            if pos != p.saved:
                rows.append(pos + (p.characterId,))
                batch.append((p, pos))
        if not rows or self._saving > 2:
            return
        self._saving += 1

        def done(n):
            self._saving -= 1
            if n:
                for p, pos in batch:
                    p.saved = pos
        self._track(Deferred.fromCoroutine(self._saveRows(rows, "periodic"))).addCallback(done)

    def _everySecond(self):
        self._second += 1
        self._periodicSave()
        if self._second % max(1, int(self.config.lease_refresh)) == 0:
            self._track(Deferred.fromCoroutine(self._refreshLeases()))
        for zid, zone in self.zones.items():
            total = zone.stats.bytesOut
            last = self._lastBytes.get(zid, total)
            self._lastBytes[zid] = total
            n = len(zone.observers)
            self.bytesPerClient[zid] = (total - last) / n if n else 0.0

    async def _refreshLeases(self):
        try:
            lost = await self.leases.refresh()
        except StoreError as e:
            self.log.warn("lease refresh failed: {why}", why=e)
            return
        for cid in lost:
            player = self.byCharacter.get(cid)
            if player is None:
                continue
            self.log.error("lease of character {character_id} lost: taking it out of {zone}",
                           character_id=cid, zone=player.zone.id)
            player.session.send("world.kicked", {"reason": "lease lost"}, replayable=True)
            self._detach(player)

    # --- transfers -----------------------------------------------------------

    def _portal(self, entity, portal):
        player = self.byCharacter.get(entity.id)
        if player is not None and player.state == "live":
            player.state = "transferring"
            self._track(Deferred.fromCoroutine(self._transfer(player, portal)))

    async def _transfer(self, player, portal):
        log = dict(character_id=player.characterId, account_id=player.row.account_id)
        ax, ay, az = portal.arrive
        target = self.zones.get(portal.to)
        source = player.zone
        if target is not None:
            # Hosted here too: move the entity between zones.
            source.despawn(player.entity)
            self._leaveChat(player.characterId, source.id)
            e = player.entity
            e.x, e.z = ax, az
            e.corr += 1
            player.zone = target
            target.spawn(e, player.session)
            player.state = "live"
            self._joinChat(player.characterId, target.id)
            player.session.send("world.zone", {"zone": zoneInfo(target.spec), "x": e.x,
                                               "y": e.y, "z": e.z, "k": e.corr})
            await self._saveSoon(player)
            return
        host = await self.findZone(portal.to)
        if host is None or player.state != "transferring":
            if player.state == "transferring":
                player.state = "live"
                sx, _, sz = source.spec.spawns[0]
                source.teleport(player.entity, sx, sz)
                player.session.send("world.transfer_failed", {"zone": portal.to})
            return
        self._detach(player)
        e = player.entity
        row = (portal.to, ax, ay, az, player.characterId)
        if not await self._saveRows([row], "transfer"):
            # Not saved: nothing moved.  The character stays here.
            self._reattach(player, source)
            player.session.send("world.transfer_failed", {"zone": portal.to})
            return
        ticket = secrets.token_urlsafe(16)
        try:
            await self.leases.handoff(player.characterId, ticket, self.config.transfer_ttl)
        except StoreError as e:
            # The lease runs out by itself; the row already names the target.
            self.log.warn("transfer of character {character_id}: lease handoff failed: {why}",
                          why=e, **log)
        self.log.info("character {character_id} (account {account_id}) transfers to {zone}",
                      zone=portal.to, **log)
        player.session.send("world.transfer", {"character_id": e.id, "zone": portal.to,
                                               "ticket": ticket, **host})

    def _reattach(self, player, zone):
        player.state = "live"
        player.zone = zone
        zone.spawn(player.entity, player.session)
        self.bySession[player.session] = player
        self.byCharacter[player.characterId] = player
        self._joinChat(player.characterId, zone.id)

    # --- chat and progression hooks ------------------------------------------

    def _joinChat(self, cid, zoneId):
        channels = self.zoneChannels
        if channels is not None:
            self._track(channels.joinZone(cid, zoneId)).addErrback(self._chatFailed, cid, zoneId)

    def _leaveChat(self, cid, zoneId):
        channels = self.zoneChannels
        if channels is not None:
            self._track(channels.leaveZone(cid, zoneId)).addErrback(self._chatFailed, cid, zoneId)

    def _chatFailed(self, failure, cid, zoneId):
        self.log.warn("zone channel of {zone} for character {character_id}: {why}",
                      zone=zoneId, character_id=cid, why=failure.getErrorMessage())

    def _progressed(self, characterId, result):
        player = self.byCharacter.get(characterId)
        if player is not None:
            player.session.send("world.progress", {"result": result})


async def _noop():
    return None
