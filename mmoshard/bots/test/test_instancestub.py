"""Tests for the bench-only benchinstances role: the stand-in IInstances of the M1 bench and the matchmaking crash test."""

import os
import sys

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from mmoshard.bots import instancestub
from mmoshard.interfaces import IInstances, IRole
from mmoshard.plugins import discoverRoles


class StubInstancesTests(TestCase):
    def test_provides_iinstances(self):
        """The stub is a complete IInstances provider."""
        verifyObject(IInstances, instancestub.StubInstances(Clock(), "n1"))

    def test_create_answers_a_placement_per_match(self):
        """Each create answers a new instance on this node with one admission ticket per character; list shows it until closed."""
        stub = instancestub.StubInstances(Clock(), "mm-1")
        one = self.successResultOf(stub.create("arena", [4, 5, 6, 7], teams=[[4, 5], [6, 7]],
                                               matchId="arena2v2/ab"))
        two = self.successResultOf(stub.create("deadmines", [1, 2]))
        self.assertEqual((one.instance_id, one.template, one.zone, one.node),
                         (1, "arena", "arena/1", "mm-1"))
        self.assertEqual(sorted(one.tickets), [4, 5, 6, 7])
        self.assertEqual(len(set(one.tickets.values()) | set(two.tickets.values())), 6)
        self.assertEqual([i["instance_id"] for i in self.successResultOf(stub.list())], [1, 2])
        self.successResultOf(stub.close(1))
        self.assertEqual([i["instance_id"] for i in self.successResultOf(stub.list())], [2])

    def test_delay(self):
        """With a delay a create answers only after that many seconds."""
        clock = Clock()
        d = instancestub.StubInstances(clock, "n1", delay=2.0).create("arena", [1])
        clock.advance(1.9)
        self.assertNoResult(d)
        clock.advance(0.1)
        self.assertEqual(self.successResultOf(d).instance_id, 1)

    def test_admits_nobody(self):
        """Nothing is hosted: an admission ticket is refused with instance.bad_ticket, locate finds nothing."""
        from mmoshard.wire.errors import ProtocolError

        stub = instancestub.StubInstances(Clock(), "n1")
        placement = self.successResultOf(stub.create("arena", [1]))
        failure = self.failureResultOf(stub.admit(placement.tickets[1], 1), ProtocolError)
        self.assertEqual(failure.value.info.code, "instance.bad_ticket")
        self.assertIsNone(self.successResultOf(stub.locate(placement.instance_id)))

    def test_plugin_found_on_path(self):
        """The plugin module writePlugin writes makes a node offer the benchinstances role, which provides IInstances."""
        self.assertNotIn(instancestub.ROLE, [r.name for r in discoverRoles()])
        base = os.path.abspath(self.mktemp())
        self.assertEqual(instancestub.writePlugin(base), base)
        sys.path.insert(0, base)
        self.addCleanup(sys.path.remove, base)
        import mmoshard.plugins

        self.addCleanup(setattr, mmoshard.plugins, "__path__", list(mmoshard.plugins.__path__))
        self.addCleanup(sys.modules.pop, "mmoshard.plugins.mmoshard_benchinstances", None)
        roles = {r.name: r for r in discoverRoles()}
        role = roles[instancestub.ROLE]
        verifyObject(IRole, role)
        self.assertEqual(role.provides, (IInstances,))
        self.assertEqual(role.parseConfig({"delay": 0.5}, "benchinstances"),
                         instancestub.StubConfig(delay=0.5))
