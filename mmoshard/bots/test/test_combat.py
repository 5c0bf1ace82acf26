"""Tests for the W2 fighter's decisions, on fabricated world.u messages."""

from twisted.trial.unittest import TestCase

from mmoshard.bots.combat import (
    CAST_EVERY, COOLDOWN_SLACK, HEAL_BELOW, MARGIN, MOVE_RECORD, NPC_BASE, Ability, Effect, Fighter, Kit)
from mmoshard.world.combat import errors
from mmoshard.world.combat.records import (
    CAST_START, DAMAGE, DEATH, EVADE, HEAL, HEALTH, RESOURCE, REVIVE, record)

ME = 7
WOLF, BEAR, BOAR = NPC_BASE + 1, NPC_BASE + 2, NPC_BASE + 3

STRIKE = Ability("strike", 1, "damage", "enemy", range=5.0)
SLAM = Ability("slam", 2, "damage", "enemy", range=5.0, cooldown=6.0)
TAUNT = Ability("taunt", 3, "taunt", "enemy", range=20.0, cooldown=8.0, gcd=0.0)
SHOUT = Ability("shout", 4, "buff", "self", cooldown=0.0, duration=30.0)
FIREBALL = Ability("fireball", 10, "damage", "enemy", range=30.0, cast=2.0)
HEAL_ = Ability("mend", 20, "heal", "ally", range=30.0, cast=1.5)
SMITE = Ability("smite", 21, "damage", "enemy", range=30.0)
RESURRECT = Ability("raise", 22, "resurrect", "ally", range=30.0)


def npc(eid, x, z, hp=100, hpMax=100, dead=0, evading=0):
    """An NPC's enter record, with its health."""
    return [eid, "n", "Wolf", "", 1, x, 0.0, z, 0.0, 0.0, hp, hpMax, dead, evading]


def player(eid, x, z, hp=100, hpMax=100, dead=0):
    """A player's enter record, with its health."""
    return [eid, "p", f"Bot{eid}", "warrior", 1, x, 0.0, z, 0.0, 0.0, hp, hpMax, dead, 0]


def u(e=(), l=(), moves=(), combat=()):
    """A decoded world.u with these enters, leaves, move records (tuples) and combat records."""
    m = {"t": "world.u"}
    if e:
        m["e"] = list(e)
    if l:
        m["l"] = list(l)
    if moves:
        m["m"] = b"".join(MOVE_RECORD.pack(*r) for r in moves)
    if combat:
        m["c"] = b"".join(combat)
    return m


def warrior():
    return Fighter(ME, Kit.build("warrior", [STRIKE, SLAM, TAUNT, RESURRECT]))


class KitTests(TestCase):
    def test_kit_sorts_the_bar(self):
        """A kit keeps heals, self buffs and attacks apart, in bar order, and leaves out resurrections."""
        kit = Kit.build("priest", [HEAL_, SMITE, SHOUT, RESURRECT, TAUNT])
        self.assertEqual((kit.heals, kit.buffs, kit.attacks), ((HEAL_,), (SHOUT,), (SMITE, TAUNT)))

    def test_reach_is_inside_the_shortest_attack(self):
        """A fighter walks to within its shortest attack's range, less the margin, and no nearer than 1 m."""
        self.assertEqual(Kit.build("w", [STRIKE, TAUNT]).reach, 5.0 - MARGIN)
        self.assertEqual(Kit.build("m", [FIREBALL]).reach, 30.0 - MARGIN)
        tiny = Ability("poke", 5, "damage", "enemy", range=2.0)
        self.assertEqual(Kit.build("x", [tiny]).reach, 1.0)

    def test_reply_overrides_the_data(self):
        """What the enter reply says of an ability wins over the game data; milliseconds become seconds."""
        a = Ability.fromReply({"id": "slam", "range": 6.0, "cooldown_ms": 4000}, SLAM)
        self.assertEqual((a.num, a.range, a.cooldown, a.kind), (2, 6.0, 4.0, "damage"))


class TargetTests(TestCase):
    def test_nearest_living_npc(self):
        """The target is the nearest NPC that is alive and not evading; players are never targets."""
        f = warrior()
        f.update(u(e=[player(8, 1, 0), npc(WOLF, 10, 0, dead=1), npc(BEAR, 20, 0), npc(BOAR, 12, 0)]),
                 0.0)
        f.update(u(combat=[record(EVADE, BOAR, 0, 1)]), 0.0)
        self.assertEqual(f.decide(0.0, 0.0, True, 0.0), ("walk", 20, 0))
        self.assertEqual(f.target, BEAR)

    def test_npc_entering_while_evading_is_skipped(self):
        """An NPC whose enter record says it evades is not a target until its evade ends."""
        f = warrior()
        f.update(u(e=[npc(WOLF, 10, 0, evading=1), npc(BEAR, 20, 0)]), 0.0)
        f.decide(0.0, 0.0, True, 0.0)
        self.assertEqual(f.target, BEAR)
        f.update(u(combat=[record(EVADE, WOLF, 0, 0)]), 0.0)
        f.target = None
        f.decide(0.0, 0.0, True, 0.0)
        self.assertEqual(f.target, WOLF)

    def test_nothing_in_view_wanders(self):
        """With no living NPC in view the fighter wanders (idle)."""
        f = warrior()
        f.update(u(e=[npc(WOLF, 10, 0, dead=1)]), 0.0)
        self.assertEqual(f.decide(0.0, 0.0, True, 0.0), ("idle",))

    def test_target_dies_then_next(self):
        """A DEATH record on the target makes the fighter pick the next nearest."""
        f = warrior()
        f.update(u(e=[npc(WOLF, 2, 0), npc(BEAR, 30, 0)]), 0.0)
        self.assertEqual(f.decide(0.0, 0.0, False, 0.0)[:3], ("cast", STRIKE, WOLF))
        f.update(u(combat=[record(DEATH, ME, WOLF)]), 0.5)
        self.assertIsNone(f.target)
        self.assertEqual(f.decide(0.0, 0.0, False, 2.0), ("walk", 30, 0))
        self.assertEqual(f.target, BEAR)

    def test_target_leaves_the_view(self):
        """A target that leaves the view is dropped; an NPC that respawns (REVIVE) is a target again."""
        f = warrior()
        f.update(u(e=[npc(WOLF, 30, 0, hp=0, dead=1), npc(BEAR, 10, 0)]), 0.0)
        f.decide(0.0, 0.0, True, 0.0)
        f.update(u(l=[BEAR], combat=[record(REVIVE, 0, WOLF, 100)]), 0.1)
        self.assertIsNone(f.target)
        self.assertEqual(f.decide(0.0, 0.0, True, 0.2), ("walk", 30, 0))

    def test_invalid_target_set_aside(self):
        """An NPC refused as invalid target (immune, unbeknown) is passed over until an EVADE 0 record."""
        f = warrior()
        f.update(u(e=[npc(WOLF, 2, 0), npc(BEAR, 10, 0)]), 0.0)
        act = f.decide(0.0, 0.0, False, 0.0)
        f.sent(10, act[1], 0.0, act[2])
        f.refused(10, errors.INVALID_TARGET, None, 0.05)
        self.assertEqual(f.decide(0.0, 0.0, False, 0.2), ("walk", 10, 0))
        f.update(u(combat=[record(EVADE, WOLF, 0, 0)]), 0.3)
        self.assertEqual(f.choose(0.0, 0.0), WOLF)

    def test_npc_moves_followed(self):
        """Move records of NPCs (ids with the high bit) update where the fighter walks; player records are skipped."""
        f = warrior()
        f.update(u(e=[npc(WOLF, 30, 0), player(8, 5, 5)]), 0.0)
        f.update(u(moves=[(8, 1.0, 1.0, 0, 0, 0), (WOLF, 20.0, 4.0, 0, 0, 0)]), 0.1)
        self.assertEqual(f.decide(0.0, 0.0, True, 0.1), ("walk", 20.0, 4.0))
        self.assertEqual((f.players[8].x, f.players[8].z), (5, 5))


class ApproachTests(TestCase):
    def test_walks_into_range_then_stops_then_casts(self):
        """Beyond its reach the fighter walks; inside, moving, it stops first; standing, it casts."""
        f = warrior()
        f.update(u(e=[npc(WOLF, 10, 0)]), 0.0)
        self.assertEqual(f.decide(0.0, 0.0, True, 0.0), ("walk", 10, 0))
        self.assertEqual(f.decide(7.0, 0.0, True, 0.2), ("walk", 10, 0))
        self.assertEqual(f.decide(7.5, 0.0, True, 0.4), ("stand",))
        self.assertEqual(f.decide(7.5, 0.0, False, 0.6), ("cast", STRIKE, WOLF, None, None))

    def test_chases_a_target_that_moves_away(self):
        """While the cast interval runs the fighter stands in range, and walks again when the target leaves it."""
        f = warrior()
        f.update(u(e=[npc(WOLF, 2, 0)]), 0.0)
        f.sent(10, f.decide(0.0, 0.0, False, 0.0)[1], 0.0)
        f.accepted(10, 0, 0.01)
        self.assertEqual(f.decide(0.0, 0.0, False, 0.2), ("stand",))
        f.update(u(moves=[(WOLF, 9.0, 0.0, 0, 0, 0)]), 0.3)
        self.assertEqual(f.decide(0.0, 0.0, False, 0.4), ("walk", 9.0, 0.0))

    def test_out_of_range_goes_closer(self):
        """An out-of-range refusal shrinks the distance it keeps from that target."""
        f = Fighter(ME, Kit.build("mage", [FIREBALL]))
        f.update(u(e=[npc(WOLF, 27, 0)]), 0.0)
        act = f.decide(0.0, 0.0, False, 0.0)
        self.assertEqual(act[:3], ("cast", FIREBALL, WOLF))
        f.sent(10, FIREBALL, 0.0)
        f.refused(10, errors.OUT_OF_RANGE, None, 0.05)
        self.assertEqual(f.decide(0.0, 0.0, False, 0.2), ("walk", 27, 0))


class RotationTests(TestCase):
    def play(self, f, start, end, step=0.2):
        """Decide every C{step} seconds, sending and accepting each cast. @return: [(time, ability id)]."""
        casts = []
        t = start
        rid = 10
        while t < end:
            act = f.decide(0.0, 0.0, False, t)
            if act[0] == "cast":
                f.sent(rid, act[1], t)
                f.accepted(rid, int(act[1].cast * 1000), t + 0.01)
                casts.append((round(t, 1), act[1].id))
                rid += 1
            t += step
        return casts

    def test_rotation_respects_cooldowns_and_the_interval(self):
        """Bar order first, an ability waits for its cooldown, casts come every 1.5 s and no sooner."""
        f = warrior()
        f.update(u(e=[npc(WOLF, 2, 0, hp=10 ** 6, hpMax=10 ** 6)]), 0.0)
        casts = self.play(f, 0.0, 9.0)
        self.assertEqual(casts, [(0.0, "strike"), (1.6, "strike"), (3.2, "strike"),
                                 (4.8, "strike"), (6.4, "strike"), (8.0, "strike")])

    def test_rotation_goes_down_the_bar(self):
        """An ability on cooldown gives way to the next one of the bar; it comes back when ready."""
        f = Fighter(ME, Kit.build("warrior", [SLAM, STRIKE]))
        f.update(u(e=[npc(WOLF, 2, 0)]), 0.0)
        casts = self.play(f, 0.0, 7.0)
        self.assertEqual([a for _, a in casts], ["slam", "strike", "strike", "strike", "slam"])
        self.assertEqual(casts[-1][0], 6.4)
        self.assertTrue(all(b - a >= CAST_EVERY for (a, _), (b, _) in zip(casts, casts[1:])))

    def test_self_buff_once_per_duration(self):
        """A self buff goes first and is not cast again while it lasts."""
        f = Fighter(ME, Kit.build("warrior", [STRIKE, SHOUT]))
        f.update(u(e=[npc(WOLF, 2, 0)]), 0.0)
        casts = self.play(f, 0.0, 4.0)
        self.assertEqual([a for _, a in casts], ["shout", "strike", "strike"])

    def test_cast_time_stands_still(self):
        """During a cast time the fighter stands, even when its target walks out of range."""
        f = Fighter(ME, Kit.build("mage", [FIREBALL]))
        f.update(u(e=[npc(WOLF, 20, 0)]), 0.0)
        f.sent(10, f.decide(0.0, 0.0, False, 0.0)[1], 0.0)
        f.accepted(10, 2000, 0.05)
        f.update(u(moves=[(WOLF, 60.0, 0.0, 0, 0, 0)]), 0.5)
        self.assertEqual(f.decide(0.0, 0.0, False, 1.0), ("stand",))
        self.assertEqual(f.decide(0.0, 0.0, False, 2.2), ("walk", 60.0, 0.0))

    def test_cooldown_counts_from_the_cast_end(self):
        """A cooldown is waited from the end of the cast time, plus a tick and a round trip; no cooldown, no wait."""
        aimed = Ability("aimed", 9, "damage", "enemy", range=35.0, cast=2.0, cooldown=6.0)
        f = Fighter(ME, Kit.build("ranger", [aimed, SMITE]))
        f.sent(10, aimed, 1.0)
        f.accepted(10, 2000, 1.05)
        self.assertEqual(f.readyAt["aimed"], 1.0 + 2.0 + 6.0 + COOLDOWN_SLACK)
        f.sent(11, SMITE, 4.0)
        self.assertEqual(f.readyAt["smite"], 4.0)

    def test_refused_on_cooldown_waits_the_retry(self):
        """An on-cooldown refusal waits its retry_after before that ability again, using the next meanwhile."""
        f = Fighter(ME, Kit.build("warrior", [SLAM, STRIKE]))
        f.update(u(e=[npc(WOLF, 2, 0)]), 0.0)
        f.sent(10, SLAM, 0.0)
        f.refused(10, errors.ON_COOLDOWN, 4.0, 0.05)
        self.assertEqual(f.decide(0.0, 0.0, False, 0.2)[1], STRIKE)
        self.assertEqual(f.readyAt["slam"], 4.05)

    def test_no_second_request_while_one_is_unanswered(self):
        """A fighter never has two casts in flight: it waits for the reply (or gives up after 5 s)."""
        f = warrior()
        f.update(u(e=[npc(WOLF, 2, 0)]), 0.0)
        f.sent(10, STRIKE, 0.0)
        self.assertEqual(f.decide(0.0, 0.0, False, 2.0), ("stand",))
        self.assertEqual(f.decide(0.0, 0.0, False, 5.5)[0], "cast")

    def test_resource_is_respected(self):
        """An ability costing more than the resource last reported is skipped."""
        dear = Ability("dear", 6, "damage", "enemy", range=5.0, cost=30)
        f = Fighter(ME, Kit.build("rogue", [dear, STRIKE]))
        f.update(u(e=[npc(WOLF, 2, 0)], combat=[record(RESOURCE, ME, 100, 20)]), 0.0)
        self.assertEqual(f.decide(0.0, 0.0, False, 0.0)[1], STRIKE)
        f.update(u(combat=[record(RESOURCE, ME, 100, 40)]), 0.1)
        self.assertEqual(f.decide(0.0, 0.0, False, 0.2)[1], dear)

    def test_dead_does_nothing(self):
        """A dead fighter only stands; after its revival it fights again."""
        f = warrior()
        f.update(u(e=[npc(WOLF, 2, 0)], combat=[record(DEATH, WOLF, ME)]), 0.0)
        self.assertTrue(f.dead)
        self.assertEqual(f.decide(0.0, 0.0, False, 1.0), ("stand",))
        f.update(u(combat=[record(REVIVE, 0, ME, 50)]), 2.0)
        self.assertFalse(f.dead)
        self.assertEqual(f.decide(0.0, 0.0, False, 2.0)[:3], ("cast", STRIKE, WOLF))


class HealerTests(TestCase):
    def priest(self):
        return Fighter(ME, Kit.build("priest", [HEAL_, SMITE]), healer=True)

    def test_heals_the_most_hurt_ally_in_range(self):
        """The healer heals the ally with the lowest health share within range; one further away is not chosen."""
        f = self.priest()
        f.update(u(e=[player(8, 10, 0, hp=60), player(9, 5, 5, hp=40), player(10, 80, 0, hp=5),
                      npc(WOLF, 20, 0)]), 0.0)
        self.assertEqual(f.decide(0.0, 0.0, False, 0.0), ("cast", HEAL_, 9, None, None))

    def test_health_records_and_self(self):
        """HEALTH records change who is most hurt; the healer counts itself among the allies."""
        f = self.priest()
        f.update(u(e=[player(8, 10, 0, hp=60)]), 0.0)
        f.update(u(combat=[record(HEALTH, 8, 100, 95), record(HEALTH, ME, 200, 100)]), 0.1)
        self.assertEqual(f.decide(0.0, 0.0, False, 0.2), ("cast", HEAL_, ME, None, None))

    def test_nobody_hurt_smites(self):
        """With no ally under the threshold the healer fights like any other."""
        f = self.priest()
        f.update(u(e=[player(8, 10, 0, hp=int(HEAL_BELOW * 100)), npc(WOLF, 20, 0)]), 0.0)
        self.assertEqual(f.decide(0.0, 0.0, False, 0.0), ("cast", SMITE, WOLF, None, None))

    def test_dead_allies_are_not_healed(self):
        """A dead ally is not healed (health 0 but dead)."""
        f = self.priest()
        f.update(u(e=[player(8, 10, 0, hp=0, dead=1), player(9, 10, 0, hp=80)]), 0.0)
        self.assertEqual(f.decide(0.0, 0.0, False, 0.0)[2], 9)

    def test_heal_stops_a_walk(self):
        """A healer walking who must heal stops first, then heals."""
        f = self.priest()
        f.update(u(e=[player(8, 10, 0, hp=10)]), 0.0)
        self.assertEqual(f.decide(0.0, 0.0, True, 0.0), ("stand",))
        self.assertEqual(f.decide(0.0, 0.0, False, 0.2)[:3], ("cast", HEAL_, 8))


class EffectTests(TestCase):
    def test_instant_effect_latency(self):
        """The first DAMAGE record with this bot as source and the cast's ability gives the latency, once."""
        f = warrior()
        f.update(u(e=[npc(WOLF, 2, 0)]), 0.0)
        f.sent(10, STRIKE, 1.0)
        f.accepted(10, 0, 1.02)
        f.update(u(combat=[record(DAMAGE, 8, WOLF, 5, ability=1),
                           record(DAMAGE, ME, WOLF, 5, ability=2)]), 1.05)
        self.assertEqual(f.effects, [])
        f.update(u(combat=[record(DAMAGE, ME, WOLF, 5, ability=1),
                           record(DAMAGE, ME, WOLF, 5, ability=1)]), 1.12)
        self.assertEqual(len(f.effects), 1)
        self.assertEqual((f.effects[0].num, f.effects[0].kind), (1, DAMAGE))
        self.assertAlmostEqual(f.effects[0].latency, 0.12)
        self.assertEqual(f.events, 4)

    def test_cast_start_is_the_effect_of_a_cast_time(self):
        """A cast with a cast time shows its effect with its CAST_START record."""
        f = Fighter(ME, Kit.build("mage", [FIREBALL]))
        f.sent(10, FIREBALL, 0.0)
        f.update(u(combat=[record(CAST_START, ME, WOLF, 2000, ability=10)]), 0.09)
        self.assertEqual(f.effects, [Effect(10, CAST_START, 0.09)])

    def test_refused_and_lost_casts_have_no_effect(self):
        """A refused cast is no longer awaited; an accepted one whose effect never shows expires after 5 s."""
        f = Fighter(ME, Kit.build("priest", [HEAL_, SMITE]), healer=True)
        f.sent(10, SMITE, 0.0)
        f.refused(10, errors.INVALID_TARGET, None, 0.1)
        f.update(u(combat=[record(DAMAGE, ME, WOLF, 5, ability=21)]), 0.2)
        self.assertEqual(f.effects, [])
        f.sent(11, HEAL_, 1.0)
        f.accepted(11, 1500, 1.05)
        f.decide(0.0, 0.0, False, 6.5)
        self.assertEqual((f.pending, f.expired), ({}, 1))
        f.update(u(combat=[record(HEAL, ME, 8, 5, ability=20)]), 6.6)
        self.assertEqual(f.effects, [])
