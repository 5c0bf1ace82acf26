"""Boss encounters on a Clock: spawning, pulls, phases at thresholds, timed abilities, adds, enrage, wipes and resets, world.encounter, kills."""

import attrs
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from mmoshard.world.combat import records as R
from mmoshard.world.combat.brain import COMBAT, DEAD, EVADE, IDLE
from mmoshard.world.instances.data import Phase, TimedAbility
from mmoshard.world.instances.encounters import ENRAGE_AURA, ORDER_ENCOUNTERS
from mmoshard.world.instances.kills import Kills, killedEncounters, rollKill
from mmoshard.world.instances.resets import nextReset
from mmoshard.world.instances.test.bossfixture import (
    BOLT, CRYPT, ENRAGE, ITEMS, QUAKE, SLAM, Crypt, encounterEvents, recordsOf,
)
from mmoshard.world.test.harness import SyncSQL, WorldHarness


class SpawnTests(TestCase):
    def test_trashAndBossesSpawn(self):
        """The template's trash and every boss spawn at the start, bosses at their points, part of their encounter."""
        w = Crypt()
        self.assertEqual(sorted(b.type.id for b in w.enc.trash), ["wolf", "wolf"])
        self.assertEqual(sorted(w.enc.fights), ["ogre", "witch"])
        ogre = w.enc.fights["ogre"].brain
        self.assertEqual((ogre.entity.x, ogre.entity.z), (500.0, 500.0))
        self.assertEqual((ogre.encounter, ogre.spawnId), ("ogre", "crypt/7:boss:ogre"))
        self.assertTrue(all(b.encounter is None for b in w.enc.trash))
        self.assertIs(w.instance.encounter, w.enc)
        self.assertIn(ORDER_ENCOUNTERS, [order for order, _, _ in w.zone.systems])

    def test_killedBossNotSpawned(self):
        """A boss in Instance.killed (killed before a rebuild) is not spawned; the others are."""
        w = Crypt(killed={"ogre"})
        self.assertEqual(sorted(w.enc.fights), ["witch"])
        self.assertEqual(sorted(b.type.id for b in w.npcs.brains.values()), ["witch", "wolf", "wolf"])

    def test_scriptAbilitiesLeftToTheScript(self):
        """A boss's kit is its script's abilities (Combat casts them); its AI uses none on cooldown, not even its type's own."""
        w = Crypt()
        ogre = w.enc.fights["ogre"].brain
        self.assertEqual(ogre.abilities, ())
        self.assertEqual(ogre.entity.combat.kit.abilities, ("slam", "quake", "bolt"))

    def test_trashNeverRespawns(self):
        """Trash killed in an instance stays a corpse."""
        w = Crypt()
        wolf = w.enc.trash[0]
        w.combat.damage(None, wolf.entity, 10 ** 6)
        w.seconds(600)
        self.assertIs(wolf.state, DEAD)
        self.assertTrue(wolf.entity.combat.dead)


class PullTests(TestCase):
    def setUp(self):
        self.w = Crypt()
        self.tank = self.w.player(1, 480.0, 500.0)
        self.far = self.w.player(2, 100.0, 900.0)  # in the instance, far from the fight

    def test_pullTellsEveryone(self):
        """The pull sends world.encounter pull (phase 1, full health) to every player of the instance."""
        boss = self.w.pull(self.tank)
        self.assertIs(self.w.enc.fights["ogre"].brain.state, COMBAT)
        for p in (self.tank, self.far):
            [ev] = encounterEvents(p, "pull")
            self.assertEqual(ev, {"boss": "ogre", "entity": boss.id, "event": "pull", "phase": 1,
                                  "health": 10_000, "health_max": 10_000, "enraged": False})

    def test_healthEverySecondWhileEngaged(self):
        """While engaged the players get the boss's health each second; none before the pull."""
        self.w.seconds(5)
        self.assertEqual(encounterEvents(self.far), [])
        self.w.pull(self.tank)
        self.w.hurtTo(0.9)
        self.w.seconds(3)
        health = encounterEvents(self.far, "health")
        self.assertEqual(len(health), 3)
        self.assertLessEqual(health[-1]["health"], 9_000)

    def test_timedAbilities(self):
        """Phase 1's slam lands on the top target at 2 s after the pull, then every 5 s."""
        self.w.pull(self.tank)
        self.tank.session.clear()
        self.w.seconds(12.5)
        slams = recordsOf(self.tank, R.CAST_FINISH, SLAM.num)
        self.assertEqual(len(slams), 3)  # at 2, 7 and 12 s
        self.assertTrue(all(r[4] == self.tank.id for r in slams))

    def test_phaseAtThresholdWithAdds(self):
        """Below 50 % the boss enters phase 2 (told), its two adds appear engaged on the fight's players and its abilities change."""
        boss = self.w.pull(self.tank)
        self.w.hurtTo(0.51)
        self.w.step()
        fight = self.w.enc.fights["ogre"]
        self.assertEqual(fight.phase, 0)
        self.assertEqual(fight.adds, [])
        self.w.hurtTo(0.5)
        self.w.step()
        self.assertEqual(fight.phase, 1)
        [ev] = encounterEvents(self.far, "phase")
        self.assertEqual((ev["phase"], ev["health"]), (2, 5_000))
        self.assertEqual([a.type.id for a in fight.adds], ["imp", "imp"])
        for add in fight.adds:
            self.assertIs(add.state, COMBAT)
            self.assertIn(self.tank, add.entity.combat.threat)
            self.assertLessEqual(abs(add.entity.x - boss.x), 5.0)
        self.tank.session.clear()
        self.w.seconds(3.2)
        quakes = recordsOf(self.tank, R.CAST_FINISH, QUAKE.num)
        bolts = recordsOf(self.tank, R.CAST_FINISH, BOLT.num)
        self.assertEqual(len(quakes), 2)  # at once, then 3 s later
        self.assertEqual(len(bolts), 1)  # at 1 s
        self.assertEqual(recordsOf(self.tank, R.CAST_FINISH, SLAM.num), [])

    def test_phasesSkippedInOrder(self):
        """Health falling past two thresholds at once enters both phases: every skipped phase's adds come."""
        self.w.pull(self.tank)
        self.w.hurtTo(0.1)
        self.w.step()
        fight = self.w.enc.fights["ogre"]
        self.assertEqual(fight.phase, 2)
        self.assertEqual(len(fight.adds), 3)
        self.assertEqual((fight.adds[2].homeX, fight.adds[2].homeZ), (540.0, 500.0))
        self.assertEqual([e["phase"] for e in encounterEvents(self.tank, "phase")], [3])

    def test_randomTargetSeeded(self):
        """A random-target ability picks among the living players on the boss's table with the seeded generator."""
        def bolted(seed):
            w = Crypt(seed=seed)
            a = w.player(1, 480.0, 500.0)
            b = w.player(3, 480.0, 500.0)
            w.pull(a, b)
            w.hurtTo(0.5)
            w.seconds(30)
            return [r[4] for r in recordsOf(a, R.CAST_FINISH, BOLT.num)]

        first = bolted(5)
        self.assertEqual(first, bolted(5))
        self.assertEqual(set(first), {1, 3})

    def test_enrage(self):
        """After 60 s of fighting the boss enrages: an aura (the data's enrage number), told, and its swings hit three times as hard."""
        self.w.pull(self.tank)
        self.w.seconds(59)
        self.assertFalse(self.w.enc.fights["ogre"].enraged)
        self.assertEqual(encounterEvents(self.tank, "enrage"), [])
        swings = [r[5] for r in recordsOf(self.tank, R.DAMAGE, 0) if r[4] == self.tank.id]
        self.assertEqual(set(swings), {100})
        self.tank.session.clear()
        self.w.seconds(1.5)
        [ev] = encounterEvents(self.tank, "enrage")
        self.assertTrue(ev["enraged"])
        self.assertEqual(len(recordsOf(self.tank, R.AURA_ON, ENRAGE.num)), 1)
        self.tank.session.clear()
        self.w.seconds(5)
        self.assertTrue(self.w.enc.fights["ogre"].enraged)
        self.assertIn((ENRAGE_AURA, self.w.boss().id), self.w.boss().combat.auras)
        swings = [r[5] for r in recordsOf(self.tank, R.DAMAGE, 0) if r[4] == self.tank.id]
        self.assertTrue(swings)
        self.assertEqual(set(swings), {300})

    def test_scriptEnrageBuffAddsToTheTimer(self):
        """A script casting an "enrage" buff of the data adds to the enrage timer's aura, never replaces it."""
        boss = attrs.evolve(CRYPT.bosses[0], enrage=1.0, phases=(
            Phase(below=1.0, abilities=(TimedAbility("enrage", every=30.0, first=2.0,
                                                     target="self"),)),))
        w = Crypt(spec=attrs.evolve(CRYPT, bosses=(boss,)))
        tank = w.player(1, 480.0, 500.0)
        w.pull(tank)
        w.seconds(3)
        auras = w.boss().combat.auras
        self.assertIn((ENRAGE_AURA, w.boss().id), auras)
        self.assertIn(("enrage", w.boss().id), auras)
        tank.session.clear()
        w.seconds(4)
        swings = [r[5] for r in recordsOf(tank, R.DAMAGE, 0) if r[4] == tank.id]
        self.assertEqual(set(swings), {400})  # 100 x (1 + 2 for the timer + 1 for the buff)


class ResetTests(TestCase):
    def setUp(self):
        self.w = Crypt()
        self.a = self.w.player(1, 480.0, 500.0)
        self.b = self.w.player(2, 480.0, 500.0)
        self.watcher = self.w.player(3, 100.0, 900.0)
        self.boss = self.w.pull(self.a, self.b)
        self.fight = self.w.enc.fights["ogre"]
        self.w.hurtTo(0.3)
        self.w.step()
        self.adds = list(self.fight.adds)
        self.assertEqual(len(self.adds), 2)

    def test_wipeResets(self):
        """Everyone on the boss's table dead: it evades home to full health, back to phase 1, its adds despawned, reset told."""
        for p in (self.a, self.b):
            self.w.combat.damage(None, p, 10 ** 7)
        self.w.step()
        self.assertIs(self.fight.brain.state, EVADE)
        self.assertNotIn(self.fight, self.w.enc.fighting)
        self.assertEqual(self.fight.adds, [])
        for add in self.adds:
            self.assertNotIn(add.entity.id, self.w.zone.entities)
            self.assertNotIn(add.entity.id, self.w.npcs.brains)
        [ev] = encounterEvents(self.watcher, "reset")
        self.assertEqual((ev["phase"], ev["health"]), (1, 10_000))
        self.w.seconds(10)
        self.assertIs(self.fight.brain.state, IDLE)
        self.assertEqual((self.boss.x, self.boss.z), (500.0, 500.0))
        self.assertEqual(self.boss.combat.hp, 10_000)
        self.assertEqual(self.w.kills.kills, [])

    def test_leavingCombatResetsAndRepullStartsOver(self):
        """Players running off past the leash make the boss evade and reset; the next pull starts at phase 1 without adds."""
        for p in (self.a, self.b):
            self.w.walkTo(p, 300.0, 500.0)
        self.w.seconds(30)
        self.assertIs(self.fight.brain.state, IDLE)
        self.assertEqual(len(encounterEvents(self.watcher, "reset")), 1)
        self.assertEqual(self.fight.adds, [])
        self.watcher.session.clear()
        self.w.pull(self.a)
        self.w.step()
        self.assertEqual(self.fight.phase, 0)
        self.assertEqual(self.fight.adds, [])
        self.assertEqual(len(encounterEvents(self.watcher, "pull")), 1)

    def test_playersLeavingTheZoneWipe(self):
        """Everyone on the table leaving the instance is a wipe too."""
        for p in (self.a, self.b):
            self.w.combat.remove(p)
            self.w.zone.despawn(p)
        self.w.step()
        self.assertNotIn(self.fight, self.w.enc.fighting)
        self.assertEqual(len(encounterEvents(self.watcher, "reset")), 1)


class KillTests(TestCase):
    def setUp(self):
        self.w = Crypt()
        self.a = self.w.player(2, 480.0, 500.0)
        self.b = self.w.player(1, 480.0, 500.0)
        self.away = self.w.player(9, 100.0, 900.0)
        self.boss = self.w.pull(self.a, self.b)
        self.fight = self.w.enc.fights["ogre"]
        self.w.hurtTo(0.3)
        self.w.step()

    def test_killHandedOverOnce(self):
        """The boss's death hands one kill over: roster every player present, its exp and loot, a seed, the template's reset."""
        now = self.w.clock.seconds()
        self.w.combat.damage(self.a, self.boss, 10 ** 6)
        [kill] = self.w.kills.kills
        self.assertEqual((kill.instance_id, kill.template, kill.encounter), (7, "crypt", "ogre"))
        self.assertEqual(kill.roster, (1, 2, 9))
        self.assertEqual((kill.exp, kill.loot, kill.boss), (500, CRYPT.bosses[0].loot, self.boss.id))
        self.assertEqual(kill.killed_at, now)
        self.assertEqual(kill.reset_at, nextReset(CRYPT, now))
        self.assertEqual(len(kill.seed), 16)
        self.assertIn("ogre", self.w.instance.killed)
        [ev] = encounterEvents(self.away, "kill")
        self.assertEqual(ev["health"], 0)
        self.w.seconds(3600)
        self.assertEqual(len(self.w.kills.kills), 1)
        self.assertIs(self.fight.brain.state, DEAD)
        self.assertEqual(self.fight.adds, [])
        self.assertEqual(sorted(b.type.id for b in self.w.npcs.brains.values()),
                         ["ogre", "witch", "wolf", "wolf"])

    def test_killNotWrittenBringsTheBossBack(self):
        """A kill the database never took did not happen: the boss is back at home, alive, and out of Instance.killed."""
        self.w.kills.answer = None
        self.w.combat.damage(self.a, self.boss, 10 ** 6)
        self.assertNotIn("ogre", self.w.instance.killed)
        self.assertFalse(self.boss.combat.dead)
        self.assertIs(self.fight.brain.state, IDLE)
        self.assertEqual((self.boss.x, self.boss.z), (500.0, 500.0))
        self.assertEqual(len(encounterEvents(self.away, "reset")), 1)

    def test_seedFromTheSeededGenerator(self):
        """The kill's seed comes from the encounters' seeded generator: the same seed, the same kill."""
        self.w.combat.damage(self.a, self.boss, 10 ** 6)
        other = Crypt()
        p = other.player(1, 480.0, 500.0)
        q = other.player(2, 480.0, 500.0)
        other.player(9, 100.0, 900.0)
        boss = other.pull(q, p)
        other.hurtTo(0.3)
        other.step()
        other.combat.damage(q, boss, 10 ** 6)
        self.assertEqual(other.kills.kills[0].seed, self.w.kills.kills[0].seed)


class WrittenKillTests(TestCase):
    def test_killWrittenAndRebuildKeepsTheBossDead(self):
        """A kill through the real Kills on SQLite binds and rewards the players present; an instance rebuilt from killedEncounters has no such boss."""
        sql = SyncSQL()
        cids = [sql.makeCharacter(1, name) for name in ("Ann", "Bob")]
        sql.conn.execute("INSERT INTO instances (id, template, node_id, created_at) "
                         "VALUES (7, 'crypt', 'n1', 0)")
        sql.conn.commit()
        w = Crypt(kills=Kills(sql, Clock(), ITEMS))
        players = [w.player(cid, 480.0, 500.0) for cid in cids]
        boss = w.pull(*players)
        w.combat.damage(players[0], boss, 10 ** 6)
        seed = sql.conn.execute(
            "SELECT seed FROM instance_kills WHERE instance_id = 7").fetchone()[0]
        for cid in cids:
            self.assertEqual(sql.conn.execute(
                "SELECT instance_id FROM instance_lockouts WHERE character_id = ?",
                (cid,)).fetchone(), (7,))
            got = sql.conn.execute("SELECT item_id, SUM(count) FROM inventory WHERE "
                                   "character_id = ? GROUP BY item_id", (cid,)).fetchall()
            self.assertEqual(dict(got), rollKill(CRYPT.bosses[0].loot, seed, cid))
        killed = self.successResultOf(killedEncounters(sql, 7))
        self.assertEqual(killed, {"ogre"})
        rebuilt = Crypt(killed=killed)
        self.assertEqual(sorted(rebuilt.enc.fights), ["witch"])


class HostedTests(TestCase):
    def test_shippedDungeonBossKilledInTheWorld(self):
        """
        In a world process, an instance of the shipped dungeon spawns its
        trash and bosses; killing the foreman tells everyone inside, writes
        the kill, the lockouts and the seeded loot (no open-world reward
        keys), and the players get world.loot and world.progress after.
        """
        h = WorldHarness(self)
        world = h.world
        d = world.instances.create("deadmines", [])
        for _ in range(6):
            h.clock.advance(0)
        placement = self.successResultOf(d)
        instance = world.instances.host.instances[placement.instance_id]
        enc = instance.encounter
        self.assertEqual(sorted(enc.fights), ["captain", "foreman"])
        self.assertEqual(len(enc.trash), 12)
        foreman = enc.fights["foreman"].brain.entity
        peers = []
        for account, name in ((1, "Ann"), (2, "Bob")):
            cid = h.sql.makeCharacter(account, name, placement.zone, 80.0, 0.0, 214.0)
            peer = h.client(account)
            self.assertEqual(h.enter(peer, cid)["character_id"], cid)
            peers.append((cid, peer))
        h.advance(0.1, steps=3)
        self.assertIs(enc.fights["foreman"].brain.state, COMBAT)
        zone = instance.zone
        hero = world.roster.byCharacter[peers[0][0]].entity
        zone.combat.damage(hero, foreman, 10 ** 6)
        h.advance(0.1)
        seed = h.sql.conn.execute("SELECT seed FROM instance_kills WHERE instance_id = ? AND "
                                  "encounter = 'foreman'", (instance.id,)).fetchone()[0]
        loot = instance.spec.bosses[0].loot
        for cid, peer in peers:
            got = peer.received()
            kinds = [m["t"] for m in got]
            self.assertIn("world.encounter", kinds)
            self.assertEqual([m["event"] for m in got if m["t"] == "world.encounter"][-1], "kill")
            [lootMsg] = [m for m in got if m["t"] == "world.loot"]
            rolled = rollKill(loot, seed, cid)
            self.assertEqual({i["item"]: i["count"] for i in lootMsg["items"]}, rolled)
            self.assertIn("world.progress", kinds)
            keys = [k for (k,) in h.sql.conn.execute(
                "SELECT idem_key FROM progression_ledger WHERE character_id = ?", (cid,))]
            self.assertTrue(keys)
            self.assertTrue(all(k.startswith(f"boss:{instance.id}:foreman:{cid}") for k in keys))
            self.assertEqual(h.sql.conn.execute(
                "SELECT instance_id FROM instance_lockouts WHERE character_id = ? AND "
                "template = 'deadmines'", (cid,)).fetchone(), (instance.id,))
        self.assertEqual(instance.killed, {"foreman"})
        self.assertEqual(world.kills.written, 1)
        from prometheus_client import generate_latest

        text = generate_latest(h.node.metrics).decode()
        self.assertIn('mmoshard_world_boss_kills_total{result="written"} 1.0', text)
        self.assertIn('mmoshard_world_boss_kills_total{result="failed"} 0.0', text)
