"""A real twistd node's admin site against what a browser sends: cross-site requests and DNS rebinding refused on every admin route, the site's own pages served."""

import json
import os
import re

import treq
from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.trial.unittest import TestCase

from mmoshard.testing import TwistdProcess, freePort, writeConfig

SAFE = {"GET", "HEAD", "OPTIONS"}
# Values of the required fields of a body, by type: what an attacker would send.
SAMPLES = {"string": "cross-site", "number": 1, "integer": 1, "boolean": True}


class _Collect(protocol.Protocol):
    def __init__(self):
        self.data = bytearray()
        self.done = defer.Deferred()

    def dataReceived(self, data):
        self.data.extend(data)

    def connectionLost(self, reason):
        self.done.callback(bytes(self.data))


async def rawRequest(port, method, path, headers, body=b""):
    """
    Send one HTTP/1.1 request, byte for byte as given (a browser's, not a
    client library's: its own Host, Origin...), to 127.0.0.1:C{port}.

    @return: (status, parsed JSON body or the raw bytes).
    """
    lines = [f"{method} {path} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    proto = _Collect()
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), proto)
    proto.transport.write("\r\n".join(lines).encode() + body)
    answer = await proto.done
    head, _, content = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    try:
        return status, json.loads(content)
    except ValueError:
        return status, content


def errorCode(body):
    """@return: the error code of an answer's C{body}, or the start of what it is."""
    if isinstance(body, dict):
        return body.get("error", {}).get("code")
    return body[:40]


def concrete(path, accountId):
    """C{path} with its parameters filled in: integers with C{accountId}, strings with C{x}."""
    return re.sub(r"\{[^}]+\}", lambda m: str(accountId) if m.group(0) == "{id}" else "x", path)


class AdminSiteProcessTests(TestCase):
    timeout = 120

    async def spawn(self):
        """Start an embedded-default node (every installed role); @return: (process, admin port, http port)."""
        admin, http = freePort(), freePort()
        path = writeConfig(self.mktemp() + ".toml", {
            "node": {"id": "csrf", "var_dir": os.path.abspath(self.mktemp())},
            "auth": {"argon2_time_cost": 1, "argon2_memory_kib": 64},
            "listen": {"admin": f"tcp:{admin}:interface=127.0.0.1",
                       "http": f"tcp:{http}:interface=127.0.0.1",
                       "tcp": f"tcp:{freePort()}:interface=127.0.0.1",
                       "websocket": f"tcp:{freePort()}:interface=127.0.0.1"},
        })
        proc = TwistdProcess(reactor, path, admin).start()
        self.addCleanup(proc.kill)
        await proc.waitReady()
        return proc, admin, http

    async def register(self, http):
        """@return: the id of a new account, registered on the public site."""
        response = await treq.post(
            f"http://127.0.0.1:{http}/v1/accounts",
            json.dumps({"username": "victim", "password": "correct horse battery"}).encode(),
            headers={"Content-Type": "application/json"}, persistent=False, timeout=10)
        body = json.loads(await response.content())
        self.assertEqual(response.code, 201, body)
        return body["account_id"]

    async def adminRoutes(self, proc):
        """
        @return: (method, path, body) of every route the admin site
            documents, from its own /openapi.json; C{body} a valid one for
            the route (its required fields filled in).
        """
        code, doc = await proc.get("/openapi.json")
        self.assertEqual(code, 200, doc)
        found = []
        for path, ops in doc["paths"].items():
            for method, op in ops.items():
                schema = (op.get("requestBody", {}).get("content", {})
                          .get("application/json", {}).get("schema", {}))
                props = schema.get("properties", {})
                body = {name: SAMPLES[props[name]["type"]]
                        for name in schema.get("required", ())}
                found.append((method.upper(), path, json.dumps(body).encode()))
        return found

    async def test_browser_attacks_refused_on_every_admin_route(self):
        """
        On every state-changing admin route, what a web page can make a local
        browser send is refused before the route runs: a text/plain form
        post from a foreign page (403 request.forbidden_origin, or 415 from a
        browser sending no Origin), and any request with a foreign Host,
        JSON or not, same-origin to the browser after DNS rebinding (403
        request.bad_host) -- reads included, which would leak.  The account
        attacked stays unbanned; the same request from the admin site's own
        pages (the operator console) passes.
        """
        proc, admin, http = await self.spawn()
        accountId = await self.register(http)
        routes = await self.adminRoutes(proc)
        changing = [(m, p, b) for m, p, b in routes if m not in SAFE]
        reads = [(m, p) for m, p, _ in routes if m == "GET"]
        # Not vacuous: the roles' admin routes are there.
        self.assertIn(("POST", "/accounts/{id}/ban"), [(m, p) for m, p, _ in changing])
        self.assertIn(("POST", "/version/publish"), [(m, p) for m, p, _ in changing])
        self.assertIn(("GET", "/directory"), reads)
        here, evil = f"127.0.0.1:{admin}", f"evil.example:{admin}"
        attacks = [
            # A form on a foreign page, reaching the admin port through a
            # name that resolves to 127.0.0.1.
            ("foreign page, foreign host", 403, "request.bad_host",
             [("Host", evil), ("Origin", "http://evil.example"),
              ("Sec-Fetch-Site", "cross-site"), ("Content-Type", "text/plain")]),
            # DNS rebinding: the page's origin now is the admin port, so the
            # browser sends JSON without asking first.
            ("rebound, JSON", 403, "request.bad_host",
             [("Host", evil), ("Origin", f"http://{evil}"),
              ("Sec-Fetch-Site", "same-origin"), ("Content-Type", "application/json")]),
            ("foreign page, right host", 403, "request.forbidden_origin",
             [("Host", here), ("Origin", "http://evil.example"),
              ("Sec-Fetch-Site", "cross-site"), ("Content-Type", "text/plain")]),
            ("foreign page told by Sec-Fetch-Site only", 403, "request.forbidden_origin",
             [("Host", here), ("Sec-Fetch-Site", "cross-site"),
              ("Content-Type", "text/plain")]),
            ("no Origin (an older browser's form post)", 415,
             "request.unsupported_media_type",
             [("Host", here), ("Content-Type", "text/plain")]),
        ]
        failures = []
        for method, path, sent in changing:
            target = concrete(path, accountId)
            for what, status, code, headers in attacks:
                got, body = await rawRequest(admin, method, target, headers, sent)
                error = errorCode(body)
                if (got, error) != (status, code):
                    failures.append(f"{method} {path} ({what}): {got} {error}, "
                                    f"want {status} {code}")
        for method, path in reads:
            got, body = await rawRequest(admin, method, concrete(path, accountId),
                                         [("Host", evil)])
            error = errorCode(body)
            if (got, error) != (403, "request.bad_host"):
                failures.append(f"GET {path} (rebound): {got} {error}, want 403 request.bad_host")
        if failures:
            self.fail("\n".join(failures))
        code, events = await proc.get(f"/accounts/{accountId}/events")
        self.assertEqual((code, events["banned_until"]), (200, None))

        # The operator console, served by the admin site itself.
        for name in (here, f"localhost:{admin}"):
            got, body = await rawRequest(
                admin, "POST", f"/accounts/{accountId}/ban",
                [("Host", name), ("Origin", f"http://{name}"),
                 ("Sec-Fetch-Site", "same-origin"), ("Content-Type", "application/json")],
                json.dumps({"reason": "from the console"}).encode())
            self.assertEqual((got, body.get("account_id")), (200, accountId), body)
            got, body = await rawRequest(admin, "GET", "/healthz",
                                         [("Host", name), ("Sec-Fetch-Site", "none")])
            self.assertEqual((got, body.get("node_id")), (200, "csrf"))
        self.assertEqual(await proc.stop("TERM"), 0, proc.output.decode())
