"""Tests for the hand-encoded world update message and the zone's tick."""

import msgpack
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase

from mmoshard.world.interest import movesMessage
from mmoshard.world.sim import ORDER_COMBAT
from mmoshard.world.test.helpers import FakeSession, makeZone, player


class MovesMessageTests(TestCase):
    def test_same_bytes_as_msgpack(self):
        """The hand-built update is byte for byte what msgpack makes, across bin header sizes."""
        for n in (0, 20, 255, 256, 65535, 65536):
            m = bytes(i % 251 for i in range(n))
            self.assertEqual(movesMessage(m), msgpack.packb({"t": "world.u", "m": m}), n)


class Broken(Exception):
    """What the failing system of these tests raises."""


class TickTests(TestCase):
    def test_failingSystemDoesNotStopTheZone(self):
        """A system that raises is logged with the zone and its name, and the later systems (replication) still run, every tick."""
        zone, clock = makeZone()
        p = player(zone, 1, 100.0, 100.0, FakeSession())
        player(zone, 2, 105.0, 100.0)
        calls = []

        def broken(now, dt):
            calls.append(now)
            raise Broken("a bad entity")

        zone.addSystem(ORDER_COMBAT, "combat", broken)
        logged = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        for index in (1, 2):
            clock.advance(0.1)
            zone.tick(index, 0.1)
        self.assertEqual(len(calls), 2)
        self.assertEqual(len(self.flushLoggedErrors(Broken)), 2)
        failed = [e for e in logged if e.get("system") == "combat"]
        self.assertEqual([(e["zone"], e["index"]) for e in failed], [("test", 1), ("test", 2)])
        self.assertEqual(zone.stats.ticks, 2)
        # Interest and replication ran: the neighbour entered its view.
        self.assertEqual([s[0] for u in p.session.of("world.u") for s in u.get("e", ())], [2])
