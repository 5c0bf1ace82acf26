"""The messages between chat processes: their one encoding, the bus's handling and the router's dispatch."""

from prometheus_client import CollectorRegistry
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from mmoshard.chat import messages
from mmoshard.chat.routing import Bus
from mmoshard.chat.messages import (
    Ack,
    Announce,
    ChannelMessage,
    Deliver,
    Mute,
    Replaced,
    Request,
    ZoneChanged,
)
from mmoshard.chat.metrics import ChatMetrics
from mmoshard.chat.roster import Roster
from mmoshard.chat.routing import Router
from mmoshard.chat.store import ChatStore
from mmoshard.chat.social import CharacterRow
from mmoshard.chat.test.harness import FakeSession
from mmoshard.chat.users import ChatUser
from mmoshard.store.memory import MemoryStore, MemoryView

SAMPLES = [
    Deliver([1, 2], "chat.whisper", {"text": "hi", "ts": 1.5}, "whisper", 1.5, True, 7),
    Deliver([3], "chat.presence", {"state": "online"}, "presence", None, False),
    ChannelMessage("trade", "chat.channel.message", {"text": "wts"}, 2.0, 4, 4),
    Announce("chat.announcement", {"text": "noon"}, 3.0),
    ZoneChanged(9),
    Mute(9, 100.0, "spam"),
    Mute(9, None, None),
    Replaced(9, "s1"),
    Ack(12, True),
    Request("node.abc123", 12, Deliver([5], "chat.party.invited", {}, "party_event", 4.0)),
]


class EncodingTests(SynchronousTestCase):
    def test_round_trip(self):
        """Every message class decodes to an equal message after L{messages.encode}."""
        self.assertEqual(messages.decode(messages.encode(SAMPLES)), SAMPLES)
        self.assertEqual(set(type(m) for m in SAMPLES), set(messages.KINDS))

    def test_wire_format(self):
        """A payload is a msgpack array of [kind, field, ...] arrays, fields in class order."""
        import msgpack

        raw = msgpack.unpackb(messages.encode([ZoneChanged(3), Mute(3, None, "x")]))
        self.assertEqual(raw, [["zone", 3], ["mute", 3, None, "x"]])
        raw = msgpack.unpackb(messages.encode([Request("p", 1, ZoneChanged(3))]))
        self.assertEqual(raw, [["req", "p", 1, ["zone", 3]]])

    def test_malformed_payloads(self):
        """Anything but a list of known, complete messages is a ValueError."""
        import msgpack

        for payload in (
            b"\xc1",
            msgpack.packb({"k": "d"}),
            msgpack.packb([["nope", 1]]),
            msgpack.packb([[]]),
            msgpack.packb([["zone"]]),
            msgpack.packb([["zone", 1, 2]]),
            msgpack.packb([["req", "p", 1]]),
            msgpack.packb([["req", "p", 1, ["nope"]]]),
            msgpack.packb(["zone"]),
        ):
            self.assertRaises(ValueError, messages.decode, payload)


class BusAndRouterTests(SynchronousTestCase):
    """Two buses on one memory store and a Clock: batching, requests, dispatch."""

    def setUp(self):
        self.clock = Clock()
        view = MemoryView(self.clock)
        self.addCleanup(view.close)
        volatile = MemoryStore(self.clock, prefix="t:", backend=view)
        volatile.open()
        self.store = ChatStore(volatile)
        self.registry = CollectorRegistry()
        self.metrics = ChatMetrics(self.registry, lambda: 0)
        self.got = []

    def bus(self, proc, handler):
        bus = Bus(self.store, proc, self.clock, self.metrics, handler, 3.0)
        self.successResultOf(bus.start())
        self.addCleanup(lambda: self.successResultOf(bus.stop()))
        return bus

    def test_batched_publish_and_ack(self):
        """Messages queued in one turn go as one publish; a request is answered by an ack."""
        a = self.bus("a", self.got.append)
        self.bus("b", lambda m: self.got.append(m) or isinstance(m, Mute))
        a.post("b", ZoneChanged(1))
        a.post("b", ZoneChanged(2))
        yes = a.request("b", Mute(1, None, None))
        no = a.request("b", Replaced(1, "s"))
        self.clock.advance(0)
        self.assertEqual(self.got, [ZoneChanged(1), ZoneChanged(2), Mute(1, None, None),
                                    Replaced(1, "s")])
        self.assertEqual(
            self.registry.get_sample_value("mmoshard_chat_cross_process_publishes_total"), 2
        )
        self.assertTrue(self.successResultOf(yes))
        self.assertFalse(self.successResultOf(no))

    def test_request_to_a_gone_process(self):
        """A request to a process nobody listens for is False at once; an unanswered one after the timeout."""
        a = self.bus("a", self.got.append)
        gone = a.request("nobody", ZoneChanged(1))
        self.clock.advance(0)
        self.assertFalse(self.successResultOf(gone))
        self.bus("mute", lambda m: (_ for _ in ()).throw(RuntimeError("boom")))
        failing = a.request("mute", ZoneChanged(1))
        self.clock.advance(0)
        self.assertFalse(self.successResultOf(failing))
        self.flushLoggedErrors(RuntimeError)

    def test_undecodable_payload_dropped(self):
        """A payload that does not decode is logged and handed to nobody."""
        self.bus("a", self.got.append)
        self.successResultOf(self.store.publishInbox("a", b"\xc1"))
        self.clock.advance(0)
        self.assertEqual(self.got, [])

    def test_router_dispatch_by_class(self):
        """The router hands each message class to its handler; one it does not know is not delivered."""
        roster = Roster()
        router = Router(self.store, roster, "a", self.clock, self.metrics, 3.0)
        session = FakeSession(1)
        user = ChatUser(session, CharacterRow(5, 1, "Eve", False), None)
        roster.add(user)
        zones = []
        router.inbound[ZoneChanged] = lambda m: zones.append(m) or True
        self.assertTrue(router.receive(ZoneChanged(5)))
        self.assertEqual(zones, [ZoneChanged(5)])
        self.assertFalse(router.receive(Mute(5, None, None)))
        self.assertTrue(router.receive(Deliver([5], "chat.x", {"a": 1}, "event", None)))
        self.assertTrue(router.receive(Announce("chat.y", {"b": 2}, None)))
        user.blocks[8] = "Mallory"
        self.assertFalse(router.receive(Deliver([5], "chat.x", {}, "whisper", None, sender=8)))
        self.assertEqual([m["t"] for m in session.sent], ["chat.x", "chat.y"])
