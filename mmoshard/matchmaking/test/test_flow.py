"""The matchmaking service end to end on one Clock: queueing, the ready check, matching and the errors players get."""

from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from mmoshard.matchmaking.test.harness import MatchmakingCase

FIVE = ("Tom", "Hal", "Dan", "Dora", "Dirk")


class FlowTests(MatchmakingCase, TestCase):

    async def queueFive(self, node, party=("Tom", "Hal")):
        """A party of two (leader first) and three solos queue dungeon5; @return: name -> Client."""
        self.party("p1", *party)
        clients = {name: await node.connect(name) for name in FIVE}
        await clients[party[0]].call("mm.queue", queue="dungeon5")
        for name in FIVE:
            if name not in party:
                await clients[name].call("mm.queue", queue="dungeon5")
        return clients

    async def test_fiveQueueAcceptAndAreMatched(self):
        """A party of two and three solo players get one proposal, all accept, and each gets mm.matched with its own admission ticket."""
        node = await self.node()
        clients = await self.queueFive(node)
        await self.matchPass(node)
        proposals = {n: c.last("mm.proposal") for n, c in clients.items()}
        match = proposals["Tom"]["match"]
        self.assertEqual({p["match"] for p in proposals.values()}, {match})
        self.assertEqual({n: p["role"] for n, p in proposals.items()},
                         {"Tom": "tank", "Hal": "healer", "Dan": "damage", "Dora": "damage",
                          "Dirk": "damage"})
        self.assertEqual(proposals["Dan"]["expires_in"], 20.0)
        for name in FIVE:
            await clients[name].call("mm.accept", match=match)
        self.flush()
        self.assertEqual(len(self.instances.created), 1)
        template, roster, teams, matchId = self.instances.created[0]
        self.assertEqual((template, sorted(roster), teams, matchId),
                         ("deadmines", sorted(c.cid for c in clients.values()), None, match))
        for name, client in clients.items():
            matched = client.last("mm.matched")
            self.assertEqual((matched["match"], matched["instance"], matched["ticket"]),
                             (match, 1, f"adm-1-{client.cid}"))
            self.assertIsNone(await self.store.ticketOf(client.cid))


class AdmissionFirstTests(MatchmakingCase, TestCase):

    async def test_aBurstOfQueuesIsAnsweredBeforeItsMatchesAreFormed(self):
        """While admission_first mm.queue are in progress a pass forms a tenth of its matches (oldest first) and counts the yield; once they are answered the next pass forms the rest."""
        from mmoshard.matchmaking.test.test_requests import HeldReads

        node = await self.node(admission_first=2, max_matches_per_pass=10)
        damage = ("Dan", "Dora", "Dirk", "Dell", "Dina", "Drew")
        clients = {n: await node.connect(n) for n in damage + ("Tom", "Hal")}
        # No time passes: the passes below are the first to see these tickets.
        for name in damage:
            await clients[name].call("mm.queue", queue="duo")
        held = self.parties.partiesOf = HeldReads(self.parties.partiesOf)
        burst = [Deferred.fromCoroutine(clients[n].call("mm.queue", queue="dungeon5"))
                 for n in ("Tom", "Hal")]
        self.assertEqual(node.service.admitting, 2)
        await self.matchPass(node)
        self.assertEqual(len([n for n in damage if clients[n].events("mm.proposal")]), 2)
        self.assertEqual(node.metric("mmoshard_mm_passes_yielded_total", queue="duo"), 1)
        held.release()
        for d in burst:
            self.successResultOf(d)
        self.assertEqual(node.service.admitting, 0)
        await self.matchPass(node)
        self.assertEqual([n for n in damage if clients[n].events("mm.proposal")], list(damage))
        self.assertEqual(node.metric("mmoshard_mm_passes_yielded_total", queue="duo"), 1)

    async def test_offAtZero(self):
        """admission_first = 0 never holds a pass back, however many mm.queue are in progress."""
        node = await self.node(admission_first=0, max_matches_per_pass=10)
        self.assertEqual(node.service.config.passLimit(10 ** 6), 10)
        node = await self.node("mm-2", admission_first=5, max_matches_per_pass=10)
        self.assertEqual([node.service.config.passLimit(n) for n in (0, 4, 5, 50)], [10, 10, 1, 1])
