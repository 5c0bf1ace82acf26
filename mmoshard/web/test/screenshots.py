"""The README's screenshots, taken with the browser tests' fixture: python -m mmoshard.web.test.screenshots [--out docs/img] [scene ...]."""

import argparse
import os
import sys

from twisted.internet import defer, task

from mmoshard.web.test.browser import makeDriver, playerInWorld, sleep, startNode, waitFor
from mmoshard.web.test.playpage import PlayPage


class Session:
    """What the fixture asks of a test case (cleanups, an id), for a run outside trial."""

    def __init__(self, name):
        self.name = name
        self.cleanups = []

    def id(self):
        return f"screenshots.{self.name}"

    def addCleanup(self, f, *args, **kwargs):
        self.cleanups.append((f, args, kwargs))

    async def close(self):
        while self.cleanups:
            f, args, kwargs = self.cleanups.pop()
            try:
                result = f(*args, **kwargs)
                if isinstance(result, defer.Deferred) or hasattr(result, "__await__"):
                    await result
            except Exception as e:  # best effort: report and go on
                print(f"cleanup {f!r} failed: {e}", file=sys.stderr)


async def playScene(session, out):
    """
    The play client: a mage and a warrior in a party near the wolves of the
    start zone; the mage's Fireball lands on its target (a damage number),
    the chat holds a whisper and party chat.  Saved as C{out}/play.png.
    """
    node = await startNode(session)
    ann = PlayPage(makeDriver(session), node)
    bob = PlayPage(makeDriver(session), node)
    for page, username, name, cls in ((ann, "ann_shot", "Annalise", "mage"),
                                      (bob, "bob_shot", "Bobbin", "warrior")):
        await page.open()
        await page.register(username)
        await page.create(name, cls)
        await page.play(name)
    ann.find('.tabs [data-tab="social"]').click()
    ann.fill("#party-invite-name", "Bobbin")
    ann.find("#party-form button[type=submit]").click()
    await waitFor(lambda: bob.find("#party-invite").is_displayed(), what="the invitation")
    bob.find("#party-invite-accept").click()
    await waitFor(lambda: ann.js("const p = window.mmoshardPlay.state.party; return p && p.members.length === 2"),
                  what="the party")
    ann.find('.tabs [data-tab="chat"]').click()
    for page, east, south in ((bob, 160.0, 84.0), (ann, 164.0, 88.0)):
        await page.walkUntil("d", lambda p=page, x=east: p.me()["x"] >= x, what="walking east")
        await page.walkUntil("s", lambda p=page, z=south: p.me()["z"] >= z, what="walking south")
    await bob.say("/w Annalise pull when ready, I have the tank's attention")
    await bob.say("/p wolves ahead")
    await ann.say("/p on my mark")
    await waitFor(lambda: "wolves ahead" in ann.chatText(), what="party chat")
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    ann.find("#world").click()  # the keys to the game, not the chat box
    ActionChains(ann.driver).send_keys(Keys.TAB).perform()
    await waitFor(lambda: ann.js("return window.mmoshardPlay.state.target !== null"), what="a target")
    ActionChains(ann.driver).send_keys("1").perform()
    await waitFor(lambda: ann.js("return window.mmoshardPlay.state.lastHit"), timeout=10, what="Fireball")
    ActionChains(ann.driver).send_keys("2").perform()
    await sleep(0.4)
    path = os.path.join(out, "play.png")
    ann.driver.save_screenshot(path)
    return [path]


async def consoleScene(session, out):
    """
    The operator console: the process list, the live map with a player in
    the start zone (selected, its kick prepared), the tick chart, the
    actions and the account events.  Saved as C{out}/console.png.
    """
    from selenium.webdriver.common.by import By

    node = await startNode(session)
    player = await playerInWorld(node, "alice", "Alicia")
    session.addCleanup(player.client.close)
    driver = makeDriver(session, size=(1400, 1750))
    driver.get(node.admin + "/console/")
    entry = f"#space-entities li[data-kind='p'][data-id='{player.characterId}']"
    (await waitFor(lambda: driver.find_elements(By.CSS_SELECTOR, entry),
                   what="the player on the map"))[0].click()
    driver.find_element(By.ID, "kick-reason").send_keys("spamming the zone channel")
    await waitFor(lambda: driver.find_element(By.ID, "tick-legend").text, what="the tick chart")
    driver.execute_script("window.scrollTo(0, 0)")
    await sleep(1.5)
    path = os.path.join(out, "console.png")
    driver.save_screenshot(path)
    return [path]


SCENES = {"play": playScene, "console": consoleScene}


async def main(reactor, argv):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=os.path.join("docs", "img"), help="folder of the PNGs")
    parser.add_argument("scenes", nargs="*", default=sorted(SCENES), help=", ".join(sorted(SCENES)))
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    for name in args.scenes:
        session = Session(name)
        try:
            for path in await SCENES[name](session, args.out):
                print(f"{name}: {path}")
        finally:
            await session.close()


if __name__ == "__main__":
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, sys.argv[1:])))
