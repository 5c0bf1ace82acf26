"""Tests for the version role in one process: the check and manifests through a real Site."""

import json
import os

import treq
from prometheus_client import generate_latest
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from twisted.web.http import parse_qs
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest
from urllib.parse import quote

from mmoshard.revocations import revokeLogin
from mmoshard.tokens import Claims, InvalidToken, issueAccessToken
from mmoshard.version.signing import loadPublicKey, publicKeyPEM, verifyManifest
from mmoshard.version.test.fixture import VersionRoleFixture, coro
from mmoshard.version.test.helpers import maintenanceTOML, writeReleaseDir
from mmoshard.web import json as webjson


class CheckTests(VersionRoleFixture, TestCase):
    @coro
    async def test_ok_and_updates(self):
        """A current build is ok with latest and minimum, private no-store, for the default region when the asked one is unknown."""
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
        """The CDN list starts with the region asked for by header, else the default region's."""
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
        """A bad platform, channel or build is a 400 request.invalid; nothing published for it a 404 version.no_release."""
        await self.startRole()
        for query in ["platform=windows&build=1.x", "platform=windows", "platform=windows&build=",
                      "platform=amiga&build=1.0", "platform=windows&channel=alpha&build=1.0"]:
            code, body, _ = await self.check(query)
            self.assertEqual((code, body["error"]["code"]), (400, "request.invalid"), query)
        # Not UTF-8: refused by the router before the role sees it.
        code, body, _ = await self.check("platform=windows&build=%ff")
        self.assertEqual((code, body["error"]["code"]), (400, "request.invalid_text"))
        code, body, _ = await self.check("platform=mac&build=1.0")
        self.assertEqual((code, body["error"]["code"]), (404, "version.no_release"))
        code, body, _ = await self.check("platform=linux&channel=ptr&build=1.0")
        self.assertEqual(code, 404)

    @coro
    async def test_needs_a_valid_token(self):
        """A missing, malformed, forged or revoked token is a 401 auth.invalid_token with WWW-Authenticate."""
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
        """Under a 50 % rollout accounts get either target, each always the same one."""
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
        """During maintenance the check is a 503 with its message and Retry-After; operators get through."""
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
        """A maintenance window to come is announced in an ok answer."""
        now = reactor.seconds()
        releases = writeReleaseDir(self.mktemp(), maintenance=maintenanceTOML(now + 3600, now + 7200))
        await self.startRole(releases)
        code, body, _ = await self.check("platform=windows&build=1.10.0")
        self.assertEqual((code, body["status"]), (200, "ok"))
        self.assertEqual(body["maintenance"]["start"], now + 3600)

    @coro
    async def test_metrics(self):
        """Checks are counted by outcome and platform, client builds by channel (unknown builds as other)."""
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
        """/openapi.json documents the check (token, query parameters, errors) and the manifests, not the catch-all."""
        await self.startRole()
        response, body = await self.get("/openapi.json")
        doc = json.loads(body)
        self.assertIn("/v1/version", doc["paths"])
        self.assertIn("/v1/manifests/{platform}/{build}", doc["paths"])
        self.assertNotIn("/v1/manifests/{rest}", doc["paths"])
        check = doc["paths"]["/v1/version"]["get"]
        self.assertEqual(check["security"], [{"bearer": []}])
        self.assertEqual([p["name"] for p in check["parameters"]], ["platform", "channel", "build"])
        self.assertIn("`auth.invalid_token`", check["responses"]["401"]["description"])
        self.assertIn("maintenance", check["responses"]["503"]["description"])
        self.assertIn("304", doc["paths"]["/v1/manifests/{platform}/{build}"]["get"]["responses"])
        _, body, _ = await self.check("platform=windows&build=1.9.0")
        documented = check["responses"]["200"]["content"]["application/json"]["schema"]
        self.assertEqual(set(body), set(documented["properties"]))


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
        """With the revocation mirror loaded the check is rendered at once, success and refusal alike."""
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
        """A verifier that must ask the store is waited for: answer, refusal, or nothing for a client gone."""
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
        self.patch(webjson, "requestDisconnected", lambda r: r is gone)
        pending[2].callback(claims)
        self.assertEqual((request.written, request.finished), ([], 0))

    @coro
    async def test_spec_through_the_site(self):
        """Through the site with the verifier running: regions, updates, bad builds, stable rollout, revocation."""
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
        """HEAD answers as GET without a body, with GET's Content-Length, and refusals too."""
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
        """A window opening and closing changes answers already cached, with the right Retry-After."""
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
        """Other spellings of a known build answer as it, echoed back, without growing caches or metric labels."""
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
        """A crash in the verifier or after it is a logged JSON 500 internal."""
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


    @coro
    async def test_verifier_unavailable_is_the_shared_503(self):
        """A token check the volatile store cannot answer is the 503 service.unavailable every role answers, with its retry_after."""
        await self.startRole(startVerifier=True)
        from twisted.internet.defer import fail

        from mmoshard.store.errors import VolatileUnavailable
        from mmoshard.web.errors import UNAVAILABLE_RETRY_AFTER

        self.patch(self.verifier, "verify", lambda token: fail(VolatileUnavailable("down")))
        code, body, response = await self.check("platform=windows&build=1.10.0")
        self.assertEqual((code, body["error"]["code"], body["error"]["retry_after"]),
                         (503, "service.unavailable", UNAVAILABLE_RETRY_AFTER))
        self.assertEqual(response.headers.getRawHeaders("retry-after"),
                         [str(UNAVAILABLE_RETRY_AFTER)])


class ManifestTests(VersionRoleFixture, TestCase):
    @coro
    async def test_signed_and_cacheable(self):
        """A manifest is the signed envelope with a strong ETag and the configured Cache-Control, the same bytes again."""
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
        """If-None-Match naming the ETag (in a list, weak or *) is a 304 with the ETag; another is a 200."""
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
        """Unknown builds, platforms and paths under /v1/manifests are 404 version.no_release."""
        await self.startRole()
        for path in ["windows/9.9.9", "windows/bad", "amiga/1.0", "windows", "windows/1.10.0/x"]:
            response, body = await self.get("/v1/manifests/" + path)
            self.assertEqual(response.code, 404, path)
            self.assertEqual(json.loads(body)["error"]["code"], "version.no_release")
