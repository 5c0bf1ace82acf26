"""TicketStore.changes and WaitingCopy (a matcher's incremental copy of a queue) on memory and Redis, and the documented round trips per operation."""

import inspect
import os
import random
import re

from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase

from mmoshard.matchmaking.store import Cursor, TicketStore
from mmoshard.matchmaking import errors
from mmoshard.matchmaking.test.storecases import (
    START, OnCluster, OnMemory, OnRedis, StoreCase, atOnce, proposal, records, ticket)
from mmoshard.matchmaking.waitingcopy import WaitingCopy
from mmoshard.testing import checkoutRoot


class ChangesContract:
    """What entered and left a queue since a cursor, in pages that never split a step."""

    async def test_fromScratchThenIncrements(self):
        """Cursor 0 gives the whole queue (reset); later calls give only what entered and left since."""
        a, b, c = ticket("a", 1), ticket("b", 2), ticket("c", 3)
        await self.ts.addMany([a, b])
        first = await self.ts.changes("dungeon5")
        self.assertTrue(first.reset)
        self.assertFalse(first.more)
        self.assertEqual(sorted(t.id for t in first.entered), ["a", "b"])
        self.assertEqual(first.left, ())
        same = await self.ts.changes("dungeon5", first.cursor)
        self.assertEqual((same.cursor, same.reset, same.entered, same.left),
                         (first.cursor, False, (), ()))
        await self.ts.add(c)
        await self.ts.propose(proposal("m1", a))
        await self.ts.cancel("b")
        step = await self.ts.changes("dungeon5", first.cursor)
        self.assertFalse(step.reset)
        self.assertEqual(step.entered, (c,))
        self.assertEqual(sorted(step.left), ["a", "b"])
        await self.ts.requeue("m1")
        back = await self.ts.changes("dungeon5", step.cursor)
        self.assertEqual((back.entered, back.left), ((a,), ()))

    async def test_pagesNeverSplitAStep(self):
        """With a small page, entries come by pages (more set) and a batch added in one step comes whole."""
        await self.ts.addMany([ticket("a", 1), ticket("b", 2), ticket("c", 3)])
        await self.ts.add(ticket("d", 4))
        await self.ts.add(ticket("e", 5))
        page = await self.ts.changes("dungeon5", limit=2)
        self.assertEqual((sorted(t.id for t in page.entered), page.more), (["a", "b", "c"], True))
        page = await self.ts.changes("dungeon5", page.cursor, limit=2)
        self.assertEqual(([t.id for t in page.entered], page.more, page.reset),
                         (["d", "e"], False, False))

    async def test_behindTheHistoryResets(self):
        """A cursor older than the kept history of departures, or ahead of the store, reads the queue again from scratch."""
        ts = self.node(goneKeep=4, goneTrimEvery=2)
        await ts.add(ticket("a", 1))
        old = (await ts.changes("dungeon5")).cursor
        for i in range(2, 9):
            await ts.add(ticket(f"t{i}", i))
            await ts.cancel(f"t{i}")
        late = await ts.changes("dungeon5", old)
        self.assertTrue(late.reset)
        self.assertEqual([t.id for t in late.entered], ["a"])
        ahead = late.cursor.step + 100
        ahead = await ts.changes("dungeon5", Cursor(ahead, ahead))
        self.assertTrue(ahead.reset)


class CopyContract:
    """WaitingCopy stays equal to the queue whatever happens between its refreshes."""

    async def _checkRandomRun(self, seed, steps, **options):
        rng = random.Random(seed)
        ts = self.node(**{k: v for k, v in options.items() if k.startswith("gone")})
        copy = WaitingCopy(ts, "dungeon5", pageSize=options.get("pageSize", 5000))
        nextId = iter(range(1, 10**6))
        inFlight = []
        for step in range(steps):
            waiting = await ts.waiting("dungeon5", 10_000)
            op = rng.random()
            if op < 0.4 or not waiting:
                batch = [ticket(f"s{seed}t{n}", 10_000 * seed + n, created=START - rng.randrange(100))
                         for n in [next(nextId) for _ in range(rng.randrange(1, 4))]]
                await ts.addMany(batch)
            elif op < 0.55:
                await ts.cancel(rng.choice(waiting).id)
            elif op < 0.75:
                picked = rng.sample(waiting, min(len(waiting), rng.randrange(1, 4)))
                mid = f"s{seed}m{step}"
                if await ts.propose(proposal(mid, *picked)):
                    inFlight.append((mid, picked))
            elif inFlight:
                mid, picked = inFlight.pop(rng.randrange(len(inFlight)))
                if rng.random() < 0.3:
                    await ts.complete(mid)
                else:
                    drop = [t.id for t in picked if rng.random() < 0.3]
                    await ts.requeue(mid, drop)
            if rng.random() < 0.3:
                self.assertEqual(await copy.refresh(), await ts.waiting("dungeon5", 10_000),
                                 f"seed {seed} step {step}")
        self.assertEqual(await copy.refresh(), await ts.waiting("dungeon5", 10_000))
        self.assertEqual(copy.tickets(), await ts.waiting("dungeon5", 10_000))
        self.assertEqual(len(copy), await ts.count("dungeon5"))

    async def test_copyFollowsTheQueue(self):
        """Through random adds, cancels, proposals, requeues and completes, a refreshed copy equals the queue, oldest first."""
        for seed in range(3):
            await self._checkRandomRun(seed, 150)

    async def test_copyAcrossPagesAndTrims(self):
        """The copy stays right with tiny pages and a tiny kept history (reads from scratch when behind)."""
        for seed in range(3):
            await self._checkRandomRun(100 + seed, 150, pageSize=2, goneKeep=6, goneTrimEvery=3)

    async def test_discard(self):
        """A copy forgets tickets it was told were proposed, until a refresh says otherwise."""
        a, b = ticket("a", 1), ticket("b", 2)
        await self.ts.addMany([a, b])
        copy = WaitingCopy(self.ts, "dungeon5")
        self.assertEqual(await copy.refresh(), [a, b])
        await self.ts.propose(proposal("m1", a))
        copy.discard(["a"])
        self.assertEqual(copy.tickets(), [b])
        await self.ts.requeue("m1")
        self.assertEqual(await copy.refresh(), [a, b])


class MemoryChangesTests(StoreCase, ChangesContract, CopyContract, OnMemory, TestCase):
    """The contract on the memory store."""


class RedisChangesTests(StoreCase, ChangesContract, CopyContract, OnRedis, TestCase):
    """The contract on real Redis."""


class Counting:
    """A volatile store that counts the calls (round trips) made through it."""

    def __init__(self, store):
        self.store = store
        self.calls = 0

    def __getattr__(self, name):
        method = getattr(self.store, name)

        def counted(*args, **kwargs):
            self.calls += 1
            return method(*args, **kwargs)

        return counted


def documentedRoundTrips():
    """{operation: round trips} from the table in docs/matchmaking.md "State in the volatile store"."""
    with open(os.path.join(checkoutRoot(), "docs", "matchmaking.md"), encoding="utf-8") as f:
        text = f.read()
    section = text.split("## State in the volatile store", 1)[1].split("\n## ", 1)[0]
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^\| `(\w+)\([^`]*\)` \| (\d+) \|", section, re.M)}


class ClusterChangesTests(StoreCase, ChangesContract, CopyContract, OnCluster, TestCase):
    """The changes feed on a real three-node Redis Cluster."""


class RoundTripTests(OnMemory, TestCase):
    """Every TicketStore operation costs the round trips docs/matchmaking.md says."""

    async def test_documentedRoundTrips(self):
        """Each public operation makes exactly the documented number of store calls, batches included."""
        counting = Counting(self.store)
        ts = TicketStore(counting, self.clock)
        batch = [ticket(f"t{i}", i) for i in range(20)]
        t = ticket("x", 100)
        p = proposal("m1", *batch[:5])
        calls = {
            "add": lambda: ts.add(t),
            "addMany": lambda: ts.addMany(batch),
            "get": lambda: ts.get("t1"),
            "getMany": lambda: ts.getMany(["t1", "t2", "t3"]),
            "ticketOf": lambda: ts.ticketOf(1),
            "claim": lambda: ts.claim(1),
            "claims": lambda: ts.claims([1, 2, 3]),
            "count": lambda: ts.count("dungeon5"),
            "waiting": lambda: ts.waiting("dungeon5", 100),
            "changes": lambda: ts.changes("dungeon5"),
            "stats": lambda: ts.stats("dungeon5"),
            "propose": lambda: ts.propose(p),
            "proposeMany": lambda: ts.proposeMany([proposal("m2", batch[5]),
                                                   proposal("m3", batch[6])]),
            "accept": lambda: ts.accept("m1", 1),
            "proposal": lambda: ts.proposal("m1"),
            "proposals": lambda: ts.proposals("dungeon5"),
            "proposalIds": lambda: ts.proposalIds("dungeon5"),
            "extend": lambda: ts.extend(p, START + 60),
            "requeue": lambda: ts.requeue("m2", ["t5"]),
            "requeueOutcome": lambda: ts.requeueOutcome("m3"),
            "complete": lambda: ts.complete("m1", records(p), ttl=300),
            "matchedOf": lambda: ts.matchedOf(1),
            "stateOf": lambda: ts.stateOf(1),
            "unannounced": lambda: ts.unannounced("dungeon5"),
            "announced": lambda: ts.announced("dungeon5", ["m1"]),
            "dismiss": lambda: ts.dismiss(1, "m1"),
            "cancel": lambda: ts.cancel("x"),
            "touch": lambda: ts.touch([i for i in range(20)], 30),
            "expire": lambda: ts.expire("dungeon5", START + 100),
            "lease": lambda: ts.lease("dungeon5", "n1", 5),
            "leaseHolder": lambda: ts.leaseHolder("dungeon5"),
            "releaseLease": lambda: ts.releaseLease("dungeon5", "n1"),
        }
        public = {n for n, f in inspect.getmembers(TicketStore, inspect.iscoroutinefunction)
                  if not n.startswith("_")}
        self.assertEqual(public, set(calls))
        documented = documentedRoundTrips()
        self.assertEqual(set(documented), public)
        for name, call in calls.items():
            before = counting.calls
            await call()
            self.assertEqual(counting.calls - before, documented[name], name)


class AddBatchTests(OnRedis, TestCase):
    """Adds (and accepts) that arrive together share round trips, and each is still judged on its own."""

    async def test_addsArrivingTogetherShareACall(self):
        """
        Fifty adds started at once on Redis take two store calls (the first
        goes alone, the rest together when it returns); a duplicate
        character among them is refused, the others are queued.
        """
        counting = Counting(self.store)
        ts = TicketStore(counting, self.mmClock)
        tickets = [ticket(f"t{i}", i) for i in range(50)] + [ticket("dup", 7)]
        results = await atOnce(*[_outcome(ts.add(t)) for t in tickets])
        self.assertEqual(counting.calls, 2)
        self.assertEqual(results[:50], [None] * 50)
        self.assertEqual(results[50], errors.ALREADY_QUEUED)
        self.assertEqual(await ts.count("dungeon5"), 50)

    async def test_addsArrivingTogetherAreLoggedTogether(self):
        """
        The tickets a call admits are logged in one event per 50 (not one
        each), naming each ticket's id, queue, leader and members' roles;
        a refused add is not among them.
        """
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        ts = TicketStore(self.store, self.mmClock)
        tickets = [ticket(f"t{i}", i) for i in range(60)] + [ticket("dup", 7)]
        await atOnce(*[_outcome(ts.add(t)) for t in tickets])
        queued = [formatEvent(e) for e in events if e.get("log_format", "").startswith("mm {count} tickets queued")]
        # The first add alone, then 59 admitted (the duplicate refused): 1, 50, 9.
        self.assertEqual([q.split(" ")[1] for q in queued], ["1", "50", "9"])
        text = " ".join(queued)
        for i in range(60):
            self.assertIn(f"t{i} in dungeon5 by {i} ({i} ", text)
        self.assertNotIn("dup", text)

    async def test_acceptsArrivingTogetherShareACall(self):
        """
        Ten members of two proposals accepting at once on Redis take two
        store calls; each answer is that proposal as it stood after that
        accept (the last of each proposal sees all accepted), and an accept
        of a member not in the proposal is refused in the same batch.
        """
        ts = TicketStore(self.store, self.mmClock)
        tickets = [ticket(f"t{i}", i) for i in range(10)]
        await ts.addMany(tickets)
        await ts.proposeMany([proposal("m1", *tickets[:5]), proposal("m2", *tickets[5:])])
        counting = Counting(self.store)
        ts = TicketStore(counting, self.mmClock)
        pairs = [("m1" if i < 5 else "m2", i) for i in range(10)] + [("m1", 7)]
        results = await atOnce(*[ts.accept(m, c) for m, c in pairs])
        self.assertEqual(counting.calls, 2)
        self.assertEqual([len(p.accepted) for p in results[:10]], [1, 2, 3, 4, 5] * 2)
        self.assertEqual(results[4].accepted, {0, 1, 2, 3, 4})
        self.assertIsNone(results[10])


async def _outcome(coroutine):
    """None when the add succeeded, else the error code it raised."""
    try:
        await coroutine
    except errors.MatchmakingError as e:
        return e.info.code
    return None
