"""The admin site's guard, in memory: Host names the admin address on every request; state-changing ones from no other origin, with JSON; typed errors, logged and documented."""

import json

from treq.testing import StubTreq
from twisted.internet.address import IPv4Address, UNIXAddress
from twisted.logger import Logger
from twisted.trial.unittest import TestCase
from twisted.web.test.requesthelper import DummyRequest
from zope.interface.verify import verifyObject

from mmoshard.interfaces import IAdminSite
from mmoshard.web.errors import ADMIN_SITE, ErrorCodes
from mmoshard.web.guard import AdminGuard
from mmoshard.web.routes import Router, mountRouter, route
from mmoshard.web.site import AdminSite

PORT = 9100
HERE = f"127.0.0.1:{PORT}"
ERRORS = ErrorCodes({})


class _AdminAPI:
    """An admin role's routes, counting the calls that reach them."""

    def __init__(self):
        self.calls = []

    @route("GET", "/thing/{id}", "read", auth=False)
    def read(self, call):
        self.calls.append(("GET", call.params["id"]))
        return 200, {"id": call.params["id"]}

    @route("POST", "/thing/{id}/ban", "change", auth=False, body={})
    def ban(self, call):
        self.calls.append(("POST", call.params["id"]))
        return 200, {"banned": call.params["id"]}

    @route("DELETE", "/thing/{id}", "remove, no body", auth=False)
    def remove(self, call):
        self.calls.append(("DELETE", call.params["id"]))
        return 200, {"removed": call.params["id"]}


class GuardedSiteTests(TestCase):
    """Requests through an L{AdminSite} with a role's router mounted, in memory."""

    def setUp(self):
        self.site = AdminSite()
        self.api = _AdminAPI()
        mountRouter(self.site, Router(self.api, ERRORS))
        self.events = []
        self.site.root.log = Logger(observer=self.events.append)
        self.http = StubTreq(self.site.root)

    def request(self, method, path, headers, body=None):
        """@return: (status, parsed body) of one request to the admin port with C{headers}."""
        response = self.successResultOf(self.http.request(
            method, f"http://{HERE}{path}", headers=headers, data=body))
        content = self.successResultOf(self.http.content(response))
        return response.code, json.loads(content) if content else None

    def code(self, method, path, headers, body=None):
        """@return: (status, error code or None) of one request."""
        status, body = self.request(method, path, headers, body)
        return status, (body or {}).get("error", {}).get("code")

    def test_provides(self):
        """The admin site is an IAdminSite."""
        self.assertTrue(verifyObject(IAdminSite, self.site))

    def test_reads_need_the_admin_host(self):
        """A GET or HEAD whose Host is not the admin address is refused (DNS rebinding); the admin names pass."""
        for host in (HERE, f"localhost:{PORT}", f"LocalHost:{PORT}", f"[::1]:{PORT}"):
            self.assertEqual(self.code("GET", "/thing/1", {"Host": host}), (200, None), host)
        for host in (f"evil.example:{PORT}", f"127.0.0.1:{PORT + 1}", "127.0.0.1",
                     f"127.0.0.1.nip.io:{PORT}", f"localhost.:{PORT}", "127.0.0.1:",
                     f"[::1]x:{PORT}", "[::1]:abc", f"127.0.0.1:{PORT}0"):
            self.assertEqual(self.code("GET", "/thing/1", {"Host": host}),
                             (403, "request.bad_host"), host)
        self.assertEqual(self.code("HEAD", "/thing/1", {"Host": f"evil.example:{PORT}"})[0], 403)
        self.assertEqual(self.code("GET", "/nowhere", {"Host": f"evil.example:{PORT}"}),
                         (403, "request.bad_host"))
        self.assertEqual(self.api.calls, [("GET", 1)] * 4)

    def test_state_changes_from_the_site_itself(self):
        """A POST or DELETE from the admin site's own pages or a client with no Origin (curl) passes, with JSON."""
        json_ = {"Content-Type": "application/json"}
        passing = [
            {"Origin": f"http://{HERE}", "Sec-Fetch-Site": "same-origin"},
            {"Host": f"localhost:{PORT}", "Origin": f"http://localhost:{PORT}"},
            {"Sec-Fetch-Site": "none"},
            {},
            {"Content-Type": "Application/JSON; charset=utf-8"},
        ]
        for extra in passing:
            headers = {"Host": HERE, **json_, **extra}
            self.assertEqual(self.code("POST", "/thing/2/ban", headers, b"{}"), (200, None),
                             extra)
        self.assertEqual(self.code("DELETE", "/thing/3", {"Host": HERE, **json_}), (200, None))
        self.assertEqual(self.api.calls, [("POST", 2)] * len(passing) + [("DELETE", 3)])

    def test_methods_no_route_takes_reach_the_router(self):
        """
        A method no route takes at the path (PUT on a GET path, TRACE) from
        anywhere changes nothing: the router answers its typed 405 (or 404),
        not the guard's 415 (schemathesis found that on every admin path);
        a method a route takes is still guarded, and Host always is.
        """
        for method in ("PUT", "PATCH", "TRACE", "PROPFIND"):
            self.assertEqual(self.code(method, "/thing/1", {"Host": HERE}),
                             (405, "request.method_not_allowed"), method)
            self.assertEqual(self.code(method, "/thing/1", {"Host": HERE,
                                                            "Origin": "http://evil.example"}),
                             (405, "request.method_not_allowed"), method)
        self.assertEqual(self.code("POST", "/nowhere", {"Host": HERE}),
                         (404, "request.not_found"))
        self.assertEqual(self.code("DELETE", "/thing/1", {"Host": HERE}),
                         (415, "request.unsupported_media_type"))
        self.assertEqual(self.code("PUT", "/thing/1", {"Host": f"evil.example:{PORT}"}),
                         (403, "request.bad_host"))
        self.assertEqual(self.api.calls, [])

    def test_state_changes_from_other_pages_refused(self):
        """
        A state-changing request with a foreign Origin or Sec-Fetch-Site is
        a 403 request.forbidden_origin, one without a JSON body a 415, all
        before the route runs, whichever the method.
        """
        cases = [
            ({"Origin": "http://evil.example"}, "request.forbidden_origin"),
            ({"Origin": "null"}, "request.forbidden_origin"),
            ({"Origin": f"http://127.0.0.1:{PORT + 1}"}, "request.forbidden_origin"),
            ({"Origin": f"https://{HERE}"}, "request.forbidden_origin"),
            ({"Origin": f"http://localhost:{PORT}"}, "request.forbidden_origin"),
            ({"Origin": [f"http://{HERE}", "http://evil.example"]}, "request.forbidden_origin"),
            ({"Sec-Fetch-Site": "cross-site"}, "request.forbidden_origin"),
            ({"Sec-Fetch-Site": "same-site"}, "request.forbidden_origin"),
            ({"Origin": f"http://{HERE}", "Sec-Fetch-Site": "cross-site"},
             "request.forbidden_origin"),
        ]
        for extra, code in cases:
            headers = {"Host": HERE, "Content-Type": "application/json", **extra}
            for method, path in (("POST", "/thing/1/ban"), ("DELETE", "/thing/1")):
                self.assertEqual(self.code(method, path, headers, b"{}"), (403, code),
                                 (method, extra))
        # (multipart/form-data: GuardTests; the in-memory site parses forms.)
        for kind in ("text/plain", "application/x-www-form-urlencoded", "application/jsonp",
                     None):
            headers = {"Host": HERE, **({"Content-Type": kind} if kind else {})}
            for method, path in (("POST", "/thing/1/ban"), ("DELETE", "/thing/1")):
                self.assertEqual(self.code(method, path, headers, b"{}"),
                                 (415, "request.unsupported_media_type"), (method, kind))
        # A foreign Host is refused first, whatever else the request says.
        self.assertEqual(self.code("POST", "/thing/1/ban",
                                   {"Host": f"evil.example:{PORT}", "Content-Type": "text/plain",
                                    "Origin": "http://evil.example"}, b"{}"),
                         (403, "request.bad_host"))
        self.assertEqual(self.api.calls, [])

    def test_error_shape_and_log(self):
        """A refusal is the shared JSON error shape, no-store, and one logged event naming the request."""
        status, body = self.request("POST", "/thing/1/ban",
                                    {"Host": HERE, "Origin": "http://evil.example",
                                     "Content-Type": "text/plain"}, b"{}")
        self.assertEqual((status, body), (403, {"error": {
            "code": "request.forbidden_origin",
            "message": ADMIN_SITE["request.forbidden_origin"][1]}}))
        response = self.successResultOf(self.http.get(f"http://{HERE}/thing/1",
                                                      headers={"Host": "evil.example"}))
        self.assertEqual(response.headers.getRawHeaders(b"content-type"), [b"application/json"])
        self.assertEqual(response.headers.getRawHeaders(b"cache-control"), [b"no-store"])
        self.assertEqual([(e["code"], e["method"], e["path"], e["host"], e["origin"])
                          for e in self.events],
                         [("request.forbidden_origin", "POST", "/thing/1/ban", HERE,
                           "http://evil.example"),
                          ("request.bad_host", "GET", "/thing/1", "evil.example", "-")])

    def test_roles_mounting_later_are_guarded(self):
        """A resource a role puts on the site after it was made is behind the guard too."""
        self.site.putChild(b"late", Router(_AdminAPI(), ERRORS))
        self.assertEqual(self.code("GET", "/late", {"Host": f"evil.example:{PORT}"}),
                         (403, "request.bad_host"))

    def test_openapi_documents_the_guard(self):
        """The admin /openapi.json lists every mounted route with what the guard answers for its method."""
        status, doc = self.request("GET", "/openapi.json", {"Host": HERE})
        self.assertEqual(status, 200)
        self.assertEqual(set(doc["paths"]), {"/openapi.json", "/thing/{id}", "/thing/{id}/ban"})
        ban = doc["paths"]["/thing/{id}/ban"]["post"]["responses"]
        self.assertIn("`request.bad_host`", ban["403"]["description"])
        self.assertIn("`request.forbidden_origin`", ban["403"]["description"])
        self.assertIn("`request.unsupported_media_type`", ban["415"]["description"])
        self.assertIn("415", doc["paths"]["/thing/{id}"]["delete"]["responses"])
        read = doc["paths"]["/thing/{id}"]["get"]["responses"]
        self.assertEqual(read["403"]["description"].count("`request."), 1)
        self.assertNotIn("415", read)
        enum = doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]
        self.assertTrue(set(ADMIN_SITE) <= set(enum["code"]["enum"]))


class GuardTests(TestCase):
    """L{AdminGuard} on requests made by hand."""

    def test_unix_socket_has_no_host_check(self):
        """On a UNIX socket (local processes only, never a browser) Host is not checked; Origin and JSON still are."""
        guard = AdminGuard()
        request = DummyRequest([b"thing"])
        request.getHost = lambda: UNIXAddress(b"/run/mmoshard-admin.sock")
        request.requestHeaders.setRawHeaders(b"host", [b"anything"])
        self.assertIsNone(guard.refusal(request))
        request.method = b"POST"
        self.assertEqual(guard.refusal(request).code, "request.unsupported_media_type")
        request.requestHeaders.setRawHeaders(b"content-type", [b"application/json"])
        self.assertIsNone(guard.refusal(request))
        request.requestHeaders.setRawHeaders(b"origin", [b"http://evil.example"])
        self.assertEqual(guard.refusal(request).code, "request.forbidden_origin")

    def test_safe_methods(self):
        """Only GET, HEAD and OPTIONS skip the origin and body checks, as the guard documents."""
        guard = AdminGuard()
        self.assertEqual(guard.codesFor("GET"), ["request.bad_host"])
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            self.assertEqual(set(guard.codesFor(method)),
                             set(ADMIN_SITE) - {"auth.operator_required"})

    def test_methods_no_route_takes(self):
        """
        TRACE, PROPFIND and other methods no route may take (so no state
        change) pass the origin and JSON checks, for the router to answer a
        typed 405 (schemathesis found a 415 on every admin path); Host is
        still checked.
        """
        guard = AdminGuard()
        for method in (b"TRACE", b"PROPFIND", b"BREW"):
            request = DummyRequest([b"thing"])
            request.method = method
            request.getHost = lambda: IPv4Address("TCP", "127.0.0.1", PORT)
            request.requestHeaders.setRawHeaders(b"host", [HERE.encode()])
            self.assertIsNone(guard.refusal(request), method)
            self.assertEqual(guard.codesFor(method.decode()), ["request.bad_host"])
            request.requestHeaders.setRawHeaders(b"host", [b"evil.example"])
            self.assertEqual(guard.refusal(request).code, "request.bad_host")

    def test_host_once(self):
        """
        A TCP request without a Host header (HTTP/1.0 by hand), or with two
        (one for the guard, one for whatever reads the other), is refused.
        """
        request = DummyRequest([b"thing"])
        request.getHost = lambda: IPv4Address("TCP", "127.0.0.1", PORT)
        guard = AdminGuard()
        self.assertIsNone(request.requestHeaders.getRawHeaders(b"host"))
        self.assertEqual(guard.refusal(request).code, "request.bad_host")
        request.requestHeaders.setRawHeaders(b"host", [HERE.encode(), b"evil.example"])
        self.assertEqual(guard.refusal(request).code, "request.bad_host")
        request.requestHeaders.setRawHeaders(b"host", [HERE.encode()])
        self.assertIsNone(guard.refusal(request))

    def test_form_posts(self):
        """A multipart form post, what a page's form sends besides text/plain and urlencoded, is a 415."""
        request = DummyRequest([b"thing"])
        request.getHost = lambda: IPv4Address("TCP", "127.0.0.1", PORT)
        request.method = b"POST"
        request.requestHeaders.setRawHeaders(b"host", [HERE.encode()])
        request.requestHeaders.setRawHeaders(b"content-type", [b"multipart/form-data; boundary=x"])
        self.assertEqual(AdminGuard().refusal(request).code, "request.unsupported_media_type")
