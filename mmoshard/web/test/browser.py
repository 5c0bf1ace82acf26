"""The web tests' fixture: a real twistd all-in-one node on free ports (SQLite, memory store), players and operators on it, headless Debian Chromium through selenium, screenshots on failure."""

import functools
import io
import json
import os
import subprocess
import tempfile

import attrs
import treq
from twisted.internet import reactor
from twisted.internet.task import deferLater

from mmoshard.testing import TwistdProcess, cannotRun, eventually, freePort, writeConfig
from mmoshard.wire.client import connect, login

# Debian's packages (apt-get install chromium chromium-driver): always these,
# passed explicitly, so that selenium never looks for (or downloads) others.
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TOKEN_KEY = "browser-tests-token-key-0123456789"
NODE_ID = "browser-node"
# The password of every account the helpers below register.
PASSWORD = "correct horse battery"
WINDOW = (1280, 800)


@attrs.frozen
class BrowserNode:
    """A running all-in-one node: its process and the addresses a browser (or a test) uses."""

    process: TwistdProcess
    http: str  # the public site: http://127.0.0.1:PORT (/play/, /lib/, /v1/...)
    ws: str  # the session WebSocket listener: ws://127.0.0.1:PORT/
    admin: str  # the admin site: http://127.0.0.1:PORT (/console/, /metrics...)
    directory: str  # its var_dir (SQLite database, logs)

    def output(self):
        """@return: what the node wrote so far (for failure messages)."""
        return self.process.output.decode(errors="replace")


async def startNode(testCase, extraConfig="", adminInterface="127.0.0.1"):
    """
    Start C{twistd -n mmoshard} (node id L{NODE_ID}) with every role on the
    embedded default (SQLite in a temp folder, the in-process volatile
    store, cheap password hashes, a directory heartbeat every half second
    so that the console's views follow quickly), its public, WebSocket, TCP
    and admin listeners on free loopback ports; it is killed at
    C{testCase}'s cleanup.

    @param extraConfig: more TOML appended to the config file (tables the
        fixture does not write: C{[node]}, C{[secrets]}, C{[listen]} and
        C{[public]} are its own), or a dict of tables merged into its own.
    @param adminInterface: where the admin site listens: off loopback
        (C{"0.0.0.0"}) it needs an operator login.
    @return: a L{BrowserNode}, once its /readyz answers 200.
    """
    folder = tempfile.mkdtemp(prefix="mmoshard-browser-node-")
    http, ws, tcp, admin = freePort(), freePort(), freePort(), freePort()
    sections = {
        "node": {"id": NODE_ID, "var_dir": folder},
        "secrets": {"token_key": TOKEN_KEY},
        # Cheap password hashes: the tests register and log in often.
        "auth": {"argon2_time_cost": 1, "argon2_memory_kib": 64},
        "directory": {"heartbeat": 0.5, "ttl": 3.0},
        "listen": {"http": f"tcp:{http}:interface=127.0.0.1",
                   "websocket": f"tcp:{ws}:interface=127.0.0.1",
                   "tcp": f"tcp:{tcp}:interface=127.0.0.1",
                   "admin": f"tcp:{admin}:interface={adminInterface}"},
        "public": {"host": "127.0.0.1"},
    }
    if isinstance(extraConfig, dict):
        for table, values in extraConfig.items():
            sections[table] = {**sections.get(table, {}), **values}
        extraConfig = ""
    path = writeConfig(os.path.join(folder, "node.toml"), sections)
    if extraConfig:
        with open(path, "a") as f:
            f.write("\n" + extraConfig + "\n")
    process = TwistdProcess(reactor, path, admin).start()
    testCase.addCleanup(process.kill)
    await process.waitReady(timeout=60.0)
    return BrowserNode(process, f"http://127.0.0.1:{http}", f"ws://127.0.0.1:{ws}/",
                       f"http://127.0.0.1:{admin}", folder)


async def rest(method, url, body=None, token=None, cookies=None):
    """@return: (status, parsed JSON body, response) of one JSON request."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    response = await treq.request(method, url, data=data, headers=headers, cookies=cookies,
                                  timeout=10, persistent=False)
    content = await response.content()
    try:
        parsed = json.loads(content) if content else None
    except ValueError:
        parsed = content
    return response.code, parsed, response


async def register(node, username):
    """Register C{username} (password L{PASSWORD}) on C{node}'s public site; @return: its account id."""
    code, body, _ = await rest("POST", node.http + "/v1/accounts",
                               {"username": username, "password": PASSWORD})
    assert code == 201, body
    return body["account_id"]


async def makeOperator(testCase, node, username):
    """Register C{username} and make it an operator with `mmoshard account operator`; @return: its id."""
    from mmoshard.auth.cli import run
    from mmoshard.cli import makeParser

    accountId = await register(node, username)
    path = writeConfig(testCase.mktemp() + ".toml", {
        "sql": {"url": "sqlite:///" + os.path.join(node.directory, "mmoshard.sqlite3")},
        "secrets": {"token_key": TOKEN_KEY}, "listen": {"admin": ""}})
    args = makeParser().parse_args(["account", "operator", username, "--config", path])
    out = io.StringIO()
    assert await run(reactor, args, out) == 0, out.getvalue()
    return accountId


@attrs.define
class Player:
    """A player logged in over the Python client, its character in the world."""

    accountId: int
    characterId: int
    name: str
    tokens: dict
    client: object


async def playerInWorld(node, username, characterName):
    """
    Register, create a warrior, log in, open a session over WebSocket and
    enter the world, through the Python client.  @return: a L{Player}.
    """
    accountId = await register(node, username)
    tokens = await login(reactor, node.http, username, PASSWORD)
    code, character, _ = await rest("POST", node.http + "/v1/characters",
                                    {"name": characterName, "class": "warrior"},
                                    token=tokens["access_token"])
    assert code == 201, character
    client = await connect(reactor, node.ws, tokens["access_token"], clientVersion="1.0.0",
                           autoResume=False)
    await client.request("world.enter", character_id=character["id"])
    return Player(accountId, character["id"], characterName, tokens, client)


def requireBrowser():
    """
    Give up (skip loudly; fail under CI=true) unless selenium, Debian's
    chromium and its chromedriver are installed.
    """
    try:
        import selenium  # noqa: F401
    except ImportError:
        cannotRun("selenium is not installed (pip install -e '.[test]'); browser test cannot run")
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            cannotRun(f"{path} is missing (apt-get install -y chromium chromium-driver: {package}); "
                      "browser test cannot run")


def _version(path):
    """@return: the version number a browser or driver binary prints (C{--version})."""
    text = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    return next((word for word in text.split() if word[:1].isdigit() and "." in word), "")


def makeDriver(testCase, size=WINDOW):
    """
    A headless Chromium driven through chromedriver, both Debian's (never
    one Selenium Manager would fetch: C{SE_OFFLINE=true}, both paths given,
    and the versions checked), quit at C{testCase}'s cleanup; its console
    messages are kept for L{captureScreens}.
    """
    requireBrowser()
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--no-first-run", "--disable-extensions", "--disable-background-networking",
                     "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                     f"--window-size={size[0]},{size[1]}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    testCase.addCleanup(driver.quit)
    drivers = testCase.__dict__.setdefault("browserDrivers", [])
    drivers.append(driver)
    # The system's binaries, not a download: the versions they print are
    # the ones the session runs.
    browser = driver.capabilities.get("browserVersion", "")
    chromedriver = driver.capabilities.get("chrome", {}).get("chromedriverVersion", "")
    expected = _version(CHROMIUM), _version(CHROMEDRIVER)
    if (browser, chromedriver.split(" ")[0]) != expected:
        raise AssertionError(f"the session runs chromium {browser} with chromedriver {chromedriver}, "
                             f"not Debian's {expected}: something other than {CHROMIUM} ran")
    return driver


def captureScreens(testCase, label="failure"):
    """
    Save a screenshot, the page source, the page's state (window.mmoshardPlay)
    and the console log of every driver of C{testCase} in a new temp folder;
    print and return their paths.
    """
    folder = tempfile.mkdtemp(prefix=f"mmoshard-browser-{label}-")
    paths = []
    for i, driver in enumerate(testCase.__dict__.get("browserDrivers", [])):
        base = os.path.join(folder, f"{testCase.id().rsplit('.', 1)[-1]}-{i}")
        try:
            driver.save_screenshot(base + ".png")
            paths.append(base + ".png")
            with open(base + ".html", "w") as f:
                f.write(driver.page_source)
            state = driver.execute_script(
                "return window.mmoshardPlay ? JSON.stringify(window.mmoshardPlay.state, null, 1) : null")
            if state:
                with open(base + ".state.json", "w") as f:
                    f.write(state)
            with open(base + ".console.txt", "w") as f:
                f.write("\n".join(json.dumps(entry) for entry in driver.get_log("browser")))
            paths.append(base + ".*")
        except Exception as e:  # a dead browser: say so, keep the others
            paths.append(f"{base}: could not capture ({type(e).__name__}: {e})")
    print(f"\nbrowser screenshots of {testCase.id()}:\n  " + "\n  ".join(paths))
    return paths


def screenshotsOnFailure(method):
    """
    Decorate an C{async def} browser test: when it fails (an assertion, an
    error, trial's timeout) every driver's screen is captured
    (L{captureScreens}) before the drivers quit, and the paths printed.
    """

    @functools.wraps(method)
    async def test(self, *args, **kwargs):
        try:
            return await method(self, *args, **kwargs)
        except BaseException:
            captureScreens(self)
            node = self.__dict__.get("node")
            if node is not None:
                print("node output (tail):\n" + node.output()[-4000:])
            raise

    return test


async def sleep(seconds):
    """Let the reactor run for C{seconds}."""
    await deferLater(reactor, seconds, lambda: None)


class _NotYet(Exception):
    """What L{waitFor}'s predicate gave while false."""


async def waitFor(predicate, timeout=20.0, step=0.1, what="the condition"):
    """
    Call C{predicate()} (a selenium query, say) every C{step} seconds,
    leaving the reactor free in between, until it returns something true;
    @return: that value.
    @raise AssertionError: after C{timeout} seconds, with its last value.
    """
    async def attempt():
        value = predicate()
        if not value:
            raise _NotYet(value)
        return value

    try:
        return await eventually(reactor, attempt, timeout, step, _NotYet)
    except _NotYet as e:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; "
                             f"last: {e.args[0]!r}") from None
