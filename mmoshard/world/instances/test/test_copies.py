"""A party's copy key: mapped only over what the request read (memory store and a real Redis), and two requests of one party at once entering one copy."""

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from mmoshard.store.memory import MemoryStore
from mmoshard.store.volatile import makeVolatileStore
from mmoshard.testing import requireRedis
from mmoshard.world.instances.copies import mapCopy, partyKey
from mmoshard.world.instances.test.test_entry import DUNGEON, EntryTestCase

KEY = partyKey("p1", DUNGEON)


class MapCopyMixin:
    """mapCopy on a store made by C{newVolatile}."""

    async def test_overNothing(self):
        """A key naming nothing is set, with its TTL."""
        volatile = self.newVolatile()
        self.assertEqual(await mapCopy(volatile, KEY, None, 7, 60.0), 7)
        self.assertEqual(await volatile.get(KEY), b"7")
        self.assertGreater(await volatile.ttl(KEY), 50.0)

    async def test_overWhatWasSeen(self):
        """A key still naming the copy the caller saw (gone) is set to the new one."""
        volatile = self.newVolatile()
        await volatile.set(KEY, 5)
        self.assertEqual(await mapCopy(volatile, KEY, b"5", 7, 60.0), 7)
        self.assertEqual(await volatile.get(KEY), b"7")

    async def test_anotherRequestWins(self):
        """A key another request set since the caller read it is left as it is and answered."""
        volatile = self.newVolatile()
        await volatile.set(KEY, 6)
        self.assertEqual(await mapCopy(volatile, KEY, b"5", 7, 60.0), 6)
        self.assertEqual(await mapCopy(volatile, KEY, None, 7, 60.0), 6)
        self.assertEqual(await volatile.get(KEY), b"6")


class MemoryMapCopyTests(MapCopyMixin, TestCase):
    def newVolatile(self):
        store = MemoryStore(Clock(), "t:")
        store.open()
        self.addCleanup(store.close)
        return store


class RedisMapCopyTests(MapCopyMixin, TestCase):
    """The Lua side, on a real Redis."""

    timeout = 30

    def newVolatile(self):
        url, prefix, cleaner = requireRedis()
        self.addCleanup(cleaner)
        store = makeVolatileStore(url, reactor, prefix, timeout=5.0)
        store.open()
        self.addCleanup(store.close)
        return store


class RaceTests(EntryTestCase):
    def test_staleCopyReplacedOnce(self):
        """The party key names a closed copy; while the leader's request makes a new one, another request of the party maps its own: the leader enters that one, and the extra copy closes."""
        leader = self.character(1)
        self.party(leader)
        c = self.login(1, leader)
        stale = self.entered(c, template=DUNGEON)["instance_id"]
        c.request("world.instance.leave")
        instances = self.h.world.instances
        self.successResultOf(instances.close(stale))
        made = []
        real = instances.create

        async def racing(template, roster, partyId=None):
            # The other request (a new leader's, say) finished first.
            theirs = await real(template, roster, partyId)
            await self.h.volatile.set(KEY, theirs.instance_id)
            made.append(theirs.instance_id)
            ours = await real(template, roster, partyId)
            made.append(ours.instance_id)
            return ours

        self.patch(instances, "create", lambda *a: Deferred.fromCoroutine(racing(*a)))
        reply = self.entered(c, template=DUNGEON)
        theirs, ours = made
        self.assertEqual(reply["instance_id"], theirs)
        self.assertEqual(self.zoneOf(leader), f"{DUNGEON}/{theirs}")
        self.assertEqual(self.successResultOf(self.h.volatile.get(KEY)), str(theirs).encode())
        self.h.advance(1.0, 2)
        self.assertNotIn(ours, instances.host.instances)
