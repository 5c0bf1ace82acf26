"""Zone game data: the shipped file loads, and every problem of a bad one is reported at once."""

from twisted.trial.unittest import TestCase

from mmoshard.world.config import makeConfig
from mmoshard.world.zones import Terrain, ZoneDataError, loadZones, parseZones


class ZoneDataTests(TestCase):
    def test_shippedZones(self):
        """The shipped zones file loads with its zones, spawns, portals and blocked terrain."""
        zones = loadZones("etc/zones.toml")
        self.assertEqual(set(zones), {"greenvale", "ashfall"})
        g = zones["greenvale"]
        self.assertEqual((g.width, g.spawns[0], g.portals[0].to), (1024.0, (128.0, 0.0, 64.0), "ashfall"))
        t = Terrain(g)
        self.assertTrue(t.isBlocked(320.0, 310.0))
        self.assertFalse(t.isBlocked(100.0, 100.0))

    def test_everyProblemReported(self):
        """Every problem of a bad zones file is reported in one error."""
        raw = {"zones": {
            "a": {"size": [100.0], "aoi_radius": -1, "tick_rate": "fast", "colour": "red",
                  "blocked": [[5, 5, 1, 1]],
                  "portals": [{"rect": [0, 0, 5, 5], "to": "nowhere", "arrive": [1, 0, 1]}]},
            "b": {"size": [50.0, 50.0], "spawns": [[60.0, 0.0, 10.0]],
                  "portals": [{"rect": [0, 0, 10, 10], "to": "b", "arrive": [5, 0, 5]}]},
        }}
        with self.assertRaises(ZoneDataError) as e:
            parseZones(raw, "zones.toml")
        message = str(e.exception)
        for fragment in ("zones.a.size", "zones.a.aoi_radius", "zones.a.tick_rate",
                         "zones.a.colour: unknown key", "zones.a.blocked", "unknown zone 'nowhere'",
                         "zones.b.spawns", "inside a portal of b"):
            self.assertIn(fragment, message)

    def test_roleConfigChecksZones(self):
        """The world config refuses unknown zones, a bad start zone and a too-long lease refresh."""
        with self.assertRaises(ValueError) as e:
            makeConfig(zones=["atlantis"], start_zone="moon", lease_refresh=10.0)
        for fragment in ("unknown zone 'atlantis'", "start_zone", "lease_refresh"):
            self.assertIn(fragment, str(e.exception))
        self.assertEqual(makeConfig(zones=["ashfall"]).hosted, ("ashfall",))

    def test_interestEngineChecked(self):
        """The interest setting accepts auto, native and python only."""
        with self.assertRaises(ValueError) as e:
            makeConfig(interest="fast")
        self.assertIn("world.interest: must be one of auto, native, python", str(e.exception))
        self.assertEqual(makeConfig().interest, "auto")
        self.assertEqual(makeConfig(interest="python").interest, "python")

    def test_nativeRequiredButMissing(self):
        """
        interest = native fails when the C engine is not built; auto falls back to the
        whole Python engine.
        """
        import sys

        # A None entry in sys.modules makes the import fail, as on a machine
        # where the extension could not be built.
        name = "mmoshard.world._space"
        before = sys.modules.pop(name, None)
        self.addCleanup(lambda: sys.modules.pop(name) if before is None else sys.modules.__setitem__(name, before))
        sys.modules[name] = None
        with self.assertRaises(ValueError) as e:
            makeConfig(interest="native")
        self.assertIn("world.interest: the C world engine is not built here", str(e.exception))
        self.assertEqual(makeConfig(interest="auto").interest, "auto")
        # auto falls back to the Python engine, whole.
        from mmoshard.world.test.helpers import makeZone

        zone, _ = makeZone("auto")
        self.assertEqual((zone.space.native, zone._applyMoves), (False, None))
