"""A volatile store that stops answering: typed errors for requests, passes that fail and recover, nothing lost."""

from twisted.trial.unittest import TestCase

from mmoshard.matchmaking import errors
from mmoshard.matchmaking.test.harness import Flaky, MatchmakingCase
from mmoshard.store.errors import VolatileUnavailable

FIVE = ("Tom", "Hal", "Dan", "Dora", "Dirk")


class OutageTests(MatchmakingCase, TestCase):

    async def _setUpCase(self):
        await MatchmakingCase._setUpCase(self)
        self.store = Flaky(self.store)

    async def proposed(self, node, where=None):
        """The five connect (to C{where(name)}, else C{node}) and queue one second apart; C{node} proposes. @return: (clients, match id)."""
        clients = {n: await (where(n) if where else node).connect(n) for n in FIVE}
        for name in FIVE:
            await clients[name].call("mm.queue", queue="dungeon5")
            self.clock.advance(1)
        await self.matchPass(node)
        return clients, clients["Tom"].last("mm.proposal")["match"]

    async def test_requestsAnswerUnavailable(self):
        """While the store is down mm.queue and mm.status answer mm.unavailable with retry_after; afterwards they work."""
        node = await self.node()
        dan = await node.connect("Dan")
        self.store.down = True
        for type in ("mm.queue", "mm.status", "mm.cancel"):
            code, _ = await dan.fails(type, queue="dungeon5")
            self.assertEqual(code, errors.UNAVAILABLE, type)
        self.store.down = False
        await dan.call("mm.queue", queue="dungeon5")
        self.assertEqual(node.metric("mmoshard_mm_refused_total", code="mm.unavailable"), 3.0)

    async def test_locatorDownAnswersUnavailable(self):
        """A party member's location that cannot be read answers mm.queue mm.unavailable (retryable), not internal."""
        one, two = await self.node("mm-1"), await self.node("mm-2", instances=False)
        self.party("p1", "Tom", "Hal")
        tom = await one.connect("Tom")
        await two.connect("Hal")
        self.locator.down = True
        code, _ = await tom.fails("mm.queue", queue="dungeon5")
        self.assertEqual(code, errors.UNAVAILABLE)
        self.locator.down = False
        await tom.call("mm.queue", queue="dungeon5")

    async def test_passesRecover(self):
        """Passes during an outage fail quietly; once the store is back the queue is matched."""
        node = await self.node()
        clients = {n: await node.connect(n) for n in FIVE}
        self.store.down = True
        self.clock.advance(3)
        self.store.down = False
        for client in clients.values():
            await client.call("mm.queue", queue="dungeon5")
        self.clock.advance(node.service.config.match_interval)
        self.flush()
        self.assertEqual(len({c.last("mm.proposal")["match"] for c in clients.values()}), 1)

    async def test_readyCheckTimeoutRetriedAfterAnOutage(self):
        """A ready check whose timeout falls in a store outage still ends once the store is back: who did not accept is removed, the others requeued, and everyone may queue again."""
        node = await self.node()
        clients, match = await self.proposed(node)
        for name in ("Tom", "Hal"):
            await clients[name].call("mm.accept", match=match)
        self.store.down = True
        self.clock.advance(21)
        self.flush()
        self.assertEqual(clients["Dan"].events("mm.removed"), [])
        self.store.down = False
        self.clock.advance(4)  # the next try (1 s after the first, then 2 s)
        self.flush()
        for name in ("Dan", "Dora", "Dirk"):
            self.assertEqual(clients[name].last("mm.removed")["reason"], "timeout", name)
            await clients[name].call("mm.queue", queue="dungeon5")
        for name in ("Tom", "Hal"):
            self.assertEqual(clients[name].last("mm.requeued")["reason"], "timeout", name)

    async def test_matchedNotSentIsSentAgain(self):
        """A member whose mm.matched could not be sent (its node's location unreadable) gets it once the store answers again, from the holder's next look at unannounced matches, and only that member; the match is then announced and not sent again."""
        one, two = await self.node("mm-1"), await self.node("mm-2", instances=False)
        clients, match = await self.proposed(one, lambda n: two if n == "Hal" else one)
        for name in FIVE[:-1]:
            await clients[name].call("mm.accept", match=match)
        self.locator.down = True
        await clients["Dirk"].call("mm.accept", match=match)
        self.flush()
        self.assertEqual(clients["Tom"].last("mm.matched")["match"], match)
        self.assertEqual(clients["Hal"].events("mm.matched"), [])
        self.assertEqual([m for m, _ in await self.store.unannounced("dungeon5")], [match])
        self.locator.down = False
        self.clock.advance(5.0)
        self.flush()
        self.assertEqual(clients["Hal"].last("mm.matched")["match"], match)
        self.assertEqual(await self.store.unannounced("dungeon5"), [])
        self.clock.advance(10.0)
        self.flush()
        self.assertEqual({n: len(c.events("mm.matched")) for n, c in clients.items()},
                         dict.fromkeys(FIVE, 1))

    async def test_completeRetriedInTheSameInstance(self):
        """A match whose completion fails on the store is completed at the next try, after 1 s, in the instance made the first time (not a second one); every member gets mm.matched."""
        node = await self.node()
        clients, match = await self.proposed(node)
        self.store.failing = {"complete"}
        for name in FIVE:
            await clients[name].call("mm.accept", match=match)
        self.flush()
        self.assertEqual((len(self.instances.created), clients["Tom"].events("mm.matched")), (1, []))
        self.store.failing = set()
        self.clock.advance(1.0)
        self.flush()
        self.assertEqual(len(self.instances.created), 1)
        for name in FIVE:
            self.assertEqual(clients[name].last("mm.matched")["match"], match, name)

    async def test_timeoutRetriesBackOff(self):
        """A ready check's end that keeps failing is tried again after 1, 2, 4, 8... s (not every second), and ends once the store answers."""
        node = await self.node()
        clients, _ = await self.proposed(node)
        self.store.failing = {"proposal"}
        self.clock.advance(20.0)  # the ready check's end: tried, refused
        for _ in range(29):
            self.clock.advance(0.5)  # 14.5 s more: tried again at 1, 3 and 7 s
        self.assertEqual(self.store.refused.count("proposal"), 4)
        self.assertEqual(clients["Dan"].events("mm.removed"), [])
        self.store.failing = set()
        self.clock.advance(0.5)  # the try at 15 s
        self.flush()
        self.assertEqual(clients["Dan"].last("mm.removed")["reason"], "timeout")

    async def test_proposalStoredThoughItsAnswerFailedIsOffered(self):
        """A proposal the store wrote though its answer failed (a deadline missed in a storm) is not left untold: the holder's next pass takes it up, every member gets mm.proposal with a whole ready check, and accepting it makes the match."""
        node = await self.node()
        clients = {n: await node.connect(n) for n in FIVE}
        proposeMany = self.store.store.proposeMany

        async def lateAnswer(proposals):
            await proposeMany(proposals)
            raise VolatileUnavailable("no answer within the deadline (test)")

        node.service.loop.store.proposeMany = lateAnswer
        for name in FIVE:
            self.clock.advance(1)
            await clients[name].call("mm.queue", queue="dungeon5")
        await self.matchPass(node)
        self.assertEqual([c.events("mm.proposal") for c in clients.values()], [[]] * 5)
        del node.service.loop.store.proposeMany
        self.clock.advance(node.service.config.match_interval)
        self.flush()
        offers = [c.last("mm.proposal") for c in clients.values()]
        self.assertEqual({(o["match"], o["expires_in"]) for o in offers},
                         {(offers[0]["match"], 20.0)})
        for client in clients.values():
            await client.call("mm.accept", match=offers[0]["match"])
        self.flush()
        self.assertEqual(len(self.instances.created), 1)
        self.assertEqual({c.last("mm.matched")["match"] for c in clients.values()},
                         {offers[0]["match"]})

    async def test_matchCompletedThoughItsAnswerFailedStands(self):
        """A match the store completed though its answer failed is not undone: its instance stays open, and every member gets its mm.matched (sent again as unannounced) for the one instance made."""
        node = await self.node()
        clients, match = await self.proposed(node)
        complete = self.store.store.complete

        async def lateAnswer(*args, **kwargs):
            await complete(*args, **kwargs)
            raise VolatileUnavailable("no answer within the deadline (test)")

        node.service.loop.store.complete = lateAnswer
        for client in clients.values():
            await client.call("mm.accept", match=match)
        self.flush()
        del node.service.loop.store.complete
        for _ in range(int(10 / node.service.config.match_interval)):
            self.clock.advance(node.service.config.match_interval)
        self.flush()
        self.assertEqual(len(self.instances.created), 1)
        self.assertEqual(self.instances.closed, [])
        self.assertEqual({c.last("mm.matched")["match"] for c in clients.values()}, {match})
        self.assertEqual(node.service.loop.placements, {})
