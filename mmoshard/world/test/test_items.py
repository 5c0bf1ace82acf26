"""world.inventory and world.item.* in-process: each change once under the client's key, the combat rules, outages."""

from twisted.internet.defer import fail
from twisted.trial.unittest import TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from mmoshard.interfaces import IProgression
from mmoshard.store.errors import SQLUnavailable
from mmoshard.world.test.harness import WorldHarness

POTION = "minor_healing_potion"  # heals 80 (potion_heal), 60 s cooldown, group "potion"
ELIXIR = "elixir_of_might"  # group "elixir", 30 s


@implementer(IProgression)
class LostAnswers:
    """An IProgression whose next C{lose} useItem calls commit and then fail as an outage (the answer lost)."""

    def __init__(self, real):
        self.real = real
        self.lose = 0

    def useItem(self, characterId, slot, itemId, idempotencyKey):
        d = self.real.useItem(characterId, slot, itemId, idempotencyKey)
        if self.lose:
            self.lose -= 1
            d.addCallback(lambda _: fail(SQLUnavailable("the commit's answer was lost (test)")))
        return d

    def grantExp(self, characterId, amount, idempotencyKey):
        return self.real.grantExp(characterId, amount, idempotencyKey)

    def addItem(self, characterId, itemId, count, idempotencyKey, slot=None, stack=None):
        return self.real.addItem(characterId, itemId, count, idempotencyKey, slot, stack)

    def removeItem(self, characterId, itemId, count, idempotencyKey):
        return self.real.removeItem(characterId, itemId, count, idempotencyKey)

    def moveItem(self, characterId, fromSlot, toSlot, idempotencyKey):
        return self.real.moveItem(characterId, fromSlot, toSlot, idempotencyKey)

    def destroyItem(self, characterId, slot, count, idempotencyKey):
        return self.real.destroyItem(characterId, slot, count, idempotencyKey)

    def inventory(self, characterId):
        return self.real.inventory(characterId)


class ItemTests(TestCase):
    def setUp(self):
        self.h = WorldHarness(self)
        self.sql = self.h.sql
        self.world = self.h.world
        self.prog = self.world.progression
        self.cid = self.sql.makeCharacter(1, "Hero", "greenvale", 850.0, 0.0, 850.0)
        self.peer = self.h.client(1)
        self.h.enter(self.peer, self.cid)
        self.entity = self.world.roster.byCharacter[self.cid].entity
        self.combat = self.world.zones["greenvale"].combat

    def give(self, item, count, slot=None):
        self.successResultOf(self.prog.addItem(self.cid, item, count, f"give:{item}:{slot}",
                                               slot=slot))

    def inventory(self):
        return self.successResultOf(self.prog.inventory(self.cid))

    def request(self, kind, **body):
        return self.h.request(self.peer, kind, **body)

    def hurt(self, amount):
        self.combat.damage(None, self.entity, amount)
        return self.entity.combat.hp

    def test_inventory(self):
        """world.inventory lists the occupied slots in order with item and count."""
        self.give("wolf_pelt", 3, slot=5)
        self.give(POTION, 2, slot=1)
        reply = self.request("world.inventory")
        self.assertEqual(reply["slots"], [{"slot": 1, "item": POTION, "count": 2},
                                          {"slot": 5, "item": "wolf_pelt", "count": 3}])

    def test_useAppliesOnceUnderARetriedKey(self):
        """
        world.item.use takes one potion and heals; the same request resent
        (after the cooldown) answers applied false, takes nothing and heals
        nothing more.
        """
        self.give(POTION, 3)
        hp = self.hurt(100)
        reply = self.request("world.item.use", slot=0, key="use-1")
        self.assertEqual((reply["applied"], reply["item"], reply["count"]), (True, POTION, 2))
        self.assertEqual(self.entity.combat.hp, hp + 80)
        self.h.advance(61.0)
        hp = self.hurt(100)
        again = self.request("world.item.use", slot=0, key="use-1")
        self.assertEqual((again["applied"], again["count"]), (False, 2))
        self.assertEqual(self.entity.combat.hp, hp)
        self.assertEqual(self.inventory(), {0: (POTION, 2)})

    def test_resentUseOfTheLastOne(self):
        """A resent use of the slot's last item answers applied false, not item.not_found."""
        self.give(POTION, 1)
        self.assertTrue(self.request("world.item.use", slot=0, key="last")["applied"])
        self.h.advance(61.0)
        again = self.request("world.item.use", slot=0, key="last")
        self.assertEqual((again["applied"], again["item"], again["count"]), (False, None, 0))
        fresh = self.request("world.item.use", slot=0, key="another")
        self.assertEqual(fresh["code"], "item.not_found")

    def test_cooldown(self):
        """A second potion within its group's cooldown is refused with retry_after; after it, it works."""
        self.give(POTION, 3)
        self.request("world.item.use", slot=0, key="a")
        self.h.advance(10.0)
        refused = self.request("world.item.use", slot=0, key="b")
        self.assertEqual(refused["code"], "item.on_cooldown")
        self.assertTrue(49.5 < refused["retry_after"] <= 50.0, refused)
        self.assertEqual(self.inventory(), {0: (POTION, 2)})
        # Another group is not on that cooldown.
        self.give(ELIXIR, 1, slot=1)
        self.assertTrue(self.request("world.item.use", slot=1, key="c")["applied"])
        self.h.advance(51.0)
        self.assertTrue(self.request("world.item.use", slot=0, key="b")["applied"])
        self.assertEqual(self.inventory(), {0: (POTION, 1)})

    def test_deadPlayerCannotUse(self):
        """A dead character's world.item.use is refused as combat.dead and takes nothing."""
        self.give(POTION, 1)
        self.hurt(10 ** 6)
        self.assertTrue(self.entity.combat.dead)
        self.assertEqual(self.request("world.item.use", slot=0, key="k")["code"], "combat.dead")
        self.assertEqual(self.inventory(), {0: (POTION, 1)})

    def test_refusals(self):
        """An empty slot, a material, a slot out of range and malformed fields get their codes."""
        self.give("wolf_pelt", 1, slot=2)
        use = lambda **kw: self.request("world.item.use", **kw).get("code")  # noqa: E731
        self.assertEqual(use(slot=0, key="k"), "item.not_found")
        self.assertEqual(use(slot=2, key="k"), "item.not_usable")
        self.assertEqual(use(slot=64, key="k"), "item.bad_slot")
        self.assertEqual(use(slot=-1, key="k"), "item.bad_slot")
        self.assertEqual(use(slot="0", key="k"), "protocol.bad_request")
        self.assertEqual(use(slot=2), "protocol.bad_request")
        self.assertEqual(use(slot=2, key=""), "protocol.bad_request")
        self.assertEqual(use(slot=2, key="k" * 65), "protocol.bad_request")
        self.assertEqual(use(slot=2, key="k", target="x"), "protocol.bad_request")
        self.give(POTION, 1, slot=3)
        self.assertEqual(use(slot=3, key="k", target=2 ** 31 + 12345), "combat.invalid_target")
        self.assertEqual(self.inventory(), {2: ("wolf_pelt", 1), 3: (POTION, 1)})

    def test_destroy(self):
        """world.item.destroy takes some, then the rest; a resent one changes nothing more."""
        self.give("wolf_pelt", 5)
        reply = self.request("world.item.destroy", slot=0, count=2, key="d1")
        self.assertEqual((reply["item"], reply["count"]), ("wolf_pelt", 3))
        self.assertEqual(self.request("world.item.destroy", slot=0, count=2, key="d1")["count"], 3)
        self.assertEqual(self.request("world.item.destroy", slot=0, count=9, key="d2")["code"],
                         "item.not_found")
        self.assertEqual(self.request("world.item.destroy", slot=0, key="d3")["count"], 0)
        self.assertEqual(self.inventory(), {})
        self.assertEqual(self.request("world.item.destroy", slot=0, key="d4")["code"],
                         "item.not_found")
        self.assertEqual(self.request("world.item.destroy", slot=0, count=0, key="d5")["code"],
                         "protocol.bad_request")

    def test_move(self):
        """world.item.move swaps two slots once per key; a slot out of range is item.bad_slot."""
        self.give("wolf_pelt", 5, slot=0)
        self.give(POTION, 1, slot=1)
        self.assertEqual(self.request("world.item.move", **{"from": 0, "to": 1, "key": "m"}),
                         {"t": "world.item.move", "id": self.h.lastId, "ok": True})
        self.request("world.item.move", **{"from": 0, "to": 1, "key": "m"})  # resent
        self.assertEqual(self.inventory(), {0: (POTION, 1), 1: ("wolf_pelt", 5)})
        self.request("world.item.move", **{"from": 1, "to": 9, "key": "m2"})
        self.assertEqual(self.inventory(), {0: (POTION, 1), 9: ("wolf_pelt", 5)})
        bad = self.request("world.item.move", **{"from": 1, "to": 64, "key": "m3"})
        self.assertEqual(bad["code"], "item.bad_slot")

    def test_notInWorld(self):
        """Item requests from a session with no character in the world are world.not_in_world."""
        peer = self.h.client(2)
        for kind, body in (("world.inventory", {}), ("world.item.use", {"slot": 0, "key": "k"}),
                           ("world.item.destroy", {"slot": 0, "key": "k"}),
                           ("world.item.move", {"from": 0, "to": 1, "key": "k"})):
            self.assertEqual(self.h.request(peer, kind, **body)["code"], "world.not_in_world")

    def test_databaseDownNothingLost(self):
        """
        With the database down every item request is server.unavailable with
        retry_after and changes nothing; resent with the same key once it is
        back, the use applies once.
        """
        self.give(POTION, 2)
        self.hurt(100)
        self.sql.down = True
        for kind, body in (("world.inventory", {}), ("world.item.use", {"slot": 0, "key": "u"}),
                           ("world.item.destroy", {"slot": 0, "key": "d"}),
                           ("world.item.move", {"from": 0, "to": 1, "key": "m"})):
            reply = self.request(kind, **body)
            self.assertEqual((reply["code"], reply["retry_after"]), ("server.unavailable", 5.0))
        self.sql.down = False
        self.assertEqual(self.inventory(), {0: (POTION, 2)})
        hp = self.entity.combat.hp
        self.assertTrue(self.request("world.item.use", slot=0, key="u")["applied"])
        self.assertEqual(self.entity.combat.hp, hp + 80)
        self.assertEqual(self.inventory(), {0: (POTION, 1)})

    def test_hungDatabaseOneUseAtATime(self):
        """While a use waits for the database, a second one is item.on_cooldown; the first applies once."""
        self.give(POTION, 2)
        self.hurt(100)
        hp = self.entity.combat.hp
        self.sql.holding = True
        self.peer.send({"t": "world.item.use", "id": "first", "slot": 0, "key": "a"})
        second = self.request("world.item.use", slot=0, key="b")
        self.assertEqual((second["code"], second["retry_after"]), ("item.on_cooldown", 0.25))
        self.sql.unhold()
        self.h.advance(0.01)
        [first] = [m for m in self.peer.received() if m.get("id") == "first"]
        self.assertTrue(first["applied"])
        self.assertEqual(self.entity.combat.hp, hp + 80)
        self.assertEqual(self.inventory(), {0: (POTION, 1)})

    def loseAnswers(self, count=1):
        """The next C{count} item uses commit but answer as an outage."""
        lost = LostAnswers(self.prog)
        verifyObject(IProgression, lost)
        lost.lose = count
        self.world.items.progression = lost

    def test_lostAnswerOfTheLastOne(self):
        """
        A use whose commit's answer is lost took the slot's last potion
        without its effect: resent, it heals once (applied true) and takes
        nothing more; resent again, it is applied false.
        """
        self.give(POTION, 1)
        self.hurt(100)
        hp = self.entity.combat.hp
        self.loseAnswers()
        self.assertEqual(self.request("world.item.use", slot=0, key="u")["code"], "server.unavailable")
        self.assertEqual((self.inventory(), self.entity.combat.hp), ({}, hp))
        again = self.request("world.item.use", slot=0, key="u")
        self.assertEqual((again["applied"], again["item"], again["count"]), (True, POTION, 0))
        self.assertEqual(self.entity.combat.hp, hp + 80)
        self.h.advance(61.0)
        hp = self.hurt(100)
        self.assertFalse(self.request("world.item.use", slot=0, key="u")["applied"])
        self.assertEqual(self.entity.combat.hp, hp)

    def test_lostAnswerTakesNoSecondItem(self):
        """Resending a use whose answer was lost applies its effect once and leaves the other potions."""
        self.give(POTION, 3)
        self.hurt(150)
        hp = self.entity.combat.hp
        self.loseAnswers()
        self.request("world.item.use", slot=0, key="u")
        again = self.request("world.item.use", slot=0, key="u")
        self.assertEqual((again["applied"], again["count"]), (True, 2))
        self.assertEqual(self.entity.combat.hp, hp + 80)
        self.assertEqual(self.inventory(), {0: (POTION, 2)})
        self.assertEqual(self.world.items.unsure, {})
