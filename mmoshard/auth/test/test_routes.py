"""The route table's dispatch: plain, coroutine and Deferred handlers, with and without auth."""

import json

from twisted.internet.defer import succeed
from twisted.trial.unittest import TestCase
from twisted.web.test.requesthelper import DummyRequest

from mmoshard.auth.routes import Route, Router


class _API:
    async def authenticate(self, request):
        return "claims"

    def plain(self, call):
        return 200, {"kind": "plain", "claims": call.claims}

    async def coroutine(self, call):
        return 200, {"kind": "coroutine", "claims": call.claims}

    def deferred(self, call):
        return succeed((200, {"kind": "deferred", "claims": call.claims}))


def _answer(router, path):
    request = DummyRequest(path.strip("/").encode().split(b"/"))
    request.method = b"GET"
    request.channel = None
    router.render(request)
    return request.responseCode or 200, json.loads(b"".join(request.written))


class RouterDispatchTests(TestCase):
    def test_every_handler_kind(self):
        """Plain, coroutine and Deferred handlers answer alike, authenticated or not."""
        routes = [Route("GET", f"/{auth}/{kind}", kind, kind, auth=auth == "auth")
                  for kind in ("plain", "coroutine", "deferred") for auth in ("auth", "open")]
        router = Router(_API(), routes, maxBody=1024)
        for route in routes:
            code, body = _answer(router, route.path)
            self.assertEqual(code, 200, (route.path, body))
            self.assertEqual(body, {"kind": route.handler,
                                    "claims": "claims" if route.auth else None}, route.path)
