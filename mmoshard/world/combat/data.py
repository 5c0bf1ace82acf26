"""The combat game data as frozen specs: abilities, class kits, NPC types, items and loot (loaded by C{loading.py})."""

import attrs

# Ability kinds and targets (etc/abilities.toml).
KINDS = ("damage", "heal", "taunt", "shield", "buff", "debuff", "interrupt", "resurrect")
TARGETS = ("enemy", "ally", "self", "area")
# What a buff or debuff changes, as a fraction (+0.2 = 20 % more):
#   damage_done, damage_taken, healing_taken, speed.
MODS = ("damage_done", "damage_taken", "healing_taken", "speed")
RESOURCES = ("mana", "rage", "energy")
ITEM_KINDS = ("consumable", "material", "equipment")


@attrs.frozen
class AbilitySpec:
    """
    One ability.  The amount of an effect at level L with power P is
    C{base + per_level * (L - 1) + coef * P}; over-time effects (a C{period}
    > 0) apply that amount each period for C{duration} seconds.

    @ivar id: its key in abilities.toml (what world.cast names).
    @ivar num: its wire number in combat records (1..65535, unique).
    @ivar cls: the class whose kit it belongs to, C{"npc"} for NPC-only
        abilities, C{"item"} for the effects of consumables.
    @ivar kind: one of L{KINDS}.
    @ivar target: one of L{TARGETS}; C{area} centres on (x, z) when given,
        else on the caster, and hits up to C{max_targets} enemies within
        C{radius}.
    @ivar range: metres from the caster to the target (or the area's centre).
    @ivar cast: cast time in seconds (0: instant).
    @ivar cooldown: seconds before it can be cast again.
    @ivar gcd: the global cooldown it triggers, seconds (0: off the GCD).
    @ivar cost: resource spent when the cast finishes.
    @ivar threat: multiplier of the threat its amount makes.
    @ivar crit: chance of a critical effect (x 1.5 for damage, heal).
    @ivar duration: seconds an aura, shield, over-time effect or taunt lasts.
    @ivar period: seconds between two ticks of an over-time effect (0: none).
    @ivar mod: for buff/debuff, one of L{MODS}; C{magnitude} its fraction.
    @ivar resurrect: for resurrect, the fraction of maximum health restored.
    """

    id: str
    num: int
    name: str
    cls: str
    kind: str
    target: str
    range: float = 0.0
    radius: float = 0.0
    max_targets: int = 10
    cast: float = 0.0
    cooldown: float = 0.0
    gcd: float = 1.5
    cost: int = 0
    base: float = 0.0
    per_level: float = 0.0
    coef: float = 0.0
    threat: float = 1.0
    crit: float = 0.05
    duration: float = 0.0
    period: float = 0.0
    mod: str = ""
    magnitude: float = 0.0
    resurrect: float = 0.0

    def amount(self, level, power):
        """@return: the effect's amount at C{level} with C{power} (before crit and mods)."""
        return self.base + self.per_level * (level - 1) + self.coef * power


@attrs.frozen
class ClassKit:
    """
    A class's combat numbers and abilities: health and power grow with
    level; the resource regenerates at C{resource_regen} per second.
    """

    cls: str
    role: str  # tank | healer | damage (from etc/classes.toml)
    resource: str  # one of RESOURCES
    resource_max: int
    resource_regen: float
    resource_start: int  # what a character enters (and revives) with
    health_base: int
    health_per_level: int
    power_base: float
    power_per_level: float
    abilities: tuple  # ability ids, in the order of the client's bar

    def health(self, level):
        return self.health_base + self.health_per_level * (level - 1)

    def power(self, level):
        return self.power_base + self.power_per_level * (level - 1)


@attrs.frozen
class LootEntry:
    """One line of a loot table: C{item} with C{chance}, C{min}..C{max} of it."""

    item: str
    chance: float
    min: int = 1
    max: int = 1


@attrs.frozen
class NpcType:
    """
    An NPC type (etc/npcs.toml).  It swings for C{damage} (a [min, max]
    range) every C{attack_speed} seconds within C{attack_range}, chases at
    C{speed}, aggroes players within C{aggro_radius}, pulls pack members
    within C{social_radius}, evades past C{leash} metres from home, and
    gives C{exp} to its killers.
    """

    id: str
    name: str
    level: int
    health: int
    damage: tuple  # (min, max)
    attack_speed: float
    attack_range: float = 3.0
    speed: float = 6.0
    aggro_radius: float = 10.0
    social_radius: float = 8.0
    leash: float = 40.0
    abilities: tuple = ()  # ability ids of cls "npc", used on their cooldowns
    loot: tuple = ()  # LootEntry
    exp: int = 0  # 0: derived from level (docs/combat.md)
    power: float = 0.0


@attrs.frozen
class ItemSpec:
    """
    An item (etc/items.toml).  A consumable's C{use} names an ability of
    cls C{"item"} it casts on its user (or its target); C{cooldown} seconds
    apply to every item of the same C{cooldown_group} (the loader makes it
    the item's id where the file leaves it out).
    """

    id: str
    name: str
    stack: int = 1
    kind: str = "material"  # one of ITEM_KINDS
    use: str = ""
    cooldown: float = 0.0
    cooldown_group: str = ""


@attrs.frozen
class PackSpec:
    """
    A pack of NPCs in a zone (C{[[zones.<id>.packs]]}): C{members} NPC type
    ids placed around C{at} (x, z) within C{spread} metres, respawning
    C{respawn} seconds after death, walking C{patrol} ((x, z) points, in a
    loop) when idle.
    """

    members: tuple
    at: tuple
    spread: float = 4.0
    respawn: float = 30.0
    patrol: tuple = ()


@attrs.frozen
class GameData:
    """Everything combat reads at start-up, cross-checked."""

    abilities: dict  # id -> AbilitySpec
    byNum: dict  # num -> AbilitySpec
    kits: dict  # class id -> ClassKit
    npcs: dict  # id -> NpcType
    items: dict  # id -> ItemSpec
