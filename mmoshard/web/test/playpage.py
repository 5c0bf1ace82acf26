"""The play client (/play/) driven through selenium as a player would: the page object the browser tests and the screenshot script use."""

from mmoshard.web.test.browser import sleep, waitFor

PASSWORD = "correct-horse-battery-42"


class PlayPage:
    """One browser playing through /play/ of C{node} (a L{mmoshard.web.test.browser.BrowserNode})."""

    def __init__(self, driver, node):
        self.driver = driver
        self.node = node

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def find(self, css):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def screen(self):
        return self.js("return window.mmoshardPlay && window.mmoshardPlay.state.screen")

    async def open(self, url=None):
        """Load the page (the node's /play/, or C{url}) and wait for its login screen."""
        self.driver.get(url or self.node.http + "/play/")
        await waitFor(lambda: self.screen() == "login", what="the login screen")

    def fill(self, css, text):
        field = self.find(css)
        field.clear()
        field.send_keys(text)

    async def register(self, username, password=PASSWORD):
        """Register through the login form (which then logs in): the character screen shows."""
        await self.submitLogin("#register-button", username, password, "registered")

    async def logIn(self, username, password=PASSWORD):
        """Log in through the login form: the character screen shows."""
        await self.submitLogin("#login-button", username, password, "logged in")

    async def submitLogin(self, button, username, password, done):
        """Fill the login form, press C{button}, and wait for the character screen (or fail with the form's error)."""
        self.fill("#login-name", username)
        self.fill("#login-password", password)
        self.find(button).click()
        await waitFor(lambda: self.screen() == "characters" or self.statusError("#login-status"),
                      what=f"{username} {done}")
        assert self.screen() == "characters", self.find("#login-status").text

    def statusError(self, css):
        return "error" in (self.find(css).get_attribute("class") or "")

    async def create(self, name, cls="warrior"):
        """Create a character through the form; it is listed."""
        from selenium.webdriver.support.select import Select

        self.fill("#create-name", name)
        Select(self.find("#create-class")).select_by_value(cls)
        self.find("#create-button").click()
        await waitFor(lambda: self.js(
            "return window.mmoshardPlay.state.characters.some(c => c.name === arguments[0])", name)
            or self.statusError("#characters-status"), what=f"{name} created")
        assert not self.statusError("#characters-status"), self.find("#characters-status").text

    async def play(self, name):
        """Pick character C{name}: the game screen shows it in the world."""
        self.find(f'#character-list button[data-character="{name}"]').click()
        await waitFor(lambda: self.screen() == "game" and self.me() is not None
                      or self.statusError("#characters-status"), timeout=30, what=f"{name} in the world")
        assert self.screen() == "game", self.find("#characters-status").text
        # Chat joined too (whispers need the hello done).
        await waitFor(lambda: self.js("return window.mmoshardPlay.state.friends !== undefined"
                                      " && window.mmoshardPlay.app.chatPanel.zoneChannel !== null"),
                      what=f"{name}'s chat hello")

    async def endBanner(self, what="the session-end banner"):
        """Wait for the banner that says the session ended; @return: its reason (the closing error's code)."""
        return await waitFor(lambda: self.js(
            "const b = document.getElementById('banner'); return !b.hidden && b.dataset.reason"), what=what)

    def me(self):
        return self.js("const m = window.mmoshardPlay.state.me;"
                       " return m && {id: m.id, name: m.name, x: m.x, z: m.z, hp: m.hp};")

    def visible(self):
        """@return: the names of the entities this page shows in view."""
        return self.js("return window.mmoshardPlay.visible()")

    def seen(self, name):
        """@return: the entity C{name} as this page holds it (position as last told, and as drawn), or None."""
        return self.js(
            "const p = window.mmoshardPlay; const e = Object.values(p.state.entities)"
            ".find(x => x.name === arguments[0]); if (!e) return null;"
            " const at = p.app.world.positionAt(e.id, performance.now());"
            " return {id: e.id, kind: e.kind, x: e.x, z: e.z, drawnX: at.x, drawnZ: at.z};", name)

    async def walkUntil(self, key, done, timeout=30.0, what="the walk"):
        """Hold C{key} (real key events: "d" walks east, "a" west...) until C{done()} is true."""
        from selenium.webdriver.common.action_chains import ActionChains

        self.find("#world").click()
        ActionChains(self.driver).key_down(key).perform()
        try:
            return await waitFor(done, timeout=timeout, what=what)
        finally:
            ActionChains(self.driver).key_up(key).perform()
            await sleep(0.3)

    async def say(self, text):
        """Type a line in the chat box and send it (Enter)."""
        from selenium.webdriver.common.keys import Keys

        field = self.find("#chat-input")
        field.send_keys(text + Keys.ENTER)

    def chat(self):
        return self.js("return window.mmoshardPlay.state.chat")

    def chatText(self):
        """@return: the chat log's lines, one a line (shown or not: another tab may be open)."""
        return self.js("return [...document.querySelectorAll('#chat-log li')].map(li => li.textContent).join('\\n')")
