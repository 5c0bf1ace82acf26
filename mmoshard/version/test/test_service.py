"""Tests for the version role in one process: the check and manifests through a real Site, reload, rollback, the gate."""

import json
import os

import treq
from prometheus_client import generate_latest
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, deferLater
from twisted.trial.unittest import TestCase
from twisted.web.http import parse_qs
from twisted.web.server import NOT_DONE_YET, Site
from twisted.web.test.requesthelper import DummyRequest
from urllib.parse import quote

from mmoshard.config import parseConfig
from mmoshard.gate import RULES_KEY, StoreGate
from mmoshard.interfaces import IAdminSite, ITokenVerifier, IVolatileStore, IWebSite
from mmoshard.plugins.version import version as versionRole
from mmoshard.node import Node
from mmoshard.web.site import SiteRoot
from mmoshard.store.volatile import MemoryStore
from mmoshard.revocations import revokeLogin
from mmoshard.tokens import Claims, InvalidToken, TokenVerifier, issueAccessToken
from mmoshard.version import web
from mmoshard.version.releases import loadReleaseDir
from mmoshard.version.signing import DEV_KEY_FILE, loadSigningKey, publicKeyPEM, loadPublicKey, verifyManifest
from mmoshard.version.store import ReleaseStore
from mmoshard.version.test.helpers import maintenanceTOML, writeReleaseDir
from mmoshard.web.json import JSONRoot

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
        self.root = JSONRoot()
        node.provide(IWebSite, SiteRoot(self.root))
        self.adminRoot = JSONRoot()
        node.provide(IAdminSite, SiteRoot(self.adminRoot))
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


class CheckTests(VersionRoleFixture, TestCase):
    @coro
    async def test_ok_and_updates(self):
        await self.startRole()
        code, body, response = await self.check("platform=windows&channel=live&build=1.10.0")
        self.assertEqual(code, 200)
        self.assertEqual(body["status"], "ok")
        self.assertEqual((body["latest"], body["minimum"], body["plan"]), ("1.10.0", "1.9.0", None))
        self.assertEqual(response.headers.getRawHeaders("cache-control"), ["private, no-store"])

        code, body, _ = await self.check("platform=windows&build=1.9.0")
        self.assertEqual((code, body["status"], body["channel"]), (200, "update_available", "live"))
        self.assertEqual(body["plan"]["kind"], "delta")
        self.assertEqual(body["plan"]["size"], 250)
        self.assertEqual([s["to"] for s in body["plan"]["steps"]], ["1.9.9", "1.10.0"])
        self.assertEqual(body["manifest_url"], "/v1/manifests/windows/1.10.0")

        code, body, _ = await self.check("platform=windows&build=1.8.0")
        self.assertEqual(body["status"], "update_required")
        self.assertEqual(body["plan"]["size"], 550)

        code, body, _ = await self.check("platform=windows&build=1.2.0")
        self.assertEqual((body["status"], body["plan"]["kind"], body["plan"]["size"]), ("update_required", "full", 1000))

        # Versions compare as versions, not strings.
        code, body, _ = await self.check("platform=windows&build=1.10")
        self.assertEqual(body["status"], "ok")
        code, body, _ = await self.check("platform=windows&build=1.9.10")
        self.assertEqual(body["status"], "update_available")

    @coro
    async def test_cdn_by_region(self):
        await self.startRole(default_region="na")
        _, body, _ = await self.check("platform=windows&build=1.10.0", headers={"X-Client-Region": "eu"})
        self.assertEqual(body["region"], "eu")
        self.assertEqual(
            body["cdn"], ["https://eu-1.example.com", "https://eu-2.example.com", "https://na-1.example.com"]
        )
        _, body, _ = await self.check("platform=windows&build=1.10.0")
        self.assertEqual(body["region"], "na")
        self.assertEqual(body["cdn"][0], "https://na-1.example.com")
        _, body, _ = await self.check("platform=windows&build=1.10.0", headers={"X-Client-Region": "mars"})
        self.assertEqual(body["region"], "na")

    @coro
    async def test_bad_requests(self):
        await self.startRole()
        for query in ["platform=windows&build=1.x", "platform=windows", "platform=windows&build=",
                      "platform=amiga&build=1.0", "platform=windows&channel=alpha&build=1.0",
                      "platform=windows&build=%ff"]:
            code, body, _ = await self.check(query)
            self.assertEqual((code, body["error"]["code"]), (400, "request.invalid"), query)
        code, body, _ = await self.check("platform=mac&build=1.0")
        self.assertEqual((code, body["error"]["code"]), (404, "version.no_release"))
        code, body, _ = await self.check("platform=linux&channel=ptr&build=1.0")
        self.assertEqual(code, 404)

    @coro
    async def test_needs_a_valid_token(self):
        await self.startRole()
        response, body = await self.get("/v1/version?platform=windows&build=1.10.0")
        self.assertEqual((response.code, json.loads(body)["error"]["code"]), (401, "auth.invalid_token"))
        self.assertTrue(response.headers.getRawHeaders("www-authenticate"))
        response, body = await self.get("/v1/version?platform=windows&build=1.10.0", token="nope")
        self.assertEqual(response.code, 401)
        forged = issueAccessToken("another-key-0123456789", 1, "s", 600, reactor.seconds())
        response, _ = await self.get("/v1/version?platform=windows&build=1.10.0", token=forged)
        self.assertEqual(response.code, 401)
        token = self.token(sid="gone")
        await revokeLogin(self.volatile, "gone", 600)
        response, body = await self.get("/v1/version?platform=windows&build=1.10.0", token=token)
        self.assertEqual((response.code, json.loads(body)["error"]["message"]), (401, "access token revoked"))

    @coro
    async def test_staged_rollout(self):
        releases = writeReleaseDir(
            os.path.join(self.mktemp()),
            live='latest = "1.10.0"\nminimum = "1.9.0"\nprevious = "1.9.9"\nrollout = 50',
        )
        await self.startRole(releases)
        targets = {}
        for account in range(1, 21):
            _, body, _ = await self.check("platform=windows&build=1.9.0", token=self.token(account))
            targets[account] = body["target"]
        self.assertEqual(set(targets.values()), {"1.9.9", "1.10.0"})
        for account in range(1, 21):
            _, body, _ = await self.check("platform=windows&build=1.9.0", token=self.token(account))
            self.assertEqual(body["target"], targets[account])

    @coro
    async def test_maintenance(self):
        now = reactor.seconds()
        releases = writeReleaseDir(
            self.mktemp(), maintenance=maintenanceTOML(now - 10, now + 120, "Patch day")
        )
        await self.startRole(releases)
        code, body, response = await self.check("platform=windows&build=1.10.0")
        self.assertEqual((code, body["status"], body["message"]), (503, "maintenance", "Patch day"))
        retry = int(response.headers.getRawHeaders("retry-after")[0])
        self.assertTrue(100 <= retry <= 121, retry)
        code, body, _ = await self.check("platform=windows&build=1.10.0", token=self.token(flags={"operator"}))
        self.assertEqual((code, body["status"]), (200, "ok"))

    @coro
    async def test_upcoming_maintenance_announced(self):
        now = reactor.seconds()
        releases = writeReleaseDir(self.mktemp(), maintenance=maintenanceTOML(now + 3600, now + 7200))
        await self.startRole(releases)
        code, body, _ = await self.check("platform=windows&build=1.10.0")
        self.assertEqual((code, body["status"]), (200, "ok"))
        self.assertEqual(body["maintenance"]["start"], now + 3600)

    @coro
    async def test_metrics(self):
        await self.startRole()
        await self.check("platform=windows&build=1.10.0")
        await self.check("platform=windows&build=1.9.0")
        await self.check("platform=windows&build=0.0.1")
        await self.check("platform=windows&build=bad")
        text = generate_latest(self.node.metrics).decode()
        self.assertIn('mmoshard_version_checks_total{outcome="ok",platform="windows"} 1.0', text)
        self.assertIn('mmoshard_version_checks_total{outcome="update_required",platform="windows"} 1.0', text)
        self.assertIn('mmoshard_version_checks_total{outcome="request.invalid",platform="unknown"} 1.0', text)
        self.assertIn('mmoshard_version_client_builds_total{build="1.9.0",channel="live",platform="windows"} 1.0', text)
        self.assertIn('mmoshard_version_client_builds_total{build="other",channel="live",platform="windows"} 1.0', text)
        self.assertIn("mmoshard_version_release_revision 1.0", text)


    @coro
    async def test_openapi(self):
        await self.startRole()
        response, body = await self.get("/openapi.json")
        doc = json.loads(body)
        self.assertIn("/v1/version", doc["paths"])
        self.assertIn("/v1/manifests/{platform}/{build}", doc["paths"])


class SynchronousCheckTests(VersionRoleFixture, TestCase):
    """
    With the verifier's revocation mirror loaded (as in a server), the check
    is rendered synchronously; everything the spec asks still holds.
    """

    def request(self, query, token=None, method=b"GET", headers=None):
        request = DummyRequest([b"v1", b"version"])
        request.channel = None  # no channel to cork
        request.method = method
        request.args = parse_qs(query.encode())
        request.requestHeaders.setRawHeaders(b"authorization", [b"Bearer " + (token or self.token()).encode()])
        for name, value in (headers or {}).items():
            request.requestHeaders.setRawHeaders(name, [value])
        return request

    def resource(self):
        return self.root.children[b"v1"].children[b"version"]

    @coro
    async def test_rendered_synchronously_once_the_verifier_runs(self):
        await self.startRole(startVerifier=True)
        request = self.request("platform=windows&build=1.9.0")
        body = self.resource().render(request)
        self.assertIsInstance(body, bytes)
        self.assertEqual(json.loads(body)["status"], "update_available")
        self.assertEqual(request.responseHeaders.getRawHeaders(b"content-type"), [b"application/json"])
        self.assertEqual(request.responseHeaders.getRawHeaders(b"cache-control"), [b"private, no-store"])
        request = self.request("platform=windows&build=1.9.0", token="nope")
        body = self.resource().render(request)
        self.assertEqual((request.responseCode, json.loads(body)["error"]["code"]), (401, "auth.invalid_token"))

    @coro
    async def test_waits_for_a_verifier_that_asks_the_store(self):
        await self.startRole()
        pending = []
        self.patch(self.verifier, "verify", lambda token: pending.append(Deferred()) or pending[-1])
        request = self.request("platform=windows&build=1.9.0")
        self.assertEqual(self.resource().render(request), NOT_DONE_YET)
        self.assertEqual((request.written, request.finished), ([], 0))
        claims = Claims(account_id=42, sid="s", exp=reactor.seconds() + 60, iat=reactor.seconds())
        pending[0].callback(claims)
        body = b"".join(request.written)
        self.assertEqual((request.finished, json.loads(body)["status"]), (1, "update_available"))
        self.assertEqual(request.responseHeaders.getRawHeaders(b"content-length"), [b"%d" % len(body)])
        # Refused later: the typed error.
        request = self.request("platform=windows&build=1.9.0")
        self.resource().render(request)
        pending[1].errback(InvalidToken("revoked"))
        self.assertEqual((request.responseCode, json.loads(b"".join(request.written))["error"]["code"]),
                         (401, "auth.invalid_token"))
        # The client left before the answer: nothing is written.
        request = self.request("platform=windows&build=1.9.0")
        self.resource().render(request)
        gone = request
        self.patch(web, "requestDisconnected", lambda r: r is gone)
        pending[2].callback(claims)
        self.assertEqual((request.written, request.finished), ([], 0))

    @coro
    async def test_spec_through_the_site(self):
        releases = writeReleaseDir(
            self.mktemp(), live='latest = "1.10.0"\nminimum = "1.9.0"\nprevious = "1.9.9"\nrollout = 50'
        )
        await self.startRole(releases, startVerifier=True, default_region="na")
        code, body, response = await self.check("platform=windows&build=1.9.0", headers={"X-Client-Region": "eu"})
        self.assertEqual((code, body["status"], body["region"]), (200, "update_available", "eu"))
        self.assertEqual(body["cdn"][0], "https://eu-1.example.com")
        self.assertEqual(response.headers.getRawHeaders("cache-control"), ["private, no-store"])
        code, body, _ = await self.check("platform=windows&build=1.8.0")
        self.assertEqual((body["status"], body["region"]), ("update_required", "na"))
        code, body, _ = await self.check("platform=windows&build=1.x")
        self.assertEqual((code, body["error"]["fields"]["build"]), (400, "a version such as 1.10.0"))
        # Rollout per account, stable across repeated (cached) answers.
        targets = {}
        for _ in range(2):
            for account in range(1, 21):
                _, body, _ = await self.check("platform=windows&build=1.9.0", token=self.token(account))
                self.assertEqual(targets.setdefault(account, body["target"]), body["target"])
        self.assertEqual(set(targets.values()), {"1.9.9", "1.10.0"})
        # A revoked token is refused though it was verified (and cached) before.
        token = self.token(sid="gone")
        code, _, _ = await self.check("platform=windows&build=1.10.0", token=token)
        self.assertEqual(code, 200)
        await revokeLogin(self.volatile, "gone", 600)
        response, body = await self.get("/v1/version?platform=windows&build=1.10.0", token=token)
        self.assertEqual((response.code, json.loads(body)["error"]["message"]), (401, "access token revoked"))

    @coro
    async def test_head(self):
        await self.startRole(startVerifier=True)
        _, body = await self.get("/v1/version?platform=windows&build=1.9.0", self.token())
        response = await treq.head(
            self.base + "/v1/version?platform=windows&build=1.9.0",
            headers={"Authorization": "Bearer " + self.token()}, persistent=False, timeout=5,
        )
        self.assertEqual(response.code, 200)
        self.assertEqual(await response.content(), b"")
        self.assertEqual(response.headers.getRawHeaders("content-length"), [str(len(body))])
        response = await treq.head(
            self.base + "/v1/version?platform=windows&build=1.9.0", persistent=False, timeout=5
        )
        self.assertEqual(response.code, 401)
        self.assertEqual(await response.content(), b"")

    @coro
    async def test_maintenance_window_opens_and_closes_over_cached_answers(self):
        now = reactor.seconds()
        releases = writeReleaseDir(self.mktemp(), maintenance=maintenanceTOML(now + 100, now + 200, "Patch day"))
        await self.startRole(releases, startVerifier=True)
        clock = Clock()
        clock.advance(now)
        self.service.clock = clock
        for _ in range(2):
            code, body, _ = await self.check("platform=windows&build=1.10.0")
            self.assertEqual((code, body["status"], body["maintenance"]["start"]), (200, "ok", now + 100))
        clock.advance(150)
        code, body, response = await self.check("platform=windows&build=1.10.0")
        self.assertEqual((code, body["status"], body["retry_after"]), (503, "maintenance", 50))
        self.assertEqual(response.headers.getRawHeaders("retry-after"), ["50"])
        clock.advance(100)
        code, body, _ = await self.check("platform=windows&build=1.10.0")
        self.assertEqual((code, body["status"], body["maintenance"]), (200, "ok", None))

    @coro
    async def test_other_spellings_of_known_builds(self):
        await self.startRole(startVerifier=True)
        catalog = self.service.catalog
        await self.check("platform=windows&build=1.10.0")
        cached = len(catalog._answers)
        for spelling in ["1.10", "1.10.0.0", "1.10.0+ci.1", "1.10.0+ci.2"]:
            code, body, _ = await self.check("platform=windows&build=" + quote(spelling))
            self.assertEqual((code, body["status"], body["build"]), (200, "ok", spelling))
        # Neither the answers cache nor the metric's labels grow with them.
        self.assertEqual(len(catalog._answers), cached)
        text = generate_latest(self.node.metrics).decode()
        self.assertIn('mmoshard_version_client_builds_total{build="1.10.0",channel="live",platform="windows"} 5.0', text)
        self.assertNotIn("ci.1", text)

    @coro
    async def test_verifier_crash_is_a_json_500(self):
        await self.startRole(startVerifier=True)
        from twisted.internet.defer import fail, succeed

        self.patch(self.verifier, "verify", lambda token: fail(RuntimeError("boom")))
        code, body, _ = await self.check("platform=windows&build=1.10.0")
        self.assertEqual((code, body["error"]["code"]), (500, "internal"))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        # A bug after verification too.
        self.patch(self.verifier, "verify", lambda token: succeed(None))
        code, body, _ = await self.check("platform=windows&build=1.10.0")
        self.assertEqual((code, body["error"]["code"]), (500, "internal"))
        self.assertEqual(len(self.flushLoggedErrors(AttributeError)), 1)


class ManifestTests(VersionRoleFixture, TestCase):
    @coro
    async def test_signed_and_cacheable(self):
        await self.startRole(manifest_max_age=600)
        response, envelope = await self.get("/v1/manifests/windows/1.9.9")
        self.assertEqual(response.code, 200)
        etag = response.headers.getRawHeaders("etag")[0]
        self.assertTrue(etag.startswith('"') and etag.endswith('"'))
        self.assertEqual(response.headers.getRawHeaders("cache-control"), ["public, max-age=600"])
        public = loadPublicKey(publicKeyPEM(self.key))
        manifest = verifyManifest(public, envelope, "windows", "1.9.9")
        self.assertEqual(manifest["size"], 1000)
        self.assertEqual([f["path"] for f in manifest["files"]], ["data/0.pak", "data/1.pak"])
        # Served again from memory: the same bytes and ETag.
        again, body = await self.get("/v1/manifests/windows/1.9.9")
        self.assertEqual((body, again.headers.getRawHeaders("etag")[0]), (envelope, etag))

    @coro
    async def test_etag_304(self):
        await self.startRole()
        response, _ = await self.get("/v1/manifests/windows/1.10.0")
        etag = response.headers.getRawHeaders("etag")[0]
        for header in [etag, f'"x", {etag}', "W/" + etag, "*"]:
            response, body = await self.get("/v1/manifests/windows/1.10.0", headers={"If-None-Match": header})
            self.assertEqual((response.code, body), (304, b""), header)
            self.assertEqual(response.headers.getRawHeaders("etag"), [etag])
        response, body = await self.get("/v1/manifests/windows/1.10.0", headers={"If-None-Match": '"other"'})
        self.assertEqual(response.code, 200)
        other, _ = await self.get("/v1/manifests/windows/1.9.9")
        self.assertNotEqual(other.headers.getRawHeaders("etag"), [etag])

    @coro
    async def test_not_found(self):
        await self.startRole()
        for path in ["windows/9.9.9", "windows/bad", "amiga/1.0", "windows", "windows/1.10.0/x"]:
            response, body = await self.get("/v1/manifests/" + path)
            self.assertEqual(response.code, 404, path)
            self.assertEqual(json.loads(body)["error"]["code"], "version.no_release")


class ReloadTests(VersionRoleFixture, TestCase):
    async def publish(self, **kw):
        loaded = loadReleaseDir(writeReleaseDir(self.mktemp(), **kw))
        return await ReleaseStore(self.volatile).publish(loaded, self.key, reactor.seconds())

    async def waitRevision(self, revision):
        for _ in range(100):
            if self.service.catalog is not None and self.service.catalog.revision == revision:
                return
            await deferLater(reactor, 0.01, lambda: None)
        self.fail(f"revision {revision} not in force")

    @coro
    async def test_publish_seen_without_restart(self):
        await self.startRole()
        _, body, _ = await self.check("platform=windows&build=1.10.0")
        self.assertEqual((body["status"], body["revision"]), ("ok", 1))
        release = await self.publish(live='latest = "1.10.0"\nminimum = "1.10.0"')
        await self.waitRevision(release.revision)
        _, body, _ = await self.check("platform=windows&build=1.9.9")
        self.assertEqual((body["status"], body["minimum"], body["revision"]), ("update_required", "1.10.0", 2))

    @coro
    async def test_rollback(self):
        await self.startRole()
        await self.publish(live='latest = "1.10.0"\nminimum = "1.10.0"')
        await self.waitRevision(2)
        store = ReleaseStore(self.volatile)
        release = await store.rollback()
        self.assertEqual(release.revision, 1)
        await self.waitRevision(1)
        _, body, _ = await self.check("platform=windows&build=1.9.9")
        self.assertEqual(body["status"], "update_available")
        history = await store.history()
        self.assertEqual([(h.revision, h.current) for h in history], [(2, False), (1, True)])
        rules = json.loads(await self.volatile.get(RULES_KEY))
        self.assertEqual((rules["revision"], rules["minimum"]["windows/live"]), (1, "1.9.0"))

    @coro
    async def test_old_revisions_pruned(self):
        await self.startRole()
        store = ReleaseStore(self.volatile, keep=2)
        loaded = loadReleaseDir(writeReleaseDir(self.mktemp(), builds={"1.9.0": [1], "1.10.0": [2]},
                                                patches=[]))
        for _ in range(3):
            await store.publish(loaded, self.key, reactor.seconds())
        self.assertEqual([h.revision for h in await store.history()], [4, 3])
        keys = await self.volatile.keys("release:manifest:*")
        self.assertEqual(len(keys), 3)  # windows 1.9.0, 1.10.0, linux 1.10.0

    @coro
    async def test_nothing_published(self):
        await self.startRole(publish_at_start=False)
        self.assertIsNone(self.service.catalog)
        code, body, _ = await self.check("platform=windows&build=1.0")
        self.assertEqual((code, body["error"]["code"]), (404, "version.no_release"))
        response, _ = await self.get("/v1/manifests/windows/1.10.0")
        self.assertEqual(response.code, 404)


class AdminTests(VersionRoleFixture, TestCase):
    """`mmoshard release` on the embedded default goes through the admin site."""

    async def post(self, path, body, contentType="application/json"):
        response = await treq.post(
            self.admin + path, json.dumps(body).encode(),
            headers={"Content-Type": contentType}, persistent=False, timeout=5,
        )
        return response.code, json.loads(await response.content())

    @coro
    async def test_publish_rollback_status(self):
        await self.startRole()
        other = writeReleaseDir(self.mktemp(), live='latest = "1.10.0"\nminimum = "1.10.0"')
        code, body = await self.post("/version/publish", {"dir": other})
        self.assertEqual((code, body["release"]["revision"]), (200, 2))
        self.assertEqual(self.service.catalog.revision, 2)
        code, body = await self.post("/version/rollback", {})
        self.assertEqual((code, body["release"]["revision"]), (200, 1))
        self.assertEqual(self.service.catalog.revision, 1)
        code, body = await self.post("/version/rollback", {})
        self.assertEqual((code, body["error"]["code"]), (409, "version.no_earlier_revision"))
        response = await treq.get(self.admin + "/version/status", persistent=False)
        body = json.loads(await response.content())
        self.assertEqual([h["revision"] for h in body["history"]], [2, 1])
        code, body = await self.post("/version/publish", {"dir": self.mktemp()})
        self.assertEqual((code, body["error"]["code"]), (400, "version.invalid_release"))
        code, body = await self.post("/version/publish", {}, contentType="text/plain")
        self.assertEqual(code, 415)

    @coro
    async def test_cli_through_admin(self):
        import argparse
        import io

        from mmoshard.testing import writeConfig
        from mmoshard.version import cli

        await self.startRole()
        port = self.adminPort.getHost().port
        path = writeConfig(self.mktemp() + ".toml", {
            "node": {"var_dir": self.node.config.node.var_dir},
            "listen": {"admin": f"tcp:{port}:interface=127.0.0.1"},
            "version": {"releases_dir": self.releases},
        })
        parser = argparse.ArgumentParser()
        cli.arguments(parser)
        out = io.StringIO()
        status = await cli.run(reactor, parser.parse_args(["publish", "--config", path]), out)
        self.assertEqual(status, 0)
        self.assertIn("published revision 2 through the server's admin site", out.getvalue())
        self.assertIn("windows/live: latest 1.10.0, minimum 1.9.0", out.getvalue())
        out = io.StringIO()
        await cli.run(reactor, parser.parse_args(["status", "--config", path]), out)
        self.assertIn("revision 2 in force", out.getvalue())


class StoreGateTests(TestCase):
    def claims(self, flags=()):
        return Claims(account_id=1, sid="s", exp=2e9, iat=0, flags=frozenset(flags))

    @coro
    async def test_follows_published_rules(self):
        clock = Clock()
        clock.advance(1000)
        store = MemoryStore(clock, prefix="g:")
        store.open()
        gate = StoreGate(store, clock, refresh=5.0)
        await gate.start()
        self.assertIsNone(await gate.check(self.claims(), "0.1", "windows"))
        loaded = loadReleaseDir(writeReleaseDir(self.mktemp(), maintenance=maintenanceTOML(1100, 1200, "Soon back")))
        key = loadSigningKey(env={}, devPath=os.path.join(self.mktemp(), "k.pem"))
        await ReleaseStore(store).publish(loaded, key, clock.seconds())
        clock.advance(0)  # the change announcement is delivered
        refusal = await gate.check(self.claims(), "1.8.0", "windows")
        self.assertEqual(refusal.code, "version.update_required")
        self.assertIsNone(await gate.check(self.claims(), "1.9.0", "windows"))
        clock.advance(150)
        refusal = await gate.check(self.claims(), "1.9.0", "windows")
        self.assertEqual((refusal.code, refusal.message, refusal.retry_after), ("server.maintenance", "Soon back", 50))
        self.assertIsNone(await gate.check(self.claims({"operator"}), "1.9.0", "windows"))
        await gate.stop()
        store.close()

    @coro
    async def test_periodic_refresh_and_store_failure(self):
        clock = Clock()
        store = MemoryStore(clock, prefix="g:")
        store.open()
        gate = StoreGate(store, clock, refresh=5.0)
        await gate.start()
        # Rules written without an announcement are picked up by the refresh.
        from mmoshard.gate import GateRules, parseBuild

        await store.set(RULES_KEY, GateRules(3, {"ios/live": parseBuild("2.0")}).encode())
        clock.advance(5)
        self.assertEqual((await gate.check(self.claims(), "1.0", "ios")).code, "version.update_required")
        # A store failure keeps the rules in force.
        gate.volatile = _Broken()
        clock.advance(5)
        self.assertEqual(gate.rules.revision, 3)
        self.flushLoggedErrors()
        await gate.stop()
        store.close()


class _Broken:
    def get(self, key):
        from twisted.internet.defer import fail

        from mmoshard.store.errors import VolatileUnavailable

        return fail(VolatileUnavailable("down"))
