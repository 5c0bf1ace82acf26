"""A hand-built instance template and game data, and a zone with combat, NPCs and encounters on a Clock, for encounter and kill tests."""

import random

import attrs
from twisted.internet.defer import succeed

from mmoshard.world.combat import records as R
from mmoshard.world.combat.data import (
    AbilitySpec, ClassKit, GameData, ItemSpec, LootEntry, NpcType, PackSpec,
)
from mmoshard.world.combat.npcs import Npcs
from mmoshard.world.combat.system import Combat
from mmoshard.world.instances.data import AddSpawn, BossSpec, InstanceSpec, Phase, TimedAbility
from mmoshard.world.instances.encounters import Encounters
from mmoshard.world.test.helpers import HandTicked, makeZone
from mmoshard.world.zones import Rect, ZoneSpec

TAUNT = AbilitySpec(id="taunt", num=1, name="Taunt", cls="warrior", kind="taunt", target="enemy",
                    range=30.0, gcd=0.0, cooldown=8.0, duration=3.0)
SLAM = AbilitySpec(id="slam", num=70, name="Slam", cls="npc", kind="damage", target="enemy",
                   range=6.0, gcd=0.0, base=50.0, crit=0.0)
QUAKE = AbilitySpec(id="quake", num=71, name="Quake", cls="npc", kind="damage", target="area",
                    radius=15.0, gcd=0.0, base=20.0, crit=0.0)
BOLT = AbilitySpec(id="bolt", num=72, name="Shadow Bolt", cls="npc", kind="damage", target="enemy",
                   range=40.0, gcd=0.0, base=30.0, crit=0.0)
ENRAGE = AbilitySpec(id="enrage", num=73, name="Enrage", cls="npc", kind="buff", target="self",
                     gcd=0.0, mod="damage_done", magnitude=1.0)
WARRIOR = ClassKit(cls="warrior", role="tank", resource="rage", resource_max=100,
                   resource_regen=0.0, resource_start=0, health_base=1_000_000,
                   health_per_level=0, power_base=10.0, power_per_level=0.0, abilities=("taunt",))
OGRE = NpcType(id="ogre", name="Ogre Lord", level=12, health=10_000, damage=(100, 100),
               attack_speed=2.0, attack_range=3.0, speed=6.0, aggro_radius=10.0,
               social_radius=8.0, leash=60.0, abilities=("slam",))
WITCH = NpcType(id="witch", name="Bog Witch", level=12, health=8_000, damage=(50, 50),
                attack_speed=2.0, aggro_radius=10.0, leash=60.0)
IMP = NpcType(id="imp", name="Imp", level=10, health=300, damage=(5, 5), attack_speed=2.0,
              aggro_radius=6.0, leash=60.0)
WOLF = NpcType(id="wolf", name="Grey Wolf", level=8, health=200, damage=(10, 10),
               attack_speed=2.0, aggro_radius=30.0, social_radius=4.0)

LOOT = (LootEntry("gem", 1.0, 1, 1), LootEntry("coin", 0.5, 1, 20), LootEntry("ring", 0.3))
ITEMS = {
    "gem": ItemSpec("gem", "Gem", stack=1, kind="equipment"),
    "coin": ItemSpec("coin", "Coin", stack=10),
    "ring": ItemSpec("ring", "Ring", stack=1, kind="equipment"),
}

OGRE_BOSS = BossSpec(
    id="ogre", npc="ogre", at=(500.0, 500.0),
    phases=(
        Phase(below=1.0, abilities=(TimedAbility("slam", every=5.0, first=2.0, target="top"),)),
        Phase(below=0.5, abilities=(TimedAbility("quake", every=3.0, target="self"),
                                    TimedAbility("bolt", every=4.0, first=1.0, target="random")),
              adds=(AddSpawn("imp", 2),)),
        Phase(below=0.2, adds=(AddSpawn("imp", 1, at=(540.0, 500.0)),)),
    ),
    loot=LOOT, exp=500, enrage=60.0, enrage_damage=3.0,
)
WITCH_BOSS = BossSpec(id="witch", npc="witch", at=(800.0, 800.0),
                      phases=(Phase(below=1.0),), loot=(LootEntry("ring", 1.0),), exp=300)
LAYOUT = ZoneSpec(id="crypt", width=1000.0, depth=1000.0, spawns=((50.0, 0.0, 50.0),),
                  aoi_interval=1)
CRYPT = InstanceSpec(
    id="crypt", name="The Crypt", kind="dungeon", party_size=5, layout=LAYOUT,
    exit=Rect(0.0, 0.0, 10.0, 10.0), entrance=None, bosses=(OGRE_BOSS, WITCH_BOSS),
    packs=(PackSpec(members=("wolf", "wolf"), at=(200.0, 200.0), spread=3.0),),
    lockout="weekly", reset_hour=9, reset_day="tue",
)


def gameData():
    abilities = (TAUNT, SLAM, QUAKE, BOLT, ENRAGE)
    return GameData(abilities={a.id: a for a in abilities}, byNum={a.num: a for a in abilities},
                    kits={"warrior": WARRIOR},
                    npcs={t.id: t for t in (OGRE, WITCH, IMP, WOLF)}, items=dict(ITEMS))


@attrs.define
class FakeInstance:
    """What encounters read of the runtime instance."""

    id: int
    spec: object
    zone: object
    killed: set = attrs.Factory(set)
    encounter: object = None


class FakeKills:
    """Records the kills handed over; answers C{answer} (a L{KillResult}, None: given up)."""

    def __init__(self):
        self.kills = []
        self.answer = True

    def write(self, kill):
        self.kills.append(kill)
        return succeed(self.answer)


class Crypt(HandTicked):
    """Instance 7 of CRYPT in a zone with combat and NPCs on a Clock, ticked by hand."""

    def __init__(self, killed=(), seed=3, spec=CRYPT, kills=None):
        self.zone, self.clock = makeZone("python", **{
            f.name: getattr(spec.layout, f.name) for f in attrs.fields(ZoneSpec)
            if f.name != "id"}, id=f"{spec.id}/7")
        self.data = gameData()
        self.combat = Combat(self.zone, self.data, random.Random(seed))
        self.zone.combat = self.combat
        # The scripts' rules tick by tick, as test_npcs checks the NPC rules.
        self.zone.npcs = self.npcs = Npcs(self.zone, self.combat, self.data, self.clock,
                                          random.Random(seed), thinkEvery=1)
        self.instance = FakeInstance(7, spec, self.zone, set(killed))
        self.kills = kills if kills is not None else FakeKills()
        self.enc = Encounters(self.instance, self.kills, random.Random(seed))
        self.enc.start()
        self.tickIndex = 0

    def seconds(self, s):
        self.step(int(round(s * 10)))

    def boss(self, bossId="ogre"):
        return self.enc.fights[bossId].brain.entity

    def pull(self, *players, bossId="ogre"):
        """The players stand by the boss; the first walks into its aggro radius, the others hit it."""
        boss = self.boss(bossId)
        for i, p in enumerate(players):
            self.walkTo(p, boss.x - 2.0, boss.z + i * 0.5)
        self.step()
        for p in players[1:]:
            self.combat.damage(p, boss, 1)
        return boss

    def hurtTo(self, fraction, bossId="ogre", by=None):
        """Damage the boss down to C{fraction} of its health."""
        boss = self.boss(bossId)
        c = boss.combat
        self.combat.damage(by, boss, c.hp - int(c.hpMax * fraction))


def encounterEvents(p, event=None):
    """@return: the world.encounter bodies player C{p} got (of C{event}), and forgets them."""
    out = [b for t, b in p.session.sent if t == "world.encounter"]
    if event is not None:
        out = [b for b in out if b["event"] == event]
    return out


def recordsOf(p, kind=None, ability=None):
    """@return: the combat records observer C{p} got, (kind, flags, ability, a, b, value)."""
    out = [r for t, body in p.session.sent if t == "world.u" for r in R.records(body.get("c", b""))]
    if kind is not None:
        out = [r for r in out if r[0] == kind]
    if ability is not None:
        out = [r for r in out if r[2] == ability]
    return out
