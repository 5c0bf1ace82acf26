"""Hostile input on every REST route and every session message type: typed 400s and protocol errors, never `internal`, never a traceback."""

import json
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from mmoshard.test.hostile import (
    BAD_BYTES,
    INT_EDGES,
    TEXT_EDGES,
    LogWatch,
    Peer,
    account,
    headerValues,
    integers,
    messageTypes,
    port,
    request,
    requestJSON,
    routers,
    startNode,
    texts,
    values,
)
from mmoshard.wire.test.docs import documentedFields

HOSTILE = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                   suppress_health_check=list(HealthCheck))
# Methods no route takes, and the ones some do.
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND",
           "MKCOL", "BREW"]
FIELD_NAMES = ["id", "character_id", "name", "text", "to", "channel", "status", "zone",
               "x", "y", "z", "seconds", "reason", "ticket", "party_id", "token",
               "client_version", "platform", "resume_token", "last_seq", "message", "build"]


# Every edge a field of a message is swept with, whatever its type.
EDGES = INT_EDGES + TEXT_EDGES + [None, True, 1.5, -0.0, float("nan"), float("inf"), [], {},
                                  [1, "a"], {"a": 1}, b"\xff\x00"]
# The fields swept in a type whose documentation names none.
UNDOCUMENTED_FIELDS = ["id", "character_id", "name", "text"]


def _segment(value):
    """A path segment for C{value}, percent-encoded, surrogates as their (invalid) UTF-8."""
    return quote(str(value).encode("utf-8", "surrogatepass"), safe="")


def _body(props):
    """A strategy of raw request bodies for a route taking C{props} (name -> Prop)."""
    names = list(props or ()) or ["x"]
    fields = st.dictionaries(st.sampled_from(names) | texts, values, max_size=len(names) + 1)
    encoded = fields.map(lambda d: json.dumps(d).encode())
    broken = st.tuples(encoded, st.sampled_from(BAD_BYTES)).map(
        lambda pair: pair[0].replace(b'"', b'"' + pair[1], 1) if b'"' in pair[0]
        else pair[0] + pair[1])
    return encoded | encoded | broken | st.binary(max_size=32)


def _answerProblem(status, kind, body):
    """@return: what is wrong with an answer to hostile input, or None."""
    if status >= 500 and status != 503:
        return f"status {status}"
    if status == 200 and kind and not kind.startswith("application/json"):
        return None  # /metrics: Prometheus text
    if status == 304 or not body:
        return None
    if not (kind or "").startswith("application/json"):
        return f"{status} not JSON: {kind}"
    parsed = json.loads(body)
    if status >= 400:
        code = parsed.get("error", {}).get("code")
        if not code or code == "internal":
            return f"{status} error code {code!r}"
    return None


class HostileTestCase(TestCase):
    """
    A node with every role, what it logs watched, and an account named
    C{username} with a character: C{self.token}, C{self.cid}.
    """

    timeout = 300
    username = None

    async def setUp(self):
        self.watch = LogWatch()
        self.watch.install(self)
        self.node = await startNode(self)
        self.ports = {name: port(self.node, name) for name in ("http", "admin", "tcp")}
        self.token, self.cid = await deferToThread(account, self.ports["http"], self.username)


class RestTests(HostileTestCase):
    username = "hostile_rest"

    def relogin(self):
        """Log in again (a fuzzed DELETE /v1/sessions may have ended the login)."""
        _, login = requestJSON(self.ports["http"], "POST", "/v1/sessions",
                               {"username": "hostile_rest", "password": "Hostile-Pass-1234"})
        self.token = login["access_token"]

    def routes(self):
        """@return: (listener, Route) of every router on the node's sites."""
        return [(name, r) for name, router in routers(self.node) for r in router.routes]

    async def test_reported_cases(self):
        """
        Each case of the report answers a typed 4xx: on main each was a
        500 internal with a logged traceback (non-UTF-8 Authorization and
        User-Agent, lone surrogates in username, password and email).
        """
        http = self.ports["http"]

        def run():
            good = json.dumps({"username": "hostile_rest", "password": "Hostile-Pass-1234"})
            answers = {
                "authorization": request(http, "GET", "/v1/characters",
                                         [("Authorization", b"Bearer \xff\xfe")]),
                "user-agent": request(http, "POST", "/v1/sessions",
                                      [("User-Agent", b"\xff\xfe\xed"),
                                       ("Content-Type", b"application/json")], good.encode()),
            }
            for name, body in [
                ("username", {"username": "ab\udc80", "password": "x"}),
                ("password", {"username": "hostile_rest", "password": "x\udc80"}),
            ]:
                answers[name] = request(http, "POST", "/v1/sessions", [],
                                        json.dumps(body).encode())
            answers["email"] = request(http, "POST", "/v1/accounts", [], json.dumps(
                {"username": "hostile_b", "password": "Good-Pass-123",
                 "email": "a\udc80@b.cc"}).encode())
            answers["register password"] = request(http, "POST", "/v1/accounts", [], json.dumps(
                {"username": "hostile_c", "password": "Good-\udc80-Pass-123"}).encode())
            return answers

        answers = await deferToThread(run)
        for name, (status, kind, body) in answers.items():
            self.assertEqual((status, json.loads(body)["error"]["code"]),
                             (400, "request.invalid_text"), name)
        self.assertEqual(self.watch.problems(), [])

    async def test_every_route(self):
        """
        Hostile paths, queries, headers and bodies on every route of every
        router mounted on the node's sites get a typed answer, never a 500
        and never a logged failure.
        """
        routes = self.routes()
        self.assertGreater(len(routes), 20)

        @HOSTILE
        @given(st.data())
        def hit(data):
            listener, r = data.draw(st.sampled_from(routes))
            parts = []
            for segment, param in zip(r.segments, r.params):
                if param is None:
                    parts.append(segment)
                elif param[1] == "int":
                    parts.append(_segment(data.draw(integers | st.sampled_from(["x", "%ff"]))))
                else:
                    parts.append(_segment(data.draw(texts) or "a"))
            path = "/" + "/".join(parts)
            query = data.draw(st.lists(st.tuples(st.sampled_from(
                [n for n in (r.declaration.query or {})] or ["q"]) | texts, texts), max_size=2))
            if query:
                path += "?" + "&".join(_segment(k) + "=" + _segment(v) for k, v in query)
            good = b"Bearer " + self.token.encode()
            headers = [("Authorization", data.draw(st.just(good) | headerValues))]
            for name in data.draw(st.lists(st.sampled_from(
                    ["User-Agent", "X-Forwarded-For", "If-None-Match", "Content-Type",
                     "X-Client-Region", "X-Hostile"]), max_size=3, unique=True)):
                headers.append((name, data.draw(st.just(b"application/json") | headerValues)))
            method = data.draw(st.sampled_from([r.method] * 4 + METHODS))
            body = data.draw(_body(r.body)) if method in ("POST", "PUT", "PATCH") else None
            status, kind, raw = request(self.ports[listener], method, path, headers, body)
            problem = _answerProblem(status, kind, raw)
            assert problem is None, (problem, raw[:200])
            assert self.watch.problems() == [], self.watch.problems()
            if status == 401 and headers[0][1] == good:
                self.relogin()

        await deferToThread(hit)
        await deferLater(reactor, 0.2, lambda: None)
        self.assertEqual(self.watch.problems(), [])

    async def test_openapi_states_what_is_checked(self):
        """
        The served OpenAPI document states the checks the server makes: the
        password policy, the class ids (an enum, those of GET /v1/classes),
        the build pattern and length of the version check, and bounds on
        every integer.
        """
        from mmoshard.gate import BUILD_PATTERN, MAX_BUILD_LENGTH

        def run():
            return (requestJSON(self.ports["http"], "GET", "/openapi.json")[1],
                    requestJSON(self.ports["http"], "GET", "/v1/classes")[1])

        doc, classes = await deferToThread(run)
        paths = doc["paths"]

        def body(path, method="post"):
            content = paths[path][method]["requestBody"]["content"]
            return content["application/json"]["schema"]["properties"]

        password = body("/v1/accounts")["password"]
        self.assertEqual((password["minLength"], password["maxLength"]), (10, 256))
        self.assertIn("different", password["description"])
        self.assertIn("username", password["description"])
        self.assertEqual(body("/v1/accounts/me/password")["new_password"], password)
        self.assertEqual(sorted(body("/v1/characters")["class"]["enum"]),
                         sorted(c["id"] for c in classes["classes"]))
        [build] = [p for p in paths["/v1/version"]["get"]["parameters"] if p["name"] == "build"]
        self.assertEqual(build["schema"]["pattern"], BUILD_PATTERN)
        self.assertEqual(build["schema"]["maxLength"], MAX_BUILD_LENGTH)
        # Every integer a client sends: parameters and request bodies.
        integers = []
        stack = [op.get(part) for ops in paths.values() for op in ops.values()
                 for part in ("parameters", "requestBody")]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if node.get("type") == "integer":
                    integers.append(node)
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
        self.assertTrue(integers)
        for schema in integers:
            self.assertTrue({"minimum", "maximum"} <= set(schema), schema)
            self.assertLessEqual(schema["maximum"], 2**63 - 1)

    async def test_unsupported_methods(self):
        """
        Every method a path does not take, on every mounted path (and the
        folders above them), is a typed JSON 405 with Allow (404 for a
        folder), never Twisted's HTML 405 or 501 (as /v1 was on main).
        """
        byPath = {}
        for listener, r in self.routes():
            path = "/" + "/".join(s if p is None else ("7" if p[1] == "int" else "a")
                                  for s, p in zip(r.segments, r.params))
            byPath.setdefault((listener, path), set()).add(r.method)
            folder = path.rsplit("/", 1)[0]
            if folder:
                byPath.setdefault((listener, folder), set())

        def run():
            answers = []
            for (listener, path), allowed in sorted(byPath.items()):
                for method in ("TRACE", "PROPFIND", "PATCH", "PUT", "OPTIONS", "BREW"):
                    if method in allowed:
                        continue
                    answers.append((listener, path, method, allowed,
                                    request(self.ports[listener], method, path)))
            return answers

        for listener, path, method, allowed, (status, kind, raw) in await deferToThread(run):
            where = f"{method} {listener}{path}"
            self.assertEqual(kind, "application/json", where)
            code = json.loads(raw)["error"]["code"]
            if allowed:
                self.assertEqual((status, code), (405, "request.method_not_allowed"), where)
            else:
                self.assertEqual((status, code), (404, "request.not_found"), where)
        self.assertEqual(self.watch.problems(), [])


class SessionTests(HostileTestCase):
    username = "hostile_ses"

    def connect(self):
        """@return: a Peer welcomed, speaking in chat and in the world as the character."""
        peer = Peer(self.ports["tcp"])
        peer.request({"t": "hello", "id": "h", "token": self.token, "client_version": "1.0.0",
                      "platform": "bot"})
        peer.request({"t": "chat.hello", "id": "c", "character_id": self.cid})
        peer.request({"t": "world.enter", "id": "w", "character_id": self.cid})
        return peer

    async def test_reported_cases(self):
        """
        chat.friend.* and chat.unblock with character_id 2**64 - 1 answer
        protocol.bad_request (on main: internal, from SQLite's overflow).
        """
        kinds = sorted(t for t in messageTypes(self.node)
                       if t.startswith("chat.friend.") or t == "chat.unblock")
        self.assertIn("chat.unblock", kinds)

        def run():
            peer = self.connect()
            answers = {kind: peer.request({"t": kind, "id": kind, "character_id": 2**64 - 1})[-1]
                       for kind in kinds}
            peer.close()
            return answers

        for kind, answer in (await deferToThread(run)).items():
            self.assertEqual((answer["t"], answer["code"]), ("error", "protocol.bad_request"),
                             kind)
        self.assertEqual(self.watch.problems(), [])

    def checkAnswers(self, peer, sent, got):
        """Assert nothing answered C{sent} with internal, and a close came with a typed error."""
        for answer in got:
            assert not (answer.get("t") == "error"
                        and answer.get("code") in (None, "internal")), (sent, answer)
        assert not peer.closed or (got and got[-1].get("t") in ("error", "bye")), (sent, got)
        assert self.watch.problems() == [], (sent[-3:], self.watch.problems())

    async def test_every_documented_field_at_its_edges(self):
        """
        Every message type the router knows, each field its documentation
        names (a few usual names where it names none) set to each edge value
        (integers around 32, 53 and 64 bits, lone surrogates, NUL, NaN,
        containers, bytes...): a reply or a typed error, never internal.
        On main chat.unblock and chat.friend.* with 2**64 - 1 were internal.
        """
        kinds = messageTypes(self.node)
        fields = documentedFields()
        self.assertTrue(fields.get("chat.unblock"))

        def sweep():
            peer = self.connect()
            for kind in kinds:
                for field in sorted(fields.get(kind) or UNDOCUMENTED_FIELDS):
                    if peer.closed:
                        peer = self.connect()
                    sent = []
                    for n, edge in enumerate(EDGES):
                        message = {"t": kind, "id": n, field: edge}
                        try:
                            peer.send(message)
                        except (ValueError, TypeError, OverflowError):
                            continue  # not encodable by msgpack (beyond 64 bits)
                        sent.append(message)
                    peer.send({"t": "ping", "id": "probe"})
                    got = peer.until(lambda m: m.get("id") == "probe" and m.get("t") == "pong")
                    self.checkAnswers(peer, sent, got)
            peer.close()

        await deferToThread(sweep)
        await deferLater(reactor, 0.5, lambda: None)
        self.assertEqual(self.watch.problems(), [])

    async def test_every_message_type(self):
        """
        Every message type the node's router knows, with hostile fields,
        ids and framing, gets a reply or a typed error (never internal); a
        connection left open still answers a ping; nothing is logged as a
        failure.
        """
        kinds = messageTypes(self.node)
        self.assertTrue({"hello", "chat.whisper", "world.move"} <= set(kinds))
        state = {"peer": None, "n": 0}
        # Each known field name present half the time, ids mostly edges.
        fieldValues = st.sampled_from(INT_EDGES) | integers | texts | values
        known = st.fixed_dictionaries({}, optional={name: fieldValues for name in FIELD_NAMES})

        @settings(HOSTILE, max_examples=600)
        @given(st.data())
        def hit(data):
            if state["peer"] is None or state["peer"].closed:
                state["peer"] = self.connect()
            peer = state["peer"]
            state["n"] += 1
            sent = []
            for kind in data.draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=3)):
                fields = data.draw(known | st.dictionaries(texts, fieldValues, max_size=3))
                message = {**fields, "t": kind, "id": data.draw(
                    st.just(state["n"]) | integers | texts | st.none())}
                try:
                    peer.send(message)
                except (ValueError, TypeError, OverflowError):
                    continue  # not encodable by msgpack (an int beyond 64 bits)
                sent.append(message)
            probe = f"probe-{state['n']}"
            peer.send({"t": "ping", "id": probe})
            got = peer.until(lambda m: m.get("id") == probe and m.get("t") == "pong")
            self.checkAnswers(peer, sent, got)

        try:
            await deferToThread(hit)
        finally:
            if state["peer"] is not None:
                state["peer"].close()
        await deferLater(reactor, 0.5, lambda: None)
        self.assertEqual(self.watch.problems(), [])
