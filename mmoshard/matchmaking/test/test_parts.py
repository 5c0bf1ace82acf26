"""Small parts of the role: the message codec between nodes, local event delivery, party changes, the fakes' interfaces, the party-fit check, the config."""

import os

from prometheus_client import CollectorRegistry
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from mmoshard.config import ConfigError
from mmoshard.interfaces import IInstances, ILocator, IMatchResults, IMessageRouter, IParties, ISession
from mmoshard.matchmaking.events import Courier, Deliver, Settle, decode, encode
from mmoshard.matchmaking.metrics import MatchmakingMetrics
from mmoshard.matchmaking.test import fakes
from mmoshard.partychanges import PartyChanged, decodeChange, encodeChange


class CodecTests(TestCase):

    def test_roundTrip(self):
        """Messages between nodes come out of decode as they went into encode, in order."""
        batch = [Deliver((1, 2), "mm.proposal", {"match": "dungeon5/ab", "team": 0}),
                 Settle("dungeon5", "dungeon5/ab")]
        self.assertEqual(decode(encode(batch)), batch)

    def test_garbage(self):
        """A payload that is not a list of known messages is a ValueError (logged and dropped by the receiver)."""
        for payload in (b"\xc1", encode([]) + b"x", b"\x91\x91\xa3zzz", b"\x81\xa1a\x01",
                        b"\x91\x92\xa6settle\x01"):
            with self.assertRaises(ValueError):
                decode(payload)

    def test_partyChange(self):
        """A party change comes out as it went in; a malformed one is a ValueError."""
        change = PartyChanged("p1", "left", 3, 1, (1, 2), (1, 2, 3))
        self.assertEqual(decodeChange(encodeChange(change)), change)
        self.assertEqual(change.everyone, (1, 2, 3))
        for payload in (b"\xc1", encodeChange(PartyChanged("p1", "exploded", 3, 1, (), ()))):
            with self.assertRaises(ValueError):
                decodeChange(payload)


class FakesTests(TestCase):

    def test_interfaces(self):
        """The test doubles provide the interfaces the service is given."""
        shared = fakes.FakeLocator()
        self.assertTrue(verifyObject(ILocator, shared.forNode("n")))
        self.assertTrue(verifyObject(IParties, fakes.FakeParties()))
        self.assertTrue(verifyObject(IInstances, fakes.FakeInstances()))
        self.assertTrue(verifyObject(IMatchResults, fakes.FakeResults()))
        self.assertTrue(verifyObject(IMessageRouter, fakes.FakeRouter()))
        self.assertTrue(verifyObject(ISession, fakes.FakeSession(1)))


class ConfigTests(TestCase):

    def write(self, text):
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_everyProblemAtOnce(self):
        """[matchmaking] reports every bad key at once, each at its path."""
        from mmoshard.plugins.matchmaking import matchmaking

        with self.assertRaises(ConfigError) as e:
            matchmaking.parseConfig({"match_interval": 2.0, "lease_ttl": 3.0, "ready_timeout": 0,
                                     "resume_grace": -5, "colour": "blue", "instances_file": "",
                                     "classes_file": self.write("x = 1\n")}, "matchmaking")
        paths = sorted(p.path for p in e.exception.problems)
        self.assertEqual(paths, ["matchmaking.classes_file", "matchmaking.colour",
                                 "matchmaking.lease_ttl", "matchmaking.ready_timeout",
                                 "matchmaking.resume_grace"])


class _LocalUser:
    def __init__(self, fails=False):
        self.got = []
        self.fails = fails

    def deliver(self, type, body):
        if self.fails:
            raise RuntimeError("session gone")
        self.got.append((type, body))


class CourierLocalTests(TestCase):
    def courier(self, users):
        self.registry = CollectorRegistry()
        return Courier(None, "n1", Clock(), None, users.get, MatchmakingMetrics(self.registry))

    def test_everyLocalMemberGetsTheEventAtOnce(self):
        """Characters all on this node get the event before send returns, counted per type; the Deferred says how many."""
        users = {1: _LocalUser(), 2: _LocalUser()}
        courier = self.courier(users)
        d = courier.send([1, 2], "mm.queued", {"id": "t"})
        self.assertEqual(users[1].got, [("mm.queued", {"id": "t"})])
        self.assertEqual(users[2].got, [("mm.queued", {"id": "t"})])
        self.assertEqual(self.successResultOf(d), 2)
        self.assertEqual(self.registry.get_sample_value(
            "mmoshard_mm_events_total", {"type": "mm.queued"}), 2.0)

    def test_aFailedLocalDeliveryIsLoggedNotRaised(self):
        """A session that fails to take the event is logged ("not sent") and send fires with None, as for a store outage."""
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        courier = self.courier({1: _LocalUser(fails=True)})
        d = courier.send([1], "mm.queued", {"id": "t"})
        self.assertIsNone(self.successResultOf(d))
        warned = [e for e in events if "not sent" in e.get("log_format", "")]
        self.assertEqual([e["character_ids"] for e in warned], [[1]])
