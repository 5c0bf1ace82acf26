"""In memory: an admin site off loopback lets only operators through (bearer or cookie) but for its open paths; the console's question to every world node gathers their answers or names those that are silent."""

import json

from treq.testing import StubTreq
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from mmoshard.directory import Directory
from mmoshard.interfaces import IDirectory
from mmoshard.testing import openMemoryStore
from mmoshard.tokens import TokenVerifier, issueAccessToken
from mmoshard.web.errors import ErrorCodes
from mmoshard.web.guard import AdminGuard
from mmoshard.web.operators import OperatorAuth, operatorOf
from mmoshard.web.routes import Router, mountRouter, route
from mmoshard.web.site import AdminSite
from mmoshard.web.spaces import (
    ASK_CHANNEL, SpaceDetail, SpaceEntity, SpacesAnswer, SpacesAsk, SpaceSummary, SpaceViews,
)

KEY = "shard-test-key-0123456789abcdef"
START = 1_800_000_000.0


class _API:
    """Admin routes saying who called them."""

    @route("GET", "/healthz", "a probe", auth=False)
    def health(self, call):
        return 200, {"ok": True}

    @route("GET", "/things", "a read", auth=False)
    def read(self, call):
        claims = operatorOf(call.request)
        return 200, {"operator": claims.username if claims else None}

    @route("POST", "/things/{id}/ban", "a change", auth=False, body={})
    def change(self, call):
        return 200, {"by": operatorOf(call.request).username}


class OperatorLoginTests(TestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(START)
        store = openMemoryStore(self, self.clock)
        verifier = TokenVerifier(KEY, store, self.clock)
        self.site = AdminSite(AdminGuard(names=None), OperatorAuth(verifier))
        mountRouter(self.site, Router(_API(), ErrorCodes({})))
        self.http = StubTreq(self.site.root)

    def token(self, flags=(), accountId=7, username="opal"):
        return issueAccessToken(KEY, accountId, f"login-{accountId}", 900, START, flags,
                                username=username)

    def request(self, method, path, headers=None, body=None):
        response = self.successResultOf(self.http.request(
            method, f"http://ops.example:9100{path}", headers=headers or {}, data=body))
        content = self.successResultOf(self.http.content(response))
        return response.code, json.loads(content), response.headers

    def test_operators_only(self):
        """
        Off loopback, a request with no token is 401 (WWW-Authenticate),
        a bad one 401, a player's 403 auth.operator_required; an operator's
        bearer token or cookie passes whatever Host it names, and the
        route sees who it is.
        """
        code, body, headers = self.request("GET", "/things")
        self.assertEqual((code, body["error"]["code"]), (401, "auth.invalid_token"))
        self.assertEqual(headers.getRawHeaders("www-authenticate"), ["Bearer"])
        code, body, _ = self.request("GET", "/things", {"Authorization": "Bearer nonsense"})
        self.assertEqual((code, body["error"]["code"]), (401, "auth.invalid_token"))
        code, body, _ = self.request("GET", "/things",
                                     {"Authorization": "Bearer " + self.token()})
        self.assertEqual((code, body["error"]["code"]), (403, "auth.operator_required"))
        operator = self.token(("operator",))
        code, body, _ = self.request("GET", "/things", {"Authorization": "Bearer " + operator})
        self.assertEqual((code, body), (200, {"operator": "opal"}))
        code, body, _ = self.request("GET", "/things",
                                     {"Cookie": "mmoshard_operator=" + operator})
        self.assertEqual((code, body), (200, {"operator": "opal"}))
        code, body, _ = self.request("GET", "/nothing-here",
                                     {"Authorization": "Bearer " + operator})
        self.assertEqual((code, body["error"]["code"]), (404, "request.not_found"))

    def test_open_paths_and_origins(self):
        """
        The probes need no token; a state-changing request still needs no
        foreign Origin and a JSON body (the console's own page, http or
        https, passes) before the operator check.
        """
        code, body, _ = self.request("GET", "/healthz")
        self.assertEqual((code, body), (200, {"ok": True}))
        operator = "Bearer " + self.token(("operator",))
        code, body, _ = self.request("POST", "/things/1/ban", {
            "Authorization": operator, "Origin": "https://evil.example",
            "Content-Type": "application/json"}, b"{}")
        self.assertEqual((code, body["error"]["code"]), (403, "request.forbidden_origin"))
        code, body, _ = self.request("POST", "/things/1/ban", {
            "Authorization": operator, "Content-Type": "text/plain"}, b"{}")
        self.assertEqual((code, body["error"]["code"]), (415, "request.unsupported_media_type"))
        for origin in ("http://ops.example:9100", "https://ops.example:9100"):
            code, body, _ = self.request("POST", "/things/1/ban", {
                "Authorization": operator, "Origin": origin,
                "Content-Type": "application/json"}, b"{}")
            self.assertEqual((code, body), (200, {"by": "opal"}), origin)

    def test_documented(self):
        """The admin /openapi.json gives every route but the open ones the login's answers."""
        code, doc, _ = self.request("GET", "/openapi.json",
                                    {"Authorization": "Bearer " + self.token(("operator",))})
        self.assertEqual(code, 200)
        self.assertIn("401", doc["paths"]["/things"]["get"]["responses"])
        self.assertIn("auth.operator_required",
                      doc["paths"]["/things/{id}/ban"]["post"]["responses"]["403"]["description"])
        self.assertNotIn("401", doc["paths"]["/healthz"]["get"]["responses"])


class SpaceViewsTests(TestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(START)
        self.store = openMemoryStore(self, self.clock)
        self.directory = Directory(self.store, self.clock, "console", ["auth"], 5.0, 15.0)
        self.successResultOf(self.directory.beat())
        self.views = SpaceViews(self.store, self.clock, "console", self.directory, timeout=0.5)
        self.addCleanup(self.views.stop)

    def worldNode(self, nodeId, answering=True):
        """A world node in the directory, answering the console's questions when asked to."""
        self.successResultOf(Directory(self.store, self.clock, nodeId, ["world"], 5.0,
                                       15.0).beat())
        if not answering:
            return

        def asked(channel, message):
            ask = SpacesAsk.decode(message)
            detail = None
            if ask.zone == f"{nodeId}-zone":
                detail = SpaceDetail(ask.zone, 12, 100.0, 50.0, ([1, 2, 3, 4],),
                                     ([0, 0, 2, 2, "elsewhere"],),
                                     (SpaceEntity(5, "p", "Alicia", 1.5, 2.5, 3, 90, 100,
                                                  False, 11),))
            summary = SpaceSummary(f"{nodeId}-zone", f"{nodeId}-zone", None, 1, 4, 0.2, 0.9)
            self.store.publish(ask.reply, SpacesAnswer(ask.ask_id, nodeId, (summary,),
                                                       detail).encode())

        self.successResultOf(self.store.subscribe(ASK_CHANNEL, asked))

    def ask(self, zone=None):
        d = Deferred.fromCoroutine(self.views.ask(zone))
        self.clock.advance(0)
        if not d.called:
            self.clock.advance(0.5)
        return self.successResultOf(d)

    def test_directory_is_an_idirectory(self):
        """The directory the collector reads is an IDirectory."""
        self.assertTrue(verifyObject(IDirectory, self.directory))

    def test_every_world_node_answers(self):
        """
        Every world node of the directory answers, by node id; the one
        hosting the zone asked for gives its map and entities, unchanged
        through the store.
        """
        self.worldNode("world-b")
        self.worldNode("world-a")
        answers, silent = self.ask("world-b-zone")
        self.assertEqual(([a.node_id for a in answers], silent), (["world-a", "world-b"], []))
        self.assertIsNone(answers[0].detail)
        detail = answers[1].detail
        self.assertEqual(detail.entities[0].name, "Alicia")
        self.assertEqual(answers[1].toJSON()["detail"]["entities"][0]["account"], 11)
        self.assertEqual(answers[1].toJSON()["spaces"][0]["npcs"], 4)

    def test_silent_nodes_named(self):
        """A world node that does not answer within the timeout is named; the others are shown."""
        self.worldNode("world-a")
        self.worldNode("world-z", answering=False)
        answers, silent = self.ask()
        self.assertEqual(([a.node_id for a in answers], silent), (["world-a"], ["world-z"]))
        self.assertEqual(self.views.pending, {})

    def test_no_world(self):
        """With no world node in the directory there is nothing to ask."""
        self.assertEqual(self.ask(), ([], []))
