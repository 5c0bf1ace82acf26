"""The matchmaking service end to end on one Clock: queueing, the ready check, matching and the errors players get."""

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
