"""NPCs spawned while a zone runs (an instance's trash, bosses and adds): more packs, lone NPCs, removal, no respawn, the aggro grid growing."""

from twisted.trial.unittest import TestCase

from mmoshard.world.combat.brain import COMBAT, DEAD, IDLE
from mmoshard.world.combat.data import PackSpec
from mmoshard.world.combat.test.test_npcs import BEAR, WOLF, NpcWorld


class RuntimeSpawnTests(TestCase):
    def setUp(self):
        self.w = NpcWorld([PackSpec(members=("bear",), at=(100.0, 100.0), spread=0.0)])

    def test_morePacksNumberedAfter(self):
        """Packs spawned later get the next pack indexes: their spawn ids never meet the zone's own."""
        more = self.w.npcs.spawn([PackSpec(members=("wolf", "wolf"), at=(300.0, 300.0))])
        self.assertEqual([b.spawnId for b in more], ["test:1:0", "test:1:1"])
        self.assertEqual([b.packIndex for b in more], [1, 1])
        self.assertEqual(self.w.npcs.packs[1], more)

    def test_loneNpc(self):
        """spawnNpc puts one NPC at a point, a pack of its own, idle, with the kit and abilities given."""
        b = self.w.npcs.spawnNpc(WOLF, 400.0, 410.0, "test:boss:x", abilities=(), encounter="x")
        e = b.entity
        self.assertEqual((e.x, e.z, b.homeX, b.homeZ), (400.0, 410.0, 400.0, 410.0))
        self.assertEqual((b.state, b.encounter, b.abilities), (IDLE, "x", ()))
        self.assertIs(self.w.npcs.bySpawn["test:boss:x"], b)
        self.assertIs(self.w.zone.entities[e.id], e)
        self.assertEqual(self.w.npcs.packs[b.packIndex], [b])
        self.assertRaises(ValueError, self.w.npcs.spawnNpc, WOLF, 1.0, 1.0, "test:boss:x")

    def test_pullAndRemove(self):
        """pull engages a lone NPC with a player; remove takes it out of the zone, combat and the AI."""
        p = self.w.player(1, 600.0, 600.0)
        b = self.w.npcs.spawnNpc(WOLF, 650.0, 600.0, "test:add:1")
        self.assertTrue(self.w.npcs.pull(b, p))
        self.assertIs(b.state, COMBAT)
        self.assertIn(p, b.entity.combat.threat)
        self.assertTrue(self.w.npcs.remove(b))
        self.assertFalse(self.w.npcs.remove(b))
        self.w.step()
        self.assertNotIn(b.entity.id, self.w.zone.entities)
        self.assertNotIn(b.entity.id, self.w.npcs.brains)
        self.assertNotIn(b, self.w.npcs.active)
        self.assertEqual(p.combat.engaged, set())

    def test_noRespawn(self):
        """With respawn off the dead stay corpses; respawnNow brings one back at home."""
        self.w.npcs.respawn = False
        [bear] = self.w.brains
        self.w.combat.damage(None, bear.entity, 10 ** 6)
        self.w.step(3000)
        self.assertIs(bear.state, DEAD)
        self.assertTrue(self.w.npcs.respawnNow(bear))
        self.assertFalse(self.w.npcs.respawnNow(bear))
        self.assertIs(bear.state, IDLE)
        self.assertFalse(bear.entity.combat.dead)

    def test_gridGrowsForLargerAggro(self):
        """An NPC with a larger aggro radius than the zone's packs' still aggroes at its full radius, and the old ones too."""
        self.assertEqual(self.w.npcs.grid.size, BEAR.aggro_radius)
        far = self.w.npcs.spawn([PackSpec(members=("wolf",), at=(500.0, 500.0), spread=0.0)])[0]
        self.assertEqual(self.w.npcs.grid.size, WOLF.aggro_radius)
        p = self.w.player(1, 480.0, 500.0)
        self.w.step(self.w.npcs.scanTicks + 1)  # done looking around: only moves aggro now
        self.assertIs(far.state, IDLE)
        self.w.walkTo(p, 490.5, 500.0)  # 9.5 m: inside the wolf's 10, outside a bear's 6
        self.w.step()
        self.assertIs(far.state, COMBAT)
        q = self.w.player(2, 80.0, 100.0)
        self.w.walkTo(q, 95.0, 100.0)
        self.w.step()
        self.assertIs(self.w.brains[0].state, COMBAT)
