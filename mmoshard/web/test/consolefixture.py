"""What the operator console's tests share: a real all-in-one node, a player logged in over the Python client and walking in the world, an operator account; and, until the play client's fixture (mmoshard/web/test/browser.py) lands, a minimal browser fixture with its names."""

import json
import os
import tempfile

import attrs
import treq
from twisted.internet import reactor

from mmoshard.testing import TwistdProcess, cannotRun, freePort, writeConfig
from mmoshard.wire.client import connect, login

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TOKEN_KEY = "console-tests-token-key-0123456789"
PASSWORD = "correct horse battery"


@attrs.frozen
class ConsoleNode:
    """A running all-in-one node and the addresses a browser or a client uses."""

    process: TwistdProcess
    http: str
    ws: str
    admin: str
    directory: str
    adminPort: int

    def output(self):
        return self.process.output.decode(errors="replace")


async def startNode(testCase, extraConfig="", adminInterface="127.0.0.1"):
    """
    Start C{twistd -n mmoshard} with every role on the embedded default
    (SQLite, memory store) on free ports, killed at cleanup.

    @param extraConfig: a dict of tables merged into the fixture's own.
    @param adminInterface: where the admin site listens (off loopback it
        needs an operator login).
    @return: a L{ConsoleNode} once /readyz answers.
    """
    folder = tempfile.mkdtemp(prefix="mmoshard-console-node-")
    http, ws, tcp, admin = freePort(), freePort(), freePort(), freePort()
    sections = {
        "node": {"id": "console-node", "var_dir": folder},
        "secrets": {"token_key": TOKEN_KEY},
        "auth": {"argon2_time_cost": 1, "argon2_memory_kib": 64},
        "listen": {"http": f"tcp:{http}:interface=127.0.0.1",
                   "websocket": f"tcp:{ws}:interface=127.0.0.1",
                   "tcp": f"tcp:{tcp}:interface=127.0.0.1",
                   "admin": f"tcp:{admin}:interface={adminInterface}"},
        "directory": {"heartbeat": 0.5, "ttl": 3.0},
    }
    for table, values in (extraConfig or {}).items():
        sections[table] = {**sections.get(table, {}), **values}
    path = writeConfig(os.path.join(folder, "node.toml"), sections)
    process = TwistdProcess(reactor, path, admin).start()
    testCase.addCleanup(process.kill)
    await process.waitReady(timeout=60.0)
    return ConsoleNode(process, f"http://127.0.0.1:{http}", f"ws://127.0.0.1:{ws}/",
                       f"http://127.0.0.1:{admin}", folder, admin)


async def rest(method, url, body=None, token=None, cookies=None):
    """@return: (status, parsed JSON body, response) of one request."""
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
    """Register C{username}; @return: its account id."""
    code, body, _ = await rest("POST", node.http + "/v1/accounts",
                               {"username": username, "password": PASSWORD})
    assert code == 201, body
    return body["account_id"]


async def makeOperator(testCase, node, username):
    """Register C{username} and make it an operator with `mmoshard account operator`; @return: its id."""
    import io

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
    Register, create a character, log in, open a session over WebSocket
    and enter the world.  @return: a L{Player}.
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
    """Skip loudly (fail under CI=true) unless selenium, chromium and chromedriver are there."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        cannotRun("selenium is not installed (pip install -e '.[test]'); browser test cannot run")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            cannotRun(f"{path} is missing (apt-get install -y chromium chromium-driver); "
                      "browser test cannot run")


def makeDriver(testCase, size=(1400, 1000)):
    """
    Headless Debian Chromium through Debian's chromedriver (both paths
    given; Selenium Manager offline, so nothing is downloaded), quit at
    cleanup; a screenshot of it is saved to a temp dir, its path printed,
    unless the test calls L{passed}.
    """
    requireBrowser()
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--no-first-run", "--disable-extensions",
                     f"--window-size={size[0]},{size[1]}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    testCase.addCleanup(driver.quit)
    testCase.addCleanup(_screenshotOnFailure, testCase, driver)
    return driver


def passed(testCase):
    """Mark C{testCase}'s browser part passed: no failure screenshot at cleanup."""
    testCase.browserPassed = True


def _screenshotOnFailure(testCase, driver):
    if getattr(testCase, "browserPassed", False):
        return
    folder = tempfile.mkdtemp(prefix="mmoshard-console-failure-")
    path = os.path.join(folder, testCase.id().rsplit(".", 1)[-1] + ".png")
    try:
        driver.save_screenshot(path)
        with open(path[:-4] + ".html", "w") as f:
            f.write(driver.page_source)
    except Exception as e:
        print(f"\nconsole browser test: no screenshot ({e})")
        return
    print(f"\nconsole browser test failed: screenshot {path}, page {path[:-4]}.html")
