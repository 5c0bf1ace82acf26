"""TicketStore contract on memory and real Redis: tickets, claims, cancel, order, stats, member liveness, the lease."""

import msgpack
from twisted.trial.unittest import TestCase

from mmoshard.matchmaking import errors
from mmoshard.matchmaking.codec import Codec, CodecError, encodeTicket
from mmoshard.matchmaking.test.storecases import (
    GRACE, START, OnCluster, OnMemory, OnRedis, StoreCase, proposal, ticket)


class TicketContract:
    """Adding, reading and cancelling tickets; one claim per character across every queue."""

    async def test_addThenRead(self):
        """An added ticket reads back whole by id and by each member, and waits in its queue."""
        t = ticket("t1", 1, 2, party="party-9", roles=("tank", "damage"))
        self.assertIsNone(await self.ts.add(t))
        self.assertEqual(await self.ts.get("t1"), t)
        self.assertEqual(await self.ts.ticketOf(1), t)
        self.assertEqual(await self.ts.ticketOf(2), t)
        claim = await self.ts.claim(2)
        self.assertEqual((claim.ticket, claim.match_id), (t, None))
        self.assertIsNone(await self.ts.ticketOf(3))
        self.assertIsNone(await self.ts.get("nope"))
        self.assertEqual(await self.ts.waiting("dungeon5", 10), [t])
        self.assertEqual(await self.ts.count("dungeon5"), 1)
        self.assertEqual(await self.ts.count("raid10"), 0)

    async def test_anotherNodeReads(self):
        """A ticket one node added is read, cancelled and counted by another node."""
        other = self.node()
        await self.ts.add(ticket("t1", 1))
        self.assertEqual((await other.ticketOf(1)).id, "t1")
        self.assertEqual(await other.count("dungeon5"), 1)
        self.assertEqual((await other.cancel("t1")).id, "t1")
        self.assertIsNone(await self.ts.get("t1"))

    async def test_alreadyQueuedAnyQueue(self):
        """
        A member holding a ticket in any queue makes add fail with
        mm.already_queued naming that member; nothing of the refused
        ticket is written.
        """
        await self.ts.add(ticket("t1", 1, 2))
        with self.assertRaises(errors.MatchmakingError) as caught:
            await self.ts.add(ticket("t2", 3, 2, queue="raid10"))
        info = caught.exception.info
        self.assertEqual(info.code, errors.ALREADY_QUEUED)
        self.assertIn("P2", info.message)
        self.assertEqual(dict(info.details), {"character_id": 2})
        self.assertIsNone(await self.ts.get("t2"))
        self.assertIsNone(await self.ts.ticketOf(3))
        self.assertEqual(await self.ts.count("raid10"), 0)
        self.assertEqual((await self.ts.ticketOf(2)).id, "t1")

    async def test_addManyEachOnItsOwn(self):
        """addMany adds each ticket on its own: one refused (even by an earlier one of the batch) stops no other."""
        await self.ts.add(ticket("t0", 9))
        batch = [ticket("t1", 1), ticket("t2", 2, 9), ticket("t3", 3, 1), ticket("t4", 4)]
        results = await self.ts.addMany(batch)
        self.assertIsNone(results[0])
        self.assertEqual(dict(results[1].info.details), {"character_id": 9})
        self.assertEqual(dict(results[2].info.details), {"character_id": 1})
        self.assertIsNone(results[3])
        ids = [t.id for t in await self.ts.waiting("dungeon5", 10)]
        self.assertEqual(sorted(ids), ["t0", "t1", "t4"])
        self.assertIsNone(await self.ts.ticketOf(3))
        self.assertEqual(await self.ts.addMany([]), [])

    async def test_badTickets(self):
        """A malformed ticket or a ticket id in use is a ValueError, and nothing is written."""
        await self.ts.add(ticket("t1", 1))
        with self.assertRaises(ValueError):
            await self.ts.add(ticket("t1", 2))
        for bad in (ticket("has space", 3), ticket("t3", 3, 3), ticket("t4"),
                    ticket("t5", 5, queue="two words")):
            with self.assertRaises(ValueError):
                await self.ts.add(bad)
        with self.assertRaises(ValueError):
            await self.ts.addMany([ticket("t6", 6), ticket("bad id", 7)])
        self.assertEqual([t.id for t in await self.ts.waiting("dungeon5", 10)], ["t1"])
        self.assertIsNone(await self.ts.ticketOf(2))
        self.assertIsNone(await self.ts.ticketOf(6))

    async def test_waitingOldestFirst(self):
        """waiting lists a queue oldest first by created (ties by id), up to the limit, that queue only."""
        await self.ts.addMany([
            ticket("c", 3, created=50.0), ticket("a", 1, created=70.0),
            ticket("b", 2, created=50.0), ticket("d", 4, created=10.0, queue="raid10"),
            ticket("e", 5, created=60.5),
        ])
        ids = [t.id for t in await self.ts.waiting("dungeon5", 10)]
        self.assertEqual(ids, ["b", "c", "e", "a"])
        self.assertEqual([t.id for t in await self.ts.waiting("dungeon5", 2)], ["b", "c"])
        self.assertEqual(await self.ts.waiting("dungeon5", 0), [])
        self.assertEqual([t.id for t in await self.ts.waiting("raid10", 10)], ["d"])

    async def test_cancel(self):
        """Cancel removes a waiting ticket and frees its members, who may queue again; unknown: None."""
        t = ticket("t1", 1, 2)
        await self.ts.add(t)
        self.assertEqual(await self.ts.cancel("t1"), t)
        self.assertIsNone(await self.ts.cancel("t1"))
        self.assertIsNone(await self.ts.get("t1"))
        self.assertIsNone(await self.ts.ticketOf(1))
        self.assertEqual(await self.ts.count("dungeon5"), 0)
        await self.ts.add(ticket("t2", 2, queue="raid10"))
        self.assertEqual((await self.ts.ticketOf(2)).queue, "raid10")

    async def test_cancelInProposal(self):
        """A ticket in a proposal is not cancelled (a decline ends it); it stays in the proposal."""
        a, b = ticket("a", 1), ticket("b", 2)
        await self.ts.addMany([a, b])
        self.assertTrue(await self.ts.propose(proposal("m1", a, b)))
        self.assertIsNone(await self.ts.cancel("a"))
        claim = await self.ts.claim(1)
        self.assertEqual((claim.ticket.id, claim.match_id), ("a", "m1"))

    async def test_stats(self):
        """stats counts waiting tickets, members, members per role they may play, the oldest wait and proposals."""
        await self.ts.addMany([
            ticket("a", 1, 2, roles=("tank", "damage"), created=START - 40),
            ticket("b", 3, roles=("healer",), created=START - 10),
            ticket("c", 4, roles=("damage",), created=START - 5),
        ])
        s = await self.ts.stats("dungeon5")
        self.assertEqual((s.queue, s.tickets, s.members, s.proposals), ("dungeon5", 3, 4, 0))
        self.assertEqual(s.roles, {"tank": 2, "damage": 3, "healer": 1})
        self.assertEqual(s.oldest_wait, 40.0)
        await self.ts.propose(proposal("m1", await self.ts.get("a")))
        s = await self.ts.stats("dungeon5")
        self.assertEqual((s.tickets, s.members, s.proposals), (2, 2, 1))
        self.assertEqual(s.roles, {"damage": 1, "healer": 1})
        self.assertEqual(s.oldest_wait, 10.0)
        await self.ts.requeue("m1")
        s = await self.ts.stats("dungeon5")
        self.assertEqual((s.tickets, s.members, s.proposals, s.oldest_wait), (3, 4, 0, 40.0))
        empty = await self.ts.stats("raid10")
        self.assertEqual((empty.tickets, empty.members, empty.roles, empty.oldest_wait),
                         (0, 0, {}, 0.0))

    def test_codecRefusesOtherFormats(self):
        """A stored value in another format or corrupt is a CodecError naming the format, not a wrong ticket."""
        codec = Codec()
        good = encodeTicket(ticket("t1", 1))
        self.assertEqual(codec.ticket(good).id, "t1")
        newer = msgpack.packb([2, "t1"])
        with self.assertRaises(CodecError) as caught:
            codec.ticket(newer)
        self.assertIn("format 2", str(caught.exception))
        with self.assertRaises(CodecError):
            codec.ticket(b"\xc1")
        with self.assertRaises(CodecError):
            codec.ticket(msgpack.packb([1, "t1"]))


class LivenessContract:
    """Tickets outlive disconnects and the node that took them for the resume grace, and no longer."""

    async def test_untouchedExpiresAfterGrace(self):
        """A ticket nobody touches is removed by expire once the grace has passed, not before; its members are freed."""
        t = ticket("t1", 1, 2)
        await self.ts.add(t)
        self.assertEqual(await self.ts.expire("dungeon5", START + GRACE - 1), [])
        self.assertEqual(await self.ts.expire("dungeon5", START + GRACE + 1), [t])
        self.assertIsNone(await self.ts.get("t1"))
        self.assertIsNone(await self.ts.ticketOf(2))
        self.assertEqual((await self.ts.stats("dungeon5")).members, 0)
        self.assertEqual(await self.ts.expire("dungeon5", START + 2 * GRACE), [])

    async def test_survivesTheAcceptingNode(self):
        """
        The node that accepted a ticket dies; another node hosting the
        member's session keeps touching it and the ticket stays past the
        grace, then goes once nobody touches it for the touch's ttl.
        """
        accepting = self.node()
        await accepting.add(ticket("t1", 1))
        await accepting.volatile.close()
        for step in range(1, 5):
            self.mmClock.advance(20)
            self.assertEqual(await self.ts.touch([1], ttl=GRACE), 1)
            self.assertEqual(await self.ts.expire("dungeon5", START + 20 * step + 1), [])
        self.assertEqual((await self.ts.ticketOf(1)).id, "t1")
        gone = await self.ts.expire("dungeon5", self.mmClock.seconds() + GRACE + 1)
        self.assertEqual([t.id for t in gone], ["t1"])

    async def test_oneGoneMemberRemovesItsParty(self):
        """A party ticket goes when one member stays gone past the grace though the others are touched."""
        await self.ts.addMany([ticket("p", 1, 2, 3), ticket("s", 4)])
        self.mmClock.advance(GRACE - 5)
        self.assertEqual(await self.ts.touch([1, 3, 4, 99], ttl=GRACE), 3)
        gone = await self.ts.expire("dungeon5", START + GRACE + 1)
        self.assertEqual([t.id for t in gone], ["p"])
        self.assertEqual([t.id for t in await self.ts.waiting("dungeon5", 10)], ["s"])
        for cid in (1, 2, 3):
            self.assertIsNone(await self.ts.ticketOf(cid))

    async def test_touchOnlyExtends(self):
        """A touch with a shorter ttl does not bring a member's deadline forward."""
        await self.ts.add(ticket("t1", 1))
        await self.ts.touch([1], ttl=100)
        await self.ts.touch([1], ttl=1)
        self.assertEqual(await self.ts.expire("dungeon5", START + 50), [])
        self.assertEqual(len(await self.ts.expire("dungeon5", START + 101)), 1)
        with self.assertRaises(ValueError):
            await self.ts.touch([1], ttl=0)
        self.assertEqual(await self.ts.touch([], ttl=5), 0)

    async def test_expireLeavesProposals(self):
        """A gone member's ticket in a proposal is left to its ready check, and expired once requeued."""
        a, b = ticket("a", 1), ticket("b", 2)
        await self.ts.addMany([a, b])
        await self.ts.propose(proposal("m1", a, b, expires=START + GRACE + 20))
        self.assertEqual(await self.ts.expire("dungeon5", START + GRACE + 1), [])
        self.assertIsNotNone(await self.ts.proposal("m1"))
        self.assertEqual(await self.ts.requeue("m1"), [a, b])
        self.assertEqual(await self.ts.expire("dungeon5", START + GRACE + 2), [])
        gone = await self.ts.expire("dungeon5", START + GRACE + 22)
        self.assertEqual(sorted(t.id for t in gone), ["a", "b"])

    async def test_expireIsPerQueueAndBounded(self):
        """expire removes only the given queue's tickets, at most limit members a call."""
        await self.ts.addMany([ticket(f"d{i}", i) for i in range(5)]
                              + [ticket("r", 10, queue="raid10")])
        later = START + GRACE + 1
        self.assertEqual(len(await self.ts.expire("dungeon5", later, limit=2)), 2)
        self.assertEqual(len(await self.ts.expire("dungeon5", later)), 3)
        self.assertIsNotNone(await self.ts.get("r"))
        self.assertEqual([t.id for t in await self.ts.expire("raid10", later)], ["r"])


class LeaseContract:
    """One node at a time matches a queue."""

    async def test_leaseIsExclusive(self):
        """The first node takes a queue's lease; another is refused until it is released; the holder renews."""
        other = self.node()
        self.assertIsNone(await self.ts.leaseHolder("dungeon5"))
        self.assertTrue(await self.ts.lease("dungeon5", "n1", 10))
        self.assertFalse(await other.lease("dungeon5", "n2", 10))
        self.assertTrue(await self.ts.lease("dungeon5", "n1", 10))
        self.assertTrue(await other.lease("raid10", "n2", 10))
        self.assertEqual(await other.leaseHolder("dungeon5"), "n1")
        self.assertFalse(await other.releaseLease("dungeon5", "n2"))
        self.assertTrue(await self.ts.releaseLease("dungeon5", "n1"))
        self.assertTrue(await other.lease("dungeon5", "n2", 10))
        self.assertEqual(await self.ts.leaseHolder("dungeon5"), "n2")

    async def test_leaseLapses(self):
        """A holder that stops renewing (killed) loses the lease after its ttl, and another takes it."""
        other = self.node()
        self.assertTrue(await self.ts.lease("dungeon5", "n1", 0.2))
        self.assertFalse(await other.lease("dungeon5", "n2", 0.2))
        await self.wait(0.3)
        self.assertIsNone(await other.leaseHolder("dungeon5"))
        self.assertTrue(await other.lease("dungeon5", "n2", 5))
        self.assertFalse(await self.ts.lease("dungeon5", "n1", 5))


class MemoryTicketTests(StoreCase, TicketContract, LivenessContract, LeaseContract, OnMemory,
                        TestCase):
    """The contract on the memory store."""


class RedisTicketTests(StoreCase, TicketContract, LivenessContract, LeaseContract, OnRedis,
                       TestCase):
    """The contract on real Redis."""


class ClusterTicketTests(StoreCase, TicketContract, LivenessContract, LeaseContract, OnCluster,
                         TestCase):
    """The contract on a real three-node Redis Cluster: every key of the scripts in the {mm} slot."""
