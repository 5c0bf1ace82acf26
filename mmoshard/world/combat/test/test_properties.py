"""Property tests: any sequence of damage, heals, revivals, casts and ticks keeps health in [0, max] and dead == (hp == 0)."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from mmoshard.world.combat.errors import CombatError
from mmoshard.world.combat.test.combatfixture import ABILITIES, Arena

PROPS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
    database=None,
)

# Six combatants: three players (one of each class) and three NPCs.
WHO = st.integers(min_value=0, max_value=5)
AMOUNT = st.floats(min_value=-50.0, max_value=3000.0) | st.sampled_from(
    [float("inf"), float("-inf"), float("nan"), 1e300])
OPS = st.one_of(
    st.tuples(st.just("damage"), WHO, WHO, AMOUNT),
    st.tuples(st.just("heal"), WHO, WHO, AMOUNT),
    st.tuples(st.just("revive"), WHO, st.floats(min_value=0.0, max_value=1.5)),
    st.tuples(st.just("cast"), WHO, st.sampled_from([a.id for a in ABILITIES]), WHO),
    st.tuples(st.just("step"), st.integers(min_value=1, max_value=30)),
    st.tuples(st.just("swing"), WHO, WHO),
    st.tuples(st.just("release"), WHO),
    st.tuples(st.just("reset"), WHO),
    st.tuples(st.just("move"), WHO, st.floats(min_value=90.0, max_value=110.0)),
    st.tuples(st.just("stop"), WHO),
)


class HealthPropertyTests(TestCase):
    """Invariants of every combatant under random sequences of combat operations."""

    def check(self, a, everyone):
        for e in everyone:
            c = e.combat
            self.assertTrue(0 <= c.hp <= c.hpMax, (e.id, c.hp, c.hpMax))
            self.assertEqual(c.dead, c.hp == 0, (e.id, c.hp))
            self.assertTrue(0 <= c.res <= c.resMax, (e.id, c.res))
            if c.dead:
                self.assertEqual((c.cast, c.auras, c.engaged), (None, {}, set()))
                self.assertTrue(c.threat is None or len(c.threat) == 0)
                self.assertNotIn(e, a.combat.pending)
            if c.threat is not None:
                for p in c.threat:
                    self.assertIn(e, p.combat.engaged)
            for n in c.engaged:
                self.assertIn(e, n.combat.threat)

    @PROPS
    @given(st.lists(OPS, min_size=1, max_size=40))
    def test_health_bounds(self, ops):
        """Health stays within [0, max], the resource within [0, max], and dead is exactly hp == 0; the dead hold nothing."""
        a = Arena(seed=5)
        everyone = [a.player(1, "warrior", x=100.0), a.player(2, "mage", x=103.0),
                    a.player(3, "priest", x=106.0), a.npc("wolf", x=101.0), a.npc("mage", x=104.0),
                    a.npc("wolf", x=102.0, z=102.0)]
        combat = a.combat
        for op in ops:
            name = op[0]
            if name == "damage":
                combat.damage(everyone[op[1]], everyone[op[2]], op[3])
            elif name == "heal":
                combat.heal(everyone[op[1]], everyone[op[2]], op[3])
            elif name == "revive":
                combat.revive(everyone[op[1]], op[2])
            elif name == "cast":
                try:
                    combat.cast(everyone[op[1]], op[2], everyone[op[3]])
                except CombatError:
                    pass
            elif name == "step":
                a.step(op[1])
            elif name == "swing":
                combat.swing(everyone[op[1]], everyone[op[2]])
            elif name == "release":
                try:
                    combat.release(everyone[op[1]])
                except CombatError:
                    pass
            elif name == "reset":
                combat.reset(everyone[op[1]])
            elif name == "move":
                a.moveTo(everyone[op[1]], op[2], 100.0)
            else:
                combat.stopCast(everyone[op[1]])
            self.check(a, everyone)
