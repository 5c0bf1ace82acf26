"""The operator console in a real browser (headless Debian Chromium): the process list, the live map with a logged-in player, and a kick that ends the player's session."""

import os

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from mmoshard.testing import checkoutRoot, eventually
from mmoshard.web.test.consolefixture import makeDriver, passed, playerInWorld, startNode

# When set, the test saves the console's screenshot there (the README's
# docs/img/console.png: MMOSHARD_SCREENSHOT_DIR=docs/img; relative to the
# checkout, as trial runs in its own directory).
SCREENSHOT_DIR = os.environ.get("MMOSHARD_SCREENSHOT_DIR")
if SCREENSHOT_DIR:
    SCREENSHOT_DIR = os.path.join(checkoutRoot(), SCREENSHOT_DIR)


async def until(what, check, seconds=20.0):
    """
    Await C{check()} (a quick look at the page) until it returns something
    true, leaving the reactor free in between (the player's client runs on
    it); @return: that value.
    """
    async def attempt():
        value = check()
        if not value:
            raise AssertionError(f"the console did not show {what} within {seconds}s")
        return value

    return await eventually(reactor, attempt, seconds, 0.2, AssertionError)


class ConsoleBrowserTests(TestCase):
    timeout = 180

    async def test_operator_sees_map_and_kicks_a_player(self):
        """
        An operator opens /console/ on the admin site: the process list
        shows the node with its roles, the live map shows the logged-in
        player where the server has it (and follows it as it moves), the
        map refreshes on its own; kicking the player from its entry ends
        the player's session (auth.revoked) and the kick appears in the
        recent account events.
        """
        node = await startNode(self)
        player = await playerInWorld(node, "alice", "Alicia")
        driver = makeDriver(self)
        driver.get(node.admin + "/console/")
        state = lambda: driver.execute_script("return window.mmoConsole")  # noqa: E731
        from selenium.webdriver.common.by import By

        # The page rebuilds its tables as it refreshes: read a row's text in
        # one look.
        row = await until("the process list", lambda: driver.execute_script(
            "const tr = document.querySelector(\"#processes tbody tr[data-node='console-node']\");"
            "return tr && tr.textContent"))
        self.assertIn("world", row)
        self.assertIn("auth", row)

        def playerShown():
            found = driver.find_elements(
                By.CSS_SELECTOR, f"#space-entities li[data-kind='p'][data-id='{player.characterId}']")
            return found[0] if found else None

        await until("the player on the map", playerShown)
        entity = next(e for e in state()["detail"]["entities"] if e["id"] == player.characterId)
        self.assertEqual((entity["name"], entity["account"]), ("Alicia", player.accountId))
        # The map follows the player: a move the server accepts shows.
        x, z = entity["x"] + 3.0, entity["z"]
        player.client.send("world.move", x=x, z=z, vx=0.0, vz=0.0, ct=1, k=0)

        def moved():
            detail = state()["detail"]
            return detail and any(e["id"] == player.characterId and abs(e["x"] - x) < 0.5
                                  for e in detail["entities"])

        await until("the player's move", moved)
        refreshes = state()["refreshes"]["spaces"]
        await until("the map refreshing", lambda: state()["refreshes"]["spaces"] >= refreshes + 3)
        if SCREENSHOT_DIR:
            playerShown().click()
            driver.find_element(By.ID, "kick-reason").send_keys("spamming the zone channel")
            driver.set_window_size(1400, 1750)
            driver.execute_script("window.scrollTo(0, 0)")
            await deferLater(reactor, 1.5, lambda: None)
            driver.save_screenshot(os.path.join(SCREENSHOT_DIR, "console.png"))

        playerShown().click()
        self.assertEqual(driver.find_element(By.ID, "kick-id").get_attribute("value"),
                         str(player.characterId))
        reason = driver.find_element(By.ID, "kick-reason")
        reason.clear()
        reason.send_keys("spamming the zone channel")
        driver.find_element(By.ID, "kick-button").click()
        action = await until("the kick's result", lambda: state()["lastAction"])
        self.assertEqual((action["what"], action["ok"]),
                         (f"kick character {player.characterId}", True), action)
        ended = await player.client.ended
        self.assertEqual(ended, "auth.revoked")
        await until("the kick in the account events", lambda: any(
            e["kind"] == "kick" and e["account_id"] == player.accountId
            for e in state()["events"]))
        await until("the player gone from the map", lambda: not playerShown())
        passed(self)
