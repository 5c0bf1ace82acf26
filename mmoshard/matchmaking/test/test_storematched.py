"""TicketStore contract on memory and real Redis: each member's mm.matched is stored atomically with complete, outlives the node that made the match, and is forgotten when the member queues again, entered, or it expired."""

from twisted.trial.unittest import TestCase

from mmoshard.matchmaking.store import CharacterState

from mmoshard.matchmaking.test.storecases import (
    OnCluster, OnMemory, OnRedis, StoreCase, atOnce, proposal, records, ticket)

TTL = 300.0


class MatchedContract:
    """What complete stores for the members, and what reads and forgets it."""

    async def _proposed(self, mid="m1", *tickets):
        tickets = tickets or (ticket("a", 1, 2), ticket("b", 3))
        await self.ts.addMany(list(tickets))
        p = proposal(mid, *tickets)
        self.assertTrue(await self.ts.propose(p))
        return p

    async def test_completeStoresEveryMembersMatched(self):
        """After complete, each member's mm.matched reads back (from any node), and the match is unannounced until announced."""
        p = await self._proposed()
        mine = records(p)
        self.assertEqual(await self.ts.complete("m1", mine, ttl=TTL), p)
        other = self.node()
        for r in mine:
            self.assertEqual(await other.matchedOf(r.character_id), r)
        self.assertEqual(await other.unannounced("dungeon5"), [("m1", list(mine))])
        self.assertEqual(await other.unannounced("raid10"), [])
        await other.announced("dungeon5", ["m1"])
        self.assertEqual(await self.ts.unannounced("dungeon5"), [])
        # Announced: the records still answer mm.hello.
        self.assertEqual(await self.ts.matchedOf(1), mine[0])

    async def test_stateOfReadsEachStage(self):
        """stateOf answers a character's whole state at once: nothing; its ticket waiting; its ticket and the proposal holding it; after complete, no ticket and its mm.matched."""
        self.assertEqual(await self.ts.stateOf(1), CharacterState())
        a, b = ticket("a", 1, 2), ticket("b", 3)
        await self.ts.addMany([a, b])
        self.assertEqual(await self.ts.stateOf(1), CharacterState(ticket=a))
        p = proposal("m1", a, b)
        self.assertTrue(await self.ts.propose(p))
        accepted = await self.ts.accept("m1", 3)
        self.assertEqual(accepted.accepted, frozenset({3}))
        other = self.node()
        self.assertEqual(await other.stateOf(3), CharacterState(ticket=b, proposal=accepted))
        mine = records(p)
        await self.ts.complete("m1", mine, ttl=TTL)
        self.assertEqual(await other.stateOf(2), CharacterState(matched=mine[1]))

    async def test_completeWithoutRecordsStoresNothing(self):
        """A complete without records (as before) stores no mm.matched and marks nothing."""
        p = await self._proposed()
        self.assertEqual(await self.ts.complete("m1"), p)
        self.assertIsNone(await self.ts.matchedOf(1))
        self.assertEqual(await self.ts.unannounced("dungeon5"), [])

    async def test_secondCompleteWritesNothing(self):
        """A complete that loses (the proposal was requeued or completed) stores no records."""
        p = await self._proposed()
        self.assertEqual(await self.ts.requeue("m1"), list(p.tickets))
        self.assertIsNone(await self.ts.complete("m1", records(p), ttl=TTL))
        self.assertIsNone(await self.ts.matchedOf(1))
        self.assertEqual(await self.ts.unannounced("dungeon5"), [])

    async def test_queuingAgainForgetsTheRecord(self):
        """A member who queues again (its claim is free after complete) loses its old mm.matched; the others keep theirs."""
        p = await self._proposed()
        mine = records(p)
        await self.ts.complete("m1", mine, ttl=TTL)
        await self.ts.add(ticket("again", 3))
        self.assertIsNone(await self.ts.matchedOf(3))
        self.assertEqual(await self.ts.matchedOf(1), mine[0])
        # The match still lists the members who kept a record.
        self.assertEqual(await self.ts.unannounced("dungeon5"), [("m1", list(mine[:2]))])

    async def test_dismissOnlyThatMatch(self):
        """dismiss forgets a member's record of that match only (a newer match's record stays)."""
        p = await self._proposed()
        await self.ts.complete("m1", records(p), ttl=TTL)
        self.assertFalse(await self.ts.dismiss(1, "other"))
        self.assertIsNotNone(await self.ts.matchedOf(1))
        self.assertTrue(await self.ts.dismiss(1, "m1"))
        self.assertIsNone(await self.ts.matchedOf(1))
        self.assertIsNotNone(await self.ts.matchedOf(2))

    async def test_unannouncedExpiresWithTheTickets(self):
        """A match not announced within the records' TTL is forgotten: its admission tickets ran out."""
        p = await self._proposed()
        await self.ts.complete("m1", records(p), ttl=TTL)
        self.mmClock.advance(TTL + 1)
        self.assertEqual(await self.ts.unannounced("dungeon5"), [])

    async def test_raceCompleteAgainstRequeue(self):
        """complete racing requeue on two nodes: records exist exactly when complete won."""
        other = self.node()
        for i in range(10):
            t = ticket(f"t{i}", 100 + i)
            await self.ts.add(t)
            p = proposal(f"r{i}", t)
            await self.ts.propose(p)
            done, back = await atOnce(self.ts.complete(p.match_id, records(p), ttl=TTL),
                                      other.requeue(p.match_id))
            self.assertEqual(done is not None, back == [], i)
            self.assertEqual(await self.ts.matchedOf(100 + i) is not None, done is not None, i)
            if back:
                await self.ts.cancel(t.id)


class MemoryMatchedTests(StoreCase, MatchedContract, OnMemory, TestCase):
    """The contract on the memory store, where key TTLs run on the Clock."""

    async def test_recordsExpire(self):
        """A member's record is gone once the admission ticket's lifetime passed."""
        p = await self._proposed()
        await self.ts.complete("m1", records(p), ttl=TTL)
        self.clock.advance(TTL + 1)
        self.assertIsNone(await self.ts.matchedOf(1))


class RedisMatchedTests(StoreCase, MatchedContract, OnRedis, TestCase):
    """The contract on real Redis."""


class ClusterMatchedTests(StoreCase, MatchedContract, OnCluster, TestCase):
    """The contract on a real three-node Redis Cluster."""
