"""Several matchmaking nodes on one store and Clock: leases, events across nodes, failover of the lease holder, tickets outliving their node."""

import attrs
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from mmoshard.matchmaking.test.harness import MatchmakingCase

FIVE = ("Tom", "Hal", "Dan", "Dora", "Dirk")


class NodesTests(MatchmakingCase, TestCase):

    async def spread(self, one, two):
        """Tom, Hal and Dan on node one, Dora and Dirk on node two, all queued; @return: name -> Client."""
        clients = {}
        for name in FIVE:
            clients[name] = await (one if name in ("Tom", "Hal", "Dan") else two).connect(name)
            await clients[name].call("mm.queue", queue="dungeon5")
            self.clock.advance(1)
        return clients

    async def allButDirkAccepted(self):
        """Node one proposes the five (all on node two); all but Dirk accept. @return: (one, two, clients, match id)."""
        one, two = await self.node("mm-1"), await self.node("mm-2")
        clients = await self.spread(two, two)
        await self.matchPass(one)
        match = clients["Dan"].last("mm.proposal")["match"]
        for name in ("Tom", "Hal", "Dan", "Dora"):
            await clients[name].call("mm.accept", match=match)
        return one, two, clients, match

    async def test_oneLeaseHolderPerQueue(self):
        """Of two nodes, the first to pass holds every queue; the other takes none while it lives."""
        one = await self.node("mm-1")
        two = await self.node("mm-2")
        self.assertEqual(one.service.loop.held, {"dungeon5", "arena2v2", "duo"})
        await self.matchPass(two)
        self.assertEqual(two.service.loop.held, set())
        self.assertEqual(await self.store.leaseHolder("dungeon5"), "mm-1")
        self.assertEqual(one.metric("mmoshard_mm_lease_held", queue="duo"), 1.0)
        self.assertEqual(two.metric("mmoshard_mm_lease_held", queue="duo"), 0.0)

    async def test_leaseRenewedEveryThirdOfItsTTL(self):
        """
        The holder renews a lease when a third of its TTL has passed, not at every pass,
        so the store keeps it; a holder whose lease another node took (it was paused past
        the TTL) stops matching that queue at its next renewal.
        """
        one = await self.node("mm-1", match_interval=0.5, lease_ttl=6.0)
        renewals = []
        original = self.store.lease
        self.store.lease = lambda *a: renewals.append(a[0]) or original(*a)
        for _ in range(8):  # 4 s of passes: renewals at 2 s and 4 s
            self.clock.advance(0.5)
            await self.matchPass(one)
        self.assertEqual(renewals.count("duo"), 2)
        self.assertEqual(await self.store.leaseHolder("duo"), "mm-1")
        # Paused past the TTL: mm-2 takes every queue; mm-1 notices at its renewal.
        one.service.loop.looping.stop()
        self.clock.advance(7)
        two = await self.node("mm-2", match_interval=0.5, lease_ttl=6.0)
        self.assertEqual(two.service.loop.held, {"dungeon5", "arena2v2", "duo"})
        await self.matchPass(one)
        self.assertEqual(one.service.loop.held, set())

    async def test_eventsReachPlayersOnOtherNodes(self):
        """Players on the node that does not match get their proposal and mm.matched through its inbox; accepts there finish the match."""
        one, two = await self.node("mm-1"), await self.node("mm-2")
        clients = await self.spread(one, two)
        await self.matchPass(one)
        match = clients["Dora"].last("mm.proposal")["match"]
        for name in ("Dan", "Tom", "Hal", "Dirk", "Dora"):
            await clients[name].call("mm.accept", match=match)
        self.flush()
        self.assertEqual(len(self.instances.created), 1)
        for name, client in clients.items():
            self.assertEqual(client.last("mm.matched")["ticket"], f"adm-1-{client.cid}", name)
        self.assertEqual(two.metric("mmoshard_mm_events_total", type="mm.matched"), 2.0)

    async def test_holderKilledAfterAcceptsTheNextFinishes(self):
        """When the lease holder dies with every accept in, another node takes the lease within its TTL and makes the match once."""
        one, two = await self.node("mm-1"), await self.node("mm-2")
        clients = await self.spread(two, two)
        await self.matchPass(one)
        match = clients["Dan"].last("mm.proposal")["match"]
        await self.kill(one)
        for name in FIVE:
            await clients[name].call("mm.accept", match=match)
        self.flush()
        self.assertEqual(self.instances.created, [])
        self.clock.advance(one.service.config.lease_ttl)
        await self.matchPass(two)
        self.flush()
        self.assertEqual(two.service.loop.held, {"dungeon5", "arena2v2", "duo"})
        self.assertEqual(len(self.instances.created), 1)
        self.assertEqual({c.last("mm.matched")["match"] for c in clients.values()}, {match})

    async def test_holderKilledMidCheckTheNextTimesItOut(self):
        """A ready check in flight when its holder dies gets a whole ready check from the takeover on the new holder (its players may have missed it): who did not accept is asked again, and removed only when that runs out; the others requeued."""
        one, two, clients, match = await self.allButDirkAccepted()
        await self.kill(one)
        self.clock.advance(one.service.config.lease_ttl)
        await self.matchPass(two)
        self.flush()
        again = clients["Dirk"].events("mm.proposal")
        self.assertEqual([(p["match"], p["expires_in"]) for p in again[1:]], [(match, 20.0)])
        self.assertEqual(clients["Tom"].events("mm.proposal")[1:], [])  # (accepted already)
        self.clock.advance(20 - one.service.config.lease_ttl)  # the check's first end
        self.flush()
        self.assertEqual(clients["Dirk"].events("mm.removed"), [])
        self.clock.advance(one.service.config.lease_ttl)
        self.flush()
        self.assertEqual(clients["Dirk"].last("mm.removed")["reason"], "timeout")
        self.assertEqual(clients["Tom"].last("mm.requeued")["reason"], "timeout")
        self.assertEqual(self.instances.created, [])

    async def test_holderKilledMidCheckLateAcceptStillMatches(self):
        """A player who accepts a resumed ready check after its first end (it was reconnecting) is matched with the others: the holder's death cost nobody their place."""
        one, two, clients, match = await self.allButDirkAccepted()
        self.clock.advance(15)
        await self.kill(one)
        self.clock.advance(one.service.config.lease_ttl)
        await self.matchPass(two)
        self.clock.advance(5)  # past the check's first end
        self.flush()
        await clients["Dirk"].call("mm.accept", match=match)
        self.flush()
        self.assertEqual(len(self.instances.created), 1)
        self.assertEqual({c.last("mm.matched")["match"] for c in clients.values()}, {match})

    async def test_stuckPassHoldsNoOtherQueueBack(self):
        """A queue whose pass does not end (its store calls hanging) does not stop the node's other queues: after the holder dies, it still takes their leases within the TTL and one pass."""
        one, two = await self.node("mm-1"), await self.node("mm-2")
        await self.matchPass(one)
        loop = two.service.loop
        passQueue = loop.passQueue
        stuck = Deferred()

        async def stuckArena(spec):
            if spec.name == "arena2v2":
                await stuck  # (until the test ends)
            await passQueue(spec)

        loop.passQueue = stuckArena
        self.clock.advance(loop.config.match_interval)
        await self.kill(one)
        for _ in range(int((loop.config.lease_ttl + loop.config.match_interval) * 4) + 1):
            self.clock.advance(0.25)
        self.assertEqual(loop.held, {"dungeon5", "duo"})
        stuck.callback(None)

    async def test_slowPassKeepsItsLease(self):
        """A holder whose pass of a queue is slow (its store calls hanging past the TTL) still renews that queue's lease beside it: another node does not take the queue over from a live holder."""
        one, two = await self.node("mm-1"), await self.node("mm-2")
        loop = one.service.loop
        passQueue = loop.passQueue
        stuck = Deferred()

        async def slowDungeon(spec):
            if spec.name == "dungeon5":
                await stuck
            await passQueue(spec)

        loop.passQueue = slowDungeon
        self.addCleanup(lambda: stuck.called or stuck.callback(None))
        self.clock.advance(loop.config.match_interval)
        for _ in range(int(loop.config.lease_ttl * 3 / loop.config.match_interval)):
            self.clock.advance(loop.config.match_interval)
            await self.matchPass(two)
        self.assertEqual(two.service.loop.held, set())
        self.assertEqual(await self.store.leaseHolder("dungeon5"), "mm-1")

    async def test_proposalOfAPausedHolderIsEnded(self):
        """A ready check proposed by a holder paused past its lease, after the new holder took the queue over, is timed out by the new holder all the same: its late member removed, the others requeued, nobody left in a check that never ends."""
        one, two = await self.node("mm-1"), await self.node("mm-2")
        config = one.service.config
        one.service.loop.looping.stop()  # paused
        self.clock.advance(config.lease_ttl)
        await self.matchPass(two)
        self.assertEqual(two.service.loop.held, {"dungeon5", "arena2v2", "duo"})
        formMatches = two.service.formMatches
        two.service.formMatches = lambda *a, **kw: []  # (not its turn yet)
        clients = await self.spread(two, two)
        # The paused holder wakes and proposes before its renewal tells it the lease is lost.
        one.service.loop.renewAt["dungeon5"] = self.clock.seconds() + 60
        await one.service.loop.passQueue(one.service.queues["dungeon5"])
        self.flush()
        match = clients["Dan"].last("mm.proposal")["match"]
        for name in ("Tom", "Hal", "Dan", "Dora"):
            await clients[name].call("mm.accept", match=match)
        one.service.loop.renewAt.clear()
        await self.matchPass(one)  # renewal: lost, stops timing it
        self.assertEqual(one.service.loop.held, set())
        two.service.formMatches = formMatches
        for _ in range(int((20 + 10) / config.match_interval)):
            self.clock.advance(config.match_interval)
            await self.matchPass(two)
        self.assertEqual(clients["Dirk"].last("mm.removed")["reason"], "timeout")
        self.assertEqual(clients["Tom"].last("mm.requeued")["reason"], "timeout")

    async def test_adoptReadOlderThanAMatchMakesNoSecondInstance(self):
        """A holder's look for untimed proposals whose read was sent before a match completed (its answer stale) neither makes that match's instance again nor tells its players anything more."""
        one = await self.node("mm-1")
        loop = one.service.loop
        clients = await self.spread(one, one)
        await self.matchPass(one)
        match = clients["Dan"].last("mm.proposal")["match"]
        stale = [attrs.evolve(p, accepted=frozenset(p.characterIds))
                 for p in await self.store.proposals("dungeon5")]
        answer = Deferred()
        loop.store.proposals = lambda queue: answer
        adopting = Deferred.fromCoroutine(loop.adopt("dungeon5"))  # (its read out)
        self.clock.advance(0.1)
        for name in FIVE:
            await clients[name].call("mm.accept", match=match)
        self.flush()
        self.assertEqual(len(self.instances.created), 1)
        answer.callback(stale)
        await adopting
        self.flush()
        self.assertEqual(len(self.instances.created), 1)
        self.assertEqual(self.instances.closed, [])
        self.assertEqual([len(c.events("mm.matched")) for c in clients.values()], [1] * 5)

    async def test_leaseLostMidPassLeavesNoStaleTimer(self):
        """A holder whose renewal finds its lease taken while its pass is still storing a proposal does not time that ready check; taking the queue back later, it gives the check a whole ready check from then, and nobody is removed at the old end."""
        one, two = await self.node("mm-1"), await self.node("mm-2")
        loop, config = one.service.loop, one.service.config
        gate = Deferred()
        proposeMany = loop.store.proposeMany

        async def slowPropose(proposals):
            await gate
            return await proposeMany(proposals)

        loop.store.proposeMany = slowPropose  # (the store is shared: two forms no match)
        self.addCleanup(lambda: gate.called or gate.callback(None))
        two.service.formMatches = lambda *a, **kw: []
        clients = await self.spread(one, one)  # the last one queued: its pass waits in proposeMany
        await self.store.releaseLease("dungeon5", "mm-1")  # (run out while the pass was slow)
        await self.matchPass(two)
        self.assertIn("dungeon5", two.service.loop.held)
        self.clock.advance(config.lease_ttl / 3)  # the renewal beside the pass: lost
        self.assertNotIn("dungeon5", loop.held)
        gate.callback(None)
        self.flush()
        match = clients["Dan"].last("mm.proposal")["match"]
        proposedAt = self.clock.seconds()
        for name in ("Tom", "Hal", "Dan", "Dora"):
            await clients[name].call("mm.accept", match=match)
        await self.kill(two)
        self.clock.advance(config.lease_ttl)
        await self.matchPass(one)  # taken back: resumed, Dirk asked again
        self.assertIn("dungeon5", loop.held)
        self.assertEqual(clients["Dirk"].last("mm.proposal")["expires_in"], 20.0)
        self.clock.advance(proposedAt + 20 - self.clock.seconds())  # the check's first end
        self.flush()
        self.assertEqual(clients["Dirk"].events("mm.removed"), [])
        self.clock.advance(config.lease_ttl)
        self.flush()
        self.assertEqual(clients["Dirk"].last("mm.removed")["reason"], "timeout")

    async def test_lookBesideAPassLeavesItsProposalsToIt(self):
        """A look for untimed proposals beside a pass whose proposals are stored but not yet answered leaves them to that pass: each player gets one mm.proposal, with the check's own end."""
        one = await self.node("mm-1")
        loop = one.service.loop
        gate = Deferred()
        proposeMany = loop.store.proposeMany

        async def slowAnswer(proposals):
            won = await proposeMany(proposals)
            await gate
            return won

        loop.store.proposeMany = slowAnswer
        self.addCleanup(lambda: gate.called or gate.callback(None))
        clients = await self.spread(one, one)  # the last one queued: its pass waits for the answer
        self.assertEqual(len(await self.store.proposalIds("dungeon5")), 1)
        await loop.adopt("dungeon5")
        self.flush()
        self.assertEqual([c.events("mm.proposal") for c in clients.values()], [[]] * 5)
        gate.callback(None)
        self.flush()
        self.assertEqual([len(c.events("mm.proposal")) for c in clients.values()], [1] * 5)

    async def test_gracefulStopHandsTheLeasesOver(self):
        """A node stopping releases its leases: another holds them at its next pass, without waiting for the TTL; the waiting gauges move with the lease."""
        one, two = await self.node("mm-1"), await self.node("mm-2")
        await (await one.connect("Dan")).call("mm.queue", queue="dungeon5")
        self.clock.advance(one.service.config.stats_interval)
        self.assertEqual(one.metric("mmoshard_mm_tickets_waiting_total", queue="dungeon5"), 1.0)
        await one.service.stopService()
        self.assertEqual(one.metric("mmoshard_mm_tickets_waiting_total", queue="dungeon5"), 0.0)
        await self.matchPass(two)
        self.assertEqual(two.service.loop.held, {"dungeon5", "arena2v2", "duo"})
        self.assertEqual(two.metric("mmoshard_mm_tickets_waiting", queue="dungeon5",
                                    role="damage"), 1.0)

    async def test_nodeWithoutInstancesOnlyAdmits(self):
        """A node without IInstances takes no lease but admits tickets that the holder matches."""
        lone = await self.node("mm-0", instances=False)
        self.assertEqual(lone.service.loop.held, set())
        one = await self.node("mm-1")
        clients = await self.spread(lone, lone)
        await self.matchPass(one)
        self.assertEqual(len({c.last("mm.proposal")["match"] for c in clients.values()}), 1)

    async def test_ticketsOutliveTheirNode(self):
        """A ticket whose node died stays while its player comes back elsewhere within the grace, and is matched."""
        one, two = await self.node("mm-1"), await self.node("mm-2", instances=False)
        clients = {}
        for name in ("Tom", "Hal", "Dan", "Dora"):
            clients[name] = await (two if name == "Dora" else one).connect(name)
            await clients[name].call("mm.queue", queue="dungeon5")
        await self.kill(two)
        self.clock.advance(25)
        dora = await one.connect("Dora")
        self.assertEqual((await dora.call("mm.status"))["ticket"]["queue"], "dungeon5")
        dirk = await one.connect("Dirk")
        await dirk.call("mm.queue", queue="dungeon5")
        self.clock.advance(25)
        await self.matchPass(one)
        self.assertEqual(dora.last("mm.proposal")["match"], dirk.last("mm.proposal")["match"])

    async def test_ticketsOfADeadNodeExpire(self):
        """Tickets nobody refreshes past the grace are removed by the holder; members online elsewhere get mm.removed (gone)."""
        one, two = await self.node("mm-1"), await self.node("mm-2", instances=False)
        self.party("p1", "Tom", "Dora")
        tom = await one.connect("Tom")
        await two.connect("Dora")
        await tom.call("mm.queue", queue="dungeon5")
        await self.kill(two)
        self.clock.advance(one.service.touchTTL + 1)
        await self.matchPass(one)
        self.assertEqual(tom.last("mm.removed")["reason"], "gone")
        self.assertIsNone(await self.store.ticketOf(tom.cid))
