"""StoreZoneChannels on the memory store: the zone key's semantics and the published change."""

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from mmoshard.interfaces import IZoneChannels
from mmoshard.testing import openMemoryStore
from mmoshard.zonechat import ZONES_CHANNEL, StoreZoneChannels, decodeChange, zoneKey


class StoreZoneChannelsTests(TestCase):
    def setUp(self):
        self.clock = Clock()
        self.store = openMemoryStore(self, self.clock)
        self.changes = []
        self.successResultOf(self.store.subscribe(
            ZONES_CHANNEL, lambda channel, payload: self.changes.append(decodeChange(payload))
        ))
        self.zones = StoreZoneChannels(self.store, ttl=100.0)

    def zone(self, cid):
        return self.successResultOf(self.store.get(zoneKey(cid)))

    def test_interface(self):
        """StoreZoneChannels provides IZoneChannels."""
        verifyObject(IZoneChannels, self.zones)

    def test_join_sets_key_with_ttl_and_publishes(self):
        """Joining a zone records it with a TTL and announces the change."""
        self.assertIsNone(self.successResultOf(self.zones.joinZone(7, "greenvale")))
        self.assertEqual(self.zone(7), b"greenvale")
        self.clock.advance(0)
        self.assertEqual(self.changes, [(7, "greenvale")])
        self.clock.advance(99)
        self.assertEqual(self.zone(7), b"greenvale")
        self.clock.advance(2)
        self.assertIsNone(self.zone(7))

    def test_leave_deletes_only_the_current_zone(self):
        """Leaving a zone forgets it only when it is the character's current zone, and announces only that."""
        self.successResultOf(self.zones.joinZone(7, "ashfall"))
        self.clock.advance(0)
        # Leaving a zone the character already left (it entered another) keeps
        # the newer zone and announces nothing.
        self.successResultOf(self.zones.leaveZone(7, "greenvale"))
        self.clock.advance(0)
        self.assertEqual(self.zone(7), b"ashfall")
        self.assertEqual(self.changes, [(7, "ashfall")])
        self.successResultOf(self.zones.leaveZone(7, "ashfall"))
        self.clock.advance(0)
        self.assertIsNone(self.zone(7))
        self.assertEqual(self.changes, [(7, "ashfall"), (7, None)])
        # Nothing recorded: nothing to leave.
        self.successResultOf(self.zones.leaveZone(8, "ashfall"))
        self.clock.advance(0)
        self.assertEqual(len(self.changes), 2)

    def test_shared_key_name(self):
        """The zone key is the one chat's ChatStore reads."""
        from mmoshard.chat.store import ChatStore

        self.assertEqual(zoneKey(42), "chat:zone:42")
        self.assertEqual(ChatStore.zoneKey(42), zoneKey(42))

    def test_malformed_change(self):
        """A malformed zone-change payload is refused with ValueError."""
        for payload in (b"\xc1", b"\x80", b"\x81\xa3cid\xa1x"):
            self.assertRaises(ValueError, decodeChange, payload)
