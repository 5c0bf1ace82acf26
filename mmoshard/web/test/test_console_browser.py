"""The operator console in a real browser (headless Debian Chromium): the process list, CCU and rates, the live map with a logged-in player, the tick chart, the matchmaking queues, and a kick that ends the player's session."""

from twisted.trial.unittest import TestCase

from mmoshard.web.test.browser import (
    NODE_ID, makeDriver, playerInWorld, requireBrowser, screenshotsOnFailure, startNode, waitFor,
)


class ConsoleBrowserTests(TestCase):
    timeout = 180

    async def setUp(self):
        requireBrowser()
        self.node = await startNode(self)

    @screenshotsOnFailure
    async def test_operator_sees_map_and_kicks_a_player(self):
        """
        An operator opens /console/ on the admin site: the process list
        shows the node with its roles, the CCU counts the players in the
        world, the live map shows the logged-in
        player where the server has it (and follows it as it moves), the
        map refreshes on its own, the tick chart draws the player's zone, a
        new session shows in the session rate, the matchmaking queues show
        the player's ticket waiting; kicking the player from its entry ends
        the player's session (auth.revoked) and the kick appears in the
        recent account events.
        """
        from selenium.webdriver.common.by import By

        player = await playerInWorld(self.node, "alice", "Alicia")
        driver = makeDriver(self, size=(1400, 1000))
        driver.get(self.node.admin + "/console/")
        state = lambda: driver.execute_script("return window.mmoConsole")  # noqa: E731

        # The page rebuilds its tables as it refreshes: read a row's text in
        # one look.
        row = await waitFor(lambda: driver.execute_script(
            f"const tr = document.querySelector(\"#processes tbody tr[data-node='{NODE_ID}']\");"
            "return tr && tr.textContent"), what="the process list")
        self.assertIn("world", row)
        self.assertIn("auth", row)

        def playerShown():
            found = driver.find_elements(
                By.CSS_SELECTOR, f"#space-entities li[data-kind='p'][data-id='{player.characterId}']")
            return found[0] if found else None

        await waitFor(playerShown, what="the player on the map")
        await waitFor(lambda: driver.find_element(By.ID, "ccu").text == "1", what="a CCU of 1")
        entity = next(e for e in state()["detail"]["entities"] if e["id"] == player.characterId)
        self.assertEqual((entity["name"], entity["account"]), ("Alicia", player.accountId))
        # The map follows the player: a move the server accepts shows.
        x, z = entity["x"] + 3.0, entity["z"]
        player.client.send("world.move", x=x, z=z, vx=0.0, vz=0.0, ct=1, k=0)

        def moved():
            detail = state()["detail"]
            return detail and any(e["id"] == player.characterId and abs(e["x"] - x) < 0.5
                                  for e in detail["entities"])

        await waitFor(moved, what="the player's move")
        refreshes = state()["refreshes"]["spaces"]
        await waitFor(lambda: state()["refreshes"]["spaces"] >= refreshes + 3,
                      what="the map refreshing")
        # The tick chart has a line for the player's zone, labelled with its last tick time.
        zone = state()["detail"]["zone"]
        legend = await waitFor(lambda: driver.find_element(By.ID, "tick-legend").text,
                               what="the tick chart's legend")
        self.assertRegex(legend, rf"{zone} \d+\.\d\d ms")
        # The session and error rates, from the nodes' counters: a new session shows.
        await waitFor(lambda: "sessions" in state()["rates"], what="the rates")
        await playerInWorld(self.node, "bob", "Bobbin")
        await waitFor(lambda: state()["rates"]["sessions"] > 0, what="a new session's rate")
        await waitFor(lambda: driver.find_element(By.ID, "ccu").text == "2", what="a CCU of 2")
        for rate in ("session-rate", "error-rate"):
            self.assertRegex(driver.find_element(By.ID, rate).text, r"^\d+\.\d\d$")

        # The matchmaking queues: queued for the dungeon, the player waits there.
        await player.client.request("mm.hello", character_id=player.characterId)
        await player.client.request("mm.queue", queue="dungeon5")

        def waiting():
            queues = state()["queues"]
            return isinstance(queues, dict) and {q["name"]: q["waiting"] for q in queues["queues"]}

        self.assertEqual((await waitFor(lambda: (waiting() or {}).get("dungeon5"),
                                        what="a ticket waiting in dungeon5")), 1)
        self.assertEqual(set(waiting()), {"dungeon5", "raid10", "arena2v2"})
        self.assertIn("dungeon5", driver.find_element(By.ID, "queues").text)

        playerShown().click()
        self.assertEqual(driver.find_element(By.ID, "kick-id").get_attribute("value"),
                         str(player.characterId))
        reason = driver.find_element(By.ID, "kick-reason")
        reason.clear()
        reason.send_keys("spamming the zone channel")
        driver.find_element(By.ID, "kick-button").click()
        action = await waitFor(lambda: state()["lastAction"], what="the kick's result")
        self.assertEqual((action["what"], action["ok"]),
                         (f"kick character {player.characterId}", True), action)
        ended = await player.client.ended
        self.assertEqual(ended, "auth.revoked")
        await waitFor(lambda: any(e["kind"] == "kick" and e["account_id"] == player.accountId
                                  for e in state()["events"]),
                      what="the kick in the account events")
        await waitFor(lambda: not playerShown(), what="the player gone from the map")
