"""NPCs on the move: busy NPCs thinking every other tick, and patrols."""

import math

from twisted.trial.unittest import TestCase

from mmoshard.world.combat.brain import COMBAT, PATROL, WALK_SPEED
from mmoshard.world.combat.data import PackSpec
from mmoshard.world.combat.npcs import THINK_EVERY
from mmoshard.world.combat.test.test_npcs import WOLF, NpcWorld, dist


class ThinkTests(TestCase):
    """Busy NPCs think every other tick by default (Npcs.tick), covering both ticks."""

    def test_staggeredChaseKeepsItsSpeed(self):
        """
        With the default, a chasing NPC moves every second tick by twice a
        tick's distance, so it runs at its type's speed all the same; NPCs
        of the other parity move on the other ticks.
        """
        w = NpcWorld([PackSpec(members=("wolf", "wolf"), at=(100.0, 100.0), spread=0.0)],
                     thinkEvery=THINK_EVERY)
        self.assertEqual(THINK_EVERY, 2)
        a, b = (brain.entity for brain in w.brains)
        self.assertNotEqual(a.id % 2, b.id % 2)
        p = w.player(1, 80.0, 100.0)
        w.walkTo(p, 109.0, 100.0)
        w.step(2)
        self.assertIs(w.brains[0].state, COMBAT)
        w.walkTo(p, 140.0, 100.0)
        starts = (a.x, b.x)
        moved = []
        for _ in range(4):
            before = (a.x, b.x)
            w.step()
            moved.append(tuple(round(now - then, 6) for now, then in zip((a.x, b.x), before)))
        # Each tick exactly one of the two moves, by two ticks' worth.
        for da, db in moved:
            self.assertEqual(sorted([da, db]), [0.0, round(WOLF.speed * 0.2, 6)])
        self.assertAlmostEqual(a.x - starts[0], WOLF.speed * 0.4, places=6)
        self.assertAlmostEqual(b.x - starts[1], WOLF.speed * 0.4, places=6)


class PatrolTests(TestCase):
    def setUp(self):
        self.loop = ((100.0, 100.0), (120.0, 100.0), (120.0, 120.0))
        self.w = NpcWorld([PackSpec(members=("wolf", "bear"), at=(100.0, 100.0), spread=2.0,
                                    patrol=self.loop)])
        self.brains = self.w.brains

    def test_walksLoopAtWalkingSpeed(self):
        """Patrollers walk their loop's points in order at walking speed, in formation, and start over."""
        b = self.brains[0]
        e = b.entity
        self.assertIs(b.state, PATROL)
        visited = []
        for _ in range(400):
            x0, z0 = e.x, e.z
            self.w.step()
            self.assertLessEqual(math.hypot(e.x - x0, e.z - z0), WALK_SPEED * 0.1 + 1e-9)
            if not visited or visited[-1] != b.waypoint:
                visited.append(b.waypoint)
        self.assertGreaterEqual(len(visited), 4)
        for a, b2 in zip(visited, visited[1:]):
            self.assertEqual(b2, (a + 1) % len(self.loop))
        # The pack keeps its shape: the bear walks the same loop offset as it stood.
        other = self.brains[1]
        self.assertEqual(other.waypoint, b.waypoint)
        self.assertLess(dist(e, other.entity), 2 * 2.0 + 1.0)

    def test_patrollerAggroesOnStandingPlayer(self):
        """A patrol walking up to a player standing still attacks it."""
        p = self.w.player(1, 120.0, 112.0)
        self.w.step(200)
        self.assertTrue(any(b.state is COMBAT for b in self.brains))
        self.assertIn(p, self.brains[0].entity.combat.threat)

    def test_patrolResumesAfterEvade(self):
        """After an evade the patrollers walk their loop again from where they were pulled."""
        p = self.w.player(1, 80.0, 100.0)
        self.w.walkTo(p, 96.0, 100.0)
        self.w.step()
        self.assertTrue(all(b.state is COMBAT for b in self.brains))
        self.w.combat.damage(None, p, 10 ** 6)
        self.w.step(50)
        self.assertTrue(all(b.state is PATROL for b in self.brains))
        e = self.brains[0].entity
        x0 = e.x, e.z
        self.w.step(10)
        self.assertNotEqual((e.x, e.z), x0)
