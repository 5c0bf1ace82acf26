"""The combat requests of the session protocol: world.cast, world.stop_cast and world.release."""

import math

import attrs
from twisted.logger import Logger

from mmoshard.wire.errors import ProtocolError
from mmoshard.world.combat.errors import NOT_DEAD, UNKNOWN_ABILITY, CombatError
from mmoshard.world.combat.view import ms
from mmoshard.world.handlers import BAD, NOT_IN_WORLD
from mmoshard.world.sim import Entity

_NUM = (int, float)


def _refused(e):
    """@return: the typed answer to a refused combat request."""
    return ProtocolError(e.code, e.message, retry_after=e.retry_after)


def _coordinate(message, name):
    v = message.get(name)
    if v is None:
        return None
    if type(v) not in _NUM or not math.isfinite(float(v)):
        raise ProtocolError(BAD, f"{name} must be a finite number")
    return float(v)


@attrs.define(eq=False)
class CombatHandlers:
    """
    A live player's combat requests, checked here for shape and handed to
    its zone's L{Combat}, which refuses them with a typed L{CombatError}
    (answered as that error code, with C{retry_after} when a cooldown says
    when).  docs/combat.md, "Protocol".

    @ivar bySession: the roster's live players by session.
    """

    log = Logger()

    bySession: dict

    def handlers(self):
        """@return: the combat's world.* handlers, for L{IMessageRouter.addHandlers}."""
        return {
            "world.cast": self.onCast,
            "world.stop_cast": self.onStopCast,
            "world.release": self.onRelease,
        }

    def _live(self, session):
        """@return: the session's live player, its zone's combat and its combatant."""
        player = self.bySession.get(session)
        if player is None or player.state != "live":
            # Also while a world.leave or a transfer is in flight.
            raise ProtocolError(NOT_IN_WORLD, "not in the world")
        return player, player.zone.combat, player.entity.combat

    def onCast(self, session, message):
        ability = message.get("ability")
        if not isinstance(ability, str):
            raise ProtocolError(BAD, "ability must be a str")
        target = message.get("target")
        if target is not None and type(target) is not int:
            raise ProtocolError(BAD, "target must be an entity id")
        x = _coordinate(message, "x")
        z = _coordinate(message, "z")
        if (x is None) != (z is None):
            raise ProtocolError(BAD, "x and z come together")
        player, combat, me = self._live(session)
        if combat is None or me is None:
            raise ProtocolError(UNKNOWN_ABILITY, "this character has no abilities here")
        entity = None
        if target is not None:
            entity = player.zone.entities.get(target)
            if entity is None:
                # Not in this zone: Combat refuses it as an invalid target in
                # its own order of checks (a dead caster hears combat.dead).
                entity = Entity(target, "", 0.0, 0.0, 0.0)
        stats = combat.stats
        try:
            seconds = combat.cast(player.entity, ability, entity, x, z)
        except CombatError as e:
            stats.refused[e.code] = stats.refused.get(e.code, 0) + 1
            raise _refused(e)
        stats.casts += 1
        return {"cast_ms": ms(seconds)}

    def onStopCast(self, session, message):
        player, combat, me = self._live(session)
        stopped = combat is not None and me is not None and combat.stopCast(player.entity)
        return {"ok": True, "stopped": bool(stopped)}

    def onRelease(self, session, message):
        player, combat, me = self._live(session)
        if combat is None or me is None:
            raise ProtocolError(NOT_DEAD, "not dead")
        try:
            combat.release(player.entity)
        except CombatError as e:
            raise _refused(e)
        e = player.entity
        self.log.info("character {character_id} released to the graveyard of {zone}",
                      character_id=e.id, zone=player.zone.id)
        return {"x": e.x, "y": e.y, "z": e.z, "k": e.corr}
