"""A real auth role for tests, its sites answered in memory (StubTreq): SQLite + memory or MariaDB + Redis, a Clock for time."""

import json

from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.task import Clock
from twisted.web.resource import Resource
from twisted.web.server import Site
from treq.testing import StubTreq

from mmoshard.config import parseConfig
from mmoshard.directory import Directory
from mmoshard.interfaces import (
    IAdminSite,
    IDirectory,
    ISQLStore,
    ITokenVerifier,
    IVolatileStore,
    IWebSite,
)
from mmoshard.plugins.auth import auth as authRole
from mmoshard.node import Node
from mmoshard.store.sql import SQLStore, migrate
from mmoshard.store.volatile import MemoryStore, makeVolatileStore
from mmoshard.testing import provideSites, requireMySQL, requireRedis
from mmoshard.tokens import TokenVerifier

TOKEN_KEY = "test-token-key-0123456789abcdef"
# Cheap argon2 so a test run hashes in milliseconds; the code path is the same.
FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_kib": 64, "argon2_parallelism": 1,
               "hash_threads": 2}
START = 1_800_000_000.0


class Response:
    """A finished response: status code, parsed JSON body, headers."""

    def __init__(self, code, body, headers):
        self.code = code
        self.body = body
        self.headers = headers

    @property
    def error(self):
        return self.body["error"]["code"] if isinstance(self.body, dict) and "error" in self.body else None

    def header(self, name):
        values = self.headers.getRawHeaders(name)
        return values[0] if values else None

    def __repr__(self):
        return f"<Response {self.code} {self.body!r}>"


class _Flushing(Resource):
    """
    A site root that has the in-memory HTTP of C{stub} (a L{StubTreq})
    carry each response to the client once the role finishes it: the role
    answers later (hashing and SQL run in threads), and StubTreq delivers
    only what is written when it is flushed.
    """

    def __init__(self, root):
        super().__init__()
        self.root = root
        # The StubTreq over this root, set once it is made.
        self.stub = None

    def _watch(self, request):
        # On the next turn of the reactor that runs the role's threads'
        # callbacks, not inside the server's own finish().
        request.notifyFinish().addBoth(lambda _: reactor.callLater(0, self.stub.flush))

    def getChildWithDefault(self, name, request):
        self._watch(request)
        return self.root.getChildWithDefault(name, request)

    def render(self, request):
        self._watch(request)
        return self.root.render(request)


def _stubTreq(root):
    """@return: a L{StubTreq} answering from the site root C{root}."""
    flushing = _Flushing(root)
    flushing.stub = StubTreq(flushing)
    return flushing.stub


class AuthHarness:
    """
    The auth role wired as the node would wire it, on C{backend} "sqlite"
    (SQLite + memory store) or "mysql" (MariaDB + Redis), its public and
    admin sites answered in memory through L{StubTreq}, and a C{Clock} as
    the role's time.
    """

    def __init__(self, testCase, backend, **authOverrides):
        self.testCase = testCase
        self.backend = backend
        # No retry grace unless a test asks: a used-up token coming back is
        # a reuse at once, on the memory store's clock and on Redis's alike.
        self.auth = dict(FAST_ARGON2, refresh_retry_grace=0.0, **authOverrides)
        self.clock = Clock()
        self.clock.advance(START)

    async def start(self):
        tc = self.testCase
        if self.backend == "sqlite":
            sqlURL = "sqlite:///" + tc.mktemp() + ".sqlite3"
            volatileURL, prefix = "memory://", "mmotest:"
        else:
            sqlURL, dropDatabase = requireMySQL()
            tc.addCleanup(dropDatabase)
            volatileURL, prefix, cleanKeys = requireRedis()
            tc.addCleanup(cleanKeys)
        raw = {"node": {"id": "auth-test", "roles": ["auth"]},
               "sql": {"url": sqlURL}, "volatile": {"url": volatileURL, "prefix": prefix},
               "secrets": {"token_key": TOKEN_KEY}, "auth": self.auth}
        self.config = parseConfig(raw, [authRole], env={})
        node = self.node = Node(self.config, reactor, [authRole])
        self.sql = SQLStore(reactor, sqlURL)
        self.sql.open()
        tc.addCleanup(self.sql.close)
        await migrate(self.sql)
        if self.backend == "sqlite":
            self.volatile = MemoryStore(self.clock, prefix=prefix)
        else:
            self.volatile = makeVolatileStore(volatileURL, reactor, prefix, 2.0)
        self.volatile.open()
        tc.addCleanup(self.volatile.close)
        node.provide(ISQLStore, self.sql)
        node.provide(IVolatileStore, self.volatile)
        self.verifier = TokenVerifier(TOKEN_KEY, self.volatile, self.clock)
        node.provide(ITokenVerifier, self.verifier)
        self.directory = Directory(self.volatile, self.clock, "auth-test", ["auth", "chat"],
                                   heartbeat=5.0, ttl=3600.0)
        self.directory.endpoints = {"tcp": "127.0.0.1:7000", "admin": "http://127.0.0.1:1"}
        await self.directory.beat()
        node.provide(IDirectory, self.directory)
        self.publicRoot, self.adminRoot = provideSites(node)
        self.publicHTTP = _stubTreq(self.publicRoot)
        self.adminHTTP = _stubTreq(self.adminRoot)
        from mmoshard.auth.gamedata import loadGameData
        from mmoshard.auth.service import AuthService

        cfg = self.config.roleConfig("auth")
        # As the role's factory builds it, but on the harness's Clock.
        self.service = AuthService(
            cfg, reactor, "auth-test", node.metrics,
            gameData=loadGameData(cfg.classes_file),
            sql=self.sql, volatile=self.volatile, verifier=self.verifier,
            tokenKey=lambda: TOKEN_KEY, directory=self.directory,
            site=node.lookup(IWebSite), admin=node.lookup(IAdminSite), clock=self.clock,
        )
        await self.service.startService()
        tc.addCleanup(self.service.stopService)
        return self

    async def listenAdmin(self):
        """
        Serve the admin site on a free loopback port too, for a client that
        must reach the role over TCP (the account CLI); @return: the port.
        """
        site = Site(self.adminRoot)
        site.log = lambda request: None
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(site)
        self.testCase.addCleanup(port.stopListening)
        return port.getHost().port

    async def request(self, method, path, body=None, token=None, raw=None,
                      headers=None, admin=False):
        """Send one request; @return: a L{Response}."""
        hdrs = {b"content-type": [b"application/json"]}
        if token is not None:
            hdrs[b"authorization"] = [b"Bearer " + token.encode()]
        for k, v in (headers or {}).items():
            hdrs[k.encode()] = [v.encode()]
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        http = self.adminHTTP if admin else self.publicHTTP
        # The admin site answers only requests naming its address.
        base = "http://127.0.0.1" if admin else "http://auth.test"
        response = await http.request(method, base + path, data=data, headers=hdrs)
        content = await http.content(response)
        try:
            parsed = json.loads(content) if content else None
        except ValueError:
            parsed = content
        return Response(response.code, parsed, response.headers)

    # Shortcuts for the common flows.

    async def register(self, username="alice", password="correct horse battery", **extra):
        return await self.request("POST", "/v1/accounts",
                                  {"username": username, "password": password, **extra})

    async def login(self, username="alice", password="correct horse battery", **kw):
        return await self.request("POST", "/v1/sessions",
                                  {"username": username, "password": password}, **kw)

    async def account(self, username="alice", password="correct horse battery"):
        """Register and log in; @return: the login response body."""
        r = await self.register(username, password)
        assert r.code == 201, r
        r = await self.login(username, password)
        assert r.code == 200, r
        return r.body

    async def events(self, accountId):
        r = await self.request("GET", f"/accounts/{accountId}/events", admin=True)
        return [e["kind"] for e in r.body["events"]]
