"""CORS on the public site: configured origins may read answers and pass preflights; same-origin only by default."""

import json

from treq.testing import StubTreq
from twisted.trial.unittest import TestCase

from mmoshard.config import parseConfig
from mmoshard.web.cors import CORSPolicy, CORSRoot, makePublicRoot
from mmoshard.web.errors import ErrorCodes
from mmoshard.web.json import JSONRoot
from mmoshard.web.routes import Router, mountRouter, route
from mmoshard.web.schema import Prop
from mmoshard.web.site import SiteRoot

GAME = "https://game.example"


class _API:
    """A role's public routes: one read, one write behind a token."""

    def authenticate(self, request):
        if request.getHeader(b"authorization") != b"Bearer good":
            raise ErrorCodes({}).error("auth.invalid_token", headers={"WWW-Authenticate": "Bearer"})
        return "claims"

    @route("GET", "/v1/things", "read", auth=False)
    def things(self, call):
        return 200, {"things": []}

    @route("POST", "/v1/things", "write", body={"name": Prop("string")}, status=201)
    def add(self, call):
        return 201, {"name": call.body["name"]}


def site(root):
    """@return: a StubTreq over a public site whose root is C{root}, with L{_API} mounted."""
    public = SiteRoot(root)
    mountRouter(public, Router(_API()), depth=2)
    return StubTreq(public.root)


class CORSTests(TestCase):
    def request(self, http, method, path, headers, body=None):
        """@return: (status, headers, parsed body or None)."""
        response = self.successResultOf(http.request(
            method, f"http://api.example{path}", headers=headers, data=body))
        content = self.successResultOf(http.content(response))
        return response.code, response.headers, json.loads(content) if content else None

    def test_default_is_same_origin_only(self):
        """
        With no [web] cors_origins a page from another origin gets no CORS
        header (its browser keeps the answer from it) and its preflight
        reaches no route that would allow it; the API still answers clients
        that are not browsers.
        """
        config = parseConfig({}, [], env={})
        root = makePublicRoot(config.web)
        self.assertIs(type(root), JSONRoot)
        http = site(root)
        status, headers, body = self.request(http, "GET", "/v1/things", {"Origin": GAME})
        self.assertEqual((status, body), (200, {"things": []}))
        self.assertFalse(headers.hasHeader("access-control-allow-origin"))
        status, headers, _ = self.request(http, "OPTIONS", "/v1/things", {
            "Origin": GAME, "Access-Control-Request-Method": "POST"})
        self.assertEqual(status, 405)
        self.assertFalse(headers.hasHeader("access-control-allow-origin"))

    def test_allowed_origin(self):
        """
        A configured origin's page may read answers (its own origin echoed,
        Vary: Origin, Retry-After and friends exposed), errors included, and
        its preflight for a JSON POST with a bearer token is answered 204
        with what is allowed and how long to keep it; the POST then works.
        """
        config = parseConfig({"web": {"cors_origins": [GAME], "cors_max_age": 300}}, [], env={})
        http = site(makePublicRoot(config.web))
        status, headers, body = self.request(http, "GET", "/v1/things", {"Origin": GAME})
        self.assertEqual(status, 200)
        self.assertEqual(headers.getRawHeaders("access-control-allow-origin"), [GAME])
        self.assertIn("Origin", headers.getRawHeaders("vary"))
        self.assertIn("Retry-After", headers.getRawHeaders("access-control-expose-headers")[0])
        status, headers, _ = self.request(http, "OPTIONS", "/v1/things", {
            "Origin": GAME, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        self.assertEqual(status, 204)
        self.assertEqual(headers.getRawHeaders("access-control-allow-origin"), [GAME])
        self.assertIn("POST", headers.getRawHeaders("access-control-allow-methods")[0])
        allowedHeaders = headers.getRawHeaders("access-control-allow-headers")[0]
        self.assertIn("authorization", allowedHeaders)
        self.assertIn("content-type", allowedHeaders)
        self.assertEqual(headers.getRawHeaders("access-control-max-age"), ["300"])
        self.assertFalse(headers.hasHeader("access-control-allow-credentials"))
        status, headers, body = self.request(
            http, "POST", "/v1/things",
            {"Origin": GAME, "Authorization": "Bearer good", "Content-Type": "application/json"},
            json.dumps({"name": "x"}).encode())
        self.assertEqual((status, body), (201, {"name": "x"}))
        self.assertEqual(headers.getRawHeaders("access-control-allow-origin"), [GAME])
        status, headers, body = self.request(http, "POST", "/v1/things", {"Origin": GAME},
                                             b"{}")
        self.assertEqual((status, body["error"]["code"]), (401, "auth.invalid_token"))
        self.assertEqual(headers.getRawHeaders("access-control-allow-origin"), [GAME])

    def test_other_origins_refused(self):
        """
        Another origin's page gets no CORS header; its preflight, and a
        preflight asking for a method or header the API does not take, get
        a typed 403 request.forbidden_origin saying why.
        """
        http = site(CORSRoot(CORSPolicy([GAME])))
        status, headers, _ = self.request(http, "GET", "/v1/things",
                                          {"Origin": "https://evil.example"})
        self.assertEqual(status, 200)
        self.assertFalse(headers.hasHeader("access-control-allow-origin"))
        for origin, method, asked, why in [
            ("https://evil.example", "POST", "content-type", "cors_origins"),
            (GAME + ":8443", "POST", "content-type", "cors_origins"),
            (GAME, "TRACE", "", "TRACE"),
            (GAME, "POST", "content-type, x-secret", "x-secret"),
        ]:
            status, headers, body = self.request(http, "OPTIONS", "/v1/things", {
                "Origin": origin, "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": asked})
            self.assertEqual((status, body["error"]["code"]), (403, "request.forbidden_origin"),
                             origin)
            self.assertIn(why, body["error"]["message"])

    def test_any_origin(self):
        """With "*" every origin may read answers (no credentials: the API takes bearer tokens)."""
        http = site(CORSRoot(CORSPolicy(["*"])))
        status, headers, _ = self.request(http, "GET", "/v1/things",
                                          {"Origin": "https://anyone.example"})
        self.assertEqual(headers.getRawHeaders("access-control-allow-origin"), ["*"])
        status, headers, _ = self.request(http, "OPTIONS", "/v1/things", {
            "Origin": "https://anyone.example", "Access-Control-Request-Method": "DELETE"})
        self.assertEqual(status, 204)
