"""A combatant or NPC whose tick raises is logged and set aside: the rest of the zone's combat and AI goes on."""

from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase

from mmoshard.world.combat import records as R
from mmoshard.world.combat.brain import COMBAT
from mmoshard.world.combat.data import AbilitySpec, ItemSpec, PackSpec
from mmoshard.world.combat.state import Aura
from mmoshard.world.combat.test.combatfixture import Arena, recordsOf
from mmoshard.world.combat.test.test_npcs import NpcWorld


def captureLog(case):
    """@return: a list the global log's events go to for the rest of the test C{case}."""
    logged = []
    globalLogPublisher.addObserver(logged.append)
    case.addCleanup(globalLogPublisher.removeObserver, logged.append)
    return logged


class CombatTickTests(TestCase):
    def test_brokenCombatantSetAside(self):
        """A combatant whose aura raises is logged and loses its auras, while another's cast in the same tick finishes."""
        logged = captureLog(self)
        a = Arena()
        mage = a.player(1, "mage")
        bad = a.player(2, "priest", x=110.0)
        wolf = a.npc("wolf", x=120.0)
        a.combat.cast(mage, "bolt", wolf)
        bad.combat.auras[("broken", 0)] = Aura(None, 0, 0, expires=0.0)  # no ability: raises
        a.combat.active.add(bad)
        a.step()
        self.assertEqual(len(self.flushLoggedErrors(AttributeError)), 1)
        self.assertEqual([(e["zone"], e["entity_id"]) for e in logged if "entity_id" in e
                          and e.get("log_failure")], [("test", 2)])
        self.assertEqual((bad.combat.auras, bad in a.combat.active), ({}, False))
        a.seconds(2.0)
        self.assertEqual(len(recordsOf(mage, R.CAST_FINISH)), 1)
        self.assertLess(wolf.combat.hp, wolf.combat.hpMax)
        self.assertEqual(self.flushLoggedErrors(), [])  # not again each tick


    def test_infiniteAmountsFitRecords(self):
        """An infinite shield (hand-built data; files refuse inf) absorbs 2**31 - 1 points and every record still packs."""
        a = Arena()
        p = a.player(1, "priest")
        a.combat.data.abilities["bulwark"] = AbilitySpec("bulwark", 60, "Bulwark", "item", "shield", "self",
                                                         base=float("inf"), duration=5.0, gcd=0.0)
        item = ItemSpec("bulwark", "Bulwark", kind="consumable", use="bulwark")
        self.assertTrue(a.combat.useItem(p, item))
        self.assertEqual(p.combat.absorb, 2 ** 31 - 1)
        a.step()
        self.assertEqual([r[0] for r in recordsOf(p)], [R.CAST_FINISH, R.AURA_ON])


class NpcTickTests(TestCase):
    def test_brokenNpcSetAside(self):
        """An NPC whose AI raises is logged and stands; the other NPC fighting the same player still attacks it."""
        logged = captureLog(self)
        w = NpcWorld([PackSpec(members=("wolf",), at=(100.0, 100.0), spread=0.0),
                      PackSpec(members=("wolf",), at=(100.0, 120.0), spread=0.0)])
        good, bad = w.brains
        p = w.player(1, 100.0, 110.0)
        w.combat.damage(p, good.entity, 1)
        w.combat.damage(p, bad.entity, 1)
        self.assertEqual((good.state, bad.state), (COMBAT, COMBAT))
        bad.type = None  # its fight reads its type: raises
        w.step(30)
        self.assertEqual(len(self.flushLoggedErrors(AttributeError)), 1)
        self.assertEqual([e["npc_id"] for e in logged if e.get("log_failure")], [bad.entity.id])
        self.assertNotIn(bad, w.npcs.active)
        self.assertIn(good, w.npcs.active)
        self.assertLess(p.combat.hp, p.combat.hpMax)
