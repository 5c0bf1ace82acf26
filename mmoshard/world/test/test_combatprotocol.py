"""Combat over the session protocol, in-process: world.cast/stop_cast/release, the combat field, records in world.u, and the combatant following the player."""

import math
import os
import random
import re

from twisted.internet.defer import succeed
from twisted.trial.unittest import TestCase

from mmoshard.testing import checkoutRoot
from mmoshard.world.client import CombatEvent, WorldClient
from mmoshard.world.combat import errors, records as R
from mmoshard.world.sim import NPC, Entity
from mmoshard.world.test.combatdata import GAME, ZONES_TOML
from mmoshard.world.test.harness import WorldHarness, events
from mmoshard.world.test.helpers import requireNative

DUMMY = 2 ** 31 + 1


def seedCombat(world, seed=7):
    """Every zone of C{world} rolls (crits, melee) with a seeded rng."""
    for zone in world.zones.values():
        zone.combat.rng = random.Random(seed)


def spawnNpc(zone, eid, x, z, npcType="dummy"):
    """@return: an NPC entity spawned by hand at (x, z), with its combatant (no AI runs it)."""
    e = Entity(eid, NPC, x, 0.0, z, name=GAME.npcs[npcType].name, cls=npcType, level=1)
    zone.spawn(e)
    zone.combat.addNpc(e, GAME.npcs[npcType])
    return e


def combatRecords(peer):
    """@return: the combat records of every world.u C{peer} received since last asked."""
    out = []
    for u in events(peer, "world.u"):
        out += R.records(u.get("c", b""))
    return out


def kinds(recs):
    return [r[0] for r in recs]


class CombatProtocolTests(TestCase):
    engine = "python"

    def setUp(self):
        if self.engine == "native":
            requireNative()
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(ZONES_TOML)
        self.h = h = WorldHarness(self, zones_file=path, instances_file="", interest=self.engine, game=GAME)
        seedCombat(h.world)
        self.arena = h.world.zones["arena"]
        self.priest = self.character(1, "Prudence", "priest", 100.0, 100.0)
        self.mage = self.character(2, "Magnus", "mage", 110.0, 100.0)
        self.far = self.character(3, "Faraway", "warrior", 300.0, 300.0)
        self.dummy = spawnNpc(self.arena, DUMMY, 115.0, 100.0)

    def character(self, accountId, name, cls, x, z, zone="arena"):
        cid = self.h.sql.makeCharacter(accountId, name, zone, x, 0.0, z)
        self.h.sql.conn.execute("UPDATE characters SET class = ? WHERE id = ?", (cls, cid))
        self.h.sql.conn.commit()
        return cid

    def enter(self, accountId, cid):
        peer = self.h.client(accountId)
        reply = self.h.enter(peer, cid)
        self.assertEqual(reply["t"], "world.enter", reply)
        return peer, reply

    def entity(self, cid):
        return self.h.world.roster.byCharacter[cid].entity

    def cast(self, peer, ability, **body):
        return self.h.request(peer, "world.cast", ability=ability, **body)

    def enterAll(self):
        """Priest, mage and the far warrior enter; their first updates are read."""
        peers = [self.enter(i, cid)[0] for i, cid in
                 ((1, self.priest), (2, self.mage), (3, self.far))]
        self.h.advance()
        for p in peers:
            p.received()
        return peers

    # --- the combat field and enter records ------------------------------------

    def test_enterTellsCombatState(self):
        """
        world.enter's reply carries the character's health, resource and its
        kit's abilities in bar order with their wire numbers; other players'
        enter records carry hp, hp_max and dead.
        """
        _, reply = self.enter(1, self.priest)
        c = reply["combat"]
        self.assertEqual((c["hp"], c["hp_max"], c["dead"]), (200, 200, False))
        self.assertEqual((c["resource"], c["resource_kind"], c["resource_max"]),
                         (1000, "mana", 1000))
        self.assertEqual([(a["id"], a["num"]) for a in c["abilities"]],
                         [("heal", 10), ("smite", 11), ("resurrect", 12)])
        self.assertEqual(c["abilities"][0], {
            "id": "heal", "num": 10, "name": "Heal", "kind": "heal", "target": "ally",
            "range": 40.0, "cast_ms": 1500, "cooldown_ms": 0, "gcd_ms": 1500, "cost": 20,
            "radius": 0.0})
        self.assertEqual(c["cooldowns"], {})
        mage, _ = self.enter(2, self.mage)
        self.h.advance()
        [u] = events(mage, "world.u")
        states = {s[0]: s for s in u["e"]}
        self.assertEqual(states[self.priest][10:], [200, 200, 0, 0])
        self.assertEqual(states[DUMMY][10:], [1000, 1000, 0, 0])

    def test_resumeTellsCombatState(self):
        """A resumed session's world.reset carries the character's combat state as it is now."""
        mage, _ = self.enter(2, self.mage)
        self.arena.combat.damage(self.dummy, self.entity(self.mage), 25)
        mage.lose()
        self.h.advance()
        [reset] = events(self.h.resume(mage), "world.reset")
        self.assertEqual((reset["combat"]["hp"], reset["combat"]["hp_max"]), (175, 200))

    def test_classWithoutKitFightsNothing(self):
        """A character whose class has no kit enters without combat state; its casts are unknown abilities."""
        cid = self.character(5, "Oddity", "juggler", 120.0, 120.0)
        peer, reply = self.enter(5, cid)
        self.assertNotIn("combat", reply)
        self.assertIsNone(self.entity(cid).combat)
        self.assertRefused(self.cast(peer, "fireball", target=DUMMY), errors.UNKNOWN_ABILITY)
        self.assertEqual(self.h.request(peer, "world.stop_cast")["stopped"], False)
        self.assertRefused(self.h.request(peer, "world.release"), errors.NOT_DEAD)
        self.assertEqual(self.h.request(peer, "world.leave")["ok"], True)

    # --- casts and what observers see ------------------------------------------------

    def test_priestHealsAnother(self):
        """
        A priest's heal on a hurt player: {cast_ms}, CAST_START at once, then
        after the cast time HEAL and HEALTH records to both; mana is spent.
        """
        priest, mage, far = self.enterAll()
        m = self.entity(self.mage)
        self.arena.combat.damage(self.dummy, m, 100)
        self.h.advance()
        combatRecords(priest), combatRecords(mage)
        reply = self.cast(priest, "heal", target=self.mage)
        self.assertEqual(reply["cast_ms"], 1500)
        self.h.advance()
        [start] = [r for r in combatRecords(mage) if r[0] == R.CAST_START]
        self.assertEqual(start, (R.CAST_START, 0, 10, self.priest, self.mage, 1500))
        self.h.advance(0.1, 16)
        for peer in (priest, mage):
            recs = combatRecords(peer)
            [heal] = [r for r in recs if r[0] == R.HEAL]
            self.assertEqual((heal[2], heal[3], heal[4], heal[5]), (10, self.priest, self.mage, 60))
            self.assertIn((R.HEALTH, 0, 0, self.mage, 200, 160),
                          [(k, f, 0, a, b, v) for k, f, _, a, b, v in recs])
        self.assertEqual(m.combat.hp, 160)
        self.assertEqual(self.entity(self.priest).combat.res, 980)
        self.assertEqual(combatRecords(far), [])

    def test_damageAtNpcSeenInViewOnly(self):
        """
        An instant damage cast at an NPC answers cast_ms 0; the caster and a
        player in view get DAMAGE and HEALTH in the next world.u; a player
        out of view gets nothing.
        """
        priest, mage, far = self.enterAll()
        self.assertEqual(self.cast(mage, "fire_blast", target=DUMMY)["cast_ms"], 0)
        self.h.advance()
        for peer in (mage, priest):
            recs = combatRecords(peer)
            self.assertIn((R.DAMAGE, 0, 21, self.mage, DUMMY, 40), recs)
            self.assertIn((R.HEALTH, 0, 0, DUMMY, 1000, 960),
                          [(k, f, 0, a, b, v) for k, f, _, a, b, v in recs])
        self.assertEqual(combatRecords(far), [])
        self.assertEqual(self.dummy.combat.hp, 960)

    def test_metrics(self):
        """
        /metrics counts the players' casts accepted and refused by code, the
        damage done, deaths by kind, the NPCs by AI state and the kill's
        rewards with the writes that granted them.
        """
        from prometheus_client import generate_latest

        priest, mage, far = self.enterAll()
        self.assertEqual(self.cast(mage, "fire_blast", target=DUMMY)["cast_ms"], 0)
        self.assertEqual(self.cast(mage, "fire_blast", target=DUMMY)["code"], errors.ON_COOLDOWN)
        self.h.advance()
        self.arena.combat.damage(None, self.dummy, 10 ** 6)
        text = generate_latest(self.h.node.metrics).decode()
        self.assertIn('mmoshard_world_casts_total{zone="arena"} 1.0', text)
        self.assertIn('mmoshard_world_casts_refused_total{code="combat.on_cooldown",zone="arena"} 1.0',
                      text)
        self.assertIn('mmoshard_world_damage_total{zone="arena"} 1000.0', text)
        self.assertIn('mmoshard_world_deaths_total{kind="n",zone="arena"} 1.0', text)
        self.assertIn('mmoshard_world_deaths_total{kind="p",zone="arena"} 0.0', text)
        self.assertIn('mmoshard_world_rewards_total{result="failed"} 0.0', text)
        # The kill's exp and loot, each written on its own (the test's SQL answers at once).
        granted = self.h.world.rewards.granted
        self.assertGreater(granted, 0)
        self.assertIn(f'mmoshard_world_rewards_total{{result="granted"}} {granted:.1f}', text)
        self.assertIn(f"mmoshard_world_reward_writes_total {granted:.1f}", text)

    # --- errors ------------------------------------------------------------------

    def assertRefused(self, reply, code):
        self.assertEqual((reply["t"], reply["code"]), ("error", code), reply)
        return reply

    def test_everyCastError(self):
        """Each combat.* error code answers the request that earns it, over the wire."""
        priest, mage, far = self.enterAll()
        spawnNpc(self.arena, DUMMY + 1, 250.0, 100.0)
        self.assertRefused(self.cast(mage, "heal", target=self.priest), errors.UNKNOWN_ABILITY)
        self.assertRefused(self.cast(mage, "fire_blast", target=DUMMY + 1), errors.OUT_OF_RANGE)
        self.assertRefused(self.cast(mage, "fire_blast", target=999_999), errors.INVALID_TARGET)
        # No pvp in the arena: another player is no enemy.
        self.assertRefused(self.cast(mage, "fire_blast", target=self.priest),
                           errors.INVALID_TARGET)
        self.assertRefused(self.cast(priest, "heal", target=DUMMY), errors.INVALID_TARGET)
        self.assertRefused(self.cast(mage, "meteor", x=110.0, z=100.0), errors.NO_RESOURCE)
        self.assertEqual(self.cast(mage, "fireball", target=DUMMY)["cast_ms"], 2000)
        self.assertRefused(self.cast(mage, "ward"), errors.BUSY)
        self.h.advance(0.1, 25)
        self.assertEqual(self.cast(mage, "fire_blast", target=DUMMY)["cast_ms"], 0)
        gcd = self.assertRefused(self.cast(mage, "fire_blast", target=DUMMY), errors.ON_COOLDOWN)
        self.assertTrue(0 < gcd["retry_after"] <= 8.0, gcd)
        self.h.advance(0.1, 20)
        cd = self.assertRefused(self.cast(mage, "fire_blast", target=DUMMY), errors.ON_COOLDOWN)
        # The cooldown started when the instant cast took effect, at the next tick.
        self.assertTrue(5.9 <= cd["retry_after"] <= 6.2, cd)
        self.assertRefused(self.h.request(priest, "world.release"), errors.NOT_DEAD)
        self.arena.combat.damage(self.dummy, self.entity(self.mage), 10 ** 6)
        self.assertRefused(self.cast(mage, "ward"), errors.DEAD)
        # Dead first, whatever else is wrong (docs/combat.md, "Casting").
        self.assertRefused(self.cast(mage, "fire_blast", target=999_999), errors.DEAD)

    def test_badRequests(self):
        """Mistyped fields are bad requests; a session with no live character is not in the world."""
        priest, mage, far = self.enterAll()
        for body in ({"ability": 5}, {}, {"ability": "fireball", "target": "x"},
                     {"ability": "fireball", "target": True}, {"ability": "meteor", "x": 1.0},
                     {"ability": "meteor", "x": math.nan, "z": 1.0},
                     {"ability": "meteor", "x": 1.0, "z": math.inf}):
            reply = self.h.request(mage, "world.cast", **body)
            self.assertRefused(reply, "protocol.bad_request")
        stranger = self.h.client(9)
        for kind in ("world.cast", "world.stop_cast", "world.release"):
            self.assertRefused(self.h.request(stranger, kind, ability="ward"),
                               "world.not_in_world")

    # --- stop_cast, death, release ------------------------------------------------

    def test_stopCast(self):
        """
        world.stop_cast cancels the cast in progress (a CAST_INTERRUPT with no
        interrupter, nothing spent, no effect); with none it answers stopped false.
        """
        priest, mage, far = self.enterAll()
        self.cast(mage, "fireball", target=DUMMY)
        self.h.advance()
        self.assertEqual(self.h.request(mage, "world.stop_cast"),
                         {"t": "world.stop_cast", "id": self.h.lastId, "ok": True,
                          "stopped": True})
        self.h.advance()
        recs = combatRecords(mage)
        self.assertIn((R.CAST_INTERRUPT, 0, 20, self.mage, 0, 0), recs)
        self.h.advance(0.1, 30)
        self.assertNotIn(R.DAMAGE, kinds(combatRecords(mage)))
        self.assertEqual(self.dummy.combat.hp, 1000)
        self.assertEqual(self.entity(self.mage).combat.res, 1000)
        self.assertFalse(self.h.request(mage, "world.stop_cast")["stopped"])

    def test_deathAndRelease(self):
        """
        A killed player sees its DEATH record, cannot cast, and world.release
        brings it back at the zone's graveyard with full health (a REVIVE
        record); then it casts again.
        """
        priest, mage, far = self.enterAll()
        m = self.entity(self.mage)
        self.arena.combat.damage(self.dummy, m, 10 ** 6)
        self.h.advance()
        for peer in (mage, priest):
            recs = combatRecords(peer)
            self.assertIn((R.DEATH, 0, 0, DUMMY, self.mage, 0),
                          [(k, f, 0, a, b, v) for k, f, _, a, b, v in recs])
        self.assertEqual((m.combat.hp, m.combat.dead), (0, True))
        self.assertEqual(self.cast(mage, "ward")["code"], errors.DEAD)
        reply = self.h.request(mage, "world.release")
        self.assertEqual((reply["x"], reply["z"], reply["k"]), (30.0, 40.0, m.corr))
        self.assertEqual((m.x, m.z, m.combat.hp, m.combat.dead), (30.0, 40.0, 200, False))
        self.h.advance()
        self.assertIn(R.REVIVE, kinds(combatRecords(mage)))
        self.assertEqual(self.cast(mage, "ward")["cast_ms"], 0)

    def test_corpseDoesNotWalk(self):
        """
        A dead player is told to stand (world.correct "dead") and its moves
        are dropped until it is revived; then it walks again.
        """
        priest, mage, far = self.enterAll()
        m = self.entity(self.mage)
        self.arena.combat.damage(self.dummy, m, 10 ** 6)
        self.h.advance()
        [correct] = events(mage, "world.correct")
        self.assertEqual((correct["why"], correct["x"], correct["z"]), ("dead", 110.0, 100.0))
        mage.send({"t": "world.move", "x": 112.0, "z": 100.0, "k": correct["k"]})
        self.h.advance()
        self.assertEqual((m.x, m.z), (110.0, 100.0))
        self.assertEqual(events(mage, "world.correct"), [])
        self.arena.combat.revive(m, 0.5)
        mage.send({"t": "world.move", "x": 112.0, "z": 100.0, "k": correct["k"]})
        self.h.advance()
        self.assertEqual((m.x, m.z), (112.0, 100.0))

    # --- the combatant follows the player -----------------------------------------------

    def test_enterTwiceKeepsState(self):
        """Entering again in the same session answers the current health and keeps the combatant."""
        priest, _ = self.enter(1, self.priest)
        p = self.entity(self.priest)
        combatant = p.combat
        self.arena.combat.damage(self.dummy, p, 50)
        reply = self.h.enter(priest, self.priest)
        self.assertEqual(reply["combat"]["hp"], 150)
        self.assertIs(self.entity(self.priest).combat, combatant)

    def test_zoneChangeKeepsCombatant(self):
        """
        A portal to a zone of the same process keeps health and cooldowns
        (world.zone tells them); the player fights in the new zone's combat.
        """
        cid = self.character(4, "Porter", "mage", 388.0, 200.0)
        peer, _ = self.enter(4, cid)
        e = self.entity(cid)
        combatant = e.combat
        spawnNpc(self.arena, DUMMY + 2, 395.0, 195.0)
        self.assertEqual(self.cast(peer, "fire_blast", target=DUMMY + 2)["cast_ms"], 0)
        self.arena.combat.damage(self.dummy, e, 30)
        self.h.advance()
        peer.received()
        peer.send({"t": "world.move", "x": 391.0, "z": 200.0, "k": 0})
        self.h.advance(0.1, 2)
        [z] = events(peer, "world.zone")
        self.assertEqual(z["zone"]["id"], "yard")
        self.assertEqual(z["combat"]["hp"], 170)
        self.assertTrue(0 < z["combat"]["cooldowns"]["fire_blast"] <= 8000)
        self.assertIs(e.combat, combatant)
        yard = self.h.world.zones["yard"]
        spawnNpc(yard, DUMMY + 3, 55.0, 50.0)
        self.h.advance(0.1, 20)
        peer.received()
        self.assertEqual(self.cast(peer, "fireball", target=DUMMY + 3)["cast_ms"], 2000)
        self.h.advance(0.1, 22)
        self.assertIn((R.DAMAGE, 0, 20, cid, DUMMY + 3, 80), combatRecords(peer))

    def test_logoutMidCastLeavesCombat(self):
        """
        A player whose session ends mid-cast leaves combat before it leaves
        the zone: the cast never lands, the tick goes on for the others.
        """
        priest, mage, far = self.enterAll()
        self.cast(mage, "fireball", target=DUMMY)
        mage.send({"t": "bye", "id": 1})
        self.h.advance(0.1, 30)
        self.assertNotIn(self.mage, self.arena.entities)
        self.assertEqual(self.dummy.combat.hp, 1000)
        self.cast(priest, "smite", target=DUMMY)
        self.h.advance()
        self.assertIn(R.DAMAGE, kinds(combatRecords(priest)))

    def test_levelUpRaisesMaxHealth(self):
        """An exp grant that levels a live player up raises its maximum health, shown as a HEALTH record."""
        priest, mage, far = self.enterAll()
        result = self.successResultOf(self.h.world.progression.grantExp(self.mage, 150, "t:1"))
        self.assertEqual(result[0], 2)
        m = self.entity(self.mage)
        self.assertEqual((m.level, m.combat.level, m.combat.hpMax, m.combat.hp), (2, 2, 220, 220))
        self.h.advance()
        self.assertIn((R.HEALTH, 0, 0, self.mage, 220, 220), combatRecords(priest))


class NativeCombatProtocolTests(CombatProtocolTests):
    engine = "native"


class ClientTests(TestCase):
    """WorldClient's combat: decoding records, keeping health, casting."""

    def test_recordsAndHealth(self):
        """
        Enter records give health; HEALTH, DEATH and REVIVE records update
        it; every record is kept as a CombatEvent; a leave forgets the entity.
        """
        c = WorldClient(None, "tcp:x", "token", 5)
        c.received({"t": "world.reset", "zone": {"id": "arena"}, "x": 1.0, "z": 2.0, "k": 0,
                    "combat": {"hp": 200, "hp_max": 200, "dead": False, "abilities": [
                        {"id": "strike", "num": 1}]}})
        self.assertEqual(c.health[5], [200, 200, False])
        self.assertEqual(c.abilityByNum(1)["id"], "strike")
        self.assertIsNone(c.abilityByNum(2))
        blob = b"".join([
            R.record(R.DAMAGE, 5, 7, 30, ability=1, flags=R.CRIT),
            R.record(R.HEALTH, 7, 100, 70),
            R.record(R.DEATH, 5, 7),
            R.record(R.HEALTH, 5, 200, 150),
        ])
        c.received({"t": "world.u", "e": [[7, "n", "Wolf", "wolf", 1, 3.0, 0.0, 4.0, 0.0, 0.0,
                                           100, 100, 0]], "c": blob})
        self.assertEqual(c.combatEvents[0], CombatEvent(R.DAMAGE, R.CRIT, 1, 5, 7, 30))
        self.assertEqual(c.health[7], [0, 100, True])
        self.assertEqual(c.health[5], [150, 200, False])
        c.received({"t": "world.u", "c": R.record(R.REVIVE, 0, 7, 50)})
        self.assertEqual(c.health[7], [50, 100, False])
        c.received({"t": "world.u", "l": [7]})
        self.assertNotIn(7, c.health)
        self.assertEqual(len(c.combatEvents), 5)

    def test_castSendsTheRequest(self):
        """cast() sends world.cast with the fields given and returns cast_ms."""
        sent = []

        class Session:
            def request(self, kind, **body):
                sent.append((kind, body))
                return succeed({"cast_ms": 1500})

        c = WorldClient(None, "tcp:x", "token", 5)
        c.session = Session()
        self.assertEqual(self.successResultOf(c.cast("heal", target=7)), 1500)
        self.successResultOf(c.cast("meteor", x=1, z=2))
        self.assertEqual(sent, [("world.cast", {"ability": "heal", "target": 7}),
                                ("world.cast", {"ability": "meteor", "x": 1.0, "z": 2.0})])


class DocsTests(TestCase):
    """docs/combat.md's Protocol section covers the codes, requests and records."""

    def setUp(self):
        with open(os.path.join(checkoutRoot(), "docs", "combat.md"), encoding="utf-8") as f:
            text = f.read()
        self.text = text.split("## Protocol", 1)[1].split("\n## ", 1)[0]

    def test_errorCodes(self):
        """Every combat.* error code has a row in the Protocol section's error table."""
        rows = set(re.findall(r"^\| `([a-z_.]+)` \|", self.text, re.MULTILINE))
        self.assertEqual(sorted(set(errors.CODES) - rows), [])

    def test_requests(self):
        """Each combat request is documented with its fields."""
        for kind in ("world.cast {ability, target?, x?, z?}", "world.stop_cast {}",
                     "world.release {}"):
            self.assertIn(f"- `{kind}`", self.text)

    def test_recordKinds(self):
        """The record table lists every kind of records.py with its number, and every flag."""
        flags = ("CRIT", "ABSORBED", "IMMUNE")
        names = [k for k, v in vars(R).items()
                 if k.isupper() and type(v) is int and k not in flags + ("RECORD_SIZE",)]
        self.assertIn("EVADE", names)
        for name in names:
            self.assertIn(f"| {name} | {getattr(R, name)} |", self.text)
        for flag in flags:
            self.assertIn(f"{flag} `0x{getattr(R, flag):02x}`", self.text)
