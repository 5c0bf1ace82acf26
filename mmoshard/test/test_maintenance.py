"""An operator's maintenance window: the gate enforces it beside the published ones, every session hears of it through the broadcast channel, and the directory shows each node's session counts."""

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from mmoshard.gate import (
    GateRules, Maintenance, StoreGate, closeOperatorWindow, openOperatorWindow, publishRules,
    readOperatorWindow,
)
from mmoshard.interfaces import IClientGate
from mmoshard.testing import openMemoryStore
from mmoshard.tokens import Claims
from mmoshard.wire.broadcast import BROADCAST_CHANNEL, Broadcast, broadcast
from mmoshard.wire.test.helpers import Server

START = 1_800_000_000.0


def claims(flags=()):
    return Claims(account_id=1, sid="s", exp=START + 3600, iat=START, flags=frozenset(flags))


class OperatorWindowTests(TestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(START)
        self.store = openMemoryStore(self, self.clock)
        self.gate = StoreGate(self.store, self.clock, refresh=5.0)
        self.successResultOf(self.gate.start())
        self.addCleanup(self.gate.stop)

    def check(self, flags=()):
        return self.successResultOf(self.gate.check(claims(flags), "1.0.0", "windows"))

    def test_provides(self):
        """The node's gate is an IClientGate, its maintenance() (what the console and the session layer ask) included."""
        self.assertTrue(verifyObject(IClientGate, self.gate))

    def test_open_and_close(self):
        """
        A window an operator opens is enforced by every gate at once:
        non-operators are refused with its message and the seconds to its
        end, operators pass; closing it lets everyone in again.
        """
        self.assertIsNone(self.gate.maintenance())
        window = Maintenance(START, START + 600, "Patch day")
        self.successResultOf(openOperatorWindow(self.store, window, START))
        self.clock.advance(0)
        self.assertEqual(self.gate.maintenance(), window)
        self.assertEqual(self.gate.operatorWindow, window)
        refusal = self.check()
        self.assertEqual((refusal.code, refusal.message, refusal.retry_after),
                         ("server.maintenance", "Patch day", 600))
        self.assertIsNone(self.check({"operator"}))
        self.assertTrue(self.successResultOf(closeOperatorWindow(self.store)))
        self.clock.advance(0)
        self.assertIsNone(self.gate.maintenance())
        self.assertIsNone(self.check())
        self.assertFalse(self.successResultOf(closeOperatorWindow(self.store)))

    def test_beside_published_rules(self):
        """
        A release publication neither ends the operator's window nor is
        hidden by it: both windows are enforced; the operator's ends by
        itself (its key expires after its end).
        """
        window = Maintenance(START, START + 60, "Hotfix")
        self.successResultOf(openOperatorWindow(self.store, window, START))
        released = Maintenance(START + 3600, START + 7200, "Weekly")
        self.successResultOf(publishRules(self.store, GateRules(7, {}, (released,))))
        self.clock.advance(0)
        self.assertEqual(self.gate.rules.revision, 7)
        self.assertEqual(self.gate.rules.maintenance, (window, released))
        self.assertEqual(self.check().message, "Hotfix")
        self.clock.advance(61)
        self.assertIsNone(self.check())
        self.clock.advance(3600)
        self.assertEqual(self.check().message, "Weekly")
        self.assertIsNone(self.successResultOf(readOperatorWindow(self.store)))


class BroadcastTests(TestCase):
    def test_every_session_told(self):
        """
        A broadcast reaches every live session of every node listening on
        the channel, as a replayable server.maintenance event; a malformed
        one, or one of a type no node sends, is dropped and the sessions go
        on.
        """
        clock = Clock()
        clock.advance(START)
        store = openMemoryStore(self, clock)
        servers = [Server(self, clock, store, nodeId=f"node-{n}") for n in "ab"]
        peers = [servers[0].welcomed(1), servers[0].welcomed(2), servers[1].welcomed(3)]
        body = {"state": "open", "message": "Patch day", "start": START, "end": START + 60}
        self.successResultOf(broadcast(store, Broadcast("server.maintenance", body)))
        clock.advance(0)
        for peer in peers:
            [notice] = [m for m in peer.received() if m["t"] == "server.maintenance"]
            self.assertEqual(notice["message"], "Patch day")
            self.assertIn("seq", notice)
        self.successResultOf(store.publish(BROADCAST_CHANNEL, b"\x93garbage"))
        self.successResultOf(store.publish(
            BROADCAST_CHANNEL, Broadcast("server.maintenance", {}).encode().replace(
                b"server.maintenance", b"chat.whisper.xxxxx")))
        clock.advance(0)
        for peer in peers:
            self.assertEqual([m for m in peer.received() if m["t"] != "ping"], [])
        with self.assertRaises(ValueError):
            Broadcast("chat.whisper", {})

    def test_session_counts(self):
        """A node's session counts (what the directory shows the console) follow its sessions."""
        server = Server(self)
        self.assertEqual(server.manager.counts(), {"live": 0, "accepted": 0, "errors": 0})
        server.welcomed(1)
        server.welcomed(2)
        counts = server.manager.counts()
        self.assertEqual((counts["live"], counts["accepted"]), (2, 2))
