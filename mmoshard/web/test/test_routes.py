"""The router: dispatch of @route handlers of every kind, path parameters, typed errors, the OpenAPI it implies."""

import json
from io import BytesIO

from twisted.internet.defer import Deferred, fail, succeed
from twisted.trial.unittest import TestCase
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest

from mmoshard.store.errors import SQLUnavailable, VolatileUnavailable
from mmoshard.web.errors import UNAVAILABLE_RETRY_AFTER, ErrorCodes
from mmoshard.web.json import HTTPError
from mmoshard.web.routes import Router, mountRouter, openapiDocument, route, routesOf
from mmoshard.web.schema import Prop
from mmoshard.web.site import SiteRoot

ERRORS = ErrorCodes({"thing.missing": (404, "no such thing"),
                     "request.unsupported_media_type": (415, "send JSON")})


class _API:
    """Handlers of each kind, open and behind a token."""

    def __init__(self):
        self.pending = None  # a Deferred authenticate hands out, when set

    def authenticate(self, request):
        if request.getHeader(b"authorization") != b"Bearer good":
            raise ERRORS.error("auth.invalid_token")
        if self.pending is not None:
            return self.pending
        return "claims"

    @route("GET", "/auth/plain", "plain, token", status=200)
    @route("GET", "/open/plain", "plain, open", auth=False)
    def plain(self, call):
        return 200, {"kind": "plain", "claims": call.claims}

    @route("GET", "/auth/coroutine", "coroutine, token")
    @route("GET", "/open/coroutine", "coroutine, open", auth=False)
    async def coroutine(self, call):
        return 200, {"kind": "coroutine", "claims": call.claims}

    @route("GET", "/auth/deferred", "Deferred, token")
    @route("GET", "/open/deferred", "Deferred, open", auth=False)
    def deferred(self, call):
        return succeed((200, {"kind": "deferred", "claims": call.claims}))

    @route("GET", "/things/{id}", "an integer parameter", auth=False, errors=("thing.missing",))
    def thing(self, call):
        if call.params["id"] != 7:
            raise ERRORS.error("thing.missing")
        return 200, {"id": call.params["id"]}, {"X-Thing": b"seven"}

    @route("GET", "/files/{name:str}", "a string parameter", auth=False, cache=b"public")
    def file(self, call):
        return 200, {"name": call.params["name"]}

    @route("GET", "/files/{rest:path}", "anything else", auth=False, documented=False)
    def elsewhere(self, call):
        return 200, {"rest": call.params["rest"]}

    @route("POST", "/things", "a checked body", auth=False, jsonOnly=True, status=201,
           body={"name": Prop("string", maxLength=5)})
    async def create(self, call):
        return 201, {"created": call.body["name"]}

    @route("GET", "/broken", "a bug", auth=False)
    def broken(self, call):
        raise ZeroDivisionError("a bug")

    @route("GET", "/down", "a store that does not answer", auth=False)
    def down(self, call):
        return fail(SQLUnavailable("gone"))

    @route("GET", "/down/volatile", "the volatile store not answering", auth=False)
    async def volatileDown(self, call):
        raise VolatileUnavailable("no answer within 1.0s")

    def notARoute(self, call):
        """Undecorated: never served."""


def _request(path, method=b"GET", token=None, body=None, contentType=b"application/json"):
    request = DummyRequest(path.strip("/").encode().split(b"/"))
    request.method = method
    request.channel = None
    if token is not None:
        request.requestHeaders.setRawHeaders(b"authorization", [b"Bearer " + token])
    if body is not None:
        request.content = BytesIO(body)
        request.requestHeaders.setRawHeaders(b"content-type", [contentType])
    return request


def _render(router, request):
    """@return: (status, parsed body or None, the request) once answered."""
    result = router.render(request)
    raw = result if result is not NOT_DONE_YET else b"".join(request.written)
    return request.responseCode or 200, json.loads(raw) if raw else None, request


class DispatchTests(TestCase):
    def setUp(self):
        self.api = _API()
        self.router = Router(self.api, ERRORS, maxBody=64)

    def test_every_handler_kind(self):
        """Plain, coroutine and Deferred handlers answer alike, authenticated or not."""
        for kind in ("plain", "coroutine", "deferred"):
            for auth in ("auth", "open"):
                code, body, _ = _render(self.router, _request(f"/{auth}/{kind}", token=b"good"))
                self.assertEqual((code, body), (200, {"kind": kind, "claims": "claims"
                                                      if auth == "auth" else None}), (auth, kind))

    def test_ready_answers_returned_from_render(self):
        """An answer ready at once is returned from render, as bytes, with its headers."""
        request = _request("/things/7")
        body = self.router.render(request)
        self.assertEqual(json.loads(body), {"id": 7})
        headers = request.responseHeaders
        self.assertEqual(headers.getRawHeaders(b"content-type"), [b"application/json"])
        self.assertEqual(headers.getRawHeaders(b"cache-control"), [b"no-store"])
        self.assertEqual(headers.getRawHeaders(b"x-thing"), [b"seven"])

    def test_head(self):
        """HEAD is answered by the GET route: no body, the GET body's length."""
        request = _request("/things/7", method=b"HEAD")
        self.assertEqual(self.router.render(request), b"")
        self.assertEqual(request.responseHeaders.getRawHeaders(b"content-length"),
                         [b"%d" % len(b'{"id":7}')])

    def test_authentication(self):
        """A refused token is the typed 401; claims that come later still reach the handler."""
        code, body, _ = _render(self.router, _request("/auth/plain"))
        self.assertEqual((code, body["error"]["code"]), (401, "auth.invalid_token"))
        self.api.pending = Deferred()
        request = _request("/auth/coroutine", token=b"good")
        self.assertIs(self.router.render(request), NOT_DONE_YET)
        self.assertEqual(request.written, [])
        self.api.pending.callback("later claims")
        self.assertEqual(json.loads(b"".join(request.written))["claims"], "later claims")
        self.api.pending = Deferred()
        request = _request("/auth/plain", token=b"good")
        self.router.render(request)
        self.api.pending.errback(ERRORS.error("auth.invalid_token", "revoked"))
        self.assertEqual(request.responseCode, 401)

    def test_path_parameters(self):
        """{id} takes digits only, {name:str} one segment, {name:path} the rest."""
        self.assertEqual(_render(self.router, _request("/things/7"))[:2], (200, {"id": 7}))
        code, body, _ = _render(self.router, _request("/things/8"))
        self.assertEqual((code, body["error"]["code"]), (404, "thing.missing"))
        code, body, _ = _render(self.router, _request("/things/x7"))
        self.assertEqual((code, body["error"]["code"]), (404, "request.not_found"))
        code, body, request = _render(self.router, _request("/files/a.txt"))
        self.assertEqual((code, body), (200, {"name": "a.txt"}))
        self.assertEqual(request.responseHeaders.getRawHeaders(b"cache-control"), [b"public"])
        self.assertEqual(_render(self.router, _request("/files/a/b/c"))[1], {"rest": "a/b/c"})

    def test_not_found_and_method_not_allowed(self):
        """An unknown path is a typed 404; a known one with another method a 405 with Allow."""
        code, body, _ = _render(self.router, _request("/nowhere"))
        self.assertEqual((code, body["error"]["code"]), (404, "request.not_found"))
        code, body, request = _render(self.router, _request("/things", method=b"GET"))
        self.assertEqual((code, body["error"]["code"]), (405, "request.method_not_allowed"))
        self.assertEqual(request.responseHeaders.getRawHeaders(b"allow"), [b"POST"])

    def test_body(self):
        """A body is checked against its schema, its size and its content type."""
        code, body, _ = _render(self.router, _request("/things", b"POST", body=b'{"name":"a"}'))
        self.assertEqual((code, body), (201, {"created": "a"}))
        for raw, kind, status, error in [
            (b'{"name":"abcdef"}', b"application/json", 400, "request.invalid"),
            (b'{"name"', b"application/json", 400, "request.malformed_json"),
            (b'{"name":"' + b"x" * 100 + b'"}', b"application/json", 413, "request.too_large"),
            (b'{"name":"a"}', b"text/plain", 415, "request.unsupported_media_type"),
        ]:
            code, body, _ = _render(self.router, _request("/things", b"POST", body=raw,
                                                          contentType=kind))
            self.assertEqual((code, body["error"]["code"]), (status, error), raw)

    def test_text_checked_at_the_edge(self):
        """
        A header, path segment or query parameter that is not UTF-8 is a 400
        request.invalid_text before any handler or authenticate reads it
        (on main an Authorization or User-Agent header of \\xff bytes was a
        500 internal); UTF-8 beyond ASCII passes.
        """
        cases = []
        request = _request("/auth/plain")
        request.requestHeaders.setRawHeaders(b"authorization", [b"Bearer \xff\xfe"])
        cases.append(request)
        request = _request("/open/plain")
        request.requestHeaders.setRawHeaders(b"user-agent", [b"agent \xed\xa0\x80"])
        cases.append(request)
        request = _request("/files/a")
        request.postpath = [b"files", b"\xff"]
        request.uri = b"/files/%ff"
        cases.append(request)
        request = _request("/open/plain")
        request.args = {b"q": [b"\xc3"]}
        request.uri = b"/open/plain?q=%c3"
        cases.append(request)
        for request in cases:
            code, body, _ = _render(self.router, request)
            self.assertEqual((code, body["error"]["code"]), (400, "request.invalid_text"),
                             request.requestHeaders)
        request = _request("/files/a")
        request.postpath = [b"files", "é".encode()]
        request.uri = b"/files/%c3%a9"
        request.requestHeaders.setRawHeaders(b"user-agent", ["agent é".encode()])
        self.assertEqual(_render(self.router, request)[:2], (200, {"name": "é"}))

    def test_integers_within_64_bits(self):
        """An integer field without bounds of its own takes the signed 64-bit range a column holds, and says so."""
        prop = Prop("integer")
        self.assertIsNone(prop.check(2 ** 63 - 1))
        self.assertIsNone(prop.check(-(2 ** 63)))
        self.assertEqual(prop.check(2 ** 64 - 1), f"must be at most {2 ** 63 - 1}")
        self.assertEqual(prop.check(-(2 ** 63) - 1), f"must be at least {-(2 ** 63)}")
        self.assertEqual(Prop("integer", minimum=1).check(0), "must be at least 1")
        self.assertEqual(prop.openapi(), {"type": "integer", "minimum": -(2 ** 63),
                                          "maximum": 2 ** 63 - 1})
        self.assertEqual(Prop("number").openapi(), {"type": "number"})

    def test_failures(self):
        """
        A bug is a logged 500 internal; the SQL or the volatile store not
        answering the one 503 service.unavailable, with Retry-After and retry_after.
        """
        code, body, _ = _render(self.router, _request("/broken"))
        self.assertEqual((code, body["error"]["code"]), (500, "internal"))
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        for path in ("/down", "/down/volatile"):
            code, body, request = _render(self.router, _request(path))
            self.assertEqual((code, body["error"]["code"], body["error"]["retry_after"]),
                             (503, "service.unavailable", UNAVAILABLE_RETRY_AFTER), path)
            self.assertEqual(request.responseHeaders.getRawHeaders(b"retry-after"),
                             [str(UNAVAILABLE_RETRY_AFTER).encode()])

    def test_methods_a_route_may_take(self):
        """@route takes GET, HEAD, OPTIONS, POST, PUT, PATCH and DELETE only (the admin guard checks the origin of the last four)."""
        self.assertRaises(ValueError, route, "PROPFIND", "/x", "x")
        self.assertRaises(ValueError, route, "get", "/x", "x")
        route("PATCH", "/x", "x")

    def test_undeclared_codes_refused(self):
        """A route that may answer a code its role's table lacks is refused at start."""

        class Lax:
            @route("GET", "/x", "x", auth=False, errors=("no.such_code",))
            def x(self, call):
                return 200, {}

        self.assertRaises(ValueError, Router, Lax(), ERRORS)

    def test_routes_bound_in_order(self):
        """Only decorated methods are routes, bound to the object, in declaration order."""
        routes = routesOf(self.api)
        self.assertNotIn("notARoute", {r.name for r in routes})
        self.assertEqual(routes[0].path, "/open/plain")
        self.assertIs(routes[0].handler.__self__, self.api)


class MountTests(TestCase):
    def test_mounted_at_prefixes(self):
        """A router is mounted once per distinct prefix of its routes."""
        site = SiteRoot()
        router = Router(_API(), ERRORS)
        mountRouter(site, router)
        self.assertEqual(set(site.root.children),
                         {b"auth", b"open", b"things", b"files", b"broken", b"down"})
        self.assertTrue(all(c is router for c in site.root.children.values()))
        self.assertRaises(ValueError, router.prefixes, 2)


class OpenAPITests(TestCase):
    def test_document(self):
        """The document lists each documented route with its parameters, body and errors."""
        doc = openapiDocument(routesOf(_API()), "test", "1", ERRORS)
        self.assertNotIn("/files/{rest}", doc["paths"])
        thing = doc["paths"]["/things/{id}"]["get"]
        self.assertEqual(thing["parameters"][0]["schema"],
                         {"type": "integer", "minimum": 0, "maximum": 10**18 - 1})
        self.assertIn("`thing.missing`", thing["responses"]["404"]["description"])
        self.assertNotIn("security", thing)
        self.assertEqual(doc["paths"]["/auth/plain"]["get"]["security"], [{"bearer": []}])
        create = doc["paths"]["/things"]["post"]
        self.assertIn("201", create["responses"])
        self.assertIn("415", create["responses"])
        self.assertEqual(set(create["requestBody"]["content"]["application/json"]["schema"]
                             ["properties"]), {"name"})
        self.assertEqual(doc["paths"]["/files/{name}"]["get"]["parameters"][0]["schema"],
                         {"type": "string", "minLength": 1})
        codes = doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]
        self.assertEqual(set(codes["code"]["enum"]), set(ERRORS.codes))

    def test_merged_site_document(self):
        """/openapi.json merges every role's document, its error codes the union of theirs."""
        site = SiteRoot()
        site.addOpenAPI(lambda: openapiDocument(routesOf(_API()), "a", "1", ERRORS))
        other = ErrorCodes({"other.code": (409, "another role's")})
        site.addOpenAPI(lambda: openapiDocument((), "b", "1", other))
        code, doc, _ = _render(site.root.children[b"openapi.json"], _request("/openapi.json"))
        self.assertEqual(code, 200)
        self.assertIn("/openapi.json", doc["paths"])
        self.assertIn("/things/{id}", doc["paths"])
        enum = doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]
        self.assertEqual(set(enum["code"]["enum"]), set(ERRORS.codes) | {"other.code"})


class ErrorShapeTests(TestCase):
    def test_error_body(self):
        """
        An error is {"error": {"code", "message", "fields"?, "retry_after"?}} with
        its code's status; retry_after says what its Retry-After header says.
        """
        e = ERRORS.error("request.invalid", fields={"a": "bad"}, headers={"Retry-After": 3})
        self.assertIsInstance(e, HTTPError)
        self.assertEqual((e.status, e.headers), (400, {"Retry-After": 3}))
        self.assertEqual(e.body(), {"error": {"code": "request.invalid",
                                              "message": ERRORS.meaning("request.invalid"),
                                              "fields": {"a": "bad"}, "retry_after": 3}})
        self.assertEqual(ERRORS.error("thing.missing", "gone").body(),
                         {"error": {"code": "thing.missing", "message": "gone"}})


class SiteRootTests(TestCase):
    def test_provides(self):
        """SiteRoot provides both IWebSite and IAdminSite, as the core registers it."""
        from zope.interface.verify import verifyObject

        from mmoshard.interfaces import IAdminSite, IWebSite

        site = SiteRoot()
        self.assertTrue(verifyObject(IWebSite, site))
        self.assertTrue(verifyObject(IAdminSite, site))

    def test_mount_shares_folders(self):
        """Two routers under /v1 share its folder, which answers others with a typed 404."""
        site = SiteRoot()
        first, second = Router(_API(), ERRORS), Router(_API(), ERRORS)
        site.mount((b"v1", b"a"), first)
        site.mount((b"v1", b"b"), second)
        folder = site.root.children[b"v1"]
        self.assertEqual((folder.children[b"a"], folder.children[b"b"]), (first, second))
        request = _request("/v1/c")
        folder.getChild(b"c", request).render(request)
        self.assertEqual(json.loads(b"".join(request.written))["error"]["code"],
                         "request.not_found")

    def test_folder_itself_any_method(self):
        """The folder itself (/v1) answers a typed JSON 404 to any method, not Twisted's HTML 405 or 501 (as on main)."""
        site = SiteRoot()
        site.mount((b"v1", b"a"), Router(_API(), ERRORS))
        for method in (b"GET", b"POST", b"TRACE", b"PROPFIND"):
            request = _request("/v1", method=method)
            site.root.children[b"v1"].render(request)
            self.assertEqual(request.responseCode, 404, method)
            self.assertEqual(json.loads(b"".join(request.written))["error"]["code"],
                             "request.not_found")


class CoreAdminTests(TestCase):
    def test_metrics_not_json(self):
        """/metrics is Prometheus text with its own content type, through the same router."""
        from types import SimpleNamespace

        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter

        from mmoshard.web.admin import CORE_ADMIN_ERRORS, CoreAdminAPI

        registry = CollectorRegistry()
        Counter("mmoshard_test_things", "things", registry=registry).inc()
        api = CoreAdminAPI(SimpleNamespace(metrics=registry), None, None, None)
        request = _request("/metrics")
        body = Router(api, CORE_ADMIN_ERRORS).render(request)
        self.assertIn(b"mmoshard_test_things_total 1.0", body)
        self.assertEqual(request.responseHeaders.getRawHeaders(b"content-type"),
                         [CONTENT_TYPE_LATEST.encode()])
