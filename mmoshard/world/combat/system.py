"""The combat system of one zone, run each tick at ORDER_COMBAT: casts, effects, auras, threat, death and revival."""

import math

from mmoshard.world.combat import records as R
from mmoshard.world.combat.effects import (
    CRIT_FACTOR, EPS, HEALTH_REGEN, NPCS, PLAYERS, REGEN_PERIOD, Effects, points,
)
from mmoshard.world.combat.errors import (
    BUSY, DEAD, INVALID_TARGET, NO_RESOURCE, NOT_DEAD, ON_COOLDOWN, OUT_OF_RANGE, UNKNOWN_ABILITY,
    CombatError,
)
from mmoshard.world.combat.state import Cast, Combatant, CombatStats
from mmoshard.world.combat.threat import Threat
from mmoshard.world.sim import ORDER_COMBAT

# Kinds that help their target (allies); the others hurt (enemies).
FRIENDLY = frozenset(("heal", "shield", "buff", "resurrect"))

_NUM = (int, float)


class Combat(Effects):
    """
    One zone's combat: the combatants in it (players and NPCs, each with its
    L{Combatant} at C{entity.combat}), requests from the handlers, effects
    from NPC AI, and the tick that finishes casts, ticks auras and
    regenerates.  Every change an observer should see is emitted as a
    record (L{mmoshard.world.combat.records}) on the entity it concerns,
    with C{zone.space.event(entity, record)}.

    The tick only visits the combatants in C{active} (casting, with an
    instant queued, bearing auras, below maximum health or resource): an
    idle combatant costs nothing.

    @ivar zone: the L{mmoshard.world.sim.Zone}.
    @ivar data: the L{GameData}.
    @ivar rng: a C{random.Random} (seeded in tests): crits, melee rolls, loot.
    @ivar pvp: players may attack players (the zone's C{pvp}).
    @ivar sides: None, or (an arena's copy) player entity id -> its side:
        with C{pvp}, players of different sides are enemies, of one side
        allies, and a player with no side is neither to anyone.
    @ivar deathListeners: callables C{(victim, killer)} (entities; killer
        may be None) told after a death is applied (rewards, NPC respawn),
        while a dead NPC's threat table is still full.
    @ivar engageListeners: callables C{(npc, entity)} told when C{entity}
        goes on C{npc}'s empty threat table (the NPC enters a fight: its AI
        reacts, pulls its pack).
    @ivar members: the entities with combat state in this zone.
    @ivar active: the members the tick visits.
    @ivar pending: entity -> instant casts C{(ability, target, x, z)} that
        resolve at the next tick.
    """

    def __init__(self, zone, data, rng, pvp=False):
        self.zone = zone
        self.data = data
        self.rng = rng
        self.pvp = pvp
        self.sides = None
        self.deathListeners = []
        self.engageListeners = []
        self.stats = CombatStats()
        self.members = set()
        self.active = set()
        # Members with nothing timed (no cast, no aura) that may still
        # regenerate: visited once per regeneration pulse, not every tick.
        self.resting = set()
        self.pending = {}
        self.nextRegen = 0.0
        zone.addSystem(ORDER_COMBAT, "combat", self.tick)

    # --- membership ---------------------------------------------------------

    def addPlayer(self, entity, cls, level):
        """
        Give a player entity (already spawned) its Combatant from its class
        kit, full health; an entity that already has one (it came from
        another zone of this process) keeps it. @return: it.
        """
        c = entity.combat
        if c is None:
            kit = self.data.kits[cls]
            c = Combatant(entity, kit, PLAYERS, level, kit.health(level), kit.power(level),
                          kit.resource_max, kit.resource_regen, min(kit.resource_start, kit.resource_max))
            entity.combat = c
        elif c.dead:
            self.zone.freeze(entity, "dead")
        self.members.add(entity)
        self.active.add(entity)
        return c

    def addNpc(self, entity, npcType):
        """
        Give an NPC entity (already spawned) a fresh Combatant and threat
        table; one it had keeps counting its deaths (reward keys use the
        count). @return: it.
        """
        if entity in self.members:
            self.remove(entity)
        old = entity.combat
        c = Combatant(entity, npcType, NPCS, npcType.level, npcType.health, npcType.power)
        c.threat = Threat(self.zone.clock)
        if old is not None:
            c.deaths = old.deaths
        entity.combat = c
        self.members.add(entity)
        return c

    def remove(self, entity):
        """The entity leaves the zone: its cast stops, it leaves every threat table, its auras go."""
        self.members.discard(entity)
        self.active.discard(entity)
        self.resting.discard(entity)
        self.pending.pop(entity, None)
        c = entity.combat
        if c is None:
            return
        if c.cast is not None:
            self._interrupt(entity, 0)
        self._clearAuras(entity)
        self._disengage(entity)

    def setLevel(self, entity, level):
        """A player's level changed: new maximum health and power, full health (alive)."""
        c = entity.combat
        if c is None or c.team != PLAYERS:
            return
        c.level = level
        c.hpMax = c.kit.health(level)
        c.power = c.kit.power(level)
        if not c.dead:
            c.hp = c.hpMax
        self._health(entity, c)

    # --- requests (from world.* handlers) --------------------------------------

    def cast(self, entity, abilityId, target=None, x=None, z=None):
        """
        Start (or, instant, perform at the next tick) C{abilityId} at C{target}
        (an entity, or None) or at the point (x, z) for area abilities.
        Checked in this order: dead, unknown ability, busy, cooldown and
        GCD, resource, target, range (docs/combat.md).
        @return: the cast time in seconds (0.0 for instant).
        @raise CombatError: unknown ability (not in its kit), out of range,
            on cooldown or GCD, not enough resource, invalid target, dead,
            already casting (busy).
        """
        c = entity.combat
        if c is None:
            raise CombatError(UNKNOWN_ABILITY, "no combat state")
        if c.dead:
            raise CombatError(DEAD, "dead")
        ability = self.data.abilities.get(abilityId) if type(abilityId) is str else None
        if ability is None or abilityId not in c.kit.abilities:
            raise CombatError(UNKNOWN_ABILITY, f"no ability {abilityId!r} in this kit")
        if c.cast is not None:
            raise CombatError(BUSY, "already casting")
        now = self.zone.clock.seconds()
        queued = self.pending.get(entity)
        ready = c.cooldowns.get(ability.id, 0.0)
        if queued and ability.cooldown > 0 and any(q[0] is ability for q in queued):
            ready = now + ability.cooldown  # queued this tick: its cooldown is about to start
        if ready > now:
            raise CombatError(ON_COOLDOWN, "on cooldown", retry_after=ready - now)
        if ability.gcd > 0 and c.gcdUntil > now:
            raise CombatError(ON_COOLDOWN, "global cooldown", retry_after=c.gcdUntil - now)
        if c.team == PLAYERS and ability.cost:
            owed = sum(q[0].cost for q in queued) if queued else 0
            if c.res - owed < ability.cost:
                raise CombatError(NO_RESOURCE, f"needs {ability.cost} {c.kit.resource}")
        target, tx, tz = self._target(entity, ability, target, x, z)
        if ability.gcd > 0:
            c.gcdUntil = now + ability.gcd
        self.active.add(entity)
        if ability.cast > 0:
            c.cast = Cast(ability, target, entity.x, entity.z, tx, tz, now, now + ability.cast)
            self.emit(entity, R.CAST_START, entity.id, target.id if target is not None else 0,
                      int(round(ability.cast * 1000)), ability.num)
            return ability.cast
        if queued is None:
            self.pending[entity] = [(ability, target, tx, tz)]
        else:
            queued.append((ability, target, tx, tz))
        return 0.0

    def _target(self, caster, ability, target, x, z):
        """@return: C{(target, x, z)} of a cast, checked. @raise CombatError: invalid target, out of range."""
        kind = ability.target
        if kind == "self":
            return caster, None, None
        if kind == "area":
            if (x is None and z is None) or ability.range <= 0:
                # No point, or a point-blank area (range 0): around the caster.
                return None, None, None
            if (type(x) not in _NUM or type(z) not in _NUM or not math.isfinite(x) or not math.isfinite(z)
                    or not self.zone.spec.inBounds(x, z)):
                raise CombatError(INVALID_TARGET, "bad area centre")
            if math.hypot(x - caster.x, z - caster.z) > ability.range + EPS:
                raise CombatError(OUT_OF_RANGE, "area centre out of range")
            return None, float(x), float(z)
        if target is None:
            if kind == "enemy":
                raise CombatError(INVALID_TARGET, "needs a target")
            target = caster  # an ally ability with no target: on oneself
        why = self._invalid(caster, ability, target)
        if why:
            raise CombatError(INVALID_TARGET, why)
        if target is not caster and self._far(caster, target, ability.range):
            raise CombatError(OUT_OF_RANGE, "out of range")
        return target, None, None

    def _invalid(self, caster, ability, target):
        """@return: why C{target} is not valid for C{ability} now, or "" when it is."""
        tc = target.combat
        if tc is None or self.zone.entities.get(target.id) is not target:
            return "no such target here"
        if ability.target == "enemy":
            if not self.isEnemy(caster, target):
                return "not an enemy"
            if tc.dead:
                return "target is dead"
            if tc.immune:
                return "target is immune"
            if ability.kind == "taunt" and tc.threat is None:
                return "cannot be taunted"
            return ""
        if target is not caster and not self.isAlly(caster, target):
            return "not an ally"
        if ability.kind == "resurrect":
            return "" if tc.dead else "target is not dead"
        return "target is dead" if tc.dead else ""

    @staticmethod
    def _far(a, b, reach):
        dx = b.x - a.x
        dz = b.z - a.z
        return math.sqrt(dx * dx + dz * dz) > reach + EPS

    def stopCast(self, entity):
        """Cancel C{entity}'s cast (an interrupt record, no cost). @return: True when it was casting."""
        c = entity.combat
        if c is None or c.cast is None:
            return False
        self._interrupt(entity, 0)
        return True

    def release(self, entity):
        """A dead player respawns at the zone's graveyard with full health. @raise CombatError: not dead."""
        c = entity.combat
        if c is None or not c.dead:
            raise CombatError(NOT_DEAD, "not dead")
        spec = self.zone.spec
        gx, _, gz = spec.graveyard if spec.graveyard is not None else spec.spawns[0]
        self.zone.teleport(entity, gx, gz)
        self.revive(entity, 1.0, None)

    def checkItem(self, entity, item, target=None):
        """
        @return: the L{AbilitySpec} C{item} casts.
        @raise CombatError: C{entity} may not use L{ItemSpec} C{item} now
            (dead, no use, on cooldown, target invalid or out of range).
        """
        c = entity.combat
        if c is None or not item.use or item.use not in self.data.abilities:
            raise CombatError(UNKNOWN_ABILITY, f"item {item.id!r} has no use")
        if c.dead:
            raise CombatError(DEAD, "dead")
        now = self.zone.clock.seconds()
        ready = c.cooldowns.get(_itemKey(item), 0.0)
        if ready > now:
            raise CombatError(ON_COOLDOWN, "item on cooldown", retry_after=ready - now)
        ability = self.data.abilities[item.use]
        self._target(entity, ability, target, None, None)
        return ability

    def useItem(self, entity, item, target=None):
        """
        Apply C{item}'s use effect now and start its group's cooldown (after
        the SQL removal succeeded); items are off the GCD and usable while
        casting. @return: True when the effect applied (the user still
        alive and the target still valid).
        """
        c = entity.combat
        ability = self.data.abilities.get(item.use)
        if c is None or ability is None or c.dead:
            return False
        now = self.zone.clock.seconds()
        if item.cooldown > 0:
            c.cooldowns[_itemKey(item)] = now + item.cooldown
        try:
            target, _, _ = self._target(entity, ability, target, None, None)
        except CombatError:
            return False
        self.emit(entity, R.CAST_FINISH, entity.id, target.id if target is not None else 0, 0,
                  ability.num)
        self._apply(entity, ability, target, None, None, now)
        return True

    # --- the tick ----------------------------------------------------------------

    def tick(self, now, dt):
        """Instants queued since the last tick, casts finished or interrupted by movement, aura ticks and expiries, regeneration."""
        pending = self.pending
        if pending:
            self.pending = {}
            for e, queued in pending.items():
                try:
                    for ability, target, tx, tz in queued:
                        c = e.combat
                        if c is None or c.dead or e not in self.members:
                            break
                        self._resolve(e, ability, target, tx, tz, now)
                except Exception:
                    self._failed(e, "an instant")
        active = self.active
        regen = now >= self.nextRegen
        if regen:
            self.nextRegen = now + REGEN_PERIOD - EPS
            if self.resting:
                active |= self.resting
                self.resting.clear()
        if not active:
            return
        members = self.members
        resting = self.resting
        for e in list(active):
            c = e.combat
            if c is None or c.dead or e not in members:
                active.discard(e)
                continue
            if not regen and c.cast is None and not c.auras:
                # Nothing to do before the next pulse (queued instants were
                # resolved above; a new cast or aura puts it back in active).
                active.discard(e)
                resting.add(e)
                continue
            try:
                if c.cast is not None:
                    self._tickCast(e, c, now)
                if c.auras:
                    self._tickAuras(e, c, now)
                if regen and not c.dead:
                    self._regen(e, c, now)
            except Exception:
                self._failed(e, "its tick")
                continue
            if c.dead or not (c.cast is not None or c.auras or c.hp < c.hpMax or _regenerates(c)
                              or e in self.pending):
                active.discard(e)

    def _failed(self, e, what):
        """
        Resolving C{e}'s combat raised (a bug or bad data): logged, and its
        cast, queued instants and auras are dropped without records (making
        them may be what failed), so the rest of the zone's tick goes on and
        it does not fail again every tick.
        """
        self.log.failure("zone {zone}: combat of entity {entity_id} failed in {what}; its cast, "
                         "instants and auras are dropped", zone=self.zone.id, entity_id=e.id,
                         what=what)
        self.active.discard(e)
        self.pending.pop(e, None)
        c = e.combat
        if c is not None:
            c.cast = None
            c.auras.clear()
            c.mods = {}
            c.absorb = 0.0

    def _tickCast(self, e, c, now):
        cast = c.cast
        if e.x != cast.x or e.z != cast.z:
            self._interrupt(e, 0)  # moved
            return
        if now < cast.ends:
            return
        t = cast.target
        if t is not None and t is not e and (self._invalid(e, cast.ability, t)
                                             or self._far(e, t, cast.ability.range)):
            self._interrupt(e, 0)
            return
        if c.team == PLAYERS and c.res < cast.ability.cost:
            self._interrupt(e, 0)
            return
        c.cast = None
        self._finish(e, c, cast.ability, t, cast.tx, cast.tz, now)

    def _resolve(self, e, ability, target, tx, tz, now):
        """A queued instant: its target must still be valid (range was checked at the request)."""
        c = e.combat
        if ((target is not None and target is not e and self._invalid(e, ability, target))
                or (c.team == PLAYERS and c.res < ability.cost)):
            self.emit(e, R.CAST_INTERRUPT, e.id, 0, 0, ability.num)
            return
        self._finish(e, c, ability, target, tx, tz, now)

    def _finish(self, e, c, ability, target, tx, tz, now):
        """The ability happens: cost spent, cooldown started, CAST_FINISH, its effects."""
        if ability.cost and c.team == PLAYERS:
            c.res -= ability.cost
            self._resource(e, c)
        if ability.cooldown > 0:
            c.cooldowns[ability.id] = now + ability.cooldown
        self.emit(e, R.CAST_FINISH, e.id, target.id if target is not None else 0, 0, ability.num)
        self._apply(e, ability, target, tx, tz, now)

    def _apply(self, caster, ability, target, tx, tz, now):
        if ability.target == "area":
            if tx is None:
                tx, tz = caster.x, caster.z
            targets = self._area(caster, ability, tx, tz)
        else:
            targets = (target,)
        c = caster.combat
        amount = ability.amount(c.level, c.power)
        for t in targets:
            if t.combat is None:
                continue
            self._effect(caster, ability, t, amount, now)
            if c.dead:
                break

    def _area(self, caster, ability, cx, cz):
        """
        The combatants an area ability hits around (cx, cz), nearest first:
        a player's candidates are what it sees (its view covers any area
        within range), an NPC's every member.
        """
        if caster.session is not None:
            get = self.zone.entities.get
            cands = [get(i) for i in self.zone.visibleOf(caster)]
            cands.append(caster)
        else:
            cands = self.members
        friendly = ability.kind in FRIENDLY
        r2 = (ability.radius + EPS) ** 2
        hits = []
        for e in cands:
            if e is None or e.combat is None or e.combat.dead or e not in self.members:
                continue
            if friendly:
                if not self.isAlly(caster, e):
                    continue
            elif e.combat.immune or not self.isEnemy(caster, e):
                continue
            d2 = (e.x - cx) ** 2 + (e.z - cz) ** 2
            if d2 <= r2:
                hits.append((d2, e.id, e))
        hits.sort(key=lambda h: (h[0], h[1]))
        return [h[2] for h in hits[:ability.max_targets]]

    def _effect(self, caster, ability, t, amount, now):
        """One target's share of an ability, by kind."""
        kind = ability.kind
        tc = t.combat
        if kind not in FRIENDLY:
            if tc.immune:
                self.emit(t, R.DAMAGE, caster.id, t.id, 0, ability.num, R.IMMUNE)
                return
            self._hostile(caster, t)
        if kind == "damage" or kind == "heal":
            crit = ability.crit > 0 and self.rng.random() < ability.crit
            if crit:
                amount *= CRIT_FACTOR
            if ability.period > 0:
                self.addAura(t, ability, caster, amount, crit)
            elif kind == "damage":
                self.damage(caster, t, amount, ability, crit)
            else:
                self.heal(caster, t, amount, ability, crit)
        elif kind == "taunt":
            if tc.threat is not None:
                tc.threat.taunt(caster, now + ability.duration)
                if ability.duration > 0:
                    self.addAura(t, ability, caster, 0)
        elif kind == "shield":
            self.addAura(t, ability, caster, points(amount))
        elif kind == "buff" or kind == "debuff":
            self.addAura(t, ability, caster, amount)
        elif kind == "interrupt":
            cast = tc.cast
            if cast is not None:
                self._interrupt(t, caster.id)
                if ability.duration > 0:
                    # The lockout: the interrupted ability cannot be recast for a while.
                    ready = now + ability.duration
                    if tc.cooldowns.get(cast.ability.id, 0.0) < ready:
                        tc.cooldowns[cast.ability.id] = ready
            if amount > 0:
                self.damage(caster, t, amount, ability)
        elif kind == "resurrect":
            self.revive(t, ability.resurrect if ability.resurrect > 0 else 1.0, caster)

    def _regen(self, e, c, now):
        if _regenerates(c):
            before = int(c.res)
            r = c.res + c.resRegen * REGEN_PERIOD
            c.res = c.resMax if r > c.resMax else (0 if r < 0 else r)
            if int(c.res) != before:
                self._resource(e, c)
        if c.hp < c.hpMax and not self.inCombat(e, now):
            gain = max(1, int(c.hpMax * HEALTH_REGEN * REGEN_PERIOD))
            c.hp = c.hpMax if c.hp + gain > c.hpMax else c.hp + gain
            self._health(e, c)


def _regenerates(c):
    """True when the resource has somewhere to go (a negative regen, as rage's decay, drains it)."""
    r = c.resRegen
    return (r > 0 and c.res < c.resMax) or (r < 0 and c.res > 0)


def _itemKey(item):
    return "item:" + (item.cooldown_group or item.id)
