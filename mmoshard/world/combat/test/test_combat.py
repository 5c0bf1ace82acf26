"""Tests for the combat core: casts, cooldowns, the GCD, range, threat, effects, auras, death and regeneration."""

import random

from twisted.trial.unittest import TestCase

from mmoshard.world.combat import errors as E
from mmoshard.world.combat import records as R
from mmoshard.world.combat.effects import COMBAT_WINDOW
from mmoshard.world.combat.test.combatfixture import ITEMS, ArenaMixin, recordsOf


class CombatTestsMixin(ArenaMixin):
    """The combat rules on a real zone; C{engine} picks its interest space."""

    # --- membership ---------------------------------------------------------------

    def test_add_player_full(self):
        """A player enters with its kit's health for its level, its resource, and it shows in its enter record."""
        a = self.arena()
        p = a.player(1, "warrior", level=3)
        c = p.combat
        self.assertEqual((c.hp, c.hpMax, c.res, c.resMax, c.team), (1200, 1200, 100, 100, "p"))
        self.assertEqual(c.power, 12.0)
        self.assertEqual(p.fullState()[-4:], [1200, 1200, 0, 0])

    def test_add_player_keeps_combatant(self):
        """A player that already has combat state (another zone of the process) keeps its health and cooldowns."""
        a = self.arena()
        p = a.player(1, "warrior")
        p.combat.hp = 500
        p.combat.cooldowns["taunt"] = 9999.0
        c = p.combat
        b = self.arena()
        self.assertIs(b.combat.addPlayer(p, "warrior", 1), c)
        self.assertEqual((c.hp, c.cooldowns["taunt"]), (500, 9999.0))

    def test_remove_leaves_threat_tables(self):
        """remove() stops the cast, drops auras and takes the entity off every threat table, both ways."""
        a = self.arena()
        p = a.player(1, "mage")
        wolf = a.npc("wolf")
        a.combat.engage(wolf, p, 10.0)
        a.combat.addAura(p, a.combat.data.abilities["weaken"], wolf, 0.0)
        a.combat.cast(p, "bolt", wolf)
        a.combat.remove(p)
        self.assertEqual((p.combat.cast, p.combat.auras, p.combat.engaged), (None, {}, set()))
        self.assertNotIn(p, wolf.combat.threat)
        self.assertNotIn(p, a.combat.active)
        a.combat.engage(wolf, a.player(2, "mage"), 5.0)
        a.combat.remove(wolf)
        self.assertEqual(len(wolf.combat.threat), 0)

    # --- instants, the GCD and cooldowns -------------------------------------------------

    def test_instant_resolves_next_tick(self):
        """An instant returns 0 at once; its damage, cost and finish record come with the next tick."""
        a = self.arena()
        p = a.player(1, "warrior", x=100.0, z=100.0)
        wolf = a.npc("wolf", x=103.0, z=100.0)
        self.assertEqual(a.combat.cast(p, "strike", wolf), 0.0)
        self.assertEqual((wolf.combat.hp, p.combat.res), (1000, 100))
        a.step()
        self.assertEqual((wolf.combat.hp, p.combat.res), (900, 90))
        recs = recordsOf(p)
        kinds = [r[0] for r in recs]
        self.assertIn(R.CAST_FINISH, kinds)
        self.assertIn((R.DAMAGE, 0, 1, p.id, wolf.id, 100), recs)
        self.assertIn((R.HEALTH, 0, 0, wolf.id, 1000, 900), recs)
        self.assertIn((R.RESOURCE, 0, 0, p.id, 100, 90), recs)

    def test_instant_target_gone_at_resolution(self):
        """An instant whose target died before the next tick is interrupted there: no cost, no cooldown."""
        a = self.arena()
        w = a.player(1, "warrior")
        wolf = a.npc("wolf", x=102.0)
        a.combat.cast(w, "smash", wolf)
        a.combat.damage(None, wolf, 5000)
        a.step()
        self.assertEqual((w.combat.res, w.combat.cooldowns), (100, {}))
        self.assertEqual(recordsOf(w, R.CAST_INTERRUPT), [(R.CAST_INTERRUPT, 0, 4, w.id, 0, 0)])

    def test_gcd(self):
        """A GCD ability blocks the next for 1.5 s with retry_after; off-GCD abilities still go; then it is ready."""
        a = self.arena()
        p = a.player(1, "warrior")
        wolf = a.npc("wolf", x=102.0)
        a.combat.cast(p, "strike", wolf)
        e = self.assertError(E.ON_COOLDOWN, a.combat.cast, p, "strike", wolf)
        self.assertAlmostEqual(e.retry_after, 1.5)
        self.assertEqual(a.combat.cast(p, "taunt", wolf), 0.0)  # off the GCD
        a.step(10)
        e = self.assertError(E.ON_COOLDOWN, a.combat.cast, p, "smash", wolf)
        self.assertAlmostEqual(e.retry_after, 0.5)
        a.step(5)
        self.assertEqual(a.combat.cast(p, "smash", wolf), 0.0)

    def test_cooldown(self):
        """An ability's cooldown starts when it resolves and refuses it with retry_after until it ends."""
        a = self.arena()
        p = a.player(1, "warrior")
        wolf = a.npc("wolf", x=102.0)
        a.combat.cast(p, "taunt", wolf)
        # Queued, not yet resolved: a second one in the same tick is refused too.
        self.assertError(E.ON_COOLDOWN, a.combat.cast, p, "taunt", wolf)
        a.step()
        e = self.assertError(E.ON_COOLDOWN, a.combat.cast, p, "taunt", wolf)
        self.assertAlmostEqual(e.retry_after, 8.0)
        a.seconds(7.9)
        self.assertError(E.ON_COOLDOWN, a.combat.cast, p, "taunt", wolf)
        a.step()
        self.assertEqual(a.combat.cast(p, "taunt", wolf), 0.0)

    # --- cast times, movement and range ------------------------------------------------------

    def test_cast_time(self):
        """A cast starts with CAST_START, the GCD at once, and its cost and effect come at the tick it ends."""
        a = self.arena()
        p = a.player(1, "mage", level=2)
        wolf = a.npc("wolf", x=120.0)
        self.assertEqual(a.combat.cast(p, "bolt", wolf), 2.0)
        self.assertError(E.BUSY, a.combat.cast, p, "lucky", wolf)
        a.step()
        self.assertIn((R.CAST_START, 0, 10, p.id, wolf.id, 2000), recordsOf(p))
        a.step(18)
        self.assertEqual((wolf.combat.hp, p.combat.res), (1000, 500))
        a.step()
        # 200 + 10 per level above 1 + power (22).
        self.assertEqual((wolf.combat.hp, p.combat.res, p.combat.cast), (768, 480, None))
        self.assertIn((R.CAST_FINISH, 0, 10, p.id, wolf.id, 0), recordsOf(p))

    def test_moving_interrupts(self):
        """Moving during a cast interrupts it: a CAST_INTERRUPT record, no cost, no effect, no cooldown."""
        a = self.arena()
        p = a.player(1, "mage")
        wolf = a.npc("wolf", x=120.0)
        a.combat.cast(p, "bolt", wolf)
        a.step(5)
        a.moveTo(p, 100.5, 100.0)
        a.step()
        self.assertIsNone(p.combat.cast)
        self.assertIn((R.CAST_INTERRUPT, 0, 10, p.id, 0, 0), recordsOf(p))
        a.step(20)
        self.assertEqual((wolf.combat.hp, p.combat.res), (1000, 500))

    def test_range_edge(self):
        """Exactly at the ability's range is in range; a centimetre beyond is combat.out_of_range."""
        a = self.arena()
        p = a.player(1, "warrior", x=100.0, z=100.0)
        wolf = a.npc("wolf", x=103.0, z=104.0)  # 5 m
        self.assertEqual(a.combat.cast(p, "strike", wolf), 0.0)
        far = a.npc("wolf", x=105.01, z=100.0)
        a.step(20)
        self.assertError(E.OUT_OF_RANGE, a.combat.cast, p, "strike", far)

    def test_range_rechecked_at_finish(self):
        """A target that walks out of range during the cast interrupts it at the end."""
        a = self.arena()
        p = a.player(1, "mage")
        wolf = a.npc("wolf", x=120.0)
        a.combat.cast(p, "bolt", wolf)
        a.moveTo(wolf, 131.0, 100.0)
        a.step(20)
        self.assertIsNone(p.combat.cast)
        self.assertEqual(wolf.combat.hp, 1000)
        self.assertEqual(recordsOf(p, R.CAST_INTERRUPT), [(R.CAST_INTERRUPT, 0, 10, p.id, 0, 0)])

    def test_dead_target_at_finish(self):
        """A target that dies during the cast interrupts it; a stopped cast costs nothing."""
        a = self.arena()
        p = a.player(1, "mage")
        q = a.player(2, "mage")
        wolf = a.npc("wolf", x=120.0)
        a.combat.cast(p, "bolt", wolf)
        a.combat.cast(q, "bolt", wolf)
        a.combat.damage(q, wolf, 5000)
        a.step(20)
        self.assertEqual(p.combat.res, 500)
        self.assertEqual(recordsOf(p, R.CAST_INTERRUPT)[0][:5], (R.CAST_INTERRUPT, 0, 10, p.id, 0))
        self.assertFalse(a.combat.stopCast(q))

    def test_stop_cast(self):
        """world.stop_cast cancels a cast: an interrupt record, no cost; stopping nothing says False."""
        a = self.arena()
        p = a.player(1, "mage")
        wolf = a.npc("wolf", x=120.0)
        a.combat.cast(p, "bolt", wolf)
        self.assertTrue(a.combat.stopCast(p))
        self.assertFalse(a.combat.stopCast(p))
        a.step(25)
        self.assertEqual((wolf.combat.hp, p.combat.res), (1000, 500))

    # --- errors --------------------------------------------------------------------------

    def test_error_codes(self):
        """Every refusal of world.cast has its code: dead, unknown, busy, cooldown, resource, target, range."""
        a = self.arena()
        p = a.player(1, "warrior")
        m = a.player(2, "mage")
        wolf = a.npc("wolf", x=102.0)
        far = a.npc("wolf", x=190.0)
        self.assertError(E.UNKNOWN_ABILITY, a.combat.cast, p, "bolt", wolf)  # not its kit
        self.assertError(E.UNKNOWN_ABILITY, a.combat.cast, p, "nope", wolf)
        self.assertError(E.UNKNOWN_ABILITY, a.combat.cast, p, "fireball", wolf)  # an NPC's
        self.assertError(E.UNKNOWN_ABILITY, a.combat.cast, p, ["strike"], wolf)
        self.assertError(E.INVALID_TARGET, a.combat.cast, p, "strike", None)
        self.assertError(E.INVALID_TARGET, a.combat.cast, p, "strike", m)  # no pvp here
        self.assertError(E.OUT_OF_RANGE, a.combat.cast, p, "strike", far)
        p.combat.res = 5
        self.assertError(E.NO_RESOURCE, a.combat.cast, p, "strike", wolf)
        a.combat.cast(m, "bolt", wolf)
        self.assertError(E.BUSY, a.combat.cast, m, "bolt", wolf)
        a.combat.damage(wolf, p, 10000)
        self.assertError(E.DEAD, a.combat.cast, p, "nope", wolf)  # dead is checked first
        self.assertError(E.NOT_DEAD, a.combat.release, m)

    def test_invalid_targets(self):
        """Enemy effects need a living, non-immune enemy; heals a living ally; resurrection a dead ally."""
        a = self.arena()
        pr = a.player(1, "priest")
        w = a.player(2, "warrior", x=101.0)
        wolf = a.npc("wolf", x=102.0)
        self.assertError(E.INVALID_TARGET, a.combat.cast, pr, "flash", wolf)
        self.assertError(E.INVALID_TARGET, a.combat.cast, pr, "rez", w)  # alive
        self.assertError(E.INVALID_TARGET, a.combat.cast, pr, "weaken", w)
        wolf.combat.immune = True
        self.assertError(E.INVALID_TARGET, a.combat.cast, pr, "weaken", wolf)
        wolf.combat.immune = False
        a.combat.damage(wolf, w, 5000)
        self.assertError(E.INVALID_TARGET, a.combat.cast, pr, "flash", w)
        a.combat.damage(pr, wolf, 5000)
        self.assertError(E.INVALID_TARGET, a.combat.cast, pr, "weaken", wolf)
        self.assertEqual(a.combat.cast(pr, "rez", w), 3.0)

    def test_ally_ability_without_target_is_self(self):
        """A heal with no target heals the caster."""
        a = self.arena()
        pr = a.player(1, "priest")
        pr.combat.hp = 100
        pr.combat.combatUntil = a.clock.seconds() + 60  # no natural regeneration
        a.combat.cast(pr, "flash")
        a.step()
        self.assertEqual(pr.combat.hp, 400)

    # --- effects -------------------------------------------------------------------------

    def test_shield_absorbs(self):
        """A shield absorbs damage first (ABSORBED flag) and goes when spent."""
        a = self.arena()
        pr = a.player(1, "priest")
        wolf = a.npc("wolf")
        a.combat.cast(pr, "ward", pr)
        a.step()
        self.assertEqual(pr.combat.absorb, 150)
        self.assertEqual(a.combat.damage(wolf, pr, 100), 0)
        self.assertEqual(a.combat.damage(wolf, pr, 100), 50)
        self.assertEqual((pr.combat.hp, pr.combat.absorb, pr.combat.auras), (650, 0, {}))
        a.step()
        recs = recordsOf(pr)
        self.assertIn((R.DAMAGE, R.ABSORBED, 0, wolf.id, pr.id, 0), recs)
        self.assertIn((R.DAMAGE, R.ABSORBED, 0, wolf.id, pr.id, 50), recs)
        self.assertIn((R.AURA_OFF, 0, 23, pr.id, pr.id, 0), recs)

    def test_dot_ticks_and_expires(self):
        """An over-time effect ticks every period until its duration ends, then goes; the bearer goes idle."""
        a = self.arena()
        p = a.player(1, "mage")
        wolf = a.npc("wolf", x=110.0)
        a.combat.cast(p, "ignite", wolf)
        a.step()
        self.assertIn((R.AURA_ON, 0, 12, p.id, wolf.id, 10000), recordsOf(p))
        a.seconds(1.9)
        self.assertEqual(wolf.combat.hp, 1000)
        a.step()
        self.assertEqual(wolf.combat.hp, 990)
        a.seconds(8.0)
        self.assertEqual(wolf.combat.hp, 950)  # 5 ticks
        self.assertEqual(wolf.combat.auras, {})
        self.assertIn((R.AURA_OFF, 0, 12, p.id, wolf.id, 0), recordsOf(p))
        a.seconds(5.0)
        self.assertEqual(wolf.combat.hp, 950)
        self.assertEqual(wolf.combat.threat.get(p), 50.0)

    def test_hot_and_buff(self):
        """A heal over time ticks; a healing_taken buff doubles heals and goes when it expires."""
        a = self.arena()
        pr = a.player(1, "priest")
        pr.combat.combatUntil = a.clock.seconds() + 60  # no natural regeneration
        pr.combat.hp = 100
        a.combat.cast(pr, "fortify")
        a.step()
        self.assertEqual(pr.combat.mods, {"healing_taken": 1.0})
        a.combat.cast(pr, "renew")
        a.step()
        a.seconds(3.0)
        self.assertEqual(pr.combat.hp, 140)
        a.seconds(8.0)
        self.assertEqual(pr.combat.mods, {})
        self.assertEqual(pr.combat.hp, 180)

    def test_crit(self):
        """A crit deals x1.5 with the CRIT flag; crits follow the seeded Random."""
        a = self.arena(seed=7)
        w = a.player(1, "warrior", x=101.0)
        m = a.player(2, "mage", x=110.0)
        wolf = a.npc("wolf")
        a.combat.cast(w, "smash", wolf)
        a.step()
        self.assertIn((R.DAMAGE, R.CRIT, 4, w.id, wolf.id, 300), recordsOf(w))
        replay = random.Random(7)
        replay.random()  # the smash's roll
        expected = []
        other = a.npc("boss", x=101.0)
        for _ in range(6):
            expected.append(150 if replay.random() < 0.5 else 100)
            a.combat.cast(m, "lucky", other)
            a.step()
        got = [r[5] for r in recordsOf(m, R.DAMAGE) if r[2] == 13]
        self.assertEqual(got, expected)
        self.assertEqual({150, 100}, set(expected))

    def test_debuff_mod(self):
        """A damage_taken debuff adds its magnitude to the damage the bearer takes."""
        a = self.arena()
        pr = a.player(1, "priest")
        wolf = a.npc("wolf")
        a.combat.cast(pr, "weaken", wolf)
        a.step()
        self.assertEqual(a.combat.damage(pr, wolf, 100), 150)

    def test_interrupt(self):
        """An interrupt stops the target's cast (CAST_INTERRUPT naming the interrupter) and locks the ability out."""
        a = self.arena()
        w = a.player(1, "warrior", x=102.0)
        cult = a.npc("mage")
        self.assertEqual(a.combat.cast(cult, "fireball", w), 2.0)
        a.step()
        a.combat.cast(w, "kick", cult)
        a.step()
        self.assertIsNone(cult.combat.cast)
        self.assertIn((R.CAST_INTERRUPT, 0, 40, cult.id, w.id, 0), recordsOf(w))
        self.assertError(E.ON_COOLDOWN, a.combat.cast, cult, "fireball", w)
        a.seconds(4.0)
        self.assertEqual(a.combat.cast(cult, "fireball", w), 2.0)

    def test_area(self):
        """An area ability hits the nearest enemies within its radius, up to its maximum, never allies."""
        a = self.arena()
        m = a.player(1, "mage", x=100.0, z=100.0)
        ally = a.player(2, "warrior", x=120.0, z=100.0)
        near = a.npc("wolf", x=121.0, z=100.0)
        nearer = a.npc("wolf", x=120.0, z=101.0)
        third = a.npc("wolf", x=126.0, z=100.0)
        outside = a.npc("wolf", x=129.0, z=100.0)
        a.step(2)  # the mage sees them
        self.assertError(E.OUT_OF_RANGE, a.combat.cast, m, "blast", None, 131.0, 100.0)
        self.assertError(E.INVALID_TARGET, a.combat.cast, m, "blast", None, -5.0, 100.0)
        a.combat.cast(m, "blast", None, 120.0, 100.0)
        a.step()
        hp = [e.combat.hp for e in (ally, nearer, near, third, outside)]
        self.assertEqual(hp, [1000, 950, 950, 1000, 1000])

    def test_npc_area_around_itself(self):
        """An NPC's area ability without a point centres on the NPC and hits the players around it."""
        a = self.arena()
        m = a.player(1, "mage", x=100.0, z=100.0)
        near = a.player(2, "mage", x=105.0, z=100.0)
        far = a.player(3, "mage", x=100.0, z=130.0)
        cult = a.npc("mage", x=100.0, z=104.0)
        other = a.npc("wolf", x=100.0, z=103.0)
        self.assertEqual(a.combat.cast(cult, "nova", None, 150.0, 150.0), 0.0)  # point-blank: no point
        a.step()
        self.assertEqual([e.combat.hp for e in (m, near, far, other)], [570, 570, 600, 1000])

    def test_immune(self):
        """An immune (evading) NPC takes nothing: a DAMAGE record with IMMUNE and 0, and no threat."""
        a = self.arena()
        p = a.player(1, "mage")
        wolf = a.npc("wolf")
        a.combat.evade(wolf, True)
        self.assertEqual(a.combat.damage(p, wolf, 500), 0)
        self.assertEqual((wolf.combat.hp, len(wolf.combat.threat)), (1000, 0))
        a.step()
        recs = recordsOf(p)
        self.assertIn((R.EVADE, 0, 0, wolf.id, 0, 1), recs)
        self.assertIn((R.DAMAGE, R.IMMUNE, 0, p.id, wolf.id, 0), recs)

    def test_swing(self):
        """An NPC swing rolls in its damage range within its attack range, and does nothing beyond."""
        a = self.arena(seed=3)
        p = a.player(1, "warrior", x=103.0)
        wolf = a.npc("wolf")
        dealt = [a.combat.swing(wolf, p) for _ in range(20)]
        self.assertTrue(all(10 <= d <= 20 for d in dealt), dealt)
        self.assertGreater(len(set(dealt)), 3)
        a.moveTo(p, 103.1, 100.0)
        self.assertEqual(a.combat.swing(wolf, p), 0)

    # --- death and revival ------------------------------------------------------------------

    def test_death(self):
        """At 0 health: dead, cast stopped, auras gone, DEATH; listeners see the full threat table; then it is cleared."""
        a = self.arena()
        p = a.player(1, "mage")
        q = a.player(2, "mage")
        wolf = a.npc("mage")
        seen = []
        a.combat.deathListeners.append(
            lambda v, k: seen.append((v, k, [e for e, _ in v.combat.threat.entries()], v.combat.deaths)))
        a.combat.damage(q, wolf, 10)
        a.combat.cast(wolf, "fireball", p)
        a.combat.cast(p, "ignite", wolf)
        a.step()
        a.combat.damage(p, wolf, 5000)
        self.assertEqual(seen, [(wolf, p, [p, q], 1)])
        c = wolf.combat
        self.assertEqual((c.dead, c.hp, c.cast, c.auras, len(c.threat)), (True, 0, None, {}, 0))
        self.assertEqual((p.combat.engaged, q.combat.engaged), (set(), set()))
        a.step()
        self.assertIn((R.DEATH, 0, 0, p.id, wolf.id, 0), recordsOf(p))

    def test_dead_never_acts(self):
        """A dead entity casts nothing, swings for nothing, does not regenerate and loses its queued instants."""
        a = self.arena()
        w = a.player(1, "warrior", x=102.0)
        wolf = a.npc("wolf")
        a.combat.cast(w, "strike", wolf)
        a.combat.damage(wolf, w, 5000)
        a.step()
        self.assertEqual(wolf.combat.hp, 1000)
        self.assertError(E.DEAD, a.combat.cast, w, "strike", wolf)
        self.assertError(E.DEAD, a.combat.checkItem, w, ITEMS["potion"])
        self.assertFalse(a.combat.useItem(w, ITEMS["potion"]))
        a.combat.damage(w, wolf, 5000)
        self.assertEqual(a.combat.swing(wolf, w), 0)
        a.seconds(30)
        self.assertEqual((w.combat.hp, w.combat.dead), (0, True))
        self.assertEqual(a.combat.damage(w, wolf, 10), 0)
        self.assertEqual(a.combat.heal(w, w, 10), 0)

    def test_release(self):
        """A dead player released is at the graveyard with full health, told by REVIVE and a correction."""
        a = self.arena(graveyard=(10.0, 0.0, 20.0))
        p = a.player(1, "mage")
        wolf = a.npc("wolf")
        a.combat.damage(wolf, p, 5000)
        p.session.clear()
        a.combat.release(p)
        self.assertEqual((p.x, p.z, p.combat.hp, p.combat.dead), (10.0, 20.0, 600, False))
        self.assertEqual(p.session.of("world.correct")[0]["why"], "teleport")
        a.step()
        self.assertIn((R.REVIVE, 0, 0, 0, p.id, 600), recordsOf(p))

    def test_resurrect(self):
        """The resurrection ability revives a dead ally at its fraction of maximum health."""
        a = self.arena()
        pr = a.player(1, "priest")
        w = a.player(2, "warrior", x=110.0)
        a.combat.damage(None, w, 5000)
        a.combat.cast(pr, "rez", w)
        a.seconds(3.0)
        self.assertEqual((w.combat.dead, w.combat.hp), (False, 500))
        self.assertIn((R.REVIVE, 0, 0, pr.id, w.id, 500), recordsOf(w))

    def test_reset(self):
        """reset() gives full health and resource and clears cast, auras, cooldowns and threat (HEALTH record)."""
        a = self.arena()
        p = a.player(1, "mage")
        cult = a.npc("mage")
        a.combat.damage(p, cult, 300)
        a.combat.cast(p, "ignite", cult)
        a.combat.cast(cult, "fireball", p)
        a.step()
        a.combat.reset(cult)
        c = cult.combat
        self.assertEqual((c.hp, c.cast, c.auras, len(c.threat), p.combat.engaged), (800, None, {}, 0, set()))
        a.step()
        self.assertIn((R.HEALTH, 0, 0, cult.id, 800, 800), recordsOf(p))
        a.combat.damage(p, cult, 5000)
        a.combat.reset(cult)
        self.assertFalse(cult.combat.dead)
        a.combat.addNpc(cult, cult.combat.kit)  # a fresh state keeps the death count
        self.assertEqual(cult.combat.deaths, 1)

    # --- regeneration and the active set ----------------------------------------------------

    def test_regeneration(self):
        """The resource regenerates always; health only 5 s after combat, 2 % of maximum a second."""
        a = self.arena()
        m = a.player(1, "mage")
        wolf = a.npc("wolf")
        m.combat.res = 100
        a.combat.damage(wolf, m, 100)
        a.combat.remove(wolf)  # no longer on a table: only the combat window remains
        a.seconds(COMBAT_WINDOW - 0.5)
        self.assertEqual(m.combat.hp, 500)
        self.assertGreater(m.combat.res, 130)
        a.seconds(2.0)
        self.assertIn(m.combat.hp, (512, 524))
        a.seconds(20)
        self.assertEqual(m.combat.hp, 600)

    def test_resource_records_and_level(self):
        """Regeneration sends RESOURCE records in whole points; a new level raises maximum health and refills it."""
        a = self.arena()
        m = a.player(1, "mage")
        m.combat.res = 480.5
        a.seconds(1.0)
        self.assertIn((R.RESOURCE, 0, 0, m.id, 500, 490), recordsOf(m))
        a.combat.setLevel(m, 3)
        self.assertEqual((m.combat.hp, m.combat.hpMax, m.combat.power), (720, 720, 24.0))
        self.assertFalse(a.combat.revive(m, 1.0))

    def test_idle_costs_nothing(self):
        """A combatant with nothing to do leaves the active set the tick visits."""
        a = self.arena()
        m = a.player(1, "mage")
        wolf = a.npc("wolf")
        self.assertEqual(a.combat.active, {m})
        a.step()
        self.assertEqual(a.combat.active, set())
        a.combat.damage(m, wolf, 10)
        self.assertEqual(a.combat.active, {wolf})

    def test_regenerating_waits_for_the_pulse(self):
        """
        A hurt combatant with no cast or aura is not visited by every tick:
        it rests until the next regeneration pulse, then regenerates; a cast
        brings it back at once.
        """
        a = self.arena()
        m = a.player(1, "mage")
        wolf = a.npc("wolf")
        a.combat.damage(wolf, m, 100)
        a.combat.remove(wolf)
        a.step(2)  # a pulse, then a tick between pulses
        self.assertEqual((a.combat.active, a.combat.resting), (set(), {m}))
        a.seconds(COMBAT_WINDOW + 1.0)
        self.assertGreater(m.combat.hp, 500)
        wolf2 = a.npc("wolf")
        a.combat.cast(m, "bolt", wolf2)
        self.assertIn(m, a.combat.active)

    # --- items and pvp ---------------------------------------------------------------------

    def test_items(self):
        """A consumable heals its user at once; its group's cooldown covers other items of the group."""
        a = self.arena()
        p = a.player(1, "mage")
        p.combat.hp = 100
        self.assertEqual(a.combat.checkItem(p, ITEMS["potion"]).id, "potion")
        self.assertTrue(a.combat.useItem(p, ITEMS["potion"]))
        self.assertEqual(p.combat.hp, 350)
        e = self.assertError(E.ON_COOLDOWN, a.combat.checkItem, p, ITEMS["elixir"])
        self.assertAlmostEqual(e.retry_after, 60.0)
        self.assertError(E.UNKNOWN_ABILITY, a.combat.checkItem, p, ITEMS["pelt"])

    def test_pvp(self):
        """Players attack players only where the zone has pvp; they may still heal each other there."""
        a = self.arena(pvp=True)
        p = a.player(1, "warrior")
        q = a.player(2, "priest", x=103.0)
        self.assertTrue(a.combat.isEnemy(p, q))
        a.combat.cast(p, "strike", q)
        a.step()
        self.assertEqual(q.combat.hp, 600)
        a.combat.cast(q, "flash", p)  # full health: all overheal
        a.step()
        self.assertIn((R.HEAL, 0, 21, q.id, p.id, 0), recordsOf(p))
        b = self.arena()
        self.assertFalse(b.combat.isEnemy(b.player(1, "warrior"), b.player(2, "mage")))


class PythonCombatTests(CombatTestsMixin, TestCase):
    """The combat rules with the Python interest space."""


class NativeCombatTests(CombatTestsMixin, TestCase):
    """The combat rules with the C interest space (its Space.event)."""

    engine = "native"
