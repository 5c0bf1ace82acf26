"""The browser play client's matchmaking panel in headless Chromium against a real node: queue, the ready check, and entering the matched instance."""

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from mmoshard.web.test.browser import (
    makeDriver, requireBrowser, rest, screenshotsOnFailure, startNode, waitFor,
)
from mmoshard.web.test.playpage import PASSWORD, PlayPage
from mmoshard.wire.client import connect, login

# dungeon5 (etc/queues.toml): one tank, one healer, three damage dealers.
# The browser plays the healer; the Python client plays the others.
OTHERS = (("Tankard", "warrior"), ("Embers", "mage"), ("Shade", "rogue"), ("Arrowby", "ranger"))


class QueueTests(TestCase):
    timeout = 300

    async def setUp(self):
        requireBrowser()
        self.node = await startNode(self)
        self.page = PlayPage(makeDriver(self), self.node)

    async def rest(self, method, path, token=None, **body):
        code, parsed, _ = await rest(method, self.node.http + path, body or None, token)
        return code, parsed

    async def player(self, name, cls):
        """A player of the Python client: registered, in the world and said mm.hello; @return its client."""
        username = f"{name.lower()}_acct"
        code, body = await self.rest("POST", "/v1/accounts", username=username, password=PASSWORD)
        self.assertEqual(code, 201, body)
        tokens = await login(reactor, self.node.http, username, PASSWORD)
        code, character = await self.rest("POST", "/v1/characters", tokens["access_token"], name=name,
                                          **{"class": cls})
        self.assertEqual(code, 201, character)
        client = await connect(reactor, self.node.ws, tokens["access_token"], clientVersion="1.10.0",
                               platform="bot")
        self.addCleanup(client.close)
        await client.request("world.enter", character_id=character["id"])
        await client.request("mm.hello", character_id=character["id"])
        return client

    async def proposal(self, client):
        while True:
            event = await client.nextEvent()
            if event["t"] == "mm.proposal":
                return event

    def mm(self):
        return self.page.js("return window.mmoshardPlay.state.mm.state")

    async def queueFromPanel(self):
        page = self.page
        page.find("#mm-queue option[value=dungeon5]").click()
        page.find("#mm-queue-button").click()
        # With four others waiting, the ready check may follow at once.
        state = await waitFor(lambda: self.mm() in ("queued", "proposed") and self.mm(), what="queued")
        if state == "queued":
            self.assertIn("Queued for", page.find("#mm-status").text)

    @screenshotsOnFailure
    async def test_queueReadyCheckAndEnter(self):
        """
        A healer queues for the dungeon from the Queue tab; once four others queue, the
        page shows the ready check with the others' roles. Declining takes the player
        out of the queue (the others keep their place); queued again, accepting (the
        others accept too) takes the player into the matched instance's copy.
        """
        page = self.page
        await page.open()
        await page.register("healer_acct")
        await page.create("Mendwell", "priest")
        await page.play("Mendwell")
        page.find('.tabs [data-tab="queue"]').click()
        await waitFor(lambda: page.js("return [...document.querySelectorAll('#mm-queue option')]"
                                      ".some(o => o.value === 'dungeon5')"), what="the queues from mm.hello")
        await self.queueFromPanel()
        others = [await self.player(name, cls) for name, cls in OTHERS]
        for client in others:
            await client.request("mm.queue", queue="dungeon5")
        await waitFor(lambda: page.find("#ready-check").is_displayed(), timeout=30, what="the ready check")
        text = page.find("#ready-check-text").text
        self.assertIn("you play healer", text)
        self.assertIn("Tankard (tank)", text)
        self.assertNotIn("Mendwell", text)
        page.find("#ready-decline").click()
        await waitFor(lambda: self.mm() == "idle", what="out of the queue")
        self.assertFalse(page.find("#ready-check").is_displayed())
        for client in others:
            await self.proposal(client)
            while (await client.nextEvent())["t"] != "mm.requeued":
                pass

        await self.queueFromPanel()
        await waitFor(lambda: page.find("#ready-check").is_displayed(), timeout=30, what="the second ready check")
        page.find("#ready-accept").click()
        await waitFor(lambda: self.mm() == "accepted", what="accepted")
        for client in others:
            proposal = await self.proposal(client)
            await client.request("mm.accept", match=proposal["match"])
        zone = await waitFor(lambda: (lambda z: z if z and z.startswith("deadmines/") else None)(
            page.js("return window.mmoshardPlay.state.zone")), timeout=30, what="the matched instance")
        self.assertTrue(page.find("#zone-name").text.startswith("Deadmines"), zone)
        # The page draws the new zone at its world.zone event; the panel goes back to idle
        # at the world.instance.enter answer, which may come a moment later.
        await waitFor(lambda: self.mm() == "idle", what="the panel idle after entering")
        self.assertFalse(page.find("#ready-check").is_displayed())
