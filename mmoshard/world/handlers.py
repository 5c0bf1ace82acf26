"""The world.* message handlers (enter, move, leave) and the session listener that follows players' sessions."""

import attrs
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from mmoshard.interfaces import ISessionListener, ISQLStore
from mmoshard.store.errors import StoreError
from mmoshard.wire.errors import UNAVAILABLE_RETRY_AFTER, ProtocolError
from mmoshard.world.combat.view import combatFields
from mmoshard.world.lease import CharacterBusy, LeaseKeeper
from mmoshard.world.players import Player, Roster, Tasks, zoneInfo
from mmoshard.world.progression import loadCharacter
from mmoshard.world.saves import Saves
from mmoshard.world.sim import PLAYER, Entity

# Error codes of world.* requests (docs/world.md).
NO_CHARACTER = "world.no_such_character"
BUSY = "world.character_busy"
NOT_IN_WORLD = "world.not_in_world"
ALREADY = "world.already_entered"
FULL = "world.full"
SAVE_FAILED = "world.save_failed"
BAD = "protocol.bad_request"
UNAVAILABLE = "server.unavailable"

# Entity ids travel as uint32 in world.u records.
MAX_ENTITY_ID = 2 ** 32 - 1


@implementer(ISessionListener)
@attrs.define(eq=False)
class WorldHandlers:
    """
    Players in and out of the world: world.enter loads the character, takes
    its lease and spawns it (or redirects to the node hosting its zone);
    world.move queues the input for the zone's next tick; world.leave and a
    session's end save it, despawn it and release the lease.

    @ivar sql: the L{ISQLStore} characters are loaded from.
    @ivar zones: the zones of this process, by id.
    @ivar startZone: the zone of characters never placed (None: the first hosted).
    @ivar maxPlayers: characters this process accepts.
    @ivar roster: the L{Roster} of live players.
    @ivar saves: the L{Saves} writing leaving players.
    @ivar leases: the L{LeaseKeeper}.
    @ivar transfers: the L{mmoshard.world.transfer.Transfers} redirecting to
        other nodes' zones (its module imports this one).
    @ivar tasks: the service's L{Tasks}: logouts in flight finish before it stops.
    @ivar landing: None, or C{async landing(row) -> (row, host)} for a
        character whose saved zone is not hosted here: the row it enters
        with (an instance that closed puts it at its return point) and the
        endpoints of the node to redirect it to (None: the directory's).
    @ivar takeover: None, or C{async takeover(zoneId, ticket) -> zone or
        None}: a standby zone of this node taken over for a character
        entering it (docs/operations.md, "Draining a world node").
    @ivar draining: True once the node drains: characters are sent to the
        other nodes hosting their zones (or refused: busy) instead of entering.
    """

    log = Logger()

    sql: ISQLStore
    zones: dict
    startZone: str | None
    maxPlayers: int
    roster: Roster
    saves: Saves
    leases: LeaseKeeper
    transfers: object
    tasks: Tasks
    landing: object = None
    takeover: object = None
    draining: bool = False
    # The roster's own dict: world.move finds its player in one lookup.
    bySession: dict = attrs.field(init=False)

    def __attrs_post_init__(self):
        self.bySession = self.roster.bySession

    def handlers(self):
        """@return: the world.* handlers, for L{IMessageRouter.addHandlers}."""
        return {
            "world.enter": self.onEnter,
            "world.move": self.onMove,
            "world.leave": self.onLeave,
        }

    # --- world.move: the hot path --------------------------------------------

    def onMove(self, session, message):
        player = self.bySession.get(session)
        if player is not None and player.state == "live":
            player.zone.queueMove(player.entity, message)
        return None

    # --- world.enter ---------------------------------------------------------

    def onEnter(self, session, message):
        return Deferred.fromCoroutine(self.enter(session, message))

    async def enter(self, session, message):
        """@return: the world.enter reply. @raise ProtocolError: refused."""
        cid = message.get("character_id")
        if type(cid) is not int or not 0 < cid <= MAX_ENTITY_ID:
            raise ProtocolError(BAD, "character_id must be a positive int")
        ticket = message.get("ticket")
        if ticket is not None and not isinstance(ticket, str):
            raise ProtocolError(BAD, "ticket must be a str")
        roster = self.roster
        current = roster.bySession.get(session)
        if current is not None:
            if current.characterId == cid:
                return self._entered(current)
            raise ProtocolError(ALREADY, "this session already plays another character")
        if cid in roster.entering:
            raise ProtocolError(BUSY, "the character is entering", retry_after=1.0)
        if len(roster) >= self.maxPlayers:
            raise ProtocolError(FULL, "this world process is full", retry_after=5.0)
        roster.entering.add(cid)
        try:
            return await self._enterLocked(session, cid, ticket)
        except StoreError as e:
            self.log.warn("character {character_id} (account {account_id}) cannot enter: {why}",
                          character_id=cid, account_id=session.accountId, why=e)
            raise ProtocolError(UNAVAILABLE, "the world's storage is unavailable",
                                retry_after=UNAVAILABLE_RETRY_AFTER)
        finally:
            roster.entering.discard(cid)

    async def _enterLocked(self, session, cid, ticket):
        log = dict(character_id=cid, account_id=session.accountId)
        roster = self.roster
        row = await loadCharacter(self.sql, cid)
        if row is None or row.account_id != session.accountId:
            raise ProtocolError(NO_CHARACTER, "no such character on this account")
        host = None
        if self.landing is not None and row.zone and row.zone not in self.zones:
            row, host = await self.landing(row)
        zoneId = row.zone or self.startZone or next(iter(self.zones))
        old = roster.byCharacter.get(cid)
        if old is not None:
            # The same account again in a new session: the newer one wins.
            roster.detach(old)
            old.session.send("world.kicked", {"reason": "entered from another session"})
            await self.saves.soon(old)
            zoneId = old.zone.id
        zone = self.zones.get(zoneId)
        if self.draining and old is None:
            # Leaving: the zone's other node takes the character.
            return await self.transfers.redirect(zoneId, row, draining=True)
        if zone is None and self.takeover is not None and host is None:
            zone = await self.takeover(zoneId, ticket)
        if zone is None:
            if host is not None:
                return {"character_id": row.id, "redirect": {"zone": zoneId, **host}}
            return await self.transfers.redirect(zoneId, row)
        try:
            await self.leases.acquire(cid, ticket)
        except CharacterBusy as e:
            self.log.info("character {character_id} (account {account_id}) busy in {holder}",
                          holder=e.holder, **log)
            raise ProtocolError(BUSY, "the character is live elsewhere", retry_after=1.0)
        if session.ended or session in roster.bySession:
            await self.leases.release(cid)
            return None
        if row.zone:
            x, y, z = zone.spawnPoint(row.x, row.y, row.z)
        else:
            x, y, z = zone.spec.spawns[0]  # never placed: the zone's first spawn point
        entity = Entity(cid, PLAYER, x, y, z, name=row.name, cls=row.cls, level=row.level)
        player = Player(row, entity, zone, session)
        player.saved = (zone.id, x, y, z) if (row.zone, row.x, row.z) == (zone.id, x, z) else None
        roster.add(player)
        self.log.info("character {character_id} (account {account_id}) entered {zone}",
                      zone=zone.id, **log)
        return self._entered(player)

    def _entered(self, player):
        e = player.entity
        return {"character_id": e.id, "zone": zoneInfo(player.zone.spec),
                "x": e.x, "y": e.y, "z": e.z, "k": e.corr, "name": e.name,
                "class": e.cls, "level": e.level, "exp": player.row.exp,
                **combatFields(player.zone, e)}

    # --- world.leave and logout ------------------------------------------------

    def onLeave(self, session, message):
        player = self.roster.bySession.get(session)
        if player is None:
            raise ProtocolError(NOT_IN_WORLD, "not in the world")
        return Deferred.fromCoroutine(self.leaveRequested(player))

    async def leaveRequested(self, player):
        """
        world.leave: save the character where it stands, then take it out
        and release its lease; all or nothing.  Meanwhile it stands still
        (moves and portals are ignored), so what is saved is where it stays.

        @return: the reply C{{ok: True}}.
        @raise ProtocolError: L{SAVE_FAILED} when the save failed: the
            character is live here again, leased, where it stood (unless
            it was taken out meanwhile: kicked, its session ended).
        """
        player.state = "leaving"
        self._standStill(player)
        saved = await self.saves.soon(player)
        if player.state == "leaving":
            if not saved:
                player.state = "live"
                self.log.warn("character {character_id} (account {account_id}) stays in {zone}: "
                              "the save of its world.leave failed",
                              character_id=player.characterId,
                              account_id=player.row.account_id, zone=player.zone.id)
            else:
                await self._out(player, "leave")
        # Else taken out meanwhile (kicked, session ended): that path did the rest.
        if not saved:
            raise ProtocolError(SAVE_FAILED, "the position could not be saved",
                                retry_after=UNAVAILABLE_RETRY_AFTER)
        return {"ok": True}

    async def leave(self, player, reason):
        """
        The session of C{player} ended: save it, take it out and release its
        lease.  Whatever the save did: a failed save loses the moves since
        the character's last successful save.
        """
        self.roster.detach(player)
        await self.saves.soon(player)
        await self._out(player, reason)

    async def _out(self, player, reason):
        """Take C{player} out (if not yet) and release its lease, unless the character entered here again."""
        roster = self.roster
        roster.detach(player)
        cid = player.characterId
        if cid in roster.byCharacter or cid in roster.entering:
            # Entered again here (a new session) meanwhile: the lease is its now.
            return
        try:
            await self.leases.release(cid)
        except StoreError as e:
            self.log.warn("lease of character {character_id} not released: {why}",
                          character_id=cid, why=e)
        self.log.info("character {character_id} (account {account_id}) left {zone}: {reason}",
                      character_id=cid, account_id=player.row.account_id,
                      zone=player.zone.id, reason=reason)

    def _standStill(self, player):
        e = player.entity
        player.zone.dropInput(e)
        if e.vx or e.vz:
            # Observers stop extrapolating a character that stopped.
            e.vx = e.vz = 0.0
            player.zone.space.move(e)

    # --- ISessionListener --------------------------------------------------------

    def sessionStarted(self, session):
        pass

    def sessionLinkDead(self, session):
        player = self.bySession.get(session)
        if player is not None:
            e = player.entity
            if e.vx or e.vz:
                # Observers stop extrapolating a client that went silent.
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
                                     "y": e.y, "z": e.z, "k": e.corr,
                                     **combatFields(player.zone, e)}, replayable=False)

    def sessionMoved(self, session, fromNode):
        # Nothing of the character is here yet: the client's world.enter
        # after a moved resume brings it in (or redirects it to the node
        # hosting its zone), as after a portal.
        pass

    def sessionEnded(self, session, reason):
        player = self.bySession.get(session)
        if player is not None:
            self.tasks.track(Deferred.fromCoroutine(self.leave(player, reason)))
