"""A Node holding the version role alone, its public and admin sites on free ports, for the role's tests."""

import json
import os

import treq
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.web.server import Site

from mmoshard.config import parseConfig
from mmoshard.interfaces import ITokenVerifier, IVolatileStore
from mmoshard.node import Node
from mmoshard.plugins.version import version as versionRole
from mmoshard.store.volatile import MemoryStore
from mmoshard.testing import provideSites
from mmoshard.tokens import TokenVerifier, issueAccessToken
from mmoshard.version.signing import DEV_KEY_FILE, loadSigningKey
from mmoshard.version.test.helpers import writeReleaseDir

TOKEN_KEY = "test-token-key-0123456789"


def coro(f):
    def wrapper(*args, **kwargs):
        return Deferred.fromCoroutine(f(*args, **kwargs))

    wrapper.__name__ = f.__name__
    return wrapper


class VersionRoleFixture:
    """A Node holding only what the version role uses, its public site on a free port."""

    async def startRole(self, releases=None, startVerifier=False, **versionConfig):
        base = os.path.abspath(self.mktemp())
        os.makedirs(base)
        self.releases = releases or writeReleaseDir(os.path.join(base, "releases"))
        versionConfig.setdefault("releases_dir", self.releases)
        config = parseConfig(
            {"node": {"id": "v1", "var_dir": os.path.join(base, "var")}, "version": versionConfig},
            [versionRole],
            roles=["version"],
            env={},
        )
        node = self.node = Node(config, reactor, [versionRole])
        self.volatile = MemoryStore(reactor, prefix="t:")
        self.volatile.open()
        node.provide(IVolatileStore, self.volatile)
        self.addCleanup(self.volatile.close)
        self.verifier = TokenVerifier(TOKEN_KEY, self.volatile, reactor)
        if startVerifier:
            # Revocations mirrored in memory: the check answers synchronously.
            await self.verifier.start()
            self.addCleanup(self.verifier.stop)
        node.provide(ITokenVerifier, self.verifier)
        self.root, self.adminRoot = provideSites(node)
        self.service = versionRole.makeService(node.contextFor(versionRole))
        await self.service.startService()
        self.addCleanup(self.service.stopService)
        site = Site(self.root)
        site.log = lambda request: None
        self.port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.base = f"http://127.0.0.1:{self.port.getHost().port}"
        adminSite = Site(self.adminRoot)
        adminSite.log = lambda request: None
        self.adminPort = reactor.listenTCP(0, adminSite, interface="127.0.0.1")
        self.addCleanup(self.adminPort.stopListening)
        self.admin = f"http://127.0.0.1:{self.adminPort.getHost().port}"
        self.key = loadSigningKey(env={}, devPath=os.path.join(base, "var", DEV_KEY_FILE))

    def token(self, accountId=42, flags=(), sid="login-1"):
        return issueAccessToken(TOKEN_KEY, accountId, sid, 600, reactor.seconds(), flags=flags)

    async def get(self, path, token=None, headers=None):
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = "Bearer " + token
        response = await treq.get(self.base + path, headers=headers, persistent=False, timeout=5)
        body = await response.content()
        return response, body

    async def check(self, query, token=None, **kw):
        response, body = await self.get("/v1/version?" + query, token or self.token(), **kw)
        return response.code, json.loads(body), response
