"""Kill rewards in-process: exp split within parties, personal loot, exactly once under retries, restarts and repeated deaths."""

import random
from types import SimpleNamespace

from twisted.internet.defer import fail
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from mmoshard.testing import DictParties
from mmoshard.interfaces import IParties
from mmoshard.store.errors import SQLUnavailable
from mmoshard.world.combat.data import LootEntry, NpcType
from mmoshard.world.combat.npcs import Npcs
from mmoshard.world.combat.rewards import (
    GRANT_TRIES, MAX_KEY, Rewards, baseExp, fitKey, levelFactor, rollLoot,
)
from mmoshard.world.sim import NPC, Entity
from mmoshard.world.test.harness import SyncSQL, WorldHarness, events

NPC_IDS = 2 ** 31 + 900_000
PELTS = (LootEntry("wolf_pelt", 1.0, 2, 2),)


class FakeParties(DictParties):
    """IParties over a dict: party id -> member ids; C{broken} makes every call fail."""

    def __init__(self):
        super().__init__()
        self.broken = False
        self.calls = 0

    def partyOf(self, characterId):
        self.calls += 1
        if self.broken:
            return fail(SQLUnavailable("chat store down (test)"))
        return super().partyOf(characterId)

    def partiesOf(self, characterIds):
        self.calls += 1
        if self.broken:
            return fail(SQLUnavailable("chat store down (test)"))
        return super().partiesOf(characterIds)


class FlakySQL(SyncSQL):
    """SyncSQL whose next C{failures} interactions running C{what} fail as an outage."""

    def __init__(self):
        SyncSQL.__init__(self)
        self.failures = 0
        self.what = None

    def runInteraction(self, func, *args, **kwargs):
        if self.failures and (self.what is None or func.__name__ == self.what):
            self.failures -= 1
            return fail(SQLUnavailable("database blinked (test)"))
        return SyncSQL.runInteraction(self, func, *args, **kwargs)


class RewardHelpers:
    """A harness world with players near (850, 850) of greenvale, far from its packs."""

    def makeWorld(self, sql=None):
        self.parties = FakeParties()
        self.sql = sql or SyncSQL()
        self.h = WorldHarness(self, sql=self.sql, parties=self.parties)
        self.world = self.h.world
        self.world.rewards.bootId = "b00t"
        self.zone = self.world.zones["greenvale"]
        self.combat = self.zone.combat
        self.combat.rng = random.Random(7)
        self.nextNpc = NPC_IDS
        self.logged = []
        globalLogPublisher.addObserver(self.logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.logged.append)

    def player(self, account, name, x=850.0, z=850.0, level=1):
        cid = self.sql.makeCharacter(account, name, "greenvale", x, 0.0, z)
        self.sql.conn.execute("UPDATE characters SET level = ? WHERE id = ?", (level, cid))
        self.sql.conn.commit()
        peer = self.h.client(account)
        self.assertEqual(self.h.enter(peer, cid)["character_id"], cid)
        return SimpleNamespace(cid=cid, peer=peer, entity=self.world.roster.byCharacter[cid].entity)

    def npc(self, level=1, exp=0, loot=PELTS, spawnId="greenvale:test:0", brain=True,
            encounter=None):
        self.nextNpc += 1
        npcType = NpcType(id="dummy", name="Dummy", level=level, health=100, damage=(1, 2),
                          attack_speed=2.0, loot=loot, exp=exp)
        e = Entity(self.nextNpc, NPC, 850.0, 0.0, 852.0, name="Dummy", cls="dummy", level=level)
        self.zone.spawn(e)
        self.combat.addNpc(e, npcType)
        if brain:
            e.ai = SimpleNamespace(spawnId=spawnId, encounter=encounter)
        return e

    def kill(self, npc, *hitters):
        """Everyone in C{hitters} hits C{npc} (so is on its threat table), the first kills it."""
        for p in hitters:
            self.combat.damage(p.entity, npc, 1)
        self.combat.damage(hitters[0].entity, npc, 10 ** 6)
        self.assertTrue(npc.combat.dead)

    def exp(self, p):
        return self.sql.row(p.cid)[4:6]

    def inventory(self, p):
        return self.successResultOf(self.world.progression.inventory(p.cid))

    def keys(self, p):
        return sorted(k for (k,) in self.sql.conn.execute(
            "SELECT idem_key FROM progression_ledger WHERE character_id = ?", (p.cid,)))


class RulesTests(TestCase):
    def test_levelFactor(self):
        """Same level gives all, a higher NPC up to 20 % more, a higher player less, a grey NPC none."""
        self.assertEqual(levelFactor(5, 5), 1.0)
        self.assertAlmostEqual(levelFactor(5, 7), 1.1)
        self.assertAlmostEqual(levelFactor(5, 20), 1.2)
        self.assertAlmostEqual(levelFactor(5, 3), 0.6)  # grey at 5 levels below: 1 - 2/5
        self.assertEqual(levelFactor(5, 0), 0.0)
        self.assertEqual(levelFactor(30, 22), 0.0)  # grey gap 8 at level 30
        self.assertGreater(levelFactor(30, 23), 0.0)
        self.assertEqual(levelFactor(60, 49), 0.0)

    def test_baseExp(self):
        """An NPC type's exp is its own, else 45 + 5 per level."""
        t = NpcType(id="a", name="A", level=10, health=1, damage=(1, 1), attack_speed=1.0)
        self.assertEqual(baseExp(t), 95)
        self.assertEqual(baseExp(NpcType(id="a", name="A", level=10, health=1, damage=(1, 1),
                                         attack_speed=1.0, exp=7)), 7)

    def test_rollLoot(self):
        """Each line drops with its chance, min..max of it; lines of one item add up; seeded, it repeats."""
        table = (LootEntry("a", 1.0, 1, 3), LootEntry("b", 0.0), LootEntry("a", 1.0, 2, 2))
        got = rollLoot(table, random.Random(3))
        self.assertEqual(set(got), {"a"})
        self.assertTrue(3 <= got["a"] <= 5)
        self.assertEqual(rollLoot(table, random.Random(3)), got)

    def test_fitKey(self):
        """A key the ledger holds stays as it is; a longer one is cut to 128 with a digest, the same each time."""
        self.assertEqual(fitKey("kill:x:1"), "kill:x:1")
        long = "loot:" + "s" * 200 + ":item"
        self.assertEqual(len(fitKey(long)), MAX_KEY)
        self.assertEqual(fitKey(long), fitKey(long))
        self.assertNotEqual(fitKey(long), fitKey(long + "2"))

    def test_bootIdsDiffer(self):
        """Each Rewards made without a boot id gets its own random one."""
        a = Rewards(None, None, None, None, None)
        b = Rewards(None, None, None, None, None)
        self.assertNotEqual(a.bootId, b.bootId)
        self.assertTrue(a.bootId)


class KillRewardTests(RewardHelpers, TestCase):
    def setUp(self):
        self.makeWorld()

    def test_partiesProvided(self):
        """The world role takes the node's IParties (a whole one) for its rewards."""
        verifyObject(IParties, self.parties)
        self.assertIs(self.world.rewards.parties, self.parties)

    def test_soloKill(self):
        """
        A player alone kills a same-level NPC: it gets 45 + 5 x level exp and
        its loot, and is told with world.progress and world.loot.
        """
        p = self.player(1, "Solo")
        wolf = self.npc()
        self.kill(wolf, p)
        self.assertEqual(self.exp(p), (1, 50))
        self.assertEqual(self.inventory(p), {0: ("wolf_pelt", 2)})
        got = p.peer.received()
        [loot] = [m for m in got if m["t"] == "world.loot"]
        self.assertEqual(loot["from"], wolf.id)
        self.assertEqual(loot["items"], [{"item": "wolf_pelt", "count": 2, "slot": 0}])
        self.assertIn([1, 50], [m["result"] for m in got if m["t"] == "world.progress"])
        self.assertEqual(self.keys(p), ["kill:greenvale:test:0:b00t:1",
                                        "loot:greenvale:test:0:b00t:1:wolf_pelt"])

    def test_partyExpSplit(self):
        """
        A party's exp is split equally among its members on the threat table
        and those in the zone within 100 m of the corpse; a member farther
        away gets none; a player of no party on the table gets it whole; only
        players on the table roll loot.
        """
        a = self.player(1, "Alpha")
        b = self.player(2, "Beta", x=900.0)  # 50 m away, not fighting
        far = self.player(3, "Far", z=990.0)  # 138 m away
        solo = self.player(4, "Solo")
        self.parties.parties["p1"] = [a.cid, b.cid, far.cid]
        wolf = self.npc(exp=60)
        self.kill(wolf, a, solo)
        self.assertEqual(self.exp(a), (1, 30))
        self.assertEqual(self.exp(b), (1, 30))
        self.assertEqual(self.exp(far), (1, 0))
        self.assertEqual(self.exp(solo), (1, 60))
        self.assertEqual(self.inventory(a), {0: ("wolf_pelt", 2)})
        self.assertEqual(self.inventory(solo), {0: ("wolf_pelt", 2)})
        self.assertEqual(self.inventory(b), {})
        self.assertEqual(events(b.peer, "world.loot"), [])

    def test_twoMembersOnTheTableShareOnce(self):
        """Two members of one party on the threat table share one kill's exp, and each rolls loot."""
        a = self.player(1, "Alpha")
        b = self.player(2, "Beta")
        self.parties.parties["p1"] = [a.cid, b.cid]
        self.kill(self.npc(exp=60), a, b)
        self.assertEqual((self.exp(a), self.exp(b)), ((1, 30), (1, 30)))
        self.assertEqual(self.inventory(b), {0: ("wolf_pelt", 2)})

    def test_levelsScaleEachShare(self):
        """Each member's share is scaled by its own level gap: a grey NPC gives a high member nothing."""
        low = self.player(1, "Low")
        high = self.player(2, "High", level=7)
        self.parties.parties["p1"] = [low.cid, high.cid]
        self.kill(self.npc(level=1, exp=60), low, high)
        self.assertEqual(self.exp(low), (1, 30))
        self.assertEqual(self.exp(high), (7, 0))  # 1 is grey at 7 (gap 6 >= 5)
        self.assertEqual(self.keys(high), ["loot:greenvale:test:0:b00t:1:wolf_pelt"])

    def test_partiesUnavailableMeansSolo(self):
        """When the party lookup fails, each player on the table is rewarded solo (logged)."""
        a = self.player(1, "Alpha")
        b = self.player(2, "Beta")
        self.parties.parties["p1"] = [a.cid, b.cid]
        self.parties.broken = True
        self.kill(self.npc(exp=60), a)
        self.assertEqual((self.exp(a), self.exp(b)), ((1, 60), (1, 0)))
        self.assertTrue(any("rewarded solo" in str(e.get("log_format")) for e in self.logged))

    def test_noBrainFallsBackToEntityId(self):
        """An NPC without a brain is keyed by zone and entity id."""
        p = self.player(1, "Solo")
        wolf = self.npc(brain=False)
        self.kill(wolf, p)
        self.assertIn(f"kill:greenvale:{wolf.id}:b00t:1", self.keys(p))

    def test_sameDeathTwice(self):
        """
        The same death reported twice, to this process or to one with the
        same boot id that does not remember it, grants its rewards once.
        """
        p = self.player(1, "Solo")
        wolf = self.npc(exp=30)
        self.kill(wolf, p)
        p.peer.received()
        rewards = self.world.rewards
        wolf.combat.threat.add(p.entity, 1.0)  # as full as when it died
        rewards.onDeath(self.zone, wolf, p.entity)
        self.assertEqual(events(p.peer, "world.loot"), [])  # remembered: not even told
        other = Rewards(self.world.progression, None, self.world.roster, self.world.tasks,
                        self.h.clock, rewards.bootId)
        other.onDeath(self.zone, wolf, p.entity)
        self.assertEqual(self.exp(p), (1, 30))
        self.assertEqual(self.inventory(p), {0: ("wolf_pelt", 2)})

    def test_keysDifferAcrossDeathsAndBoots(self):
        """
        A second death of the same NPC, and the same death number in a
        process with another boot id (a restart), are new rewards.
        """
        p = self.player(1, "Solo")
        wolf = self.npc(exp=30)
        self.kill(wolf, p)
        self.combat.revive(wolf, 1.0)
        self.kill(wolf, p)
        self.assertEqual(self.exp(p), (1, 60))
        self.assertEqual(self.inventory(p), {0: ("wolf_pelt", 4)})
        restarted = Rewards(self.world.progression, None, self.world.roster, self.world.tasks,
                            self.h.clock, "n3w")
        wolf.combat.threat.add(p.entity, 1.0)
        restarted.onDeath(self.zone, wolf, p.entity)
        self.assertEqual(self.exp(p), (1, 90))
        self.assertEqual(self.keys(p), [
            "kill:greenvale:test:0:b00t:1", "kill:greenvale:test:0:b00t:2",
            "kill:greenvale:test:0:n3w:2",
            "loot:greenvale:test:0:b00t:1:wolf_pelt", "loot:greenvale:test:0:b00t:2:wolf_pelt",
            "loot:greenvale:test:0:n3w:2:wolf_pelt",
        ])

    def test_bossesLeftToTheirEncounter(self):
        """A boss (or an add) of an instance encounter gives no open-world exp or loot: its kill is written by the encounter."""
        p = self.player(1, "Solo")
        boss = self.npc(encounter="ogre")
        self.kill(boss, p)
        self.assertEqual(self.keys(p), [])
        self.assertEqual(len(self.world.tasks.pending), 0)

    def test_npcKilledByNobodyRewardsNobody(self):
        """An NPC with an empty threat table and no player killer gives nothing."""
        p = self.player(1, "Solo")
        wolf = self.npc()
        self.combat.damage(None, wolf, 10 ** 6)
        self.assertTrue(wolf.combat.dead)
        self.assertEqual(self.keys(p), [])
        self.assertEqual(len(self.world.tasks.pending), 0)


class PackNpcTests(RewardHelpers, TestCase):
    def setUp(self):
        self.makeWorld()
        if self.zone.npcs is None:  # the service does not spawn packs (yet)
            self.zone.npcs = Npcs(self.zone, self.combat, self.combat.data, self.h.clock,
                                  random.Random(3))
            self.zone.npcs.spawn()

    def test_respawnedNpcIsANewReward(self):
        """
        A pack NPC killed, respawned and killed again gives two rewards,
        keyed by its spawn id and its death count, which a respawn keeps.
        """
        brain = self.zone.npcs.bySpawn["greenvale:0:0"]
        wolf = brain.entity
        p = self.player(1, "Hunter", x=wolf.x + 2.0, z=wolf.z)
        self.kill(wolf, p)
        self.h.advance(1.0, steps=int(brain.pack.respawn) + 2)
        self.assertFalse(wolf.combat.dead)
        self.kill(wolf, p)
        kills = [k for k in self.keys(p) if k.startswith("kill:")]
        self.assertEqual(kills, ["kill:greenvale:0:0:b00t:1", "kill:greenvale:0:0:b00t:2"])
        self.assertEqual(self.exp(p), (2, 0))  # 2 x 50: level 2 takes 100


class RetryTests(RewardHelpers, TestCase):
    def setUp(self):
        self.makeWorld(FlakySQL())

    def test_lootGrantedOnceWhenRetried(self):
        """
        A loot grant the database refuses once is retried under the same key
        a second later: the item is in once, and the player told once.
        """
        p = self.player(1, "Solo")
        self.sql.failures, self.sql.what = 1, "_txn_addItem"
        self.kill(self.npc(), p)
        self.assertEqual(self.inventory(p), {})
        self.assertEqual(len(self.world.tasks.pending), 1)  # the loot grant, waiting to retry
        self.h.clock.advance(1.0)
        self.assertEqual(self.inventory(p), {0: ("wolf_pelt", 2)})
        self.assertEqual(len(events(p.peer, "world.loot")), 1)
        self.assertEqual(self.world.tasks.pending, set())
        self.assertEqual(self.keys(p), ["kill:greenvale:test:0:b00t:1",
                                        "loot:greenvale:test:0:b00t:1:wolf_pelt"])

    def test_failedGrantLoggedAndStopWaits(self):
        """
        A grant the database keeps refusing is tried GRANT_TRIES times, then
        logged with the character id, spawn id and key; a stop waits for it.
        """
        p = self.player(1, "Solo")
        self.sql.failures, self.sql.what = GRANT_TRIES, "_txn_grantExp"
        self.kill(self.npc(), p)
        stopped = self.h.stop()
        self.assertNoResult(stopped)
        for _ in range(6):  # tries at 0, 1, 3 and 7 s
            self.h.clock.advance(1.0)
        self.assertNoResult(stopped)
        self.h.clock.advance(1.0)
        self.successResultOf(stopped)
        self.assertEqual(self.exp(p), (1, 0))
        self.assertEqual(self.inventory(p), {0: ("wolf_pelt", 2)})
        [failed] = [e for e in self.logged if "failed: " in e.get("log_format", "")
                    and e.get("key", "").startswith("kill:")]
        self.assertEqual((failed["character_id"], failed["spawn_id"], failed["key"]),
                         (p.cid, "greenvale:test:0", "kill:greenvale:test:0:b00t:1"))

    def test_fullInventoryLosesTheItemLogged(self):
        """An item that finds no room is not retried: logged, the rest of the loot still comes."""
        p = self.player(1, "Solo")
        for slot in range(64):
            self.successResultOf(self.world.progression.addItem(p.cid, "rock", 1, f"r{slot}",
                                                                slot=slot))
        self.kill(self.npc(), p)
        self.assertEqual(self.exp(p), (1, 50))
        self.assertEqual(events(p.peer, "world.loot"), [])
        self.assertTrue(any(e.get("key") == "loot:greenvale:test:0:b00t:1:wolf_pelt"
                            for e in self.logged if "failed" in e.get("log_format", "")))
