"""What combat keeps on an entity (C{entity.combat}): health, resource, casts, cooldowns, auras, threat."""


class Cast:
    """A cast in progress: C{ability} at C{target} (an entity or None), from (x, z), ending at C{ends}."""

    __slots__ = ("ability", "target", "x", "z", "tx", "tz", "started", "ends")

    def __init__(self, ability, target, x, z, tx, tz, started, ends):
        self.ability = ability
        self.target = target
        self.x = x  # where the caster stood: moving away interrupts
        self.z = z
        self.tx = tx  # ground target of an area ability (else None)
        self.tz = tz
        self.started = started
        self.ends = ends


class Aura:
    """
    A buff, debuff, shield, taunt or over-time effect on its bearer, from
    C{source} (an entity id), until C{expires}; periodic ones tick at
    C{nextTick} for C{amount} each.
    """

    __slots__ = ("ability", "source", "amount", "expires", "nextTick", "crit")

    def __init__(self, ability, source, amount, expires, nextTick=None, crit=False):
        self.ability = ability
        self.source = source
        self.amount = amount
        self.expires = expires
        self.nextTick = nextTick
        self.crit = crit


class CombatStats:
    """A zone's combat counters, read by the metrics collector at scrape time (nothing else)."""

    __slots__ = ("casts", "refused", "deaths", "damage", "healing")

    def __init__(self):
        self.casts = 0  # players' casts accepted
        self.refused = {}  # error code -> players' casts refused
        self.deaths = {"p": 0, "n": 0}  # by team: players, NPCs
        self.damage = 0  # health taken by damage
        self.healing = 0  # health restored by heals


class Combatant:
    """
    The combat state of one entity, at C{entity.combat}.  Health stays in
    [0, hpMax]; C{dead} is True exactly when hp is 0 (set by the combat
    system).  C{team} is C{"p"} for players and C{"n"} for NPCs: the two
    teams are enemies; players are enemies of each other only in a zone with
    C{pvp = true}.

    @ivar kit: the L{ClassKit} (players) or L{NpcType} (NPCs) it came from.
    @ivar cooldowns: ability id (or C{"item:<group>"}) -> when it is ready.
    @ivar auras: (ability id, source id) -> L{Aura}.
    @ivar absorb: shield points left (the sum of its shield auras).
    @ivar threat: an NPC's threat table (L{mmoshard.world.combat.threat.Threat}), else None.
    @ivar engaged: the NPC entities whose threat tables hold this entity.
    @ivar immune: True while an NPC evades (takes no damage, no effects).
    @ivar combatUntil: in combat until then (regeneration waits).
    """

    __slots__ = (
        "entity", "kit", "team", "level", "hp", "hpMax", "res", "resMax", "resRegen",
        "power", "dead", "cast", "gcdUntil", "cooldowns", "auras", "absorb", "mods",
        "threat", "engaged", "immune", "combatUntil", "deaths",
    )

    def __init__(self, entity, kit, team, level, hpMax, power, resMax=0, resRegen=0.0, res=0):
        self.entity = entity
        self.kit = kit
        self.team = team
        self.level = level
        self.hp = hpMax
        self.hpMax = hpMax
        self.res = res
        self.resMax = resMax
        self.resRegen = resRegen
        self.power = power
        self.dead = False
        self.cast = None
        self.gcdUntil = 0.0
        self.cooldowns = {}
        self.auras = {}
        self.absorb = 0.0
        self.mods = {}  # mod name -> summed fraction of the auras borne
        self.threat = None
        self.engaged = set()
        self.immune = False
        self.combatUntil = 0.0
        self.deaths = 0  # how many times it died (NPC loot keys use it)
