"""GET /matchmaking/queues on the admin site, and what it documents."""

import json

from treq.testing import StubTreq
from twisted.trial.unittest import TestCase

from mmoshard.matchmaking.test.harness import MatchmakingCase
from mmoshard.web.site import AdminSite

HERE = "127.0.0.1:9100"


class AdminTests(MatchmakingCase, TestCase):

    async def get(self, site, path):
        http = StubTreq(site.root)
        response = await http.get(f"http://{HERE}{path}", headers={"Host": HERE})
        return response.code, json.loads(await http.content(response))

    async def test_queuesListing(self):
        """GET /matchmaking/queues shows each queue's definition, lease holder, waiting tickets by role, oldest wait and ready checks in flight."""
        site = AdminSite()
        node = await self.node(admin=site)
        for name in ("Tom", "Dan", "Dora"):
            await (await node.connect(name)).call("mm.queue", queue="dungeon5")
        self.clock.advance(3)
        code, body = await self.get(site, "/matchmaking/queues")
        self.assertEqual(code, 200)
        self.assertEqual(body["node_id"], "mm-1")
        queues = {q["name"]: q for q in body["queues"]}
        self.assertEqual(sorted(queues), ["arena2v2", "dungeon5", "duo"])
        dungeon = queues["dungeon5"]
        self.assertEqual((dungeon["template"], dungeon["team_size"], dungeon["lease_holder"]),
                         ("deadmines", 5, "mm-1"))
        self.assertEqual((dungeon["waiting"], dungeon["waiting_by_role"], dungeon["oldest_wait_s"]),
                         (3, {"tank": 1, "damage": 2}, 3.0))
        self.assertEqual((dungeon["proposals"], queues["duo"]["waiting"]), (0, 0))

    async def test_documented(self):
        """The route is in the admin site's /openapi.json."""
        site = AdminSite()
        await self.node(admin=site)
        code, body = await self.get(site, "/openapi.json")
        self.assertIn("/matchmaking/queues", body["paths"])
