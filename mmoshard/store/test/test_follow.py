"""Tests for Follower: reads on messages and on a timer, folded when they overlap, stopped cleanly."""

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from mmoshard.store.errors import VolatileUnavailable
from mmoshard.store.follow import Follower
from mmoshard.store.volatile import MemoryStore


class FollowerTests(TestCase):
    """A Follower over a memory store on a Clock."""

    def setUp(self):
        self.clock = Clock()
        self.store = MemoryStore(self.clock, "f:")
        self.store.open()
        self.reads = 0
        self.gate = None  # a Deferred a read waits on, when set
        self.broken = False

    async def read(self):
        self.reads += 1
        if self.broken:
            raise VolatileUnavailable("down")
        if self.gate is not None:
            await self.gate

    def follower(self):
        f = Follower(self.store, self.clock, "changes", self.read, 5.0, "test state")
        self.addCleanup(f.stop)
        return f

    def test_reads_at_start_on_messages_and_on_timer(self):
        """The follower reads once at start, again on each message, and again every interval."""
        f = self.follower()
        self.successResultOf(f.start())
        self.assertEqual(self.reads, 1)
        self.store.publish("changes", b"x")
        self.clock.advance(0)
        self.assertEqual(self.reads, 2)
        self.clock.advance(5.0)
        self.assertEqual(self.reads, 3)

    def test_overlapping_reads_fold_into_one_more(self):
        """Refreshes asked for while a read runs fold into one more read after it."""
        f = self.follower()
        self.successResultOf(f.start())
        self.gate = Deferred()
        first = f.refresh()
        f.refresh()
        f.refresh()
        self.assertEqual(self.reads, 2)
        gate, self.gate = self.gate, None
        gate.callback(None)
        self.successResultOf(first)
        self.assertEqual(self.reads, 3, "three asks while one ran: one more read, not three")

    def test_failures_never_escape_and_recover(self):
        """
        A failing read marks the follower failing without raising, and a later good read clears it.
        """
        f = self.follower()
        self.broken = True
        self.successResultOf(f.start())
        self.assertTrue(f.failing)
        self.broken = False
        self.clock.advance(5.0)
        self.assertFalse(f.failing)

    def test_stop_ends_messages_and_timer(self):
        """After stop() neither messages nor the timer cause reads."""
        f = self.follower()
        self.successResultOf(f.start())
        self.successResultOf(f.stop())
        self.store.publish("changes", b"x")
        self.clock.advance(10.0)
        self.assertEqual(self.reads, 1)
        self.assertFalse(f.running)
