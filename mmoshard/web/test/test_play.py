"""The browser play client in headless Chromium against a real node: register, create, enter, walk into view, whisper, the page telling a session's end, and the page served from another origin (CORS)."""

import math
import subprocess
import sys

import treq
from twisted.trial.unittest import TestCase

from mmoshard.testing import freePort, listening
from mmoshard.web.static import STATIC_ROOT
from mmoshard.web.test.browser import makeDriver, requireBrowser, screenshotsOnFailure, startNode, waitFor
from mmoshard.web.test.playpage import PlayPage

# Both start at greenvale's start point (128, 64); players see each other
# within 50 m and stop beyond 55 (docs/world.md).  East of it, along z = 64,
# nothing attacks (the nearest wolves are 46 m away).
OUT_OF_VIEW_X = 128.0 + 62.0


class TwoPlayersTests(TestCase):
    timeout = 240

    async def setUp(self):
        requireBrowser()
        self.node = await startNode(self)
        self.ann = PlayPage(makeDriver(self), self.node)

    def second(self):
        """A second browser (the tests that need two)."""
        self.bob = PlayPage(makeDriver(self), self.node)
        return self.bob

    async def enter(self, page, username, character, cls):
        await page.open()
        await page.register(username)
        await page.create(character, cls)
        await page.play(character)

    @screenshotsOnFailure
    async def test_walkIntoViewAndWhisper(self):
        """
        Two players register, create and enter through /play/; one walks out of the
        other's view and back into it, and the other's page shows it there, where it
        stands; they whisper both ways and each page shows the line; a line said in the
        zone channel shows on the other's page.
        """
        await self.enter(self.ann, "ann_player", "Annalise", "mage")
        start = self.ann.me()
        self.assertEqual((start["x"], start["z"]), (128.0, 64.0))
        # Ann walks east (real key presses), out of where Bob will appear.
        await self.ann.walkUntil("d", lambda: self.ann.me()["x"] >= OUT_OF_VIEW_X, what="Ann walking east")
        await self.enter(self.second(), "bob_player", "Bobbin", "warrior")
        self.assertEqual(self.bob.me()["x"], 128.0)
        self.assertNotIn("Annalise", self.bob.visible())
        self.assertNotIn("Bobbin", self.ann.visible())
        # Back west until Bob's page shows her.
        await self.ann.walkUntil("a", lambda: "Annalise" in self.bob.visible(), what="Ann in Bob's view")
        await waitFor(lambda: "Bobbin" in self.ann.visible(), what="Bob in Ann's view")
        ann = self.ann.me()
        self.assertLess(ann["x"] - 128.0, 56.0)
        # Standing still: Bob's page has her where she stands, and draws her there.
        seen = await waitFor(lambda: (lambda s: s if s and math.hypot(s["drawnX"] - ann["x"],
                                                                        s["drawnZ"] - ann["z"]) < 0.5 else None)(
            self.bob.seen("Annalise")), what="Ann drawn where she stands")
        self.assertEqual((seen["id"], seen["kind"]), (ann["id"], "p"))
        # (float32 on the wire)
        self.assertLess(abs(seen["x"] - ann["x"]), 0.01)
        self.assertLess(abs(seen["z"] - ann["z"]), 0.01)

        await self.ann.say("/w Bobbin well met, traveller")
        await waitFor(lambda: any(line["kind"] == "whisper" and line.get("from") == "Annalise"
                                  and line["message"] == "well met, traveller" for line in self.bob.chat()),
                      what="the whisper on Bob's page")
        self.assertIn("[Annalise] whispers: well met, traveller", self.bob.chatText())
        self.assertIn("To [Bobbin]: well met, traveller", self.ann.chatText())
        await self.bob.say("/w annalise and to you")
        await waitFor(lambda: "[Bobbin] whispers: and to you" in self.ann.chatText(), what="Bob's answer")
        # The zone channel: a line Bob says there reaches Ann's page.
        await self.bob.say("/z anyone for the wolves?")
        await waitFor(lambda: any(line["kind"] == "zone" and line.get("from") == "Bobbin"
                                  and line["message"] == "anyone for the wolves?" for line in self.ann.chat()),
                      what="Bob's zone line on Ann's page")
        self.assertIn("Bobbin: anyone for the wolves?", self.ann.chatText())

    @screenshotsOnFailure
    async def test_sessionEndShows(self):
        """
        When the session of a page ends from elsewhere (here: the same account logs in
        and enters on another page, replacing it), the page says so in a banner and
        stops playing.
        """
        await self.enter(self.ann, "carol_player", "Carolyn", "priest")
        await self.second().open()
        await self.bob.logIn("carol_player")
        await self.bob.play("Carolyn")
        banner = await self.ann.endBanner("the banner on the replaced page")
        self.assertEqual(banner, "session.replaced")
        self.assertIn("Session ended", self.ann.find("#banner").text)
        self.assertEqual(self.ann.js("return window.mmoshardPlay.state.ended"), "session.replaced")
        self.assertFalse(self.bob.find("#banner").is_displayed())

    @screenshotsOnFailure
    async def test_revokedSessionShows(self):
        """
        When the page's login is revoked from elsewhere (here: signed out with its token;
        an operator's kick and a ban revoke the same way), the page shows a banner with
        the server's words and stops playing.
        """
        await self.enter(self.ann, "dave_player", "Davina", "rogue")
        token = self.ann.js("return window.mmoshardPlay.state.tokens.access_token")
        response = await treq.delete(self.node.http + "/v1/sessions", headers={"Authorization": f"Bearer {token}"},
                                     persistent=False, timeout=10)
        self.assertEqual(response.code, 200, await response.text())
        banner = await self.ann.endBanner("the banner on the revoked page")
        self.assertEqual(banner, "auth.revoked")
        self.assertIn("Session ended — signed out (auth.revoked", self.ann.find("#banner").text)
        self.assertEqual(self.ann.js("return window.mmoshardPlay.state.endedMessage"), "signed out")
        self.assertFalse(self.ann.js("return window.mmoshardPlay.app.running"))

    @screenshotsOnFailure
    async def test_operatorKickShows(self):
        """
        An operator kicks the player from the console (/console/ on the admin site): the
        player's /play/ page shows the banner with the server's words for it, and stops.
        """
        from selenium.webdriver.common.by import By

        await self.enter(self.ann, "erin_player", "Erinna", "druid")
        cid = self.ann.me()["id"]
        console = makeDriver(self)
        console.get(self.node.admin + "/console/")

        def entry():
            found = console.find_elements(By.CSS_SELECTOR, f"#space-entities li[data-kind='p'][data-id='{cid}']")
            return found[0] if found else None

        (await waitFor(entry, timeout=30, what="the player on the console's map")).click()
        self.assertEqual(console.find_element(By.ID, "kick-id").get_attribute("value"), str(cid))
        console.find_element(By.ID, "kick-reason").send_keys("testing the kick")
        console.find_element(By.ID, "kick-button").click()
        banner = await self.ann.endBanner("the banner on the kicked page")
        self.assertEqual(banner, "auth.revoked")
        self.assertIn("Session ended — disconnected by an operator (auth.revoked", self.ann.find("#banner").text)
        self.assertFalse(self.ann.js("return window.mmoshardPlay.app.running"))


class OtherOriginTests(TestCase):
    timeout = 240

    @screenshotsOnFailure
    async def test_pageFromAnotherOrigin(self):
        """
        The play client served by another web server (another origin) and pointed at the
        node with ?server= registers, creates a character and enters the world through the
        node's REST API, which allows that origin ([web] cors_origins).
        """
        requireBrowser()
        # Another web server, in a process of its own (the browser waits on it while the
        # test's reactor does not run), serving the package's static files.
        port = freePort()
        server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                                   "--directory", STATIC_ROOT, str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(server.wait)
        self.addCleanup(server.kill)
        await waitFor(lambda: listening(port), what="the other web server")
        origin = f"http://127.0.0.1:{port}"
        self.node = await startNode(self, {"web": {"cors_origins": [origin]}})
        page = PlayPage(makeDriver(self), self.node)
        await page.open(f"{origin}/play/?server={self.node.http}")
        self.assertEqual(page.js("return [location.origin, window.mmoshardPlay.app.httpBase]"),
                         [origin, self.node.http])
        await page.register("far_player")
        await page.create("Faraway", "ranger")
        await page.play("Faraway")
        self.assertEqual(page.me()["name"], "Faraway")
