"""Tests for the W2 bot's wiring: what it sends for its decisions, what it counts of the replies."""

import math

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import TestCase

from mmoshard.bots import w2
from mmoshard.bots.combat import NPC_BASE
from mmoshard.wire.codec import decode, encode
from mmoshard.wire.framing import FrameDecoder, frame
from mmoshard.world.combat.records import DAMAGE, DEATH, REVIVE, record

WOLF = NPC_BASE + 5
SMITE = {"id": "smite", "num": 21, "kind": "damage", "target": "enemy", "range": 30.0,
         "cooldown": 0.0, "gcd": 1.5, "cast": 0.0}


class Transport(StringTransport):
    def setTcpNoDelay(self, enabled):
        pass


class W2BotTests(TestCase):
    def setUp(self):
        opts = w2.parseArgs(["--token-key", "k" * 40, "--count", "2", "--size", "1000"])
        self.clock = Clock()
        self.clock.advance(1000.0)
        self.run = w2.W2Run(self.clock, opts)
        self.run.now = self.clock.seconds

    def connect(self, index, cls="priest", abilities=(SMITE,)):
        """A bot of C{cls} through hello and world.enter at (100, 100). @return: (bot, transport)."""
        bot = self.run.botClass(self.run, index)
        self.run.bots.append(bot)
        t = Transport()
        bot.makeConnection(t)
        self.feed(bot, {"t": "welcome", "id": 1, "session_id": "s", "resume_token": "r",
                        "heartbeat_s": 10.0})
        self.feed(bot, {"t": "world.enter", "id": 2, "character_id": bot.cid, "x": 100.0,
                        "y": 0.0, "z": 100.0, "k": 0, "class": cls, "level": 1,
                        "combat": {"abilities": list(abilities)}})
        t.clear()
        return bot, t

    def feed(self, bot, message):
        bot.dataReceived(frame(encode(message)))

    def sent(self, t):
        """The messages the bot wrote since the last call."""
        out = [decode(p) for p in FrameDecoder(1 << 20).feed(t.value())]
        t.clear()
        return out

    def step(self, bot, seconds=0.2):
        self.clock.advance(seconds)
        return bot.step(self.clock.seconds(), 0)

    def test_fighter_walks_stops_and_casts(self):
        """A fighter walks at 5 m/s towards the NPC in view, sends one stop move in range, then world.cast at it."""
        bot, t = self.connect(0)
        self.assertIsNotNone(bot.fighter)
        self.assertFalse(bot.fighter.healer)  # a priest, but nothing to heal with
        self.feed(bot, {"t": "world.u", "e": [[WOLF, "n", "Wolf", "", 1, 130.0, 0.0, 100.0, 0.0,
                                              0.0, 50, 50, 0]]})
        self.assertTrue(self.step(bot))
        (move,) = self.sent(t)
        self.assertEqual((move["t"], move["vx"], move["vz"]), ("world.move", 5.0, 0.0))
        self.assertAlmostEqual(move["x"], 101.0)
        for _ in range(3):
            self.step(bot)
        self.assertEqual([m["vx"] for m in self.sent(t)], [5.0, 5.0, 0.0])
        self.assertFalse(self.step(bot))
        (cast,) = self.sent(t)
        self.assertEqual(cast, {"t": "world.cast", "id": 10, "ability": "smite", "target": WOLF})
        self.assertEqual(self.run.stats.casts, 1)

    def test_replies_counted_by_code(self):
        """Accepted casts and refusals (by error code) are counted; the effect's latency is kept while measuring."""
        bot, t = self.connect(0, cls="mage")
        self.feed(bot, {"t": "world.u", "e": [[WOLF, "n", "Wolf", "", 1, 100.0, 0.0, 110.0, 0.0,
                                              0.0, 50, 50, 0]]})
        self.run.stats.measuring = True
        self.step(bot)
        self.step(bot)
        self.feed(bot, {"t": "error", "id": 10, "code": "combat.out_of_range", "message": "far"})
        self.clock.advance(0.1)
        self.step(bot)
        self.feed(bot, {"t": "world.cast", "id": 11, "cast_ms": 0})
        self.clock.advance(0.05)
        self.feed(bot, {"t": "world.u", "c": record(DAMAGE, bot.cid, WOLF, 9, ability=21)})
        s = self.run.stats
        self.assertEqual((s.casts, s.accepted, dict(s.refused)),
                         (2, 1, {"combat.out_of_range": 1}))
        self.assertEqual(len(s.effects), 1)
        self.assertAlmostEqual(s.effects[0], 0.05)
        self.assertEqual(s.events, 1)

    def test_walker_dies_and_releases(self):
        """A walker sees its own death in an undecoded update, stops, sends world.release after 3 s, walks once revived."""
        bot, t = self.connect(1)
        self.assertIsNone(bot.fighter)
        self.assertTrue(self.step(bot))
        self.sent(t)
        self.feed(bot, {"t": "world.u", "c": record(DEATH, WOLF, bot.cid)})
        self.assertTrue(bot.dead)
        self.assertFalse(self.step(bot, 2.0))
        self.assertEqual(self.sent(t), [])
        self.step(bot, 1.2)
        self.assertEqual(self.sent(t), [{"t": "world.release", "id": w2.RELEASE_ID}])
        self.feed(bot, {"t": "world.u", "c": record(REVIVE, 0, bot.cid, 100)})
        self.assertFalse(bot.dead)
        self.assertTrue(self.step(bot))
        self.assertEqual(self.sent(t)[0]["t"], "world.move")

    def test_class_without_attacks_walks(self):
        """A bot whose enter reply lists no attack, or has no combat field, walks like a W1 bot."""
        bot, t = self.connect(0, cls="warrior", abilities=(dict(SMITE, id="mend", kind="heal",
                                                                target="ally"),))
        self.assertIsNone(bot.fighter)
        bot = self.run.botClass(self.run, 2)
        bot.makeConnection(Transport())
        self.feed(bot, {"t": "world.enter", "id": 2, "character_id": bot.cid, "x": 100.0,
                        "y": 0.0, "z": 100.0, "k": 0, "class": "mage", "level": 1})
        self.assertTrue(bot.entered)
        self.assertIsNone(bot.fighter)
        self.assertEqual(self.run.stats.fighters, 0)

    def test_release_reply_places_it(self):
        """The world.release reply revives a dead fighter where it says; its moves carry the new correction count."""
        bot, t = self.connect(0)
        self.feed(bot, {"t": "world.u", "c": record(DEATH, WOLF, bot.cid)})
        self.assertTrue(bot.dead and bot.fighter.dead)
        self.step(bot, 3.1)
        self.assertEqual(self.sent(t), [{"t": "world.release", "id": w2.RELEASE_ID}])
        self.feed(bot, {"t": "world.release", "id": w2.RELEASE_ID, "x": 50.0, "y": 0.0, "z": 60.0,
                        "k": 2})
        self.assertFalse(bot.dead or bot.fighter.dead)
        self.assertTrue(self.step(bot))
        (move,) = self.sent(t)
        self.assertEqual(move["k"], 2)
        self.assertAlmostEqual(math.hypot(move["x"] - 50.0, move["z"] - 60.0), 1.0)

    def test_reply_completed_from_the_data(self):
        """The reply's ability entries (no duration) are completed from the game data: a HoT is not recast while it runs."""
        entry = {"id": "renew", "num": 302, "name": "Renew", "kind": "heal", "target": "ally",
                 "range": 40.0, "cast_ms": 0, "cooldown_ms": 0, "gcd_ms": 1500, "cost": 20,
                 "radius": 0.0}
        kit = self.run.kitFor("priest", {"abilities": [entry]})
        (renew,) = kit.heals
        self.assertEqual(renew.duration, self.run.data.abilities["renew"].duration)
        self.assertGreater(renew.lock, 0.0)
