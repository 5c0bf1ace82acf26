"""Tests for a raid party's decisions on fabricated world.u and world.encounter messages."""

from twisted.trial.unittest import TestCase

from mmoshard.bots.combat import NPC_BASE, Ability, Kit
from mmoshard.bots.raidmind import (
    ARRIVED, DAMAGE_ROLE, FOLLOW, GATHER, HEALER, HOLD, LOOT_WAIT, TANK, Member, PartyMind, RaidFighter,
    roleKit, route)
from mmoshard.bots.test.test_combat import npc, player, u
from mmoshard.world.combat.records import CAST_START, DAMAGE, DEATH, EVADE, HEALTH, REVIVE, record

TANK_ID, HEALER_ID, MAGE_ID, ROGUE_ID, RANGER_ID = 1, 2, 3, 4, 5
BOSS, ADD1, ADD2 = NPC_BASE + 1, NPC_BASE + 2, NPC_BASE + 3

STRIKE = Ability("strike", 1, "damage", "enemy", range=5.0, cooldown=3.0)
CLAP = Ability("clap", 2, "damage", "area", radius=8.0)
TAUNT = Ability("taunt", 3, "taunt", "enemy", range=25.0, cooldown=8.0, gcd=0.0)
MEND = Ability("mend", 20, "heal", "ally", range=40.0, cast=1.5)
RENEW = Ability("renew", 23, "heal", "ally", range=40.0, duration=12.0)
SMITE = Ability("smite", 21, "damage", "enemy", range=30.0)
FIREBALL = Ability("fireball", 10, "damage", "enemy", range=35.0)
STAB = Ability("stab", 11, "damage", "enemy", range=5.0)

KITS = {
    TANK: Kit.build("warrior", [STRIKE, CLAP, TAUNT]),
    HEALER: Kit.build("priest", [MEND, SMITE]),
    DAMAGE_ROLE: Kit.build("mage", [FIREBALL]),
}


def party(at=(0.0, 0.0), bosses=("boss",), waypoints=()):
    """A party of five standing at C{at}, every member inside and armed. @return: (mind, members by id)."""
    mind = PartyMind(bosses, waypoints)
    roles = [(TANK_ID, TANK), (HEALER_ID, HEALER), (MAGE_ID, DAMAGE_ROLE), (ROGUE_ID, DAMAGE_ROLE),
             (RANGER_ID, DAMAGE_ROLE)]
    members = [Member(slot, role, cid, at[0], at[1], True) for slot, (cid, role) in enumerate(roles)]
    mind.setMembers(members)
    for m in members:
        kit = Kit.build("rogue", [STAB]) if m.cid == ROGUE_ID else KITS[m.role]
        m.fighter = RaidFighter(m.cid, kit, m.role, mind)
    return mind, {m.cid: m for m in members}


def see(members, message, now=0.0):
    """Every member takes in the same world.u (they share the instance's view)."""
    for m in members.values():
        m.fighter.update(message, now)


class TankTests(TestCase):
    def test_pulls_the_nearest_when_gathered(self):
        """With everyone inside, alive and near, the tank walks to the nearest living NPC; damage dealers wait."""
        mind, ms = party()
        see(ms, u(e=[npc(BOSS, 40, 0), npc(ADD1, 20, 0, dead=1)]))
        tank = ms[TANK_ID].fighter
        self.assertEqual(tank.decide(0.0, 0.0, False, 0.0), ("walk", 40, 0))
        self.assertEqual(tank.target, BOSS)
        self.assertIsNone(mind.focus())
        self.assertEqual(ms[MAGE_ID].fighter.decide(0.0, 0.0, False, 0.0), ("idle",))

    def test_waits_for_the_party(self):
        """A member dead, outside or farther than GATHER: the tank pulls nothing and stands."""
        for change in ({"inside": False}, {"x": GATHER + 1.0}):
            mind, ms = party()
            see(ms, u(e=[npc(BOSS, 40, 0)]))
            for k, v in change.items():
                setattr(ms[MAGE_ID], k, v)
            self.assertEqual(ms[TANK_ID].fighter.decide(0.0, 0.0, False, 0.0), ("idle",))
        mind, ms = party()
        see(ms, u(e=[npc(BOSS, 40, 0)], combat=[record(DEATH, BOSS, HEALER_ID)]))
        self.assertFalse(mind.readyToPull())

    def test_taunts_what_hits_someone_else(self):
        """An NPC whose last blow went to the healer becomes the tank's target and is taunted, in range, standing."""
        mind, ms = party()
        see(ms, u(e=[npc(BOSS, 3, 0), npc(ADD1, 20, 0)]))
        tank = ms[TANK_ID].fighter
        see(ms, u(combat=[record(DAMAGE, BOSS, TANK_ID, 5), record(DAMAGE, ADD1, HEALER_ID, 5)]))
        self.assertEqual(tank.decide(0.0, 0.0, True, 0.0), ("stand",))
        self.assertEqual(tank.target, ADD1)
        self.assertEqual(tank.decide(0.0, 0.0, False, 0.2), ("cast", TAUNT, ADD1, None, None))
        tank.sent(10, TAUNT, 0.2, ADD1)
        tank.accepted(10, 0, 0.21)
        # Taunted: it hits the tank now; the tank walks in to melee it.
        see(ms, u(combat=[record(DAMAGE, ADD1, TANK_ID, 5)]))
        self.assertEqual(tank.decide(0.0, 0.0, False, 0.4), ("walk", 20, 0))

    def test_taunt_is_not_in_the_rotation(self):
        """On an NPC hitting the tank itself, the taunt is never cast: the rotation is its attacks."""
        mind, ms = party()
        tank = ms[TANK_ID].fighter
        see(ms, u(e=[npc(BOSS, 2, 0)], combat=[record(DAMAGE, BOSS, TANK_ID, 5)]))
        casts = set()
        for i in range(20):
            act = tank.decide(0.0, 0.0, False, i * 2.0)
            if act[0] == "cast":
                casts.add(act[1].id)
                tank.sent(10 + i, act[1], i * 2.0, act[2])
                tank.accepted(10 + i, 0, i * 2.0)
        self.assertEqual(casts, {"strike", "clap"})

    def test_walks_the_route_with_nothing_in_view(self):
        """With no NPC in view the tank walks the waypoints in order, a pack's place counted once reached."""
        mind, ms = party(waypoints=((50.0, 0.0, None), (50.0, 50.0, None)))
        tank = ms[TANK_ID]
        self.assertEqual(mind.idle(tank, 0.0), ("walk", 50.0, 0.0))
        tank.x = 50.0 - ARRIVED / 2
        for m in ms.values():
            m.x = tank.x
        self.assertEqual(mind.idle(tank, 1.0), ("walk", 50.0, 50.0))
        tank.z = 50.0
        for m in ms.values():
            m.z = 50.0
        self.assertEqual(mind.idle(tank, 2.0), ("stand",))

    def test_waits_short_of_the_next_place_until_gathered(self):
        """Someone dead or far: the tank walks on but stops HOLD metres short of the next place; gathered, it goes on."""
        mind, ms = party(bosses=("warden",), waypoints=((0.0, 400.0, "warden"),))
        tank = ms[TANK_ID]
        ms[MAGE_ID].fighter.dead = True
        self.assertEqual(mind.idle(tank, 0.0), ("walk", 0.0, 400.0 - HOLD))
        for m in ms.values():
            m.z = 400.0 - HOLD
        self.assertEqual(mind.idle(tank, 1.0), ("stand",))
        ms[MAGE_ID].fighter.dead = False
        self.assertEqual(mind.idle(tank, 2.0), ("walk", 0.0, 400.0))

    def test_goes_back_to_a_boss_alive(self):
        """A boss's place is not done until the boss is dead: after a wipe the tank walks back to it and waits there."""
        mind, ms = party(bosses=("warden",), waypoints=((0.0, 50.0, None), (0.0, 100.0, "warden")))
        mind.visited.add(0)
        tank = ms[TANK_ID]
        self.assertEqual(mind.idle(tank, 0.0), ("walk", 0.0, 100.0))
        for m in ms.values():
            m.z = 99.0
        self.assertEqual(mind.idle(tank, 1.0), ("stand",))
        for m in ms.values():
            m.z = 0.0
        self.assertEqual(mind.idle(tank, 2.0), ("walk", 0.0, 100.0))
        mind.encounter({"boss": "warden", "event": "kill"}, 3.0)
        self.assertEqual(mind.idle(tank, 3.0), ("stand",))


class PartyTargetTests(TestCase):
    def test_focus_is_the_weakest_engaged(self):
        """Damage dealers attack the NPC fighting the party with the least health: adds before the boss."""
        mind, ms = party()
        see(ms, u(e=[npc(BOSS, 10, 0, hp=5000, hpMax=5000), npc(ADD1, 12, 0, hp=300, hpMax=300),
                     npc(ADD2, 14, 0, hp=200, hpMax=300)]))
        see(ms, u(combat=[record(DAMAGE, BOSS, TANK_ID, 5), record(CAST_START, ADD1, TANK_ID, 1000),
                          record(DAMAGE, ADD2, MAGE_ID, 5)]))
        self.assertEqual(mind.focus(), ADD2)
        self.assertEqual(ms[MAGE_ID].fighter.decide(0.0, 0.0, False, 0.0)[:3],
                         ("cast", FIREBALL, ADD2))
        see(ms, u(combat=[record(DEATH, MAGE_ID, ADD2)]))
        self.assertEqual(mind.focus(), ADD1)
        see(ms, u(combat=[record(EVADE, ADD1, 0, 1)]))
        self.assertEqual(mind.focus(), BOSS)

    def test_focus_follows_the_tanks_first_blow(self):
        """Before any NPC fights back, the tank's target is the focus only once the tank has damaged it."""
        mind, ms = party()
        see(ms, u(e=[npc(BOSS, 3, 0)]))
        tank = ms[TANK_ID].fighter
        tank.decide(0.0, 0.0, False, 0.0)
        self.assertEqual(tank.target, BOSS)
        self.assertIsNone(mind.focus())
        see(ms, u(combat=[record(DAMAGE, TANK_ID, BOSS, 30)]))
        self.assertEqual(mind.focus(), BOSS)

    def test_focus_out_of_a_members_view(self):
        """A focus the tank sees but a damage dealer does not (beyond its view): it follows the tank instead."""
        mind, ms = party()
        tank, mage = ms[TANK_ID].fighter, ms[MAGE_ID].fighter
        tank.update(u(e=[npc(BOSS, 60, 0)], combat=[record(DAMAGE, BOSS, TANK_ID, 5)]), 0.0)
        self.assertEqual(mind.focus(), BOSS)
        self.assertEqual(mage.decide(0.0, 0.0, False, 0.0), ("idle",))
        self.assertIsNone(mage.choose(0.0, 0.0))
        mage.update(u(e=[npc(BOSS, 60, 0)]), 0.1)
        self.assertEqual(mage.decide(0.0, 0.0, False, 0.2), ("walk", 60, 0))

    def test_members_follow_the_tank(self):
        """With no focus, damage dealers walk to a few metres of the tank and the healer stays farther back."""
        mind, ms = party()
        ms[TANK_ID].x = 40.0
        mage, healer = ms[MAGE_ID], ms[HEALER_ID]
        self.assertEqual(mage.fighter.decide(0.0, 0.0, False, 0.0), ("idle",))
        self.assertEqual(mind.idle(mage, 0.0), ("walk", 40.0 - FOLLOW[DAMAGE_ROLE], 0.0))
        self.assertEqual(mind.idle(healer, 0.0), ("walk", 40.0 - FOLLOW[HEALER], 0.0))
        healer.x = 40.0 - FOLLOW[HEALER]
        self.assertEqual(mind.idle(healer, 0.1), ("stand",))

    def test_healer_heals_the_most_hurt_and_never_attacks(self):
        """The healer heals the most hurt member in range; with nobody hurt it attacks nothing."""
        mind, ms = party()
        healer = ms[HEALER_ID].fighter
        self.assertEqual(healer.kit.attacks, ())
        see(ms, u(e=[npc(BOSS, 3, 0), player(TANK_ID, 2, 0), player(MAGE_ID, 20, 0)],
                  combat=[record(DAMAGE, BOSS, TANK_ID, 50)]))
        see(ms, u(combat=[record(DAMAGE, TANK_ID, BOSS, 30)]))
        self.assertEqual(healer.decide(0.0, 0.0, False, 0.0), ("idle",))
        see(ms, u(combat=[record(HEALTH, TANK_ID, 100, 40), record(HEALTH, MAGE_ID, 100, 70)]))
        self.assertEqual(healer.decide(0.0, 0.0, False, 0.1), ("cast", MEND, TANK_ID, None, None))

    def test_healer_spares_its_mana(self):
        """A member a little hurt gets the heal over time; a direct heal only when badly hurt, or with the HoT running and still rather hurt."""
        mind, ms = party()
        healer = Kit.build("priest", [MEND, RENEW])
        f = ms[HEALER_ID].fighter = RaidFighter(HEALER_ID, healer, HEALER, mind)
        f.update(u(e=[player(TANK_ID, 5, 0), player(MAGE_ID, 10, 0)]), 0.0)
        f.update(u(combat=[record(HEALTH, TANK_ID, 100, 85)]), 0.0)
        self.assertEqual(f.decide(0.0, 0.0, False, 0.0), ("cast", RENEW, TANK_ID, None, None))
        f.sent(30, RENEW, 0.0, TANK_ID)
        f.accepted(30, 0, 0.01)
        # Renew runs: at 85 % nothing more; at 70 % the direct heal.
        self.assertEqual(f.decide(0.0, 0.0, False, 2.0), ("idle",))
        f.update(u(combat=[record(HEALTH, TANK_ID, 100, 70)]), 2.0)
        self.assertEqual(f.decide(0.0, 0.0, False, 2.1), ("cast", MEND, TANK_ID, None, None))
        f.sent(31, MEND, 2.1, TANK_ID)
        f.accepted(31, 1500, 2.11)
        self.assertEqual(f.decide(0.0, 0.0, True, 2.5), ("stand",))
        # Badly hurt, the mage gets the direct heal first.
        f.update(u(combat=[record(HEALTH, TANK_ID, 100, 100), record(HEALTH, MAGE_ID, 100, 40)]), 4.0)
        self.assertEqual(f.decide(0.0, 0.0, False, 4.0), ("cast", MEND, MAGE_ID, None, None))

    def test_role_kits(self):
        """A healer needs a heal, a tank or damage dealer an attack other than a taunt."""
        self.assertIsNone(roleKit(Kit.build("x", [TAUNT]), TANK))
        self.assertIsNone(roleKit(Kit.build("x", [SMITE]), HEALER))
        self.assertIsNotNone(roleKit(KITS[HEALER], HEALER))
        self.assertIsNone(roleKit(None, DAMAGE_ROLE))


class EncounterTests(TestCase):
    def test_kill_counted_once(self):
        """Five copies of a boss's kill event (one per member) make one kill, with the fight's length from its pull."""
        mind, _ = party(bosses=("warden",))

        def ev(event, health):
            return {"boss": "warden", "event": event, "phase": 1, "health": health,
                    "health_max": 1000}

        self.assertEqual(mind.encounter(ev("pull", 1000), 10.0), "pull")
        self.assertIsNone(mind.encounter(ev("pull", 1000), 10.0))
        self.assertIsNone(mind.encounter(ev("health", 500), 50.0))
        kills = [mind.encounter(ev("kill", 0), 130.0) for _ in range(5)]
        self.assertEqual(kills, ["kill", None, None, None, None])
        self.assertEqual(mind.newKills, [("warden", 120.0)])
        self.assertTrue(mind.cleared())
        self.assertIsNone(mind.encounter(ev("reset", 1000), 131.0))

    def test_reset_then_pull_again(self):
        """A reset ends the fight (once, whoever tells it): the kill's length counts from the next pull."""
        mind, _ = party(bosses=("warden",))
        mind.encounter({"boss": "warden", "event": "pull", "health": 1000}, 0.0)
        self.assertEqual(mind.encounter({"boss": "warden", "event": "reset"}, 30.0), "reset")
        self.assertIsNone(mind.encounter({"boss": "warden", "event": "reset"}, 30.0))
        self.assertEqual(mind.encounter({"boss": "warden", "event": "pull"}, 60.0), "pull")
        mind.encounter({"boss": "warden", "event": "phase", "phase": 2}, 80.0)
        mind.encounter({"boss": "warden", "event": "kill", "health": 0}, 100.0)
        self.assertEqual(mind.newKills, [("warden", 40.0)])
        self.assertEqual(mind.resets, 1)

    def test_fight_seen_late(self):
        """A health event of a boss whose pull it did not see starts the fight there."""
        mind, _ = party(bosses=("warden",))
        self.assertIsNone(mind.encounter({"boss": "warden", "event": "health"}, 5.0))
        mind.encounter({"boss": "warden", "event": "kill"}, 25.0)
        self.assertEqual(mind.newKills, [("warden", 20.0)])

    def test_wipe_is_everyone_dead_at_once(self):
        """All five dead is one wipe, counted once; after a revival the next all-dead is another."""
        mind, ms = party()
        for cid in (TANK_ID, HEALER_ID, MAGE_ID, ROGUE_ID):
            ms[cid].fighter.dead = True
            self.assertFalse(mind.deaths())
        ms[RANGER_ID].fighter.dead = True
        self.assertEqual((mind.deaths(), mind.deaths(), mind.wipes), (True, False, 1))
        ms[TANK_ID].fighter.dead = False
        self.assertFalse(mind.deaths())
        ms[TANK_ID].fighter.dead = True
        self.assertTrue(mind.deaths())
        self.assertEqual(mind.wipes, 2)

    def test_leaves_when_cleared_and_looted(self):
        """The party leaves once every boss is dead and each member got its loot, or LOOT_WAIT after the kill."""
        mind, ms = party(bosses=("a", "b"))
        mind.encounter({"boss": "a", "event": "kill", "health": 0}, 10.0)
        self.assertFalse(mind.shouldLeave(100.0))
        mind.encounter({"boss": "b", "event": "kill", "health": 0}, 200.0)
        self.assertFalse(mind.shouldLeave(201.0))
        for cid in ms:
            mind.lootFor(cid)
        self.assertTrue(mind.shouldLeave(201.0))
        mind.reset()
        mind.killed = {"a", "b"}
        mind.lastKill = 300.0
        self.assertFalse(mind.shouldLeave(300.0 + LOOT_WAIT - 0.1))
        self.assertTrue(mind.shouldLeave(300.0 + LOOT_WAIT))

    def test_revived_npc_fights_again(self):
        """A boss reset after a wipe (EVADE, then REVIVE) is off the tank's table until it hits someone again."""
        mind, ms = party()
        see(ms, u(e=[npc(BOSS, 3, 0)], combat=[record(DAMAGE, BOSS, TANK_ID, 5),
                                               record(DAMAGE, TANK_ID, BOSS, 9)]))
        self.assertEqual(mind.focus(), BOSS)
        see(ms, u(combat=[record(EVADE, BOSS, 0, 1)]))
        self.assertIsNone(mind.focus())
        see(ms, u(combat=[record(EVADE, BOSS, 0, 0), record(REVIVE, 0, BOSS, 100)]))
        self.assertIsNone(mind.focus())
        self.assertEqual(ms[TANK_ID].fighter.choose(0.0, 0.0), BOSS)


class RouteTests(TestCase):
    def test_nearest_next_from_the_entrance(self):
        """The route starts at the waypoint nearest the entrance and goes to the nearest one left each time."""
        class Spec:
            class layout:
                spawns = ((0.0, 0.0, 0.0),)
            packs = (type("P", (), {"at": (100.0, 0.0)}), type("P", (), {"at": (10.0, 0.0)}))
            bosses = (type("B", (), {"at": (50.0, 0.0)}),)

        Spec.bosses[0].id = "boss"
        self.assertEqual(route(Spec), ((10.0, 0.0, None), (50.0, 0.0, "boss"), (100.0, 0.0, None)))
