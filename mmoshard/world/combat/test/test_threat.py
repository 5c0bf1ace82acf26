"""Tests for threat: the table's order, the 110 % rule and taunt, damage and heal threat, engaging."""

from twisted.trial.unittest import TestCase

from mmoshard.world.combat import records as R
from mmoshard.world.combat.test.combatfixture import Arena, ArenaMixin, recordsOf
from mmoshard.world.combat.threat import Threat


class ThreatTestsMixin(ArenaMixin):
    """Threat on a real zone; C{engine} picks its interest space."""

    def test_threat_order_and_taunt(self):
        """Damage makes threat (times the ability's multiplier); the top is attacked; taunt takes it for its duration."""
        a = self.arena()
        w = a.player(1, "warrior", x=101.0)
        m = a.player(2, "mage", x=110.0)
        wolf = a.npc("boss")
        a.combat.damage(m, wolf, 300)
        a.combat.cast(w, "smash", wolf)  # 200 crit x1.5 = 300 damage, threat x2
        a.step()
        self.assertEqual(wolf.combat.threat.entries(), [(w, 600.0), (m, 300.0)])
        self.assertIs(wolf.combat.threat.top(), w)
        a.combat.damage(m, wolf, 350)  # 650 > 600 but within 110 %: the boss stays on the tank
        self.assertIs(wolf.combat.threat.top(), w)
        a.combat.damage(m, wolf, 100)  # 750 > 660: pulled
        self.assertIs(wolf.combat.threat.top(), m)
        a.combat.cast(w, "taunt", wolf)
        a.step()
        self.assertIs(wolf.combat.threat.top(), w)
        self.assertEqual(wolf.combat.threat.get(w), 751.0)
        a.combat.damage(m, wolf, 500)  # far above, but the taunt holds for 3 s
        self.assertIs(wolf.combat.threat.top(), w)
        self.assertTrue(any(k == ("taunt", w.id) for k in wolf.combat.auras))
        a.seconds(3.0)
        self.assertIs(wolf.combat.threat.top(), m)
        self.assertEqual(wolf.combat.auras, {})

    def test_threat_table(self):
        """Threat: add never goes below 0, ties go to the earliest, remove and clear forget, taunt expires."""
        clock = Arena().clock
        t = Threat(clock)
        x, y, z = object(), object(), object()
        self.assertIsNone(t.top())
        t.add(x, 10)
        t.add(y, 10)
        t.add(z, -5)
        self.assertEqual(t.get(z), 0.0)
        self.assertIs(t.top(), x)
        t.taunt(z, clock.seconds() + 1)
        self.assertEqual(t.entries()[0], (z, 11.0))
        self.assertIs(t.top(), z)
        t.remove(z)
        self.assertIs(t.top(), x)
        t.taunt(y, clock.seconds() + 1)
        clock.advance(1)
        t.add(x, 0.5)
        self.assertIs(t.top(), y)  # taunt over, but x is not 10 % above
        t.clear()
        self.assertEqual((len(t), t.top(), t.entries()), (0, None, []))

    def test_heal_threat_split(self):
        """A heal's threat (healed x multiplier, overheal excluded) is split among the NPCs fighting the one healed."""
        a = self.arena()
        pr = a.player(1, "priest", x=110.0)
        w = a.player(2, "warrior")
        wolf1 = a.npc("wolf")
        wolf2 = a.npc("wolf")
        idle = a.npc("wolf")
        a.combat.engage(wolf1, w, 50.0)
        a.combat.engage(wolf2, w, 50.0)
        w.combat.hp = 800  # 200 missing of a 300 heal: 100 is overheal
        a.combat.cast(pr, "flash", w)
        a.step()
        self.assertEqual(w.combat.hp, 1000)
        self.assertEqual(wolf1.combat.threat.get(pr), 50.0)  # 200 x 0.5 / 2
        self.assertEqual(wolf2.combat.threat.get(pr), 50.0)
        self.assertNotIn(pr, idle.combat.threat)
        self.assertEqual(pr.combat.engaged, {wolf1, wolf2})
        self.assertIn((R.HEAL, 0, 21, pr.id, w.id, 200), recordsOf(w))

    def test_damage_engages_both_ways(self):
        """A player's damage puts it on the NPC's table; an NPC's damage puts its victim on its own."""
        a = self.arena()
        p = a.player(1, "mage")
        q = a.player(2, "mage")
        wolf = a.npc("wolf")
        a.combat.damage(p, wolf, 50)
        self.assertEqual(wolf.combat.threat.get(p), 50.0)
        a.combat.damage(wolf, q, 50)
        self.assertIn(q, wolf.combat.threat)
        self.assertEqual(q.combat.engaged, {wolf})
        self.assertTrue(a.combat.inCombat(q))

    def test_engage_listeners(self):
        """Engage listeners hear when an NPC's empty table gets its first entry, not later additions; a failing one is logged."""
        a = self.arena()
        p = a.player(1, "mage")
        q = a.player(2, "mage")
        wolf = a.npc("wolf")
        heard = []
        a.combat.engageListeners.append(lambda n, e: heard.append((n, e)))
        a.combat.damage(p, wolf, 10)
        a.combat.damage(q, wolf, 10)
        a.combat.engage(wolf, p, 5.0)
        self.assertEqual(heard, [(wolf, p)])
        a.combat.evade(wolf, True)
        a.combat.reset(wolf)
        a.combat.engage(wolf, q)  # evading: no aggro
        self.assertEqual((len(wolf.combat.threat), len(heard)), (0, 1))
        a.combat.evade(wolf, False)
        a.combat.engageListeners.insert(0, lambda n, e: 1 / 0)
        a.combat.engage(wolf, q)
        self.assertEqual(heard[-1], (wolf, q))
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_reset_takes_its_auras_off_its_targets(self):
        """
        A reset NPC (evading) takes the auras it put on those it fought off
        them: its bleed, ticking after it got home, would pull it back into
        the fight.  Others' auras stay.
        """
        a = self.arena()
        p = a.player(1, "priest")
        wolf = a.npc("wolf")
        data = a.combat.data.abilities
        a.combat.damage(p, wolf, 10)
        a.combat.addAura(p, data["ignite"], wolf, 5)  # the wolf's bleed
        a.combat.addAura(p, data["renew"], p, 5)
        recordsOf(p)
        a.combat.evade(wolf, True)
        a.combat.reset(wolf)
        a.combat.evade(wolf, False)  # home
        self.assertEqual(list(p.combat.auras), [("renew", p.id)])
        a.step()
        self.assertIn((R.AURA_OFF, 0, data["ignite"].num, wolf.id, p.id, 0), recordsOf(p))
        a.seconds(10.0)
        self.assertEqual(len(wolf.combat.threat), 0)


class PythonThreatTests(ThreatTestsMixin, TestCase):
    """Threat with the Python interest space."""


class NativeThreatTests(ThreatTestsMixin, TestCase):
    """Threat with the C interest space (its Space.event)."""

    engine = "native"
