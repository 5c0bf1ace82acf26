"""The operator console's routes on a real node: off loopback every route but the open ones needs an operator, who logs in; each action is audited; maintenance windows, mutes and announcements reach the players; CORS on the public site."""

import json

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from mmoshard.web.operators import OPEN_FOLDERS, OPEN_PATHS
from mmoshard.web.test.browser import (
    NODE_ID, PASSWORD, makeOperator, playerInWorld, register, rest, startNode,
)
from mmoshard.wire.client import RequestError, connect, login

# Values of a body's required fields, by type.
SAMPLES = {"string": "x", "number": 1, "integer": 1, "boolean": True}


def concrete(path):
    """C{path} with its parameters filled in (integers with 1, strings with x)."""
    out = []
    for segment in path.split("/"):
        if segment.startswith("{"):
            segment = "x" if ":" in segment else "1"
        out.append(segment)
    return "/".join(out)


async def nextEvent(client, kind, seconds=10.0):
    """@return: the next event of type C{kind} the client gets (others are skipped)."""
    deadline = reactor.seconds() + seconds
    while True:
        d = client.nextEvent()
        d.addTimeout(max(0.1, deadline - reactor.seconds()), reactor)
        event = await d
        if event["t"] == kind:
            return event


async def events(node, token=None):
    """@return: the latest audit rows through the admin site."""
    code, body, _ = await rest("GET", node.admin + "/shard/events?limit=50", token=token)
    assert code == 200, body
    return body["events"]


class OffLoopbackTests(TestCase):
    timeout = 120

    async def test_every_route_needs_an_operator(self):
        """
        An admin site listening off loopback serves only its probes, the
        console's files and the login without a token; every other route
        it documents answers 401 auth.invalid_token without one and 403
        auth.operator_required with a player's token, changing nothing.
        An operator logs in (wrong passwords and players refused, both
        audited), reads and acts with the cookie or the bearer token, the
        trail names the operator, and after logging out the token is dead.
        """
        node = await startNode(self, adminInterface="0.0.0.0")
        for path in ("/healthz", "/readyz", "/metrics", "/console/"):
            code, _, _ = await rest("GET", node.admin + path)
            self.assertEqual(code, 200, path)
        code, session, _ = await rest("GET", node.admin + "/operator/session")
        self.assertEqual((session["login_required"], session["operator"]), (True, None))
        operatorId = await makeOperator(self, node, "opal")
        playerId = await register(node, "bob")
        player = await login(reactor, node.http, "bob", PASSWORD)

        code, body, _ = await rest("POST", node.admin + "/operator/session",
                                   {"username": "opal", "password": "wrong password"})
        self.assertEqual((code, body["error"]["code"]), (401, "auth.invalid_credentials"))
        code, body, _ = await rest("POST", node.admin + "/operator/session",
                                   {"username": "bob", "password": PASSWORD})
        self.assertEqual((code, body["error"]["code"]), (403, "auth.operator_required"))
        code, body, response = await rest("POST", node.admin + "/operator/session",
                                          {"username": "opal", "password": PASSWORD})
        self.assertEqual(code, 200, body)
        self.assertEqual((body["username"], body["account_id"]), ("opal", operatorId))
        token = body["access_token"]
        cookie = response.headers.getRawHeaders("set-cookie")[0]
        self.assertIn("mmoshard_operator=" + token, cookie)
        for flag in ("HttpOnly", "SameSite=Strict", "Path=/"):
            self.assertIn(flag, cookie)

        code, doc, _ = await rest("GET", node.admin + "/openapi.json", token=token)
        self.assertEqual(code, 200, doc)
        checked, failures = [], []
        for path, ops in doc["paths"].items():
            segments = tuple(s.encode() for s in path.strip("/").split("/"))
            if segments in OPEN_PATHS or segments[0] in OPEN_FOLDERS:
                continue
            for method, op in ops.items():
                schema = (op.get("requestBody", {}).get("content", {})
                          .get("application/json", {}).get("schema", {}))
                props = schema.get("properties", {})
                body = {n: SAMPLES[props[n]["type"]] for n in schema.get("required", ())}
                data = None if method == "get" else body
                self.assertIn("401", op["responses"], f"{method} {path} documents no 401")
                for sent, want in ((None, (401, "auth.invalid_token")),
                                   (player["access_token"], (403, "auth.operator_required"))):
                    code, answer, _ = await rest(method.upper(), node.admin + concrete(path),
                                                 data, token=sent)
                    got = (code, (answer or {}).get("error", {}).get("code"))
                    if got != want:
                        failures.append(f"{method.upper()} {path}: {got}, want {want}")
                checked.append((method.upper(), path))
        self.assertEqual(failures, [])
        # Not vacuous: every role's routes and the shard's are there.
        for route in (("POST", "/accounts/{id}/kick"), ("POST", "/shard/maintenance/open"),
                      ("POST", "/chat/mute"), ("GET", "/world/spaces"),
                      ("GET", "/shard/spaces"), ("GET", "/directory")):
            self.assertIn(route, checked)
        self.assertNotIn("kick", [e["kind"] for e in await events(node, token)])

        # The console's cookie (what a browser sends), or the bearer token.
        code, overview, _ = await rest("GET", node.admin + "/shard/overview",
                                       cookies={"mmoshard_operator": token})
        self.assertEqual((code, overview["node_id"]), (200, NODE_ID))
        code, session, _ = await rest("GET", node.admin + "/operator/session", token=token)
        self.assertEqual(session["operator"]["username"], "opal")
        code, body, _ = await rest("POST", node.admin + f"/accounts/{playerId}/kick",
                                   {"reason": "testing"}, token=token)
        self.assertEqual(code, 200, body)
        code, body, _ = await rest("POST", node.admin + f"/accounts/{playerId}/ban",
                                   {"reason": "gold selling", "duration": 60}, token=token)
        self.assertEqual(code, 200, body)
        code, body, _ = await rest("POST", node.admin + f"/accounts/{playerId}/unban", {},
                                   token=token)
        self.assertEqual(code, 200, body)
        trail = await events(node, token)
        actor = f"operator opal (account {operatorId})"
        byKind = {e["kind"]: e for e in trail}
        for kind in ("kick", "ban", "unban"):
            self.assertIn(actor, byKind[kind]["detail"])
            self.assertEqual(byKind[kind]["account_id"], playerId)
        self.assertEqual(byKind["admin_login"]["account_id"], operatorId)
        self.assertEqual(byKind["admin_login_refused"]["account_id"], playerId)

        code, body, response = await rest("DELETE", node.admin + "/operator/session", {},
                                          token=token)
        self.assertEqual((code, body["ended"]), (200, True))
        self.assertIn("Max-Age=0", response.headers.getRawHeaders("set-cookie")[0])
        code, body, _ = await rest("GET", node.admin + "/shard/overview", token=token)
        self.assertEqual((code, body["error"]["code"]), (401, "auth.invalid_token"))
        self.assertEqual(await node.process.stop("TERM"), 0, node.output())


class LoopbackConsoleTests(TestCase):
    timeout = 120

    async def test_maintenance_window(self):
        """
        Opening a maintenance window from the console tells every session
        (server.maintenance, state open), refuses non-operators' logins
        (503 server.maintenance with Retry-After) and handshakes, lets
        operators in; closing it tells the sessions again and lets players
        log in.  Both are in the audit trail.
        """
        node = await startNode(self)
        player = await playerInWorld(node, "alice", "Alicia")
        await register(node, "bob")
        await makeOperator(self, node, "opal")
        code, body, _ = await rest("POST", node.admin + "/shard/maintenance/open",
                                   {"message": "Patch day", "minutes": 10})
        self.assertEqual(code, 200, body)
        notice = await nextEvent(player.client, "server.maintenance")
        self.assertEqual((notice["state"], notice["message"]), ("open", "Patch day"))
        self.assertGreater(notice["retry_after"], 590)
        code, body, response = await rest("POST", node.http + "/v1/sessions",
                                          {"username": "bob", "password": PASSWORD})
        self.assertEqual((code, body["error"]["code"], body["error"]["message"]),
                         (503, "server.maintenance", "Patch day"))
        self.assertTrue(response.headers.hasHeader("retry-after"))
        with self.assertRaises(RequestError) as refused:
            await connect(reactor, node.ws, player.tokens["access_token"], autoResume=False)
        self.assertEqual(refused.exception.code, "server.maintenance")
        operator = await login(reactor, node.http, "opal", PASSWORD)
        client = await connect(reactor, node.ws, operator["access_token"], autoResume=False)
        await client.close()
        code, state, _ = await rest("GET", node.admin + "/shard/maintenance")
        self.assertEqual(state["active"]["message"], "Patch day")
        code, overview, _ = await rest("GET", node.admin + "/shard/overview")
        self.assertEqual(overview["maintenance"]["message"], "Patch day")

        code, body, _ = await rest("POST", node.admin + "/shard/maintenance/close", {})
        self.assertEqual((code, body["closed"], body["active"]), (200, True, None))
        notice = await nextEvent(player.client, "server.maintenance")
        self.assertEqual(notice["state"], "closed")
        code, body, _ = await rest("POST", node.http + "/v1/sessions",
                                   {"username": "bob", "password": PASSWORD})
        self.assertEqual(code, 200, body)
        kinds = [e["kind"] for e in await events(node)]
        self.assertIn("maintenance_open", kinds)
        self.assertIn("maintenance_close", kinds)
        await player.client.close()

    async def test_spaces_mute_announce_cors(self):
        """
        The shard's spaces (and the world node's own) show a player in the
        world with its account; an unknown zone is a typed 404.  Muting and
        announcing from the admin site reach the player in chat and are
        audited.  The public site answers a configured origin's preflight
        and adds CORS headers for it only.
        """
        game = "https://game.example"
        node = await startNode(self, {"web": {"cors_origins": [game]}})
        player = await playerInWorld(node, "alice", "Alicia")
        await player.client.request("chat.hello", character_id=player.characterId)

        code, spaces, _ = await rest("GET", node.admin + "/shard/spaces")
        self.assertEqual((code, spaces["silent"]), (200, []))
        [world] = spaces["nodes"]
        busy = [s for s in world["spaces"] if s["players"]]
        self.assertEqual(len(busy), 1, world)
        zone = busy[0]["zone"]
        for url in (f"/shard/spaces?zone={zone}", f"/world/spaces?zone={zone}"):
            code, answer, _ = await rest("GET", node.admin + url)
            nodes = answer["nodes"] if "nodes" in answer else [answer]
            [me] = [e for n in nodes for e in n["detail"]["entities"] if e["kind"] == "p"]
            self.assertEqual((me["id"], me["name"], me["account"]),
                             (player.characterId, "Alicia", player.accountId), url)
        code, body, _ = await rest("GET", node.admin + "/world/spaces?zone=nowhere")
        self.assertEqual((code, body["error"]["code"]), (404, "world.no_such_zone"))

        code, body, _ = await rest("POST", node.admin + "/chat/mute",
                                   {"name": "alicia", "minutes": 5, "reason": "caps"})
        self.assertEqual((code, body["character_id"]), (200, player.characterId), body)
        muted = await nextEvent(player.client, "chat.muted")
        self.assertEqual(muted["reason"], "caps")
        code, body, _ = await rest("POST", node.admin + "/chat/unmute", {"name": "Alicia"})
        self.assertEqual((code, body["lifted"]), (200, True), body)
        await nextEvent(player.client, "chat.unmuted")
        code, body, _ = await rest("POST", node.admin + "/chat/announce",
                                   {"text": "Restart in 10 minutes"})
        self.assertEqual(code, 200, body)
        announced = await nextEvent(player.client, "chat.announcement")
        self.assertEqual(announced["text"], "Restart in 10 minutes")
        code, body, _ = await rest("POST", node.admin + "/chat/mute",
                                   {"name": "nobody", "minutes": 5})
        self.assertEqual((code, body["error"]["code"]), (404, "character.not_found"))
        trail = await events(node)
        mute = next(e for e in trail if e["kind"] == "mute")
        self.assertEqual(mute["account_id"], player.accountId)
        self.assertIn("Alicia", mute["detail"])
        self.assertIn("Restart in 10 minutes",
                      next(e for e in trail if e["kind"] == "announce")["detail"])
        self.assertEqual(next(e for e in trail if e["kind"] == "unmute")["account_id"],
                         player.accountId)

        import treq

        response = await treq.request("OPTIONS", node.http + "/v1/sessions", headers={
            "Origin": game, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"}, persistent=False)
        self.assertEqual(response.code, 204)
        self.assertEqual(response.headers.getRawHeaders("access-control-allow-origin"), [game])
        for origin, allowed in ((game, [game]), ("https://evil.example", None)):
            response = await treq.get(node.http + "/v1/classes", headers={"Origin": origin},
                                      persistent=False)
            json.loads(await response.content())
            self.assertEqual(response.headers.getRawHeaders("access-control-allow-origin"),
                             allowed)
        await deferLater(reactor, 0, lambda: None)
        await player.client.close()
