"""A completed match is never lost to a process dying: each member's mm.matched is stored with the completion, answered by mm.hello and mm.status, and announced by the next lease holder."""

from twisted.trial.unittest import TestCase

from mmoshard.matchmaking.test.harness import MatchmakingCase

FIVE = ("Tom", "Hal", "Dan", "Dora", "Dirk")


class MatchedKeptTests(MatchmakingCase, TestCase):

    async def accepted(self, holder, where):
        """The five of L{FIVE} connected on C{where(name)}'s node, queued, proposed by C{holder}, and all accepted; @return: (clients, match)."""
        clients = {}
        for name in FIVE:
            clients[name] = await where(name).connect(name)
            await clients[name].call("mm.queue", queue="dungeon5")
            self.clock.advance(1)
        await self.matchPass(holder)
        match = clients["Dan"].last("mm.proposal")["match"]
        for name in FIVE:
            await clients[name].call("mm.accept", match=match)
        self.flush()
        return clients, match

    async def test_holderDiesBetweenCompleteAndAnnounce(self):
        """
        The holder completes a match and dies before any mm.matched goes
        out: the next holder announces it to the players on its node, and a
        player of the dead node who says mm.hello elsewhere gets its
        mm.matched (with its own admission ticket) in the answer and again as
        an event — nobody loses the match.
        """
        one, two = await self.node("mm-1"), await self.node("mm-2", instances=False)
        one.service.loop.announcer.announce = lambda queue, match, records: None  # dies before sending
        clients, match = await self.accepted(one, lambda n: one if n in ("Tom", "Hal") else two)
        self.assertEqual(len(self.instances.created), 1)
        self.assertIsNone(await self.store.ticketOf(clients["Dan"].cid))
        for client in clients.values():
            self.assertEqual(client.events("mm.matched"), [])
        await self.kill(one)
        two.service.instances = self.instances  # a holder-capable survivor
        self.clock.advance(one.service.config.lease_ttl)
        await self.matchPass(two)
        self.assertEqual(two.service.loop.held, {"dungeon5", "arena2v2", "duo"})
        self.assertEqual(len(self.instances.created), 1)  # announced, not made again
        for name in ("Dan", "Dora", "Dirk"):
            got = clients[name].last("mm.matched")
            self.assertEqual((got["match"], got["ticket"]), (match, f"adm-1-{clients[name].cid}"))
        self.assertEqual(await self.store.unannounced("dungeon5"), [])
        for name in ("Tom", "Hal"):
            back = await two.connect(name)
            status = await back.call("mm.status")
            self.assertEqual((status["ticket"], status["proposal"]), (None, None))
            self.assertEqual(status["matched"]["match"], match)
            self.assertEqual(status["matched"]["ticket"], f"adm-1-{back.cid}")
            self.assertEqual([e["match"] for e in back.events("mm.matched")], [match])

    async def test_matchedAnsweredUntilEntered(self):
        """mm.status and mm.hello answer the player's mm.matched after the event, until it is in that instance; then null."""
        one = await self.node("mm-1")
        clients, match = await self.accepted(one, lambda n: one)
        dan = clients["Dan"]
        self.assertEqual(dan.last("mm.matched")["match"], match)
        status = await dan.call("mm.status")
        self.assertEqual(dict(status["matched"], t="mm.matched"), dan.last("mm.matched"))
        hello = await dan.call("mm.hello", character_id=dan.cid)
        self.assertEqual(hello["matched"]["match"], match)
        await one.service.locator.place(dan.cid, "deadmines", 1)  # entered instance 1
        self.assertIsNone((await dan.call("mm.status"))["matched"])
        self.assertIsNone(await self.store.matchedOf(dan.cid))
        self.assertEqual((await clients["Tom"].call("mm.status"))["matched"]["match"], match)

    async def test_matchedForgottenWhenQueuedAgainOrExpired(self):
        """A player who queues again no longer gets the old match; the others' records run out after matched_ttl."""
        one = await self.node("mm-1")
        clients, match = await self.accepted(one, lambda n: one)
        await clients["Dan"].call("mm.queue", queue="duo")
        self.assertIsNone((await clients["Dan"].call("mm.status"))["matched"])
        self.clock.advance(one.service.config.matched_ttl + 1)
        self.assertIsNone((await clients["Tom"].call("mm.status"))["matched"])
