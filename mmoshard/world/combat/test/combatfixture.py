"""Hand-built game data and a zone with combat on a Clock, for combat tests."""

import random

from mmoshard.world.combat.data import AbilitySpec, ClassKit, GameData, ItemSpec, NpcType
from mmoshard.world.combat.errors import CombatError
from mmoshard.world.combat.records import records
from mmoshard.world.combat.system import Combat
from mmoshard.world.sim import NPC, PLAYER, Entity
from mmoshard.world.test.helpers import FakeSession, makeZone

NPC_BASE = 2 ** 31

ABILITIES = (
    # Warrior: a tank.
    AbilitySpec("strike", 1, "Strike", "warrior", "damage", "enemy", range=5.0, cost=10,
                base=100.0, crit=0.0),
    AbilitySpec("taunt", 2, "Taunt", "warrior", "taunt", "enemy", range=30.0, cooldown=8.0,
                gcd=0.0, duration=3.0),
    AbilitySpec("kick", 3, "Kick", "warrior", "interrupt", "enemy", range=5.0, cooldown=10.0,
                gcd=0.0, duration=4.0),
    AbilitySpec("smash", 4, "Smash", "warrior", "damage", "enemy", range=5.0, cooldown=6.0,
                base=200.0, crit=1.0, threat=2.0),
    # Mage: damage.
    AbilitySpec("bolt", 10, "Bolt", "mage", "damage", "enemy", range=30.0, cast=2.0, cost=20,
                base=200.0, per_level=10.0, coef=1.0, crit=0.0),
    AbilitySpec("blast", 11, "Blast", "mage", "damage", "area", range=30.0, radius=8.0,
                max_targets=2, cooldown=10.0, base=50.0, crit=0.0),
    AbilitySpec("ignite", 12, "Ignite", "mage", "damage", "enemy", range=30.0, base=10.0,
                crit=0.0, duration=10.0, period=2.0),
    AbilitySpec("lucky", 13, "Lucky", "mage", "damage", "enemy", range=30.0, gcd=0.0,
                base=100.0, crit=0.5),
    # Priest: the healer.
    AbilitySpec("heal", 20, "Heal", "priest", "heal", "ally", range=40.0, cast=1.5, cost=30,
                base=300.0, crit=0.0, threat=0.5),
    AbilitySpec("flash", 21, "Flash", "priest", "heal", "ally", range=40.0, base=300.0,
                crit=0.0, threat=0.5),
    AbilitySpec("renew", 22, "Renew", "priest", "heal", "ally", range=40.0, base=20.0,
                crit=0.0, duration=6.0, period=3.0, gcd=0.0),
    AbilitySpec("ward", 23, "Ward", "priest", "shield", "ally", range=40.0, base=150.0,
                duration=15.0, cooldown=4.0, gcd=0.0),
    AbilitySpec("rez", 24, "Resurrect", "priest", "resurrect", "ally", range=30.0, cast=3.0,
                resurrect=0.5),
    AbilitySpec("weaken", 25, "Weaken", "priest", "debuff", "enemy", range=30.0, gcd=0.0,
                duration=10.0, mod="damage_taken", magnitude=0.5),
    AbilitySpec("fortify", 26, "Fortify", "priest", "buff", "self", gcd=0.0, duration=10.0,
                mod="healing_taken", magnitude=1.0),
    # NPCs and items.
    AbilitySpec("nova", 41, "Nova", "npc", "damage", "area", radius=10.0, base=30.0, crit=0.0,
                gcd=0.0),
    AbilitySpec("fireball", 40, "Fireball", "npc", "damage", "enemy", range=30.0, cast=2.0,
                base=50.0, crit=0.0),
    AbilitySpec("potion", 50, "Potion", "item", "heal", "self", base=250.0, crit=0.0, gcd=0.0),
)

KITS = {
    "warrior": ClassKit("warrior", "tank", "rage", 100, 0.0, 100, 1000, 100, 10.0, 1.0,
                        ("strike", "taunt", "kick", "smash")),
    "mage": ClassKit("mage", "damage", "mana", 500, 10.0, 500, 600, 60, 20.0, 2.0,
                     ("bolt", "blast", "ignite", "lucky")),
    "priest": ClassKit("priest", "healer", "mana", 1000, 5.0, 1000, 700, 70, 15.0, 1.5,
                       ("heal", "flash", "renew", "ward", "rez", "weaken", "fortify")),
}

NPCS = {
    "wolf": NpcType("wolf", "Wolf", 5, 1000, (10, 20), 2.0, attack_range=3.0),
    "boss": NpcType("boss", "Boss", 10, 100000, (100, 200), 2.0),
    "mage": NpcType("mage", "Cultist", 6, 800, (5, 10), 2.5, abilities=("fireball", "nova")),
}

ITEMS = {
    "potion": ItemSpec("potion", "Potion", stack=20, kind="consumable", use="potion",
                       cooldown=60.0, cooldown_group="potions"),
    "elixir": ItemSpec("elixir", "Elixir", stack=20, kind="consumable", use="potion",
                       cooldown=60.0, cooldown_group="potions"),
    "pelt": ItemSpec("pelt", "Pelt", stack=20),
}


def gameData():
    """@return: the L{GameData} of these tests."""
    return GameData(
        abilities={a.id: a for a in ABILITIES},
        byNum={a.num: a for a in ABILITIES},
        kits=dict(KITS),
        npcs=dict(NPCS),
        items=dict(ITEMS),
    )


class Arena:
    """
    A zone with combat on a Clock and a seeded Random: players are
    observers (a FakeSession each), NPCs are not; L{step} runs ticks.
    """

    def __init__(self, engine="python", seed=1, pvp=False, **spec):
        spec.setdefault("tick_rate", 10.0)
        self.zone, self.clock = makeZone(engine, pvp=pvp, **spec)
        self.rng = random.Random(seed)
        self.combat = Combat(self.zone, gameData(), self.rng, pvp=pvp)
        self.ticks = 0
        self.nextNpc = NPC_BASE

    def player(self, eid, cls, x=100.0, z=100.0, level=1):
        e = Entity(eid, PLAYER, x, 0.0, z, name=f"p{eid}", cls=cls, level=level)
        self.zone.spawn(e, FakeSession(accountId=eid, sessionId=f"s{eid}"))
        self.combat.addPlayer(e, cls, level)
        return e

    def npc(self, typeId, x=100.0, z=100.0):
        self.nextNpc += 1
        t = NPCS[typeId]
        e = Entity(self.nextNpc, NPC, x, 0.0, z, name=t.name, level=t.level)
        self.zone.spawn(e)
        self.combat.addNpc(e, t)
        return e

    def step(self, n=1):
        """Advance the clock one tick and run the zone's tick, C{n} times."""
        dt = self.zone.spec.tickInterval
        for _ in range(n):
            self.clock.advance(dt)
            self.ticks += 1
            self.zone.tick(self.ticks, dt)

    def seconds(self, s):
        """Run ticks for C{s} seconds."""
        self.step(int(round(s * self.zone.spec.tick_rate)))

    def moveTo(self, e, x, z):
        """Put C{e} at (x, z) as an accepted move would."""
        e.x = x
        e.z = z
        self.zone.space.move(e)


def recordsOf(entity, kind=None):
    """@return: the combat records observer C{entity} got, (kind, flags, ability, a, b, value), then forgets them."""
    out = []
    for body in entity.session.of("world.u"):
        out.extend(records(body.get("c", b"")))
    entity.session.clear()
    if kind is not None:
        out = [r for r in out if r[0] == kind]
    return out


class ArenaMixin:
    """For TestCases: C{arena()} on the class's C{engine}, and C{assertError}."""

    engine = "python"

    def arena(self, **kw):
        return Arena(self.engine, **kw)

    def assertError(self, code, func, *args, **kw):
        """C{func(*args, **kw)} raises a L{CombatError} with C{code}. @return: the error."""
        e = self.assertRaises(CombatError, func, *args, **kw)
        self.assertEqual(e.code, code)
        return e
