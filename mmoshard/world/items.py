"""The world.inventory and world.item.* handlers: a player's items through IProgression, each change once under the client's request key."""

from collections import OrderedDict

import attrs
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from mmoshard.interfaces import IProgression
from mmoshard.store.errors import StoreError
from mmoshard.wire.errors import UNAVAILABLE_RETRY_AFTER, ProtocolError
from mmoshard.world.combat import errors as combatErrors
from mmoshard.world.combat.errors import CombatError
from mmoshard.world.players import Roster
from mmoshard.world.progression import INVENTORY_SLOTS, BadSlot, NoSuchItem

# Error codes of the item requests (docs/combat.md, "Rewards and items").
NOT_FOUND = "item.not_found"
NOT_USABLE = "item.not_usable"
ON_COOLDOWN = "item.on_cooldown"
BAD_SLOT = "item.bad_slot"
CODES = (NOT_FOUND, NOT_USABLE, ON_COOLDOWN, BAD_SLOT)

BAD = "protocol.bad_request"
UNAVAILABLE = "server.unavailable"
NOT_IN_WORLD = "world.not_in_world"

# Combat's refusals of an item use, in the item codes where they have one.
_ITEM_CODES = {combatErrors.ON_COOLDOWN: ON_COOLDOWN, combatErrors.UNKNOWN_ABILITY: NOT_USABLE}

MAX_KEY = 64
# A second world.item.use while one waits for the database: try again soon.
IN_FLIGHT_RETRY = 0.25
# Uses whose database call failed, remembered until resent (the oldest forgotten first).
UNSURE_USES = 10_000


def _slot(message, field):
    value = message.get(field)
    if type(value) is not int:
        raise ProtocolError(BAD, f"{field} must be an int")
    if not 0 <= value < INVENTORY_SLOTS:
        raise ProtocolError(BAD_SLOT, f"{field} must be in 0..{INVENTORY_SLOTS - 1}")
    return value


def _key(message, op):
    """The idempotency key of request C{message}: its client key, scoped to the operation."""
    key = message.get("key")
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY:
        raise ProtocolError(BAD, f"key must be a str of 1..{MAX_KEY} characters")
    return f"req:{op}:{key}"


def _unavailable():
    return ProtocolError(UNAVAILABLE, "the world's storage is unavailable",
                         retry_after=UNAVAILABLE_RETRY_AFTER)


@attrs.define(eq=False)
class ItemHandlers:
    """
    A player's inventory and its items: world.inventory reads it,
    world.item.move / use / destroy change it through L{IProgression}, one
    transaction each with a ledger row under the request's C{key} (scoped
    to the character and the operation), so a resent request is applied
    once.  world.item.use checks the combat rules (dead, cooldown) first,
    takes the item in SQL, and applies the effect only when that call took
    it (not when an earlier call with the key did).

    @ivar progression: the L{IProgression}.
    @ivar roster: the L{Roster}: the session's player.
    @ivar using: character ids with a world.item.use waiting for the database.
    @ivar unsure: (character id, key) -> L{ItemSpec} of the uses whose
        database call failed: the item may have been taken (the commit's
        answer lost) without its effect, which the resent request applies.
    """

    log = Logger()

    progression: IProgression
    roster: Roster
    using: set = attrs.field(init=False, factory=set)
    unsure: OrderedDict = attrs.field(init=False, factory=OrderedDict)

    def handlers(self):
        """@return: the item handlers, for L{IMessageRouter.addHandlers}."""
        return {
            "world.inventory": self.onInventory,
            "world.item.move": self.onMove,
            "world.item.use": self.onUse,
            "world.item.destroy": self.onDestroy,
        }

    def _player(self, session):
        player = self.roster.bySession.get(session)
        if player is None:
            raise ProtocolError(NOT_IN_WORLD, "not in the world")
        return player

    async def _sql(self, player, what, d):
        """Await C{d}, a progression call: a store outage is server.unavailable, logged."""
        try:
            return await d
        except StoreError as e:
            self.log.warn("{what} of character {character_id} failed: {why}",
                          what=what, character_id=player.characterId, why=e)
            raise _unavailable()

    # --- world.inventory ---------------------------------------------------------

    def onInventory(self, session, message):
        return Deferred.fromCoroutine(self.inventory(self._player(session)))

    async def inventory(self, player):
        """@return: C{{slots: [{slot, item, count}]}}, slots in order."""
        slots = await self._sql(player, "world.inventory",
                                self.progression.inventory(player.characterId))
        return {"slots": [{"slot": s, "item": item, "count": n}
                          for s, (item, n) in sorted(slots.items())]}

    # --- world.item.move ---------------------------------------------------------

    def onMove(self, session, message):
        player = self._player(session)
        a = _slot(message, "from")
        b = _slot(message, "to")
        key = _key(message, "move")
        return Deferred.fromCoroutine(self.move(player, a, b, key))

    async def move(self, player, a, b, key):
        """Move or swap the items of slots C{a} and C{b}. @return: C{{ok: True}}."""
        await self._sql(player, "world.item.move",
                        self.progression.moveItem(player.characterId, a, b, key))
        return {"ok": True}

    # --- world.item.destroy ------------------------------------------------------

    def onDestroy(self, session, message):
        player = self._player(session)
        slot = _slot(message, "slot")
        count = message.get("count")
        if count is not None and (type(count) is not int or not 0 < count < 2 ** 31):
            raise ProtocolError(BAD, "count must be a positive int")
        key = _key(message, "destroy")
        return Deferred.fromCoroutine(self.destroy(player, slot, count, key))

    async def destroy(self, player, slot, count, key):
        """Destroy C{count} (None: all) of slot C{slot}. @return: C{{item, count}} (left)."""
        try:
            item, left = await self._sql(
                player, "world.item.destroy",
                self.progression.destroyItem(player.characterId, slot, count, key))
        except NoSuchItem as e:
            raise ProtocolError(NOT_FOUND, str(e))
        self.log.info("character {character_id} destroyed {item} from slot {slot} ({key})",
                      character_id=player.characterId, item=item, slot=slot, key=key)
        return {"item": item, "count": left}

    # --- world.item.use ----------------------------------------------------------

    def onUse(self, session, message):
        player = self._player(session)
        slot = _slot(message, "slot")
        key = _key(message, "use")
        target = message.get("target")
        if target is not None and type(target) is not int:
            raise ProtocolError(BAD, "target must be an entity id")
        if player.state != "live":
            raise ProtocolError(NOT_IN_WORLD, "not in the world")
        return Deferred.fromCoroutine(self.use(player, slot, key, target))

    async def use(self, player, slot, key, target):
        """
        Use the consumable in C{slot} on its user or C{target} (an entity id
        in the user's zone).

        @return: C{{applied, item, count}}: C{applied} False when an earlier
            request with this key used it (the effect is not applied again);
            C{count} what is left in the slot.
        """
        cid = player.characterId
        if cid in self.using:
            raise ProtocolError(ON_COOLDOWN, "an item is being used", retry_after=IN_FLIGHT_RETRY)
        self.using.add(cid)
        try:
            return await self._use(player, slot, key, target)
        finally:
            self.using.discard(cid)

    async def _use(self, player, slot, key, target):
        cid = player.characterId
        progression = self.progression
        held = (await self._sql(player, "world.item.use",
                                progression.inventory(cid))).get(slot)
        combat = player.zone.combat
        # A resend of a use whose database call failed is about the item it used.
        spec = self.unsure.get((cid, key))
        if spec is None and held is not None and combat is not None:
            spec = combat.data.items.get(held[0])
        if combat is None or spec is None or spec.kind != "consumable" or not spec.use:
            # Perhaps a resend of a request that used the slot's last one:
            # the ledger answers it.  "" is no item id, so nothing is taken.
            try:
                applied, left = await self._sql(player, "world.item.use",
                                                progression.useItem(cid, slot, "", key))
            except NoSuchItem:
                if held is None:
                    raise ProtocolError(NOT_FOUND, f"slot {slot} is empty")
                raise ProtocolError(NOT_USABLE, f"{held[0]} cannot be used")
            return {"applied": applied, "item": None, "count": left}
        targetEntity = self._target(player, target)
        try:
            combat.checkItem(player.entity, spec, targetEntity)
        except CombatError as e:
            raise self._refused(e)
        try:
            applied, left = await self._sql(player, "world.item.use",
                                            progression.useItem(cid, slot, spec.id, key))
        except (NoSuchItem, BadSlot) as e:  # moved or used meanwhile
            raise ProtocolError(NOT_FOUND, str(e))
        except ProtocolError:
            # An outage: perhaps it committed and only the answer was lost.
            self._unsure(cid, key, spec)
            raise
        # Taken now, or by the earlier try of this key whose answer was lost
        # (its effect never applied): the effect applies once either way.
        if self.unsure.pop((cid, key), None) is not None and not applied:
            self.log.info("character {character_id}'s resent use {key} of {item} applies the "
                          "item an outage took", character_id=cid, key=key, item=spec.id)
            applied = True
        if applied:
            self.log.info("character {character_id} used {item} from slot {slot} ({key}), "
                          "{left} left", character_id=cid, item=spec.id, slot=slot, key=key,
                          left=left)
            self._apply(player, spec, target, targetEntity, key)
        return {"applied": applied, "item": spec.id, "count": left}

    def _unsure(self, cid, key, spec):
        unsure = self.unsure
        unsure[(cid, key)] = spec
        if len(unsure) > UNSURE_USES:
            unsure.popitem(last=False)

    def _target(self, player, target):
        if target is None or target == player.entity.id:
            return None
        entity = player.zone.entities.get(target)
        if entity is None or entity.combat is None:
            raise ProtocolError(combatErrors.INVALID_TARGET, "no such target in view")
        return entity

    def _refused(self, e):
        """The combat rules refuse the use: dead, the target, or the item's codes."""
        code = _ITEM_CODES.get(e.code, e.code)
        return ProtocolError(code, e.message, retry_after=e.retry_after)

    def _apply(self, player, spec, target, targetEntity, key):
        """The item was taken: apply its effect now, where the player is now."""
        cid = player.characterId
        if player.state != "live":
            self.log.warn("character {character_id} used {item} ({key}) and left before "
                          "its effect", character_id=cid, item=spec.id, key=key)
            return
        zone = player.zone
        if targetEntity is not None and zone.entities.get(target) is not targetEntity:
            # Gone meanwhile (or the user changed zone): nothing to apply it to.
            self.log.warn("character {character_id} used {item} ({key}) on {target}, "
                          "gone before its effect", character_id=cid, item=spec.id, key=key,
                          target=target)
            return
        if not zone.combat.useItem(player.entity, spec, targetEntity):
            # Died (or the target became invalid) while the database took the item: it is spent.
            self.log.warn("character {character_id} used {item} ({key}) without effect",
                          character_id=cid, item=spec.id, key=key)
