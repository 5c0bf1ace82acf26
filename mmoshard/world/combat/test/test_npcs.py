"""NPC AI: spawning packs, aggro and social aggro, chase under terrain rules, threat targets, leash and evade, death and respawn (patrols and staggered thinking: test_npcmoves)."""

import math
import random

from twisted.trial.unittest import TestCase

from mmoshard.world.combat import records as R
from mmoshard.world.combat.brain import COMBAT, DEAD, EVADE, IDLE
from mmoshard.world.combat.data import AbilitySpec, ClassKit, GameData, NpcType, PackSpec
from mmoshard.world.combat.npcs import Npcs
from mmoshard.world.combat.spawns import NPC_ID_BASE
from mmoshard.world.combat.system import Combat
from mmoshard.world.sim import NPC
from mmoshard.world.test.helpers import HandTicked, makeZone, moves
from mmoshard.world.zones import Rect

WOLF = NpcType(id="wolf", name="Grey Wolf", level=3, health=200, damage=(10, 10), attack_speed=2.0,
               attack_range=3.0, speed=6.0, aggro_radius=10.0, social_radius=8.0, leash=40.0)
BEAR = NpcType(id="bear", name="Brown Bear", level=5, health=400, damage=(20, 20), attack_speed=2.5,
               attack_range=3.0, speed=5.0, aggro_radius=6.0, social_radius=8.0, leash=30.0)
TAUNT = AbilitySpec(id="taunt", num=1, name="Taunt", cls="warrior", kind="taunt", target="enemy",
                    range=30.0, gcd=0.0, cooldown=8.0, duration=3.0)
BITE = AbilitySpec(id="bite", num=50, name="Bite", cls="npc", kind="damage", target="enemy",
                   range=5.0, gcd=0.0, cooldown=6.0, base=30.0, crit=0.0)
MEND = AbilitySpec(id="mend", num=51, name="Mend", cls="npc", kind="heal", target="self",
                   cast=2.0, gcd=0.0, cooldown=20.0, base=100.0, crit=0.0)
SHAMAN = NpcType(id="shaman", name="Gnoll Shaman", level=4, health=300, damage=(10, 10), attack_speed=2.0,
                 attack_range=3.0, speed=6.0, aggro_radius=10.0, social_radius=8.0, leash=40.0,
                 abilities=("bite", "mend"))
WARRIOR = ClassKit(cls="warrior", role="tank", resource="rage", resource_max=100, resource_regen=0.0,
                   resource_start=0, health_base=1000, health_per_level=0, power_base=10.0,
                   power_per_level=0.0, abilities=("taunt",))


def gameData():
    abilities = (TAUNT, BITE, MEND)
    return GameData(abilities={a.id: a for a in abilities}, byNum={a.num: a for a in abilities},
                    kits={"warrior": WARRIOR}, npcs={t.id: t for t in (WOLF, BEAR, SHAMAN)}, items={})


class NpcWorld(HandTicked):
    """A zone with combat and NPCs on a Clock, ticked by hand."""

    def __init__(self, packs, engine="python", seed=7, thinkEvery=1, **spec):
        self.zone, self.clock = makeZone(engine, packs=tuple(packs), **spec)
        self.data = gameData()
        self.rng = random.Random(seed)
        self.combat = Combat(self.zone, self.data, self.rng)
        # The rules tick by tick (ThinkTests check the staggered default).
        self.npcs = Npcs(self.zone, self.combat, self.data, self.clock, self.rng, thinkEvery=thinkEvery)
        self.brains = self.npcs.spawn()
        self.tickIndex = 0


def dist(a, b):
    return math.hypot(a.x - b.x, a.z - b.z)


class LoneNpcMixin:
    """For TestCases about one NPC: C{pullLone} makes it and walks a player into its aggro radius."""

    def pullLone(self, typeId, x, **pack):
        """One C{typeId} at (100, 100) (its pack's other keys C{pack}); player 1 walks from (80, 100) to (C{x}, 100)."""
        self.w = NpcWorld([PackSpec(members=(typeId,), at=(100.0, 100.0), spread=0.0, **pack)])
        self.b = self.w.brains[0]
        self.npc = self.b.entity
        self.p = self.w.player(1, 80.0, 100.0)
        self.w.walkTo(self.p, x, 100.0)
        self.w.step()


class SpawnTests(TestCase):
    def setUp(self):
        self.packs = (
            PackSpec(members=("wolf", "wolf", "bear"), at=(100.0, 100.0), spread=6.0),
            PackSpec(members=("bear",), at=(300.0, 300.0), spread=3.0),
        )
        self.w = NpcWorld(self.packs, blocked=(Rect(96.0, 96.0, 100.0, 104.0),))

    def test_everyMemberSpawned(self):
        """Every member of every pack becomes an NPC entity of kind n, named and classed from its type, in the zone and in combat."""
        brains = self.w.brains
        self.assertEqual([b.type.id for b in brains], ["wolf", "wolf", "bear", "bear"])
        for b in brains:
            e = b.entity
            self.assertEqual((e.kind, e.name, e.cls, e.level), (NPC, b.type.name, b.type.id, b.type.level))
            self.assertIs(self.w.zone.entities[e.id], e)
            self.assertIs(e.ai, b)
            self.assertIsNone(e.session)
            self.assertEqual((e.combat.hp, e.combat.hpMax, e.combat.team), (b.type.health, b.type.health, "n"))
            self.assertEqual(b.state, IDLE)

    def test_idsFromTwoToThe31Unique(self):
        """NPC ids start at 2**31 and are unique in the process, across zones."""
        other = NpcWorld(self.packs)
        ids = [b.entity.id for b in self.w.brains + other.brains]
        self.assertTrue(all(i >= NPC_ID_BASE for i in ids))
        self.assertEqual(len(set(ids)), len(ids))

    def test_spawnIds(self):
        """Each NPC has the stable spawn id zone:pack:member."""
        self.assertEqual([b.spawnId for b in self.w.brains], ["test:0:0", "test:0:1", "test:0:2", "test:1:0"])
        self.assertIs(self.w.npcs.bySpawn["test:0:2"], self.w.brains[2])

    def test_placedWithinSpreadOffBlockedTerrain(self):
        """NPCs stand within their pack's spread of its centre, never on a blocked tile, at their home point."""
        terrain = self.w.zone.terrain
        for b in self.w.brains:
            e = b.entity
            pack = b.pack
            self.assertLessEqual(math.hypot(e.x - pack.at[0], e.z - pack.at[1]), pack.spread + 1e-9)
            self.assertFalse(terrain.isBlocked(e.x, e.z))
            self.assertEqual((b.homeX, b.homeZ), (e.x, e.z))

    def test_placementSeeded(self):
        """The same seed places the NPCs at the same points."""
        other = NpcWorld(self.packs, blocked=(Rect(96.0, 96.0, 100.0, 104.0),))
        self.assertEqual([(b.homeX, b.homeZ) for b in self.w.brains],
                         [(b.homeX, b.homeZ) for b in other.brains])

    def test_idleCostsNothing(self):
        """Idle NPCs leave the active set after their first look around; a player moving far away wakes none."""
        self.w.step(self.w.npcs.scanTicks + 1)
        self.assertEqual(self.w.npcs.active, {})
        p = self.w.player(1, 600.0, 600.0)
        self.w.walkTo(p, 610.0, 600.0)
        self.w.step()
        self.assertEqual(self.w.npcs.active, {})
        self.assertTrue(all(b.state is IDLE for b in self.w.brains))


    def test_despawn(self):
        """Npcs.despawn takes every NPC out of the zone and of combat; observers get their leaves."""
        p = self.w.player(1, 110.0, 110.0)
        self.w.step()
        p.session.clear()
        ids = [b.entity.id for b in self.w.brains]
        self.w.npcs.despawn()
        self.w.step()
        self.assertFalse(any(i in self.w.zone.entities for i in ids))
        self.assertEqual(self.w.npcs.brains, {})
        left = [i for t, body in p.session.sent if t == "world.u" for i in body.get("l", ())]
        self.assertEqual(sorted(left), sorted(ids[:3]))


class EntersTestsMixin:
    """Observers see NPCs enter as kind n with their health, in both engines."""

    engine = None

    def test_enterRecordHasHealth(self):
        """A player near an NPC gets its enter record: kind n, name, type, level and health."""
        w = NpcWorld([PackSpec(members=("wolf",), at=(100.0, 100.0), spread=0.0)], engine=self.engine)
        p = w.player(1, 130.0, 100.0)
        w.step()
        npc = w.brains[0].entity
        enters = [s for t, body in p.session.sent if t == "world.u" for s in body.get("e", ())]
        [rec] = [s for s in enters if s[0] == npc.id]
        self.assertEqual(rec[1:5], ["n", "Grey Wolf", "wolf", 3])
        self.assertEqual(rec[10:], [200, 200, 0, 0])

    def test_swingRecordsReachObserver(self):
        """An NPC's swing at a player reaches the player as a DAMAGE record in its world.u."""
        w = NpcWorld([PackSpec(members=("wolf",), at=(100.0, 100.0), spread=0.0)], engine=self.engine)
        p = w.player(1, 130.0, 100.0)
        w.step()
        w.walkTo(p, 102.0, 100.0)
        w.step()
        npc = w.brains[0].entity
        recs = [r for t, body in p.session.sent if t == "world.u" for r in R.records(body.get("c", b""))]
        self.assertIn((R.DAMAGE, 0, 0, npc.id, p.id, 10), recs)


class PythonEntersTests(EntersTestsMixin, TestCase):
    engine = "python"


class NativeEntersTests(EntersTestsMixin, TestCase):
    engine = "native"


class AggroTests(TestCase):
    def setUp(self):
        self.w = NpcWorld([
            PackSpec(members=("wolf", "wolf", "wolf"), at=(100.0, 100.0), spread=1.0),
            # A bear within the wolves' social radius, beyond its own aggro radius of the puller.
            PackSpec(members=("bear",), at=(100.0, 106.0), spread=0.0),
            PackSpec(members=("wolf",), at=(100.0, 160.0), spread=0.0),  # far
        ])
        self.w.step(self.w.npcs.scanTicks + 1)
        self.pack = self.w.brains[:3]
        self.near, self.far = self.w.brains[3:]

    def test_playerInsideAggroRadiusAttacked(self):
        """A living player walking into an NPC's aggro radius is put on its threat table, and it fights."""
        p = self.w.player(1, 80.0, 100.0)
        self.w.step()
        self.assertTrue(all(b.state is IDLE for b in self.w.brains))
        first = self.pack[0]
        self.w.walkTo(p, first.entity.x - 9.0, first.entity.z)
        self.w.step()
        self.assertIs(first.state, COMBAT)
        self.assertIn(p, first.entity.combat.threat)
        self.assertIn(first, self.w.npcs.active)

    def test_outsideRadiusNoAggro(self):
        """A player just outside every aggro radius is left alone."""
        p = self.w.player(1, 20.0, 20.0)
        self.w.walkTo(p, min(b.entity.x for b in self.pack) - 10.5, 100.0)
        self.w.step()
        self.assertTrue(all(b.state is IDLE for b in self.w.brains))

    def test_deadPlayerNoAggro(self):
        """A dead player walking (as a ghost would) into the aggro radius pulls nothing."""
        p = self.w.player(1, 60.0, 100.0)
        self.w.combat.damage(None, p, 10 ** 6)
        self.assertTrue(p.combat.dead)
        self.w.walkTo(p, self.pack[0].entity.x, self.pack[0].entity.z)
        self.w.step()
        self.assertTrue(all(b.state is IDLE for b in self.w.brains))

    def test_standingPlayerPulledByReturningNpc(self):
        """A player standing still where an NPC comes home after respawning is attacked: the NPC looks around itself."""
        b = self.far
        self.w.combat.damage(None, b.entity, 10 ** 6)
        self.w.step()
        p = self.w.player(1, b.homeX + 5.0, b.homeZ)
        self.w.step(int(b.pack.respawn * 10) + 10)
        self.assertIs(b.state, COMBAT)
        self.assertIn(p, b.entity.combat.threat)

    def test_socialAggroPullsPack(self):
        """Pulling one pack member pulls its whole pack and idle NPCs within social radius, not those beyond it."""
        p = self.w.player(1, 60.0, 100.0)
        first = self.pack[0]
        self.w.walkTo(p, first.entity.x - 9.0, first.entity.z)
        self.w.step()
        for b in self.pack + [self.near]:
            self.assertIs(b.state, COMBAT, b)
            self.assertIn(p, b.entity.combat.threat)
        self.assertIs(self.far.state, IDLE)

    def test_damageEngages(self):
        """An NPC damaged from beyond its aggro radius enters combat on its attacker and calls its pack."""
        p = self.w.player(1, 100.0, 70.0)
        self.w.step()
        self.w.combat.damage(p, self.far.entity, 5)
        self.w.step()
        self.assertIs(self.far.state, COMBAT)
        self.assertIn(p, self.far.entity.combat.threat)
        self.assertTrue(all(b.state is IDLE for b in self.pack))


class ChaseTests(TestCase):
    def makeWorld(self, **spec):
        self.w = NpcWorld([PackSpec(members=("wolf",), at=(100.0, 100.0), spread=0.0)], **spec)
        self.b = self.w.brains[0]
        self.npc = self.b.entity

    def test_chaseAtSpeedStopsInRange(self):
        """The NPC runs at its type's speed with a velocity observers extrapolate, and stops within attack range."""
        self.makeWorld()
        p = self.w.player(1, 80.0, 100.0)
        self.w.walkTo(p, 109.0, 100.0)
        self.w.step()
        self.assertIs(self.b.state, COMBAT)
        x0 = self.npc.x
        self.w.walkTo(p, 120.0, 100.0)
        self.w.step()
        self.assertAlmostEqual(self.npc.x - x0, WOLF.speed * 0.1, places=6)
        self.assertAlmostEqual(self.npc.vx, WOLF.speed, places=6)
        [update] = [body for t, body in p.session.sent if t == "world.u"][-1:]
        vx, vz = moves(update)[self.npc.id][2:4]
        self.assertAlmostEqual(vx, WOLF.speed, delta=0.011)  # int16 cm/s on the wire
        self.assertEqual(vz, 0.0)
        self.w.step(40)
        self.assertLessEqual(dist(self.npc, p), WOLF.attack_range)
        self.assertGreater(dist(self.npc, p), 1.0)
        self.assertEqual((self.npc.vx, self.npc.vz), (0.0, 0.0))
        self.assertLess(p.combat.hp, p.combat.hpMax)

    def test_chaseRespectsBlockedTerrain(self):
        """Chasing round a wall, the NPC never stands on or walks through a blocked tile."""
        self.makeWorld(tile=2.0, blocked=(Rect(104.0, 90.0, 105.0, 101.0),))
        p = self.w.player(1, 80.0, 100.0)
        self.w.walkTo(p, 109.0, 104.0)
        self.w.step()
        self.assertIs(self.b.state, COMBAT)
        terrain = self.w.zone.terrain
        last = (self.npc.x, self.npc.z)
        for _ in range(60):
            self.w.step()
            self.assertFalse(terrain.isBlocked(self.npc.x, self.npc.z))
            self.assertFalse(terrain.pathBlocked(last[0], last[1], self.npc.x, self.npc.z))
            last = (self.npc.x, self.npc.z)
        self.assertLessEqual(dist(self.npc, p), WOLF.attack_range)

    def test_unreachableTargetEvades(self):
        """A target behind a wall the NPC cannot get round makes it evade after a while."""
        self.makeWorld(tile=2.0, blocked=(Rect(104.0, 0.0, 106.0, 1000.0),))
        p = self.w.player(1, 80.0, 100.0)
        self.w.walkTo(p, 109.0, 100.0)
        self.w.step()
        self.assertIs(self.b.state, COMBAT)
        for _ in range(70):
            self.w.step()
            if self.b.state is EVADE:
                break
        self.assertIs(self.b.state, EVADE)
        self.assertTrue(self.npc.combat.immune)
        self.assertNotIn(p, self.npc.combat.threat)
        self.assertLess(self.npc.x, 104.0)

    def test_attacksTopThenTaunter(self):
        """The NPC swings at the top of its threat table, and at the taunter once taunted."""
        self.makeWorld()
        a = self.w.player(1, 101.0, 100.0)
        b = self.w.player(2, 99.0, 100.0)
        self.w.combat.damage(a, self.npc, 50)
        self.w.combat.damage(b, self.npc, 10)
        self.w.step(25)
        self.assertLess(a.combat.hp, a.combat.hpMax)
        self.assertEqual(b.combat.hp, b.combat.hpMax)
        hitA = a.combat.hp
        self.w.combat.cast(b, "taunt", self.npc)
        self.w.step(25)
        self.assertLess(b.combat.hp, b.combat.hpMax)
        self.assertEqual(a.combat.hp, hitA)


class AbilityTests(LoneNpcMixin, TestCase):
    def setUp(self):
        self.pullLone("shaman", 102.0)

    def records(self, kind):
        return [r for t, body in self.p.session.sent if t == "world.u"
                for r in R.records(body.get("c", b"")) if r[0] == kind]

    def test_abilitiesOnTheirCooldowns(self):
        """An NPC uses its damage ability whenever its cooldown is over, and swings in between."""
        self.w.step(130)
        bites = [r for r in self.records(R.DAMAGE) if r[2] == BITE.num]
        swings = [r for r in self.records(R.DAMAGE) if r[2] == 0]
        self.assertEqual(len(bites), 3)  # about 0, 6 and 12 s
        self.assertEqual({(r[3], r[4], r[5]) for r in bites}, {(self.npc.id, self.p.id, 30)})
        self.assertGreaterEqual(len(swings), 5)

    def test_selfHealStandsStill(self):
        """Below half health an NPC casts its heal on itself, standing still while it casts, then chases again."""
        self.w.step(5)
        self.w.combat.damage(self.p, self.npc, 200)
        self.w.walkTo(self.p, 108.0, 100.0)
        self.w.step()
        self.assertIsNotNone(self.npc.combat.cast)
        where = (self.npc.x, self.npc.z)
        self.w.step(19)
        self.assertEqual((self.npc.x, self.npc.z), where)
        self.w.step(2)
        self.assertEqual([(r[2], r[4]) for r in self.records(R.HEAL)], [(MEND.num, self.npc.id)])
        self.assertGreater(self.npc.combat.hp, 100)
        self.w.step(20)
        self.assertLessEqual(dist(self.npc, self.p), SHAMAN.attack_range)


class EvadeTests(LoneNpcMixin, TestCase):
    def setUp(self):
        self.pullLone("wolf", 108.0)
        self.w.combat.damage(self.p, self.npc, 60)
        self.assertIs(self.b.state, COMBAT)

    def test_leashEvadesHomeImmuneFullHealth(self):
        """Past its leash the NPC evades: threat cleared, full health, immune on the way home, then idle there."""
        x = 108.0
        while self.b.state is COMBAT:
            x += 0.8  # faster than the wolf
            self.w.walkTo(self.p, x, 100.0)
            self.w.step()
        self.assertIs(self.b.state, EVADE)
        self.assertGreater(math.hypot(self.npc.x - 100.0, self.npc.z - 100.0), WOLF.leash)
        c = self.npc.combat
        self.assertTrue(c.immune)
        self.assertEqual(len(c.threat), 0)
        self.assertEqual(c.hp, c.hpMax)
        self.assertEqual(self.w.combat.damage(self.p, self.npc, 50), 0)
        self.assertEqual(c.hp, c.hpMax)
        self.w.step()
        self.assertLess(self.npc.vx, 0.0)  # walking home
        for _ in range(200):
            if self.b.state is not EVADE:
                break
            self.w.step()
        self.assertIs(self.b.state, IDLE)
        self.assertEqual((self.npc.x, self.npc.z), (100.0, 100.0))
        self.assertEqual((self.npc.vx, self.npc.vz), (0.0, 0.0))
        self.assertFalse(c.immune)
        self.assertEqual(c.hp, c.hpMax)
        self.assertNotEqual(self.b.cells, ())  # back in the aggro grid

    def test_evadeRecordsSeen(self):
        """An observer near the home point sees the evade start and end records."""
        watcher = self.w.player(2, 100.0, 130.0)
        x = 108.0
        while self.b.state is COMBAT:
            x += 0.8
            self.w.walkTo(self.p, x, 100.0)
            self.w.step()
        self.w.step(200)
        evades = [r for t, body in watcher.session.sent if t == "world.u"
                  for r in R.records(body.get("c", b"")) if r[0] == R.EVADE]
        self.assertEqual([(r[3], r[5]) for r in evades], [(self.npc.id, 1), (self.npc.id, 0)])

    def test_evadingNpcEntersAsEvading(self):
        """A player who first sees an NPC while it walks home gets an enter record saying it evades."""
        x = 108.0
        while self.b.state is COMBAT:
            x += 0.8
            self.w.walkTo(self.p, x, 100.0)
            self.w.step()
        self.assertTrue(self.npc.combat.immune)
        late = self.w.player(3, self.npc.x, self.npc.z + 20.0)
        self.w.step()
        enters = [s for t, body in late.session.sent if t == "world.u" for s in body.get("e", ())]
        [rec] = [s for s in enters if s[0] == self.npc.id]
        self.assertEqual(rec[12:], [0, 1])

    def test_evadeWhenTargetDies(self):
        """When its only target dies the NPC evades home at full health."""
        self.w.combat.damage(None, self.p, 10 ** 6)
        self.w.step()
        self.assertIn(self.b.state, (EVADE, IDLE))
        self.w.step(30)
        self.assertIs(self.b.state, IDLE)
        self.assertEqual(self.npc.combat.hp, self.npc.combat.hpMax)
        self.assertEqual((self.npc.x, self.npc.z), (100.0, 100.0))

    def test_secondTargetWhenFirstDies(self):
        """When the top target dies the NPC turns on the next one on its table."""
        q = self.w.player(2, 99.0, 101.0)
        self.w.combat.damage(q, self.npc, 5)
        self.w.combat.damage(None, self.p, 10 ** 6)
        self.w.step(30)
        self.assertIs(self.b.state, COMBAT)
        self.assertLess(q.combat.hp, q.combat.hpMax)


class DeathTests(LoneNpcMixin, TestCase):
    def setUp(self):
        self.pullLone("wolf", 108.0, respawn=30.0)
        self.w.step(10)  # it chased a little
        self.w.combat.damage(self.p, self.npc, 10 ** 6)
        self.corpse = (self.npc.x, self.npc.z)
        self.p.session.clear()

    def test_deadNpcNeverActs(self):
        """A dead NPC stays where it fell: no moves, no swings, no aggro, not active."""
        self.assertIs(self.b.state, DEAD)
        for x in (100.0, 104.0, 99.0):
            self.w.walkTo(self.p, x, 100.0)
            self.w.step(20)
            self.assertEqual((self.npc.x, self.npc.z, self.npc.vx, self.npc.vz), self.corpse + (0.0, 0.0))
            self.assertNotIn(self.npc, self.w.zone.space.moved())
        hits = [r for t, body in self.p.session.sent if t == "world.u"
                for r in R.records(body.get("c", b"")) if r[0] == R.DAMAGE and r[3] == self.npc.id]
        self.assertEqual(hits, [])
        self.assertNotIn(self.b, self.w.npcs.active)
        self.assertIs(self.b.state, DEAD)

    def test_respawnAtHomeFullHealth(self):
        """After its pack's respawn time the NPC is back at its home point, alive and idle, and observers see it move there and revive."""
        self.w.walkTo(self.p, 130.0, 100.0)  # beyond its aggro radius, in view
        self.w.step(295)
        self.assertIs(self.b.state, DEAD)
        self.assertTrue(self.npc.combat.dead)
        self.w.step(10)
        self.assertIs(self.b.state, IDLE)
        c = self.npc.combat
        self.assertEqual((c.dead, c.hp, c.immune), (False, c.hpMax, False))
        self.assertEqual((self.npc.x, self.npc.z), (100.0, 100.0))
        revives = [r for t, body in self.p.session.sent if t == "world.u"
                   for r in R.records(body.get("c", b"")) if r[0] == R.REVIVE]
        self.assertEqual([(r[4], r[5]) for r in revives], [(self.npc.id, c.hpMax)])
        seen = [moves(body).get(self.npc.id) for t, body in self.p.session.sent if t == "world.u"]
        self.assertIn((100.0, 100.0), [m[:2] for m in seen if m])

    def test_respawnedNpcFightsAgain(self):
        """A respawned NPC aggroes on a player standing next to its home."""
        self.w.walkTo(self.p, 104.0, 100.0)
        self.w.step(310)
        self.assertIs(self.b.state, COMBAT)
        self.assertEqual(self.b.entity.combat.deaths, 1)


class ServiceTests(TestCase):
    def test_worldSpawnsPacksOnStart(self):
        """The world service gives each zone its Npcs and spawns every pack of etc/zones.toml at start, at the same points on every start."""
        from mmoshard.world.test.harness import WorldHarness

        places = []
        for _ in range(2):
            h = WorldHarness(self)
            h.advance(0.1, 5)
            zones = h.world.zones
            for zone in zones.values():
                members = sum(len(p.members) for p in zone.spec.packs)
                self.assertEqual(len(zone.npcs.brains), members, zone.id)
                for b in zone.npcs.brains.values():
                    self.assertIs(zone.entities[b.entity.id], b.entity)
                    self.assertIs(zone.npcs.combat, zone.combat)
            self.assertTrue(any(z.npcs.brains for z in zones.values()))
            places.append(sorted((b.spawnId, b.homeX, b.homeZ)
                                 for z in zones.values() for b in z.npcs.brains.values()))
            self.successResultOf(h.stop())
        self.assertEqual(places[0], places[1])
