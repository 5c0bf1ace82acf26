"""Hand-built combat game data and a two-zone map for world tests: numbers chosen for the tests, not for balance."""

from mmoshard.world.combat.data import AbilitySpec, ClassKit, GameData, NpcType

ABILITIES = (
    # warrior
    AbilitySpec("strike", 1, "Strike", "warrior", "damage", "enemy", range=5.0, base=20.0,
                crit=0.0),
    # priest
    AbilitySpec("heal", 10, "Heal", "priest", "heal", "ally", range=40.0, cast=1.5, cost=20,
                base=60.0, crit=0.0),
    AbilitySpec("smite", 11, "Smite", "priest", "damage", "enemy", range=30.0, base=10.0,
                crit=0.0),
    AbilitySpec("resurrect", 12, "Resurrect", "priest", "resurrect", "ally", range=30.0,
                cast=2.0, cost=50, resurrect=0.5),
    # mage
    AbilitySpec("fireball", 20, "Fireball", "mage", "damage", "enemy", range=35.0, cast=2.0,
                cost=30, base=80.0, crit=0.0),
    AbilitySpec("fire_blast", 21, "Fire Blast", "mage", "damage", "enemy", range=20.0,
                cooldown=8.0, cost=20, base=40.0, crit=0.0),
    AbilitySpec("meteor", 22, "Meteor", "mage", "damage", "area", range=30.0, radius=8.0,
                cost=5000, base=100.0, crit=0.0),
    # off the GCD, no cooldown: refused only while another cast runs
    AbilitySpec("ward", 23, "Ward", "mage", "shield", "self", gcd=0.0, base=10.0,
                duration=10.0, crit=0.0),
    # NPC melee has no ability; this one is for the NPC type's list
    AbilitySpec("bite", 100, "Bite", "npc", "damage", "enemy", range=4.0, cooldown=6.0,
                base=5.0, crit=0.0),
)


def kit(cls, role, resource, start, abilities):
    return ClassKit(cls, role, resource, resource_max=1000 if resource == "mana" else 100,
                    resource_regen=0.0, resource_start=start, health_base=200,
                    health_per_level=20, power_base=10.0, power_per_level=1.0,
                    abilities=abilities)


KITS = {
    "warrior": kit("warrior", "tank", "rage", 100, ("strike",)),
    "priest": kit("priest", "healer", "mana", 1000, ("heal", "smite", "resurrect")),
    "mage": kit("mage", "damage", "mana", 1000, ("fireball", "fire_blast", "meteor", "ward")),
}

NPCS = {
    "dummy": NpcType("dummy", "Training Dummy", level=1, health=1000, damage=(1, 1),
                     attack_speed=3.0, aggro_radius=0.0, social_radius=0.0,
                     abilities=("bite",)),
}

GAME = GameData(
    abilities={a.id: a for a in ABILITIES},
    byNum={a.num: a for a in ABILITIES},
    kits=KITS,
    npcs=NPCS,
    items={},
)

# Two zones of one process, a portal from arena's east edge to yard, no packs.
ZONES_TOML = """
[zones.arena]
size = [400.0, 400.0]
spawns = [[20.0, 0.0, 30.0]]
graveyard = [30.0, 0.0, 40.0]
aoi_radius = 50.0
aoi_interval = 1

[[zones.arena.portals]]
rect = [390.0, 190.0, 400.0, 210.0]
to = "yard"
arrive = [50.0, 0.0, 50.0]

[zones.yard]
size = [200.0, 200.0]
spawns = [[50.0, 0.0, 50.0]]
aoi_radius = 50.0
aoi_interval = 1
"""
