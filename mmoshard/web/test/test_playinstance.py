"""The browser play client at an instance entrance in headless Chromium against a real node: the map's portals, entering a dungeon and leaving it."""

from urllib.parse import quote

from twisted.trial.unittest import TestCase

from mmoshard.web.test.browser import makeDriver, requireBrowser, rest, screenshotsOnFailure, startNode, waitFor
from mmoshard.web.test.playpage import PlayPage

# The Dead Mines' entrance in greenvale (etc/instances.toml): rect (296..304, 56..64),
# due east of the start point (128, 64).  The page offers to enter within 12 m.
ENTRANCE_X0 = 296.0


class InstanceTests(TestCase):
    timeout = 240

    async def setUp(self):
        requireBrowser()
        self.node = await startNode(self)
        self.page = PlayPage(makeDriver(self), self.node)

    def zone(self):
        return self.page.js("return window.mmoshardPlay.state.zone")

    @screenshotsOnFailure
    async def test_enterAndLeaveADungeon(self):
        """
        The page knows the zone's portals from world.enter; near the dungeon's entrance it
        offers to enter, and the Enter button takes the player into its own copy (the
        map now the layout's, with its exit), which the operator console's view of the shard
        lists with its player and map; Leave the instance brings it back out.
        """
        page = self.page
        await page.open()
        await page.register("delver_acct")
        await page.create("Delver", "rogue")
        await page.play("Delver")
        portals = page.js("return window.mmoshardPlay.app.world.zone.portals")
        self.assertIn({"kind": "instance", "rect": [296, 56, 304, 64], "to": "deadmines",
                       "name": "The Dead Mines"}, portals)
        self.assertFalse(page.find("#portal-action").is_displayed())
        await page.walkUntil("d", lambda: page.me()["x"] >= ENTRANCE_X0 - 11, timeout=60,
                             what="walking to the entrance")
        button = await waitFor(lambda: page.find("#portal-action").is_displayed()
                               and page.find("#portal-action button"), what="the Enter button")
        self.assertEqual(button.text, "Enter The Dead Mines")
        before = page.me()
        button.click()
        zone = await waitFor(lambda: (lambda z: z if z and z.startswith("deadmines/") else None)(self.zone()),
                             what="inside the dungeon")
        self.assertEqual(page.find("#zone-name").text, "Deadmines (instance)")
        self.assertEqual(page.js("return window.mmoshardPlay.app.world.zone.portals.map(p => p.kind)"), ["exit"])
        self.assertEqual((page.me()["x"], page.me()["z"]), (80.0, 12.0))  # the layout's first spawn point
        # The operator console's view of the shard lists the copy with its player, and draws its map.
        code, spaces, _ = await rest("GET", self.node.admin + "/shard/spaces")
        [copy] = [space for n in spaces["nodes"] for space in n["spaces"] if space["zone"] == zone]
        self.assertEqual((copy["label"], copy["players"]), ("deadmines", 1))
        self.assertIsNotNone(copy["instance"])
        code, view, _ = await rest("GET", self.node.admin + "/shard/spaces?zone=" + quote(zone, safe=""))
        [detail] = [n["detail"] for n in view["nodes"] if n.get("detail")]
        self.assertEqual([e["name"] for e in detail["entities"] if e["kind"] == "p"], ["Delver"])
        self.assertIn("exit", [portal[4] for portal in detail["portals"]])
        leave = await waitFor(lambda: page.find("#portal-action button"), what="the leave button")
        self.assertEqual(leave.text, "Leave the instance")
        leave.click()
        await waitFor(lambda: self.zone() == "greenvale", what="back in greenvale")
        # Where it stood when it asked (its return point).
        me = page.me()
        self.assertLess(abs(me["x"] - before["x"]) + abs(me["z"] - before["z"]), 0.5, (me, before, zone))
