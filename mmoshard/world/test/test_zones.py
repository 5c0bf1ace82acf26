"""Zone game data: the shipped file loads (with its NPC packs), and every problem of a bad one is reported at once."""

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

    def test_shippedPacks(self):
        """
        The shipped zones have packs of three with respawn times, a patrolling pack in
        each, graveyards and no PvP, and every pack member is an NPC type of the game data.
        """
        config = makeConfig()
        for zid in ("greenvale", "ashfall"):
            zone = config.specs[zid]
            self.assertGreaterEqual(len(zone.packs), 3, zid)
            self.assertTrue(all(len(p.members) == 3 and 30.0 <= p.respawn <= 120.0 for p in zone.packs), zid)
            self.assertEqual(sum(1 for p in zone.packs if p.patrol), 1, zid)
            self.assertTrue(all(m in config.game.npcs for p in zone.packs for m in p.members), zid)
            self.assertFalse(zone.pvp)
        g = config.specs["greenvale"]
        self.assertEqual(g.graveyard, (150.0, 0.0, 40.0))
        self.assertEqual(g.packs[0].at, (180.0, 110.0))
        self.assertEqual(g.packs[3].patrol[1], (480.0, 200.0))

    def test_packDefaults(self):
        """A pack needs only members and a place; a zone without a graveyard or pvp has none and is PvE."""
        zone = parseZones({"zones": {"a": {"size": [100.0, 100.0], "pvp": True,
                                           "packs": [{"members": ["rat"], "at": [50, 50]}]},
                                     "b": {"size": [100.0, 100.0]}}})
        pack = zone["a"].packs[0]
        self.assertEqual((pack.members, pack.at, pack.spread, pack.respawn, pack.patrol),
                         (("rat",), (50.0, 50.0), 4.0, 30.0, ()))
        self.assertEqual((zone["a"].pvp, zone["b"].pvp, zone["b"].graveyard, zone["b"].packs),
                         (True, False, None, ()))

    def test_packProblemsReported(self):
        """Every problem of packs, a graveyard and pvp is reported in one error."""
        raw = {"zones": {"a": {
            "size": [100.0, 100.0], "blocked": [[40.0, 0.0, 48.0, 100.0]], "pvp": "yes",
            "graveyard": [44.0, 0.0, 10.0],
            "packs": [
                {"members": ["rat"], "at": [120.0, 10.0]},
                {"members": ["rat"], "at": [44.0, 50.0]},
                {"members": [], "at": [10.0, 10.0], "respawn": 0, "leader": "rat"},
                {"members": ["rat"], "at": [98.0, 98.0], "spread": 5.0},
                {"members": ["rat"], "at": [10.0, 10.0], "patrol": [[10.0, 10.0], [90.0, 10.0]]},
                {"members": ["rat"], "at": [10.0, 10.0], "patrol": [[10.0, 10.0], [10.0, 200.0]]},
                "rats",
            ]}, "b": {"size": [100.0, 100.0], "graveyard": [150.0, 0.0, 10.0]}}}
        with self.assertRaises(ZoneDataError) as e:
            parseZones(raw, "zones.toml")
        message = str(e.exception)
        for fragment in ("zones.a.pvp: expected true or false", "zones.a.graveyard: (44, 10) is on blocked terrain",
                         "zones.a.packs[0].at: (120, 10) is outside the zone",
                         "zones.a.packs[1].at: (44, 50) is on blocked terrain",
                         "zones.a.packs[2].members: expected a non-empty list", "zones.a.packs[2].respawn",
                         "zones.a.packs[2].leader: unknown key",
                         "zones.a.packs[3].spread: members placed 5 m around (98, 98) may be outside the zone",
                         "zones.a.packs[4].patrol: the way from (10, 10) to (90, 10) crosses blocked terrain",
                         "zones.a.packs[5].patrol[1]: (10, 200) is outside the zone",
                         "zones.a.packs[6]: expected a table",
                         "zones.b.graveyard: (150, 10) is outside the zone"):
            self.assertIn(fragment, message)

    def test_packMembersAreNpcTypes(self):
        """The world config refuses a pack member that is not an NPC type of the game data."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write('[zones.a]\nsize = [100.0, 100.0]\n[[zones.a.packs]]\nmembers = ["young_wolf", "dragon"]\n'
                    'at = [50.0, 50.0]\n')
        with self.assertRaises(ValueError) as e:
            makeConfig(zones_file=path)
        self.assertIn(f"world.zones_file: {path}: zones.a.packs[0].members: unknown NPC type 'dragon'",
                      str(e.exception))
        self.assertNotIn("young_wolf", str(e.exception))

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
