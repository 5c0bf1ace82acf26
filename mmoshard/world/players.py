"""The characters live in one world process: the Player record, the roster indexing them, zone chat membership, and background work the service waits for at stop."""

import attrs
from twisted.internet.defer import DeferredList
from twisted.logger import Logger

from mmoshard.world.instances.ids import parseInstanceZone


# Slots (no weak references, as before): the tick and the periodic save
# read these for every live player.
@attrs.define(slots=True, weakref_slot=False, eq=False)
class Player:
    """A character live in this process: its row, entity, zone and session."""

    row: object
    entity: object
    zone: object
    session: object
    # The position last saved (None: not yet).
    saved: tuple | None = attrs.field(init=False, default=None)
    state: str = attrs.field(init=False, default="live")  # live | transferring | leaving | gone

    @property
    def characterId(self):
        return self.row.id

    def position(self):
        e = self.entity
        return (self.zone.id, e.x, e.y, e.z)


def zoneInfo(spec):
    """
    @return: what a client is told of a zone (world.enter, world.zone,
        world.reset): enough to draw its map (blocked terrain, portals,
        graveyard) and to move in it without corrections.
    """
    graveyard = spec.graveyard if spec.graveyard is not None else spec.spawns[0]
    return {"id": spec.id, "size": [spec.width, spec.depth], "tick_rate": spec.tick_rate,
            "aoi_radius": spec.aoi_radius, "max_speed": spec.max_speed, "tile": spec.tile,
            "blocked": [r.corners() for r in spec.blocked],
            "portals": [p.clientView() for p in spec.portals],
            "graveyard": [graveyard[0], graveyard[2]], "pvp": spec.pvp}


def place(zone, entity, session):
    """
    Spawn a player's entity in C{zone} and give it its combatant there (one
    it brings from another zone of this process is kept: health, cooldowns).
    """
    zone.spawn(entity, session)
    combat = zone.combat
    # A class with no kit (a row older than the game data) fights nothing.
    if combat is not None and (entity.combat is not None or entity.cls in combat.data.kits):
        combat.addPlayer(entity, entity.cls, entity.level)


def unplace(zone, entity):
    """Take a player's entity out of C{zone}, out of its combat first (casts, threat, auras)."""
    combat = zone.combat
    if combat is not None and entity.combat is not None and entity.id in zone.entities:
        combat.remove(entity)
    zone.despawn(entity)


class Tasks:
    """Background Deferreds (saves, lease calls, chat calls) a stopping service waits for."""

    def __init__(self):
        self.pending = set()

    def track(self, d):
        """Keep C{d} until it fires. @return: C{d}."""
        self.pending.add(d)
        d.addBoth(self._untrack, d)
        return d

    def _untrack(self, result, d):
        self.pending.discard(d)
        return result

    async def drain(self):
        """
        Wait until nothing tracked is pending, work tracked while waiting
        included (a kill reward starts its grants after its party lookups);
        failures are already logged by their owners.
        """
        while self.pending:
            await DeferredList(list(self.pending), consumeErrors=True)


class ZoneChat:
    """
    Zone chat membership through L{IZoneChannels} (None: no zone chat):
    calls run in the background, a failure is logged and changes nothing
    in the world.
    """

    log = Logger()

    def __init__(self, channels, tasks):
        self.channels = channels
        self.tasks = tasks

    def join(self, characterId, zoneId):
        channels = self.channels
        if channels is not None:
            self.tasks.track(channels.joinZone(characterId, zoneId)).addErrback(
                self._failed, characterId, zoneId)

    def leave(self, characterId, zoneId):
        channels = self.channels
        if channels is not None:
            self.tasks.track(channels.leaveZone(characterId, zoneId)).addErrback(
                self._failed, characterId, zoneId)

    def _failed(self, failure, characterId, zoneId):
        self.log.warn("zone channel of {zone} for character {character_id}: {why}",
                      zone=zoneId, character_id=characterId, why=failure.getErrorMessage())


class Whereabouts:
    """
    Tells the node's L{ILocator} (None: nobody) where the live players are:
    their world session and the zone (an instance: its template and id)
    they play in.  Calls run in the background; the locator never fails
    them (it retries what the store did not take).
    """

    def __init__(self, locator, tasks):
        self.locator = locator
        self.tasks = tasks

    def arrived(self, player):
        """C{player} is live here now: its session and zone."""
        locator = self.locator
        if locator is not None:
            cid = player.characterId
            self.tasks.track(locator.bind(cid, "world", player.session.sessionId))
            self.moved(player)

    def moved(self, player):
        """C{player} plays in another zone of this process now."""
        locator = self.locator
        if locator is not None:
            zone = player.zone.id
            inside = parseInstanceZone(zone)
            if inside is not None:
                self.tasks.track(locator.place(player.characterId, inside[0], inside[1]))
            else:
                self.tasks.track(locator.place(player.characterId, zone))

    def left(self, player):
        """C{player} is no longer here (logout, a transfer to another node)."""
        locator = self.locator
        if locator is not None:
            cid = player.characterId
            self.tasks.track(locator.unplace(cid))
            self.tasks.track(locator.unbind(cid, "world", player.session.sessionId))


class Roster:
    """
    Who plays here: live players by session (by identity: a resumed session
    keeps its object) and by character id, and the character ids entering
    now.  Putting a player in or out of its zone goes through here, so the
    indexes, the zone and zone chat agree.  No I/O of its own.
    """

    def __init__(self, chat, where=None):
        self.chat = chat
        self.where = where if where is not None else Whereabouts(None, None)
        self.bySession = {}
        self.byCharacter = {}
        self.entering = set()

    def __len__(self):
        return len(self.byCharacter)

    def add(self, player):
        """Spawn C{player} in its zone and index it."""
        cid = player.characterId
        place(player.zone, player.entity, player.session)
        self.bySession[player.session] = player
        self.byCharacter[cid] = player
        self.chat.join(cid, player.zone.id)
        self.where.arrived(player)

    def detach(self, player):
        """Take a player out of its zone and the indexes, once."""
        if player.state == "gone":
            return
        player.state = "gone"
        unplace(player.zone, player.entity)
        if self.bySession.get(player.session) is player:
            del self.bySession[player.session]
        if self.byCharacter.get(player.characterId) is player:
            del self.byCharacter[player.characterId]
        self.chat.leave(player.characterId, player.zone.id)
        self.where.left(player)

    def reattach(self, player, zone):
        """Put a detached player back, live, in C{zone} (a transfer that did not happen)."""
        player.state = "live"
        player.zone = zone
        self.add(player)

    def progressed(self, characterId, result):
        """Tell a live player what an L{IProgression} call did to it."""
        player = self.byCharacter.get(characterId)
        if player is not None:
            player.session.send("world.progress", {"result": result})

    def leveled(self, characterId, level):
        """An exp grant left character C{characterId} at C{level}: a live player's entity and combatant follow."""
        player = self.byCharacter.get(characterId)
        if player is None or player.entity.level == level:
            return
        e = player.entity
        e.level = level
        if e.combat is not None and player.zone.combat is not None:
            player.zone.combat.setLevel(e, level)
