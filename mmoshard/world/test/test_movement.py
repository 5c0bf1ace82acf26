"""Authoritative movement: speed with latency tolerance, bounds, blocked terrain, corrections."""

import math
import random

from twisted.trial.unittest import TestCase

from mmoshard.world.test.helpers import makeZone, player
from mmoshard.world.zones import Rect


class MovementMixin:
    """Movement validation, run with the Python loop and with the C one (mmoshard/world/_moves.c)."""

    engine = None

    def setUp(self):
        self.zone, self.clock = makeZone(
            self.engine,
            max_speed=5.0, latency_tolerance=0.5, tile=2.0,
            blocked=(Rect(200.0, 0.0, 210.0, 1000.0),),
        )
        self.p = player(self.zone, 1, 100, 100)
        self.tick = 0
        self.step()
        self.p.session.clear()

    def step(self, seconds=0.1):
        self.clock.advance(seconds)
        self.tick += 1
        self.zone.tick(self.tick, seconds)

    def move(self, x, z, k=None, **extra):
        msg = {"t": "world.move", "x": x, "z": z, "vx": 5.0, "vz": 0.0, "ct": 1234,
               "k": self.p.corr if k is None else k}
        msg.update(extra)
        self.zone.queueMove(self.p, msg)
        self.step()

    def corrections(self):
        return self.p.session.of("world.correct")

    def test_legalMove(self):
        """
        A move within speed, bounds and free terrain is accepted with its velocity and
        draws no correction.
        """
        self.move(100.5, 100.0)
        self.assertEqual((self.p.x, self.p.z), (100.5, 100.0))
        self.assertEqual(self.p.vx, 5.0)
        self.assertEqual(self.corrections(), [])

    def test_tooFastCorrectsToLastValid(self):
        """
        A move beyond the speed budget is refused with a 'too fast' correction to the
        last valid position.
        """
        self.move(100.5, 100.0)
        self.move(130.0, 100.0)
        [c] = self.corrections()
        self.assertEqual((c["x"], c["z"], c["k"], c["why"]), (100.5, 100.0, 1, "too fast"))
        self.assertEqual((self.p.x, self.p.z), (100.5, 100.0))
        self.assertEqual(self.zone.stats.corrections, 1)

    def test_staleInputsAfterCorrectionDropped(self):
        """
        Moves carrying a correction count older than the last correction are dropped
        without another correction.
        """
        self.move(130.0, 100.0)
        self.move(100.2, 100.0, k=0)  # sent before the correction arrived
        self.assertEqual((self.p.x, self.p.z), (100.0, 100.0))
        self.assertEqual(len(self.corrections()), 1)
        self.assertEqual(self.zone.stats.dropped, 1)
        self.move(100.2, 100.0, k=1)
        self.assertEqual(self.p.x, 100.2)

    def test_latencyToleranceAllowsBunchedInputs(self):
        # Inputs held up by the network for 0.4 s then arriving together:
        # the distance they cover is within the banked budget.
        """Inputs bunched by network delay pass while the distance stays within the banked budget."""
        self.step(0.4)
        self.move(102.0, 100.0)
        self.move(102.4, 100.0)
        self.assertEqual(self.p.x, 102.4)
        self.assertEqual(self.corrections(), [])

    def test_budgetIsCapped(self):
        # A long idle does not bank a teleport: 10 s idle, 20 m jump refused.
        """A long idle banks no more than the latency tolerance: a large jump afterwards is refused."""
        self.step(10.0)
        self.move(120.0, 100.0)
        self.assertEqual(self.p.x, 100.0)
        self.assertEqual(self.corrections()[0]["why"], "too fast")

    def test_sustainedOverspeedCorrected(self):
        # 6 m/s against a 5 m/s limit passes while the bank lasts, then not.
        """Moving slightly over the speed limit passes while the bank lasts, then is corrected."""
        x = 100.0
        for _ in range(40):
            x += 0.6
            self.move(x, 100.0, k=self.p.corr)
            x = self.p.x
        self.assertTrue(self.corrections())

    def test_outOfBounds(self):
        """A move outside the zone is refused with an 'out of bounds' correction."""
        self.p.x = 0.5
        self.move(-0.1, 100.0)
        self.assertEqual(self.corrections()[0]["why"], "out of bounds")
        self.assertEqual(self.p.x, 0.5)

    def test_blockedDestination(self):
        """A move onto a blocked tile is refused with a 'blocked' correction."""
        self.zone.teleport(self.p, 199.5, 100.0)
        self.p.session.clear()
        self.move(201.0, 100.0)
        self.assertEqual(self.corrections()[0]["why"], "blocked")
        self.assertEqual(self.p.x, 199.5)

    def test_blockedPathCrossing(self):
        # A thin wall (one 2 m tile at x 200..202): a 2.5 m step across it
        # lands on a free tile but passes through the wall.
        """A step that lands on a free tile but crosses a wall is refused as 'blocked'."""
        zone, clock = makeZone(self.engine, max_speed=5.0, tile=2.0, blocked=(Rect(200.0, 0.0, 201.0, 1000.0),))
        p = player(zone, 1, 199.8, 100)
        zone.tick(1, 0.1)
        clock.advance(0.5)
        zone.queueMove(p, {"x": 202.3, "z": 100.0, "k": 0})
        zone.tick(2, 0.1)
        self.assertEqual(p.session.of("world.correct")[0]["why"], "blocked")
        self.assertEqual(p.x, 199.8)

    def test_badValues(self):
        """Non-numeric, NaN, infinite and boolean positions are refused with a correction, never applied."""
        for bad in ("x", None, float("nan"), float("inf"), [1], True):
            self.move(bad, 100.0)
        self.assertEqual(len(self.corrections()), 6)
        whys = [c["why"] for c in self.corrections()]
        self.assertEqual(whys, ["bad position", "bad position", "out of bounds",
                                "out of bounds", "bad position", "bad position"])
        self.assertEqual(self.p.x, 100.0)

    def test_velocityClampedAndBadVelocityZeroed(self):
        """A velocity above max speed is scaled down to it; a non-numeric velocity becomes zero."""
        self.move(100.1, 100.0, vx=500.0, vz=0.0)
        self.assertAlmostEqual(self.p.vx, 5.0)
        self.move(100.2, 100.0, vx="fast", vz=0.0)
        self.assertEqual((self.p.vx, self.p.vz), (0.0, 0.0))

    def test_clientTimeKept(self):
        """The client time is kept masked to uint32, and a non-int client time becomes 0."""
        self.move(100.1, 100.0, ct=2 ** 40 + 7)
        self.assertEqual(self.p.ct, 7)
        self.move(100.2, 100.0, ct="x")
        self.assertEqual(self.p.ct, 0)

    def test_newestInputWins(self):
        """Of several moves queued in one tick only the newest is applied, while every one is counted."""
        self.zone.queueMove(self.p, {"x": 100.1, "z": 100.0, "k": 0})
        self.zone.queueMove(self.p, {"x": 100.3, "z": 100.0, "k": 0})
        self.step()
        self.assertEqual(self.p.x, 100.3)
        self.assertEqual(self.zone.stats.inputs, 2)

    def test_npcMoverIntegrated(self):
        """A server-driven entity in the movers set is moved by its velocity each tick."""
        from mmoshard.world.sim import NPC, Entity

        npc = Entity(2 ** 31 + 1, NPC, 50.0, 0.0, 50.0)
        self.zone.spawn(npc)
        self.zone.movers.add(npc)
        npc.vx = 2.0
        self.step(0.5)
        self.assertAlmostEqual(npc.x, 51.0)


class PythonMovementTests(MovementMixin, TestCase):
    engine = "python"

    def test_pythonLoop(self):
        """The python engine validates moves with the Python loop (no C movement loop)."""
        self.assertIsNone(self.zone._applyMoves)


class NativeMovementTests(MovementMixin, TestCase):
    engine = "native"

    def test_nativeLoop(self):
        """The native engine validates moves with the C loop."""
        self.assertIsNotNone(self.zone._applyMoves)

    def test_sameAsPythonOnRandomInputs(self):
        """
        The C loop and the Python loop, fed the same random inputs (walks,
        sprints, stale and bad values, blocked terrain), leave every entity
        in the same state and send the same corrections.
        """
        rng = random.Random(7)
        spec = dict(max_speed=5.0, latency_tolerance=0.5, tile=2.0,
                    blocked=(Rect(200.0, 0.0, 204.0, 1000.0), Rect(0.0, 300.0, 1000.0, 301.0)))
        zones = [makeZone("python", **spec), makeZone("native", **spec)]
        players = [[player(z, i + 1, 150 + 3 * i, 150 + 2 * i) for i in range(60)] for z, _ in zones]
        bad = ["x", None, float("nan"), float("inf"), -float("inf"), True, [1], 2 ** 70, -(2 ** 70), 10 ** 400]
        fields = ("x", "z", "vx", "vz", "ct", "corr", "budget", "budgetAt")
        for tick in range(200):
            for i in range(60):
                a = players[0][i]
                msg = {"t": "world.move"}
                r = rng.random()
                step = 0.3 if r < 0.6 else 5.0 if r < 0.8 else 0.0
                h = rng.uniform(0, 2 * math.pi)
                msg["x"] = a.x + step * math.cos(h)
                msg["z"] = a.z + step * math.sin(h)
                msg["vx"] = rng.choice([5.0 * math.cos(h), 50.0, -3, 2 ** 40, 0.0])
                msg["vz"] = rng.choice([5.0 * math.sin(h), -50.0, 4, 0])
                msg["ct"] = rng.choice([tick * 100, -5, 2 ** 40 + tick, "t", 1.5])
                msg["k"] = a.corr if rng.random() < 0.9 else a.corr - 1
                for key in ("x", "z", "vx", "vz", "k"):
                    if rng.random() < 0.03:
                        msg[key] = rng.choice(bad)
                    if rng.random() < 0.02:
                        del msg[key]
                if rng.random() < 0.05:
                    msg["x"] = int(a.x)
                for (zone, _), ps in zip(zones, players):
                    zone.queueMove(ps[i], dict(msg))
            dt = rng.choice([0.1, 0.1, 0.05, 0.4])
            for zone, clock in zones:
                clock.advance(dt)
                zone.tick(tick + 1, 0.1)
            for a, b in zip(*players):
                self.assertEqual([(f, getattr(a, f), type(getattr(a, f))) for f in fields],
                                 [(f, getattr(b, f), type(getattr(b, f))) for f in fields], f"tick {tick}")
                self.assertEqual(a.session.of("world.correct"), b.session.of("world.correct"))
        stats = [(z.stats.inputs, z.stats.corrections, z.stats.dropped) for z, _ in zones]
        self.assertEqual(stats[0], stats[1])
        self.assertGreater(stats[0][1], 100)
        self.assertGreater(stats[0][2], 100)
