"""Area of interest: enter with full state, leave with hysteresis, batched compact moves, nothing for the unchanged."""

from twisted.trial.unittest import TestCase

from mmoshard.world.test.helpers import makeZone, moves, player


class InterestMixin:
    """The L{IInterestSpace} contract, run against each implementation."""

    engine = None

    def setUp(self):
        self.zone, self.clock = makeZone(self.engine, aoi_radius=50.0, aoi_hysteresis=5.0, max_speed=100.0)
        self.tick = 0

    def step(self):
        self.clock.advance(0.1)
        self.tick += 1
        self.zone.tick(self.tick, 0.1)

    def walk(self, e, x, z):
        self.zone.queueMove(e, {"x": float(x), "z": float(z), "vx": 1.0, "vz": 0.0,
                                "ct": 77, "k": e.corr})

    def watching(self):
        """@return: (a, b): player a has seen player b, 40 m away, enter."""
        a = player(self.zone, 1, 100, 100)
        b = player(self.zone, 2, 140, 100)
        self.step()
        self.updates(a)
        return a, b

    def updates(self, e):
        out = e.session.of("world.u")
        e.session.clear()
        return out

    def test_enterWithFullState(self):
        """
        An observer is sent the full state of each entity entering its view, and nothing
        of those out of range.
        """
        a = player(self.zone, 1, 100, 100)
        b = player(self.zone, 2, 140, 100)
        c = player(self.zone, 3, 300, 100)
        self.step()
        [u] = self.updates(a)
        self.assertEqual([s[0] for s in u["e"]], [2])
        self.assertEqual(u["e"][0][:8], [2, "p", "p2", "warrior", 1, 140.0, 0.0, 100.0])
        self.assertNotIn("m", u)  # an entering entity's state is in its enter
        self.assertEqual(self.zone.visibleOf(a), {2})
        self.assertEqual(self.zone.visibleOf(b), {1})
        self.assertEqual(self.zone.visibleOf(c), set())
        self.assertEqual(self.updates(c), [])

    def test_movesAreCompactAndOnePerTick(self):
        """
        A move of a watched entity reaches its observers as one 20-byte packed record in
        a single world.u.
        """
        a, b = self.watching()
        self.walk(b, 141, 100)
        self.step()
        [u] = self.updates(a)
        self.assertEqual(set(u), {"m"})
        self.assertEqual(len(u["m"]), 20)
        self.assertEqual(moves(u), {2: (141.0, 100.0, 1.0, 0.0, 77)})

    def test_correctionStopsTheEntityForObservers(self):
        """A refused move shows the entity to observers stopped at its last valid position, not walking on."""
        a, b = self.watching()
        self.walk(b, 141, 100)
        self.step()
        self.updates(a)
        # Refused (too fast): observers see it stopped where it was, not
        # walking on at its old velocity.
        self.zone.queueMove(b, {"x": 900.0, "z": 100.0, "vx": 1.0, "vz": 0.0, "ct": 78, "k": b.corr})
        self.step()
        [u] = self.updates(a)
        self.assertEqual(moves(u), {2: (141.0, 100.0, 0.0, 0.0, 77)})

    def test_unchangedEntitiesCostNothing(self):
        """Ticks in which nothing moves send observers no update."""
        a, _ = self.watching()
        for _ in range(5):
            self.step()
        self.assertEqual(self.updates(a), [])
        self.assertEqual(self.zone.stats.updates, 2)

    def test_leaveWithHysteresis(self):
        """
        An entity leaves view only beyond radius plus hysteresis and enters again only
        inside the radius.
        """
        a, b = self.watching()
        self.walk(b, 152, 100)  # 52 m: beyond the radius, inside the margin
        self.step()
        [u] = self.updates(a)
        self.assertNotIn("l", u)
        self.assertIn(2, moves(u))
        self.walk(b, 156, 100)  # 56 m: beyond radius + hysteresis
        self.step()
        [u] = self.updates(a)
        self.assertEqual(u["l"], [2])
        self.assertNotIn("m", u)
        self.assertEqual(self.zone.visibleOf(a), set())
        self.assertEqual(self.zone.watchersOf(b), set())
        self.walk(b, 152, 100)  # back in the margin: not yet visible again
        self.step()
        self.assertEqual(self.updates(a), [])
        self.walk(b, 149, 100)  # inside the radius: enters again
        self.step()
        [u] = self.updates(a)
        self.assertEqual([s[0] for s in u["e"]], [2])
        self.assertEqual(u["e"][0][5], 149.0)

    def test_despawnSendsLeave(self):
        """Despawning an entity sends its observers a leave and clears it from the space."""
        a = player(self.zone, 1, 100, 100)
        b = player(self.zone, 2, 120, 100)
        self.step()
        self.updates(a)
        self.zone.despawn(b)
        self.step()
        [u] = self.updates(a)
        self.assertEqual(u, {"l": [2]})
        self.assertEqual(self.zone.visibleOf(a), set())
        self.assertEqual(self.zone.space.cell(b), -1)
        self.assertEqual(self.zone.watchersOf(a), set())

    def test_despawnedObserverDetached(self):
        """A despawned observer is no longer a watcher and is sent nothing more."""
        a = player(self.zone, 1, 100, 100)
        b = player(self.zone, 2, 120, 100)
        self.step()
        session = a.session
        self.zone.despawn(a)
        session.clear()
        self.assertEqual(self.zone.watchersOf(b), set())
        self.walk(b, 121, 100)
        self.step()
        self.assertEqual(session.of("world.u"), [])

    def test_manyObserversSeeOnlyNeighbours(self):
        """
        With 900 observers on a grid each sees exactly the entities within the radius,
        and the pair count agrees.
        """
        es = [player(self.zone, i + 1, 10 + 30 * (i % 30), 10 + 30 * (i // 30)) for i in range(900)]
        self.step()
        for e in es:
            expected = {o.id for o in es if o is not e
                        and (o.x - e.x) ** 2 + (o.z - e.z) ** 2 <= 50.0 ** 2}
            self.assertEqual(self.zone.visibleOf(e), expected)
            self.assertEqual({s[0] for u in e.session.of("world.u") for s in u.get("e", ())}, expected)
        self.assertEqual(self.zone.aoiPairs(), sum(len(self.zone.visibleOf(e)) for e in es))

    def test_staggeredRecompute(self):
        """With aoi_interval 2 an observer's view is recomputed on the ticks of its cell's parity only."""
        zone, clock = makeZone(self.engine, aoi_radius=50.0, aoi_hysteresis=5.0, aoi_interval=2, max_speed=100.0)
        # Cells are 50 m, 21 per row: a is in cell 43 (odd), b moves into 44 (even).
        a = player(zone, 1, 60, 100)
        b = player(zone, 2, 140, 100)
        zone.tick(1, 0.1)  # first tick after spawn: everyone is due
        self.assertEqual((zone.space.cell(a), zone.space.cell(b)), (43, 44))
        self.assertEqual(zone.visibleOf(a), set())
        b.budget = 1000.0
        zone.queueMove(b, {"x": 100.0, "z": 100.0, "k": b.corr})
        clock.advance(0.1)
        zone.tick(3, 0.1)  # odd tick: only observers in odd cells recompute
        self.assertEqual((zone.visibleOf(a), zone.visibleOf(b)), ({2}, set()))
        clock.advance(0.1)
        zone.tick(4, 0.1)
        self.assertEqual(zone.visibleOf(b), {1})

    def test_enterAndMoveSameTick(self):
        """An entity entering view in the tick it moved is sent once, as an enter at its new position."""
        a = player(self.zone, 1, 100, 100)
        b = player(self.zone, 2, 180, 100)
        self.step()
        self.updates(a)
        self.walk(b, 145, 100)
        self.step()
        [u] = self.updates(a)
        self.assertEqual(u["e"][0][5], 145.0)
        self.assertNotIn("m", u)


class PythonInterestTests(InterestMixin, TestCase):
    engine = "python"


class NativeInterestTests(InterestMixin, TestCase):
    engine = "native"
