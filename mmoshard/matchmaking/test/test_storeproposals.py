"""TicketStore contract on memory and real Redis: proposals, accept, requeue keeping the place, exactly-once complete, races between nodes."""

from twisted.trial.unittest import TestCase

from mmoshard.matchmaking import errors
from mmoshard.matchmaking.test.storecases import (
    START, OnCluster, OnMemory, OnRedis, StoreCase, atOnce, proposal, ticket)

ROUNDS = 25


class ProposalContract:
    """A proposal takes all of its tickets or none, and ends exactly once."""

    async def _queue(self, *tickets):
        await self.ts.addMany(list(tickets))
        return tickets

    async def test_proposeTakesEveryTicket(self):
        """A proposal moves its tickets out of waiting, their claims point at it, and it reads back whole."""
        a, b, c = await self._queue(ticket("a", 1, 2), ticket("b", 3), ticket("c", 4))
        p = proposal("m1", a, b)
        self.assertTrue(await self.ts.propose(p))
        self.assertEqual(await self.ts.proposal("m1"), p)
        self.assertEqual(await self.ts.proposals("dungeon5"), [p])
        self.assertEqual(await self.ts.proposals("raid10"), [])
        self.assertEqual(await self.ts.waiting("dungeon5", 10), [c])
        for cid in (1, 2, 3):
            self.assertEqual((await self.ts.claim(cid)).match_id, "m1")
        self.assertIsNone((await self.ts.claim(4)).match_id)
        self.assertEqual(await self.ts.get("a"), a)
        with self.assertRaises(errors.MatchmakingError):
            await self.ts.add(ticket("x", 3))

    async def test_proposeAllOrNothing(self):
        """
        A proposal with one ticket not waiting (cancelled, unknown, of
        another queue, in another proposal) is refused and changes nothing.
        """
        a, b, c, d, r = await self._queue(ticket("a", 1), ticket("b", 2), ticket("c", 3),
                                          ticket("d", 4), ticket("r", 5, queue="raid10"))
        self.assertTrue(await self.ts.propose(proposal("m1", c, d)))
        await self.ts.cancel("b")
        before = await self.ts.stats("dungeon5")
        for p in (proposal("m2", a, b), proposal("m3", a, ticket("zz", 9)),
                  proposal("m4", a, r), proposal("m5", a, c), proposal("m6", a, a)):
            self.assertFalse(await self.ts.propose(p), p.match_id)
            self.assertIsNone(await self.ts.proposal(p.match_id))
        self.assertEqual(await self.ts.waiting("dungeon5", 10), [a])
        self.assertIsNone((await self.ts.claim(1)).match_id)
        self.assertEqual(await self.ts.stats("dungeon5"), before)
        self.assertEqual([p.match_id for p in await self.ts.proposals("dungeon5")], ["m1"])

    async def test_matchIdOnce(self):
        """A match id already in flight is refused for another proposal."""
        a, b = await self._queue(ticket("a", 1), ticket("b", 2))
        self.assertTrue(await self.ts.propose(proposal("m1", a)))
        self.assertFalse(await self.ts.propose(proposal("m1", b)))
        self.assertEqual(await self.ts.waiting("dungeon5", 10), [b])

    async def test_proposeMany(self):
        """proposeMany judges each proposal on its own, in order: of two over one ticket the first wins."""
        a, b, c, d = await self._queue(ticket("a", 1), ticket("b", 2), ticket("c", 3),
                                       ticket("d", 4))
        results = await self.ts.proposeMany([proposal("m1", a, b), proposal("m2", b, c),
                                             proposal("m3", c, d)])
        self.assertEqual(results, [True, False, True])
        self.assertEqual(await self.ts.waiting("dungeon5", 10), [])
        self.assertEqual(sorted(p.match_id for p in await self.ts.proposals("dungeon5")),
                         ["m1", "m3"])
        self.assertEqual(await self.ts.proposeMany([]), [])

    async def test_proposalsSoonestFirst(self):
        """proposals lists a queue's proposals in flight by expiry, for a new lease holder to resume."""
        a, b, c = await self._queue(ticket("a", 1), ticket("b", 2), ticket("c", 3))
        await self.ts.proposeMany([proposal("late", a, expires=1030.0),
                                   proposal("soon", b, expires=1010.0),
                                   proposal("mid", c, expires=1020.0)])
        resumed = await self.node().proposals("dungeon5")
        self.assertEqual([p.match_id for p in resumed], ["soon", "mid", "late"])
        self.assertEqual([p.expires_at for p in resumed], [1010.0, 1020.0, 1030.0])

    async def test_proposalIdsSoonestFirst(self):
        """proposalIds lists the match ids of a queue's proposals in flight by expiry, as text; a completed or requeued one is gone from it."""
        a, b, c = await self._queue(ticket("a", 1), ticket("b", 2), ticket("c", 3))
        await self.ts.proposeMany([proposal("late", a, expires=1030.0),
                                   proposal("soon", b, expires=1010.0),
                                   proposal("mid", c, expires=1020.0)])
        self.assertEqual(await self.node().proposalIds("dungeon5"), ["soon", "mid", "late"])
        await self.ts.complete("soon")
        await self.ts.requeue("late")
        self.assertEqual(await self.node().proposalIds("dungeon5"), ["mid"])
        self.assertEqual(await self.ts.proposalIds("raid10"), [])

    async def test_extendMovesTheEnd(self):
        """extend gives a proposal in flight a later end, seen by any node (its read and its order among the queue's proposals) with its accepts kept; an ended one is None."""
        a, b = await self._queue(ticket("a", 1), ticket("b", 2))
        await self.ts.proposeMany([proposal("first", a, expires=1010.0),
                                   proposal("second", b, expires=1020.0)])
        await self.ts.accept("first", 1)
        later = await self.ts.extend(await self.ts.proposal("first"), 1030.0)
        self.assertEqual((later.expires_at, later.accepted), (1030.0, {1}))
        other = self.node()
        self.assertEqual(await other.proposal("first"), later)
        self.assertEqual([p.match_id for p in await other.proposals("dungeon5")],
                         ["second", "first"])
        await self.ts.requeue("first")
        self.assertIsNone(await other.extend(later, 1040.0))

    async def test_accept(self):
        """Accepts add up in the stored proposal, seen by any node; a stranger or an unknown match gets None."""
        a, b = await self._queue(ticket("a", 1, 2), ticket("b", 3))
        await self.ts.propose(proposal("m1", a, b))
        self.assertEqual((await self.ts.accept("m1", 1)).accepted, {1})
        self.assertEqual((await self.ts.accept("m1", 1)).accepted, {1})
        self.assertIsNone(await self.ts.accept("m1", 99))
        self.assertIsNone(await self.ts.accept("nope", 1))
        other = self.node()
        self.assertEqual((await other.accept("m1", 3)).accepted, {1, 3})
        done = await self.ts.accept("m1", 2)
        self.assertEqual(done.accepted, set(done.characterIds))
        self.assertEqual((await other.proposal("m1")).accepted, {1, 2, 3})

    async def test_requeueKeepsPlace(self):
        """
        Requeue removes the dropped tickets (their members are free) and the
        others wait again in their old place, before tickets that came
        while they were proposed.
        """
        old, decliner = await self._queue(ticket("old", 1, created=100.0),
                                          ticket("decl", 2, created=90.0))
        await self.ts.propose(proposal("m1", old, decliner))
        newer = ticket("new", 3, created=150.0)
        await self.ts.add(newer)
        self.assertEqual(await self.ts.requeue("m1", ["decl"]), [old])
        self.assertEqual(await self.ts.waiting("dungeon5", 10), [old, newer])
        self.assertIsNone(await self.ts.get("decl"))
        self.assertIsNone(await self.ts.ticketOf(2))
        self.assertIsNone((await self.ts.claim(1)).match_id)
        self.assertIsNone(await self.ts.proposal("m1"))
        self.assertEqual(await self.ts.proposals("dungeon5"), [])
        self.assertEqual(await self.ts.requeue("m1", ["decl"]), [])
        self.assertIsNone(await self.ts.requeueOutcome("m1"))
        await self.ts.add(ticket("again", 2, queue="raid10"))
        self.assertTrue(await self.ts.propose(proposal("m2", old)))

    async def test_requeueOutcome(self):
        """requeueOutcome tells the proposal as it ended, who went back and who was removed (named by id or ticket)."""
        a, b, c = await self._queue(ticket("a", 1), ticket("b", 2), ticket("c", 3))
        await self.ts.propose(proposal("m1", a, b, c))
        await self.ts.accept("m1", 1)
        out = await self.ts.requeueOutcome("m1", ["b", c])
        self.assertEqual(out.proposal.accepted, {1})
        self.assertEqual(out.requeued, (a,))
        self.assertEqual(out.removed, (b, c))

    async def test_completeOnce(self):
        """Complete ends a proposal once: its tickets are gone and members free; a second complete or a requeue gets None."""
        a, b = await self._queue(ticket("a", 1, 2), ticket("b", 3))
        p = proposal("m1", a, b)
        await self.ts.propose(p)
        for cid in (1, 2, 3):
            await self.ts.accept("m1", cid)
        done = await self.ts.complete("m1")
        self.assertEqual(done.match_id, "m1")
        self.assertEqual(done.tickets, (a, b))
        self.assertEqual(done.accepted, {1, 2, 3})
        self.assertIsNone(await self.ts.complete("m1"))
        self.assertIsNone(await self.ts.requeueOutcome("m1"))
        self.assertIsNone(await self.ts.accept("m1", 1))
        self.assertIsNone(await self.ts.get("a"))
        self.assertIsNone(await self.ts.ticketOf(3))
        self.assertEqual(await self.ts.waiting("dungeon5", 10), [])
        self.assertEqual(await self.ts.proposals("dungeon5"), [])
        await self.ts.add(ticket("next", 1, 2, 3, queue="raid10"))

    async def test_completeAfterRequeue(self):
        """A proposal requeued (timed out) is not completed afterwards."""
        a, = await self._queue(ticket("a", 1))
        await self.ts.propose(proposal("m1", a))
        await self.ts.requeue("m1")
        self.assertIsNone(await self.ts.complete("m1"))
        self.assertEqual(await self.ts.waiting("dungeon5", 10), [a])


class RaceContract:
    """Two nodes at once on the same tickets: the store lets exactly one through."""

    async def test_twoProposalsOneTicket(self):
        """Two nodes propose over the same ticket at once: exactly one wins; the loser's other ticket still waits."""
        other = self.node()
        for i in range(ROUNDS):
            shared, mine, theirs = (ticket(f"s{i}", 3 * i + 1), ticket(f"m{i}", 3 * i + 2),
                                    ticket(f"t{i}", 3 * i + 3))
            await self.ts.addMany([shared, mine, theirs])
            won = await atOnce(self.ts.propose(proposal(f"A{i}", shared, mine)),
                               other.propose(proposal(f"B{i}", shared, theirs)))
            self.assertEqual(sorted(won), [False, True], i)
            loser = theirs if won[0] else mine
            self.assertIsNone((await self.ts.claim(loser.members[0].character_id)).match_id)
            self.assertIn(loser, await self.ts.waiting("dungeon5", 100))
            winner = f"A{i}" if won[0] else f"B{i}"
            self.assertEqual((await self.ts.claim(3 * i + 1)).match_id, winner)

    async def test_twoAddsOneCharacter(self):
        """Two nodes queue the same character at once: exactly one ticket is taken, the other is mm.already_queued."""
        other = self.node()
        for i in range(ROUNDS):
            results = await atOnce(self.ts.addMany([ticket(f"a{i}", i, 1000 + i)]),
                                   other.addMany([ticket(f"b{i}", i, queue="raid10")]))
            outcomes = [r[0] for r in results]
            self.assertEqual(sum(o is None for o in outcomes), 1, i)
            refused = next(o for o in outcomes if o is not None)
            self.assertEqual(refused.info.code, errors.ALREADY_QUEUED)
            held = await self.ts.ticketOf(i)
            self.assertEqual(held.id, f"a{i}" if outcomes[0] is None else f"b{i}")
            if outcomes[0] is not None:
                self.assertIsNone(await self.ts.ticketOf(1000 + i))

    async def test_completeRacesRequeue(self):
        """The last accept's complete and a ready-check timeout's requeue race: exactly one ends the proposal."""
        other = self.node()
        for i in range(ROUNDS):
            t = ticket(f"t{i}", i)
            await self.ts.add(t)
            await self.ts.propose(proposal(f"m{i}", t))
            done, outcome = await atOnce(self.ts.complete(f"m{i}"),
                                         other.requeueOutcome(f"m{i}"))
            self.assertEqual((done is None) + (outcome is None), 1, i)
            waiting = await self.ts.waiting("dungeon5", 1)
            self.assertEqual(waiting, [] if done is not None else [t])
            if waiting:
                await self.ts.cancel(t.id)

    async def test_acceptRacesRequeue(self):
        """An accept racing the timeout's requeue either lands before it (seen in the outcome) or gets None."""
        other = self.node()
        for i in range(ROUNDS):
            t = ticket(f"t{i}", i)
            await self.ts.add(t)
            await self.ts.propose(proposal(f"m{i}", t, expires=START))
            accepted, outcome = await atOnce(self.ts.accept(f"m{i}", i),
                                             other.requeueOutcome(f"m{i}"))
            self.assertEqual(accepted is not None, i in outcome.proposal.accepted, i)
            self.assertEqual(outcome.requeued, (t,))
            await self.ts.cancel(t.id)


class MemoryProposalTests(StoreCase, ProposalContract, RaceContract, OnMemory, TestCase):
    """The contract on the memory store."""


class RedisProposalTests(StoreCase, ProposalContract, RaceContract, OnRedis, TestCase):
    """The contract on real Redis, where the races are real."""


class ClusterProposalTests(StoreCase, ProposalContract, RaceContract, OnCluster, TestCase):
    """Proposals on a real three-node Redis Cluster."""
