"""The combat system of one zone, run each tick at ORDER_COMBAT: casts, effects, auras, threat, death and revival."""

# API CONTRACT (issue 15).  The bodies are written by the combat-core work;
# NPC AI, handlers, items and rewards code against these signatures.

from twisted.logger import Logger

from mmoshard.world.sim import ORDER_COMBAT


class Combat:
    """
    One zone's combat: the combatants in it (players and NPCs, each with its
    L{Combatant} at C{entity.combat}), requests from the handlers, effects
    from NPC AI, and the tick that finishes casts, ticks auras and
    regenerates.  Every change an observer should see is emitted as a
    record (L{mmoshard.world.combat.records}) on the entity it concerns,
    with C{zone.space.event(entity, record)}.

    @ivar zone: the L{mmoshard.world.sim.Zone}.
    @ivar data: the L{GameData}.
    @ivar rng: a C{random.Random} (seeded in tests): crits, melee rolls, loot.
    @ivar pvp: players may attack players (the zone's C{pvp}).
    @ivar deathListeners: callables C{(victim, killer)} (entities; killer
        may be None) told after a death is applied (rewards, NPC respawn).
    """

    log = Logger()

    def __init__(self, zone, data, rng, pvp=False):
        self.zone = zone
        self.data = data
        self.rng = rng
        self.pvp = pvp
        self.deathListeners = []
        zone.addSystem(ORDER_COMBAT, "combat", self.tick)

    # --- membership ---------------------------------------------------------

    def addPlayer(self, entity, cls, level):
        """Give a player entity (already spawned) its Combatant from its class kit, full health. @return: it."""
        raise NotImplementedError

    def addNpc(self, entity, npcType):
        """Give an NPC entity (already spawned) its Combatant and threat table. @return: it."""
        raise NotImplementedError

    def remove(self, entity):
        """The entity leaves the zone: its cast stops, it leaves every threat table, its auras go."""
        raise NotImplementedError

    # --- requests (from world.* handlers) --------------------------------------

    def cast(self, entity, abilityId, target=None, x=None, z=None):
        """
        Start (or, instant, perform at the next tick) C{abilityId} at C{target}
        (an entity, or None) or at the point (x, z) for area abilities.
        @return: the cast time in seconds (0.0 for instant).
        @raise CombatError: unknown ability (not in its kit), out of range,
            on cooldown or GCD, not enough resource, invalid target, dead,
            already casting (busy).
        """
        raise NotImplementedError

    def stopCast(self, entity):
        """Cancel C{entity}'s cast (an interrupt record, no cost). @return: True when it was casting."""
        raise NotImplementedError

    def release(self, entity):
        """A dead player respawns at the zone's graveyard with full health. @raise CombatError: not dead."""
        raise NotImplementedError

    def checkItem(self, entity, item):
        """@raise CombatError: C{entity} may not use L{ItemSpec} C{item} now (dead, on cooldown)."""
        raise NotImplementedError

    def useItem(self, entity, item, target=None):
        """Apply C{item}'s use effect now and start its group's cooldown (after the SQL removal succeeded)."""
        raise NotImplementedError

    # --- effects (NPC AI, bosses, items) --------------------------------------------

    def isEnemy(self, a, b):
        """True when entity C{a} may attack entity C{b}."""
        raise NotImplementedError

    def engage(self, npc, entity, threat=0.0):
        """Put C{entity} on C{npc}'s threat table (aggro): both are in combat."""
        raise NotImplementedError

    def damage(self, source, target, amount, ability=None, crit=False):
        """Deal damage (mods, absorbs, immunity, threat, death applied). @return: the amount dealt."""
        raise NotImplementedError

    def heal(self, source, target, amount, ability=None, crit=False):
        """Heal (mods, overheal dropped, threat split among the NPCs fighting the target). @return: healed."""
        raise NotImplementedError

    def swing(self, npc, target):
        """An NPC's melee swing at C{target}: its type's damage range. @return: the amount dealt."""
        raise NotImplementedError

    def revive(self, entity, fraction, reviver=None):
        """A dead entity lives again with C{fraction} of its maximum health, where it lies."""
        raise NotImplementedError

    def reset(self, entity):
        """Full health and resource; cast, auras and threat cleared (an evading or respawning NPC)."""
        raise NotImplementedError

    # --- the tick ----------------------------------------------------------------

    def tick(self, now, dt):
        """Casts finished or interrupted by movement, aura ticks and expiries, regeneration."""
