"""The ready check on a Clock: accepts, declines, timeouts, requeues in place, instance failures, and a player coming back mid-check."""

from twisted.trial.unittest import TestCase

from mmoshard.matchmaking import errors
from mmoshard.matchmaking.test.harness import MatchmakingCase

FIVE = ("Tom", "Hal", "Dan", "Dora", "Dirk")


class ReadyCheckTests(MatchmakingCase, TestCase):

    async def propose(self, node, names=FIVE, party=("Tom", "Hal")):
        """Queue C{names} (C{party} as one ticket, its leader first), one second apart, and run a pass; @return: (clients, match id)."""
        if party:
            self.party("p1", *party)
        clients = {name: await node.connect(name) for name in names}
        for name in names:
            if not party or name == party[0] or name not in party:
                await clients[name].call("mm.queue", queue="dungeon5")
                self.clock.advance(1)
        await self.matchPass(node)
        return clients, clients[names[0]].last("mm.proposal")["match"]

    async def test_declineRemovesThePartyAndRequeuesTheOthersInPlace(self):
        """A decline removes the decliner's whole party ticket (mm.removed); the others get mm.requeued and keep their place."""
        node = await self.node()
        clients, match = await self.propose(node)
        before = {t.id: t.created for t in await self.store.waiting("dungeon5", 100)}
        self.assertEqual(before, {})
        created = {n: (await self.store.ticketOf(c.cid)).created for n, c in clients.items()}
        await clients["Tom"].call("mm.accept", match=match)
        reply = await clients["Hal"].call("mm.decline", match=match)
        self.flush()
        self.assertEqual(reply["match"], match)
        removed = clients["Tom"].last("mm.removed")
        self.assertEqual((removed["reason"], removed["character_id"], removed["match"]),
                         ("declined", clients["Hal"].cid, match))
        self.assertEqual(clients["Hal"].events("mm.removed"), [])
        for name in ("Dan", "Dora", "Dirk"):
            requeued = clients[name].last("mm.requeued")
            self.assertEqual((requeued["reason"], requeued["match"]), ("declined", match))
            self.assertEqual((await self.store.ticketOf(clients[name].cid)).created, created[name])
        self.assertIsNone(await self.store.ticketOf(clients["Tom"].cid))
        self.assertEqual([t.created for t in await self.store.waiting("dungeon5", 100)],
                         [created["Dan"], created["Dora"], created["Dirk"]])
        self.assertEqual(node.metric("mmoshard_mm_declines_total", queue="dungeon5",
                                     reason="declined"), 1.0)

    async def test_requeuedPlayersAreMatchedFirst(self):
        """After a decline, the requeued players are in the next match ahead of younger tickets."""
        node = await self.node()
        clients, match = await self.propose(node)
        await clients["Hal"].call("mm.decline", match=match)
        late = {n: await node.connect(n) for n in ("Tina", "Hana", "Dell", "Dina")}
        for name in ("Tina", "Hana", "Dell", "Dina"):
            await late[name].call("mm.queue", queue="dungeon5")
        await self.matchPass(node)
        proposal = clients["Dan"].last("mm.proposal")
        self.assertNotEqual(proposal["match"], match)
        roster = {r["name"] for r in proposal["roles"]}
        self.assertEqual(roster, {"Dan", "Dora", "Dirk", "Tina", "Hana"})
        self.assertEqual(late["Dina"].events("mm.proposal"), [])

    async def test_timeoutRemovesWhoDidNotAnswer(self):
        """At the ready timeout, tickets with a member who did not accept are removed (timeout); the accepted are requeued."""
        node = await self.node()
        clients, match = await self.propose(node)
        for name in ("Tom", "Dan", "Dora"):
            await clients[name].call("mm.accept", match=match)
        self.clock.advance(19.9)
        self.assertEqual(clients["Dirk"].events("mm.removed"), [])
        self.clock.advance(0.2)
        self.flush()
        for name in ("Tom", "Hal", "Dirk"):
            self.assertEqual(clients[name].last("mm.removed")["reason"], "timeout", name)
        for name in ("Dan", "Dora"):
            self.assertEqual(clients[name].last("mm.requeued")["reason"], "timeout")
            self.assertIsNotNone(await self.store.ticketOf(clients[name].cid))
        self.assertEqual(self.instances.created, [])
        self.assertEqual(node.metric("mmoshard_mm_declines_total", queue="dungeon5",
                                     reason="timeout"), 1.0)

    async def test_configuredReadyTimeout(self):
        """[matchmaking] ready_timeout overrides each queue's own."""
        node = await self.node(ready_timeout=5.0)
        clients, match = await self.propose(node)
        self.assertEqual(clients["Dan"].last("mm.proposal")["expires_in"], 5.0)
        self.clock.advance(5.1)
        self.flush()
        self.assertEqual(clients["Dan"].last("mm.removed")["reason"], "timeout")

    async def test_acceptAnswersProgress(self):
        """mm.accept answers how many accepted; accepting twice changes nothing; an unknown match is mm.unknown_match."""
        node = await self.node()
        clients, match = await self.propose(node)
        self.assertEqual(await clients["Dan"].call("mm.accept", match=match),
                         {"match": match, "accepted": 1, "total": 5})
        self.assertEqual((await clients["Dan"].call("mm.accept", match=match))["accepted"], 1)
        code, _ = await clients["Dan"].fails("mm.accept", match="dungeon5/nope")
        self.assertEqual(code, errors.UNKNOWN_MATCH)
        outsider = await node.connect("Drew")
        code, _ = await outsider.fails("mm.accept", match=match)
        self.assertEqual(code, errors.UNKNOWN_MATCH)
        code, _ = await outsider.fails("mm.decline", match=match)
        self.assertEqual(code, errors.UNKNOWN_MATCH)

    async def test_statusShowsTheProposal(self):
        """mm.status during a ready check shows the proposal with who accepted and the time left."""
        node = await self.node()
        clients, match = await self.propose(node)
        await clients["Dan"].call("mm.accept", match=match)
        self.clock.advance(4)
        status = await clients["Dora"].call("mm.status")
        self.assertEqual(status["proposal"]["match"], match)
        self.assertEqual(status["proposal"]["accepted"], [clients["Dan"].cid])
        self.assertEqual(status["proposal"]["expires_in"], 16.0)

    async def test_comingBackMidCheckIsAskedAgain(self):
        """A player whose session ended by replacement and who says mm.hello again during the check gets mm.proposal again."""
        node = await self.node()
        clients, match = await self.propose(node)
        await clients["Dan"].end("replaced")
        again = await node.connect("Dan")
        proposal = again.last("mm.proposal")
        self.assertEqual(proposal["match"], match)
        await again.call("mm.accept", match=match)

    async def test_cancelDuringTheCheckDeclines(self):
        """mm.cancel during a ready check removes the ticket and requeues the others (cancelled)."""
        node = await self.node()
        clients, match = await self.propose(node)
        await clients["Dirk"].call("mm.cancel")
        self.flush()
        self.assertEqual(clients["Dan"].last("mm.requeued")["reason"], "cancelled")
        self.assertIsNone(await self.store.ticketOf(clients["Dirk"].cid))

    async def test_instanceFailureRequeuesEveryone(self):
        """When the instance cannot be created (after the retry), everyone goes back to the queue with mm.requeued (no_instance)."""
        self.instances.failing = ["instance.no_capacity", "instance.no_capacity"]
        node = await self.node()
        clients, match = await self.propose(node)
        for name in FIVE:
            await clients[name].call("mm.accept", match=match)
        self.clock.advance(1.0)
        self.flush()
        for name in FIVE:
            self.assertEqual(clients[name].last("mm.requeued")["reason"], "no_instance")
            self.assertIsNotNone(await self.store.ticketOf(clients[name].cid))
        self.assertEqual(node.metric("mmoshard_mm_instance_failures_total", queue="dungeon5",
                                     code="instance.no_capacity"), 2.0)

    async def test_instanceRetried(self):
        """One failed create is retried; the players are matched."""
        self.instances.failing = ["instance.unavailable"]
        node = await self.node()
        clients, match = await self.propose(node)
        for name in FIVE:
            await clients[name].call("mm.accept", match=match)
        self.clock.advance(1.0)
        self.flush()
        self.assertEqual({c.last("mm.matched")["match"] for c in clients.values()}, {match})

    async def test_partyChangedUnnoticedIsCaughtBeforeCreate(self):
        """A party that changed without its ticket being removed is found before the instance is made: its ticket is removed (party_changed), the others requeued."""
        node = await self.node()
        clients, match = await self.propose(node)
        self.parties.parties["p1"] = [clients["Tom"].cid]
        for name in FIVE:
            await clients[name].call("mm.accept", match=match)
        self.flush()
        self.assertEqual(self.instances.created, [])
        self.assertEqual(clients["Hal"].last("mm.removed")["reason"], "party_changed")
        self.assertEqual(clients["Dan"].last("mm.requeued")["reason"], "party_changed")

    async def test_matchedCountsAndTimes(self):
        """A match counts in the matches, proposals and time-to-match metrics of its queue."""
        node = await self.node()
        clients, match = await self.propose(node)
        for name in FIVE:
            await clients[name].call("mm.accept", match=match)
        self.flush()
        self.assertEqual(node.metric("mmoshard_mm_matches_total", queue="dungeon5"), 1.0)
        self.assertEqual(node.metric("mmoshard_mm_proposals_total", queue="dungeon5"), 1.0)
        self.assertEqual(node.metric("mmoshard_mm_time_to_match_seconds_count",
                                     queue="dungeon5"), 4.0)
        self.assertEqual(node.metric("mmoshard_mm_wait_seconds_sum", queue="dungeon5"),
                         4 + 3 + 2 + 1)
