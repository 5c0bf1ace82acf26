"""The browser play client's party, friends, combat and bag panels in headless Chromium against a real node."""

import os
import sqlite3

from twisted.trial.unittest import TestCase

from mmoshard.web.test.browser import makeDriver, requireBrowser, screenshotsOnFailure, startNode, waitFor
from mmoshard.web.test.playpage import PlayPage

# greenvale's first pack of young wolves (etc/zones.toml): at (180, 110),
# aggro within 10 m.  The mage stops 20-odd metres off, in Fireball's range (35).
WOLVES = (180.0, 110.0)


class SocialAndCombatTests(TestCase):
    timeout = 240

    async def setUp(self):
        requireBrowser()
        self.node = await startNode(self)
        self.ann = await self.player("ann_social", "Annalise", "mage")

    async def player(self, username, name, cls):
        """A browser playing a new account's new character."""
        page = PlayPage(makeDriver(self), self.node)
        await page.open()
        await page.register(username)
        await page.create(name, cls)
        await page.play(name)
        return page

    def tab(self, page, name):
        page.find(f'.tabs [data-tab="{name}"]').click()

    def party(self, page):
        return page.js("const p = window.mmoshardPlay.state.party;"
                       " return p && {leader: p.leader, members: p.members.map(m => m[1])};")

    @screenshotsOnFailure
    async def test_partyAndFriends(self):
        """
        A player invites another to a party from the Social tab; the other accepts in
        the invitation dialog; both pages list the party, its leader first, and party
        chat reaches the other. A friend request accepted shows the friend online, and
        offline once it leaves the world.
        """
        self.bob = await self.player("bob_social", "Bobbin", "priest")
        self.tab(self.ann, "social")
        self.ann.fill("#party-invite-name", "Bobbin")
        self.ann.find("#party-form button[type=submit]").click()
        await waitFor(lambda: self.bob.find("#party-invite").is_displayed(), what="the invitation dialog")
        self.assertIn("Annalise invites you", self.bob.find("#party-invite-text").text)
        self.bob.find("#party-invite-accept").click()
        for page in (self.ann, self.bob):
            party = await waitFor(lambda: (lambda p: p if p and len(p["members"]) == 2 else None)(
                self.party(page)), what="a party of two")
            self.assertEqual(party["members"], ["Annalise", "Bobbin"])
        self.assertEqual(self.party(self.bob)["leader"], self.ann.me()["id"])
        self.assertIn("Annalise ★", self.ann.find("#party-list").text)
        self.assertFalse(self.bob.find("#party-invite").is_displayed())

        await self.bob.say("/p ready when you are")
        await waitFor(lambda: "[Party] Bobbin: ready when you are" in self.ann.chatText(), what="party chat")

        self.ann.fill("#friend-name", "Bobbin")
        self.ann.find("#friend-form button[type=submit]").click()
        self.tab(self.bob, "social")
        accept = await waitFor(lambda: self.bob.driver.find_elements(
            "css selector", "#friend-requests button"), what="the friend request on Bob's page")
        accept[0].click()
        await waitFor(lambda: self.ann.js(
            "return window.mmoshardPlay.state.friends.some(f => f.name === 'Bobbin' && f.state === 'online')"),
            what="Bob an online friend of Ann")
        self.assertIn("Bobbin", self.ann.find("#friend-list").text)
        self.bob.find("#leave-button").click()
        await waitFor(lambda: self.bob.screen() == "characters", what="Bob back at his characters")
        await waitFor(lambda: self.ann.js(
            "return window.mmoshardPlay.state.friends.some(f => f.name === 'Bobbin' && f.state === 'offline')"),
            what="Bob offline on Ann's page")

    @screenshotsOnFailure
    async def test_targetCastAndCooldown(self):
        """
        Walking to the wolves, Tab targets the nearest; the ability keys cast at it:
        a cast bar while Fireball casts, then its damage reaches the wolf (health on the
        target frame drops), and Fire Blast's cooldown shows on the bar.
        """
        ann = self.ann
        await ann.walkUntil("d", lambda: ann.me()["x"] >= WOLVES[0] - 15, what="Ann walking east")
        await ann.walkUntil("s", lambda: ann.me()["z"] >= WOLVES[1] - 20, what="Ann walking south")
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys

        keys = ActionChains(ann.driver)
        keys.send_keys(Keys.TAB).perform()
        target = await waitFor(lambda: ann.js(
            "const s = window.mmoshardPlay.state; const t = s.target !== null && s.entities[s.target];"
            " return t && {id: t.id, kind: t.kind, name: t.name, hp: t.hp, hpMax: t.hpMax};"), what="a target")
        self.assertEqual(target["kind"], "n")
        self.assertTrue(ann.find("#target-frame").is_displayed())
        self.assertIn(target["name"], ann.find("#target-name").text)
        # Escape clears the target; a click on the wolf where the map draws it takes it again.
        keys.send_keys(Keys.ESCAPE).perform()
        await waitFor(lambda: ann.js("return window.mmoshardPlay.state.target === null"), what="no target")
        offset = ann.js(
            "const p = window.mmoshardPlay.app; const at = p.world.positionAt(arguments[0], performance.now());"
            " const me = p.world.me; return [(at.x - me.x) * p.renderer.scale, (at.z - me.z) * p.renderer.scale];",
            target["id"])
        ActionChains(ann.driver).move_to_element_with_offset(ann.find("#world"), *offset).click().perform()
        await waitFor(lambda: ann.js("return window.mmoshardPlay.state.target") == target["id"],
                      what="the wolf targeted by a click")
        keys.send_keys("1").perform()
        await waitFor(lambda: ann.find("#player-cast").is_displayed(), what="Fireball's cast bar")
        hit = await waitFor(lambda: ann.js("return window.mmoshardPlay.state.lastHit"), timeout=10,
                            what="Fireball's damage")
        self.assertEqual((hit["source"], hit["target"]), (ann.me()["id"], target["id"]))
        self.assertGreater(hit["amount"], 0)
        # Its damage number floats over the wolf.
        self.assertTrue(ann.js("return window.mmoshardPlay.app.renderer.floaters.some(f => f.text.endsWith("
                               "'-' + arguments[0]))", hit["amount"]))
        await waitFor(lambda: ann.js("const s = window.mmoshardPlay.state; return s.entities[s.target]"
                                     " && s.entities[s.target].hp < arguments[0]", target["hpMax"]),
                      what="the wolf's health falling")
        # Fire Blast reaches 20 m and Fireball 35: Ann fired from about 25 m, so she
        # waits for the wolf's charge to bring it into Fire Blast's range.
        await waitFor(lambda: ann.js(
            "const w = window.mmoshardPlay.app.world; const s = window.mmoshardPlay.state;"
            " const t = s.entities[s.target]; return t && Math.hypot(t.x - w.me.x, t.z - w.me.z) < 15"),
            what="the wolf charging into Fire Blast's range")
        keys.send_keys("2").perform()
        # Its own 8 s cooldown, not the global one (1.5 s) every button shows.
        cooldown = '#ability-bar [data-ability="fire_blast"] .cd'
        await waitFor(lambda: ann.find(cooldown).is_displayed() and float(ann.find(cooldown).text) > 3,
                      what="Fire Blast's cooldown")

    @screenshotsOnFailure
    async def test_bagUsesItems(self):
        """
        The Bag tab shows the character's items in their slots; a click on a potion uses
        one (world.item.use), and the slot shows one fewer.
        """
        ann = self.ann
        cid = ann.me()["id"]
        db = sqlite3.connect(os.path.join(self.node.directory, "mmoshard.sqlite3"), timeout=10)
        with db:
            db.execute("INSERT INTO inventory (character_id, slot, item_id, count) VALUES (?, 3, ?, 2)",
                       (cid, "minor_healing_potion"))
        db.close()
        self.tab(ann, "bag")
        slot = '#inventory [data-slot="3"]'
        await waitFor(lambda: ann.driver.find_elements("css selector", slot), what="the potion in slot 3")
        self.assertIn("Minor healing potion", ann.find(slot).text)
        self.assertEqual(ann.js("return window.mmoshardPlay.state.inventory"),
                         [{"slot": 3, "item": "minor_healing_potion", "count": 2}])
        self.assertEqual(len(ann.driver.find_elements("css selector", "#inventory .slot")), 64)
        ann.find(slot).click()
        await waitFor(lambda: ann.js("return window.mmoshardPlay.state.inventory[0].count") == 1,
                      what="one potion used")
        self.assertEqual(ann.find("#game-status").text, "Used Minor healing potion.")
