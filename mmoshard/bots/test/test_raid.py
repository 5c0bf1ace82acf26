"""Tests for the raid bots' wiring: a party formed through chat, into an instance, fighting, out, and the next generation."""

from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import TestCase

from mmoshard.bots import raid
from mmoshard.bots.combat import NPC_BASE
from mmoshard.bots.raidbot import FIRST_CAST_ID, IDS
from mmoshard.wire.codec import decode, encode
from mmoshard.wire.framing import FrameDecoder, frame
from mmoshard.world.combat.records import DAMAGE, DEATH, REVIVE, record

BOSS = NPC_BASE + 9
INSTANCE = "r1/17"


class Transport(StringTransport):
    def setTcpNoDelay(self, enabled):
        pass


class RaidWiringTests(TestCase):
    def setUp(self):
        opts = raid.parseArgs(["--token-key", "k" * 40, "--parties", "2", "--clears", "2",
                               "--template", "r1", "--instances-file", "/nonexistent"])
        self.reactor = MemoryReactorClock()
        self.reactor.advance(1000.0)
        self.run = raid.RaidRun(self.reactor, opts)
        self.run.now = self.reactor.seconds
        self.party = self.run.parties[1]
        self.transports = {}

    def feed(self, bot, message):
        bot.dataReceived(frame(encode(message)))

    def sent(self, bot):
        """The messages C{bot} wrote since the last call."""
        t = self.transports[bot]
        out = [decode(p) for p in FrameDecoder(1 << 20).feed(t.value())]
        t.clear()
        return out

    def connectAll(self):
        """The party's next generation: five bots connected, in the world, chat ready. @return: the bots by slot."""
        first = len(self.reactor.tcpClients)
        self.party.nextGeneration()
        clients = self.reactor.tcpClients[first:]
        self.assertEqual(len(clients), 5)
        classes = raid.partyClasses(self.run.roles, self.party.index)
        bots = []
        for slot, client in enumerate(clients):
            bot = client[2].buildProtocol(None)
            t = self.transports[bot] = Transport()
            bot.makeConnection(t)
            (hello,) = self.sent(bot)
            self.assertEqual((hello["t"], hello["id"]), ("hello", IDS["hello"]))
            self.feed(bot, {"t": "welcome", "id": 1, "session_id": "s", "resume_token": "r",
                            "heartbeat_s": 10.0})
            (enter,) = self.sent(bot)
            self.assertEqual(enter["character_id"], bot.cid)
            cls = classes[slot]
            abilities = [{"id": a} for a in self.run.data.kits[cls].abilities]
            self.feed(bot, {"t": "world.enter", "id": 2, "character_id": bot.cid, "x": 10.0 + slot,
                            "y": 0.0, "z": 10.0, "k": 0, "zone": {"id": "hub"}, "name": f"Bot{bot.cid}",
                            "class": cls, "level": 1, "combat": {"hp": 100, "hp_max": 100,
                                                                 "abilities": abilities}})
            self.assertEqual(self.sent(bot), [{"t": "chat.hello", "id": IDS["chat.hello"],
                                               "character_id": bot.cid}])
            bots.append(bot)
        return bots

    def form(self, bots):
        """Chat hello replies, the leader's party, invites accepted, all five members."""
        for bot in bots:
            self.feed(bot, {"t": "chat.hello", "id": IDS["chat.hello"], "character_id": bot.cid,
                            "party": None})
        leader = bots[0]
        self.assertIs(self.party.leader, leader)
        self.assertEqual(self.party.state, "forming")
        self.assertEqual([m["t"] for m in self.sent(leader)], ["chat.party.create"])
        party = {"id": "p1", "leader": leader.cid, "members": [[leader.cid, leader.name]], "v": 1}
        self.feed(leader, {"t": "chat.party.create", "id": IDS["chat.party.create"], "party": party})
        invites = self.sent(leader)
        self.assertEqual([(m["t"], m["name"]) for m in invites],
                         [("chat.party.invite", b.name) for b in bots[1:]])
        for bot in bots[1:]:
            self.feed(bot, {"t": "chat.party.invited", "party_id": "p1", "from": leader.cid,
                            "from_name": leader.name, "leader": leader.cid, "members": [],
                            "expires_in": 60})
            self.assertEqual(self.sent(bot), [{"t": "chat.party.accept", "id": IDS["chat.party.accept"],
                                               "party_id": "p1"}])
            party = dict(party, members=party["members"] + [[bot.cid, bot.name]])
            for b in bots:
                self.feed(b, {"t": "chat.party.update", "party_id": "p1", "party": party,
                              "event": "joined", "character_id": bot.cid})
        return leader

    def enter(self, bots):
        """The leader's world.instance.enter, its arrival, the others' requests and arrivals."""
        leader = bots[0]
        self.assertEqual(self.sent(leader), [{"t": "world.instance.enter",
                                              "id": IDS["world.instance.enter"], "template": "r1"}])
        self.assertEqual(self.party.state, "entering")
        for b in bots[1:]:
            self.assertEqual(self.sent(b), [])
        zone = {"t": "world.zone", "zone": {"id": INSTANCE}, "x": 5.0, "y": 0.0, "z": 5.0, "k": 1}
        self.feed(leader, zone)
        for b in bots[1:]:
            self.assertEqual([m["t"] for m in self.sent(b)], ["world.instance.enter"])
            self.feed(b, zone)
        self.assertEqual(self.party.state, "inside")

    def test_party_formed_through_chat_enters(self):
        """Five bots say chat.hello; the tank creates the party, invites the four by name, enters when they are in; the others follow."""
        bots = self.connectAll()
        self.assertEqual(bots[0].cid, raid.characterId(self.run.opts, 1, 0, 0))
        self.form(bots)
        self.enter(bots)
        roles = [b.member.role for b in bots]
        self.assertEqual(roles, ["tank", "healer", "damage", "damage", "damage"])
        self.assertEqual(self.run.stats.entries, 1)

    def test_refused_entry_retried_then_given_up(self):
        """instance.no_capacity is retried after retry_after; instance.locked ends the generation (party and world left)."""
        bots = self.connectAll()
        self.form(bots)
        leader = bots[0]
        self.sent(leader)
        self.feed(leader, {"t": "error", "id": IDS["world.instance.enter"],
                           "code": "instance.no_capacity", "retry_after": 3.0})
        self.reactor.advance(3.0)
        self.assertEqual([m["t"] for m in self.sent(leader)], ["world.instance.enter"])
        self.feed(leader, {"t": "error", "id": IDS["world.instance.enter"], "code": "instance.locked",
                           "reset_at": 2e9})
        self.assertEqual(self.party.state, "leaving")
        for b in bots:
            self.assertEqual([m["t"] for m in self.sent(b)], ["chat.party.leave"])
        self.assertEqual(dict(self.run.stats.errors),
                         {"instance.no_capacity": 1, "instance.locked": 1})
        self.assertEqual(self.run.stats.givenUp, 1)

    def test_fight_kill_loot_leave_next_generation(self):
        """Inside, the tank casts at the boss; a kill and everyone's loot make them leave, quit, and fresh characters come."""
        bots = self.connectAll()
        self.form(bots)
        self.enter(bots)
        tank = bots[0]
        for b in bots:
            self.feed(b, {"t": "world.u", "e": [[BOSS, "n", "Boss", "", 5, 7.0, 0.0, 5.0, 0.0, 0.0,
                                                  5000, 5000, 0, 0]]})
        tank.step(self.reactor.seconds(), 0)
        (cast,) = self.sent(tank)
        # Its self buff, or an attack at the boss.
        self.assertEqual((cast["t"], cast["id"], cast.get("target", BOSS)),
                         ("world.cast", FIRST_CAST_ID, BOSS))
        self.feed(tank, {"t": "world.cast", "id": FIRST_CAST_ID, "cast_ms": 0})
        self.reactor.advance(0.1)
        kit = tank.fighter.kit
        num = next(a.num for a in kit.attacks + kit.buffs if a.id == cast["ability"])
        self.feed(tank, {"t": "world.u", "c": record(DAMAGE, tank.cid, BOSS, 50, ability=num)})
        s = self.run.stats
        self.assertEqual((s.casts, s.accepted, len(s.effects)), (1, 1, 1))
        self.assertAlmostEqual(s.effects[0], 0.1)
        for b in bots:
            self.feed(b, {"t": "world.encounter", "boss": "warden", "event": "pull",
                            "phase": 1, "health": 5000, "health_max": 5000})
        self.reactor.advance(100.0)
        for b in bots:
            # The template unknown here, the party leaves when no NPC in view lives.
            self.feed(b, {"t": "world.u", "c": record(DEATH, tank.cid, BOSS)})
            self.feed(b, {"t": "world.encounter", "boss": "warden", "event": "kill",
                            "phase": 1, "health": 0, "health_max": 5000})
            self.feed(b, {"t": "world.loot", "from": BOSS, "items": [{"item": "x", "count": 2,
                                                                       "slot": 0}]})
        self.feed(bots[2], {"t": "world.loot", "from": BOSS, "items": []})
        self.assertEqual((s.kills, s.rewards, s.items, s.duplicates), (1, 6, 10, 1))
        (fight,) = s.fights
        self.assertAlmostEqual(fight, 100.0)
        self.party.everySecond(self.reactor.seconds())
        self.assertEqual(self.party.state, "leaving")
        back = {"t": "world.zone", "zone": {"id": "hub"}, "x": 1.0, "y": 0.0, "z": 1.0, "k": 2}
        for b in bots:
            self.assertEqual([m["t"] for m in self.sent(b)], ["world.instance.leave"])
            self.feed(b, back)
            self.assertEqual([m["t"] for m in self.sent(b)], ["chat.party.leave"])
            self.feed(b, {"t": "chat.party.leave", "id": IDS["chat.party.leave"]})
            self.assertEqual([m["t"] for m in self.sent(b)], ["world.leave"])
            self.feed(b, {"t": "world.leave", "id": IDS["world.leave"], "ok": True})
            self.assertTrue(self.transports[b].disconnecting)
            b.connectionLost(None)
        self.assertEqual((s.clears, s.disconnects), (1, 0))
        self.assertEqual(self.party.state, "between")
        self.reactor.advance(raid.NEXT_AFTER)
        self.assertEqual(self.party.state, "connecting")
        new = [c[2].cid for c in self.reactor.tcpClients[-5:]]
        self.assertEqual(new, [raid.characterId(self.run.opts, 1, slot, 1) for slot in range(5)])

    def test_death_release_and_wipe(self):
        """A member dies and releases after 3 s; all five dead at once is one wipe."""
        bots = self.connectAll()
        self.form(bots)
        self.enter(bots)
        for b in bots:
            self.feed(b, {"t": "world.u", "c": b"".join(record(DEATH, BOSS, o.cid) for o in bots)})
        s = self.run.stats
        self.assertEqual((s.deaths, s.wipes), (5, 1))
        mage = bots[2]
        self.sent(mage)
        mage.step(self.reactor.seconds() + 3.1, 0)
        self.assertEqual(self.sent(mage), [{"t": "world.release", "id": IDS["world.release"]}])
        self.feed(mage, {"t": "world.u", "c": record(REVIVE, 0, mage.cid, 100)})
        self.assertFalse(mage.dead)
        self.assertEqual(s.releases, 1)

    def test_class_plan(self):
        """Each party is a tank, a healer and three damage dealers; every generation has its own characters."""
        roles = self.run.roles
        for p in range(4):
            self.assertEqual([roles[c] for c in raid.partyClasses(roles, p)],
                             ["tank", "healer", "damage", "damage", "damage"])
        self.assertEqual(len(set(raid.partyClasses(roles, 0)[2:])), 3)
        plan = raid.characterPlan(3, 2, roles, firstId=1)
        self.assertEqual([cid for cid, _ in plan], list(range(1, 31)))
