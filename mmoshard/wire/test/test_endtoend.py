"""End-to-end tests over real sockets on 127.0.0.1, both transports, with the Python client."""

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionLost
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from mmoshard.config import parseConfig
from mmoshard.interfaces import ITokenVerifier, IVolatileStore
from mmoshard.node import Node
from mmoshard.store.volatile import MemoryStore
from mmoshard.tokens import TokenVerifier, issueAccessToken
from mmoshard.wire import errors
from mmoshard.testing import freePort
from mmoshard.wire.client import Address, RequestError, SessionClient, connect
from mmoshard.wire.test.helpers import KEY, RecordingListener, makeSessionService


def realReactor():
    # Only end-to-end tests run on the real reactor; everything else gets a Clock.
    from twisted.internet import reactor

    return reactor


async def waitFor(reactor, predicate, timeout=5.0, step=0.01):
    waited = 0.0
    while not predicate():
        if waited >= timeout:
            raise AssertionError("condition not reached in time")
        await deferLater(reactor, step)
        waited += step


async def startNode(testCase, transport, volatile=None, nodeId="e2e", **session):
    """
    A node with only the session service on the real reactor, listening on
    free loopback ports, with C{test.echo}, C{test.push} and a
    L{RecordingListener}; stopped at cleanup.  C{volatile}: the memory
    store it shares with other nodes (None: its own).

    @return: (node, service, listener, address of its C{transport} listener).
    """
    reactor = realReactor()
    raw = {
        "session": {"heartbeat": 0.2, "heartbeat_timeout": 1.0, **session},
        "secrets": {"token_key": KEY},
        "listen": {
            "tcp": "tcp:0:interface=127.0.0.1",
            "websocket": "tcp:0:interface=127.0.0.1",
            "http": "",
            "admin": "",
        },
    }
    config = parseConfig(raw, plugins=[], nodeId=nodeId, env={})
    node = Node(config, reactor, roles=[])
    if volatile is None:
        volatile = MemoryStore(reactor, "e2e:")
        volatile.open()
        testCase.addCleanup(volatile.close)
    node.provide(IVolatileStore, volatile)
    node.provide(ITokenVerifier, TokenVerifier(KEY, volatile, reactor))
    service = makeSessionService(node)
    router = service.manager
    listener = RecordingListener()
    router.addListener(listener)

    async def echo(session, message):
        return {"text": message.get("text"), "account": session.accountId}

    def push(session, message):
        for n in range(message["count"]):
            session.send("test.event", {"n": n})
        return {}

    router.addHandlers("test", {"test.echo": echo, "test.push": push})
    await service.startService()
    testCase.addCleanup(service.stopService)
    port = node.listeningPorts[transport].getHost().port
    address = f"tcp:127.0.0.1:{port}" if transport == "tcp" else f"ws://127.0.0.1:{port}/"
    return node, service, listener, address


class EndToEndMixin:
    transport = None

    async def startServer(self, **session):
        self.reactor = realReactor()
        self.node, self.service, self.listener, self.address = await startNode(
            self, self.transport, **session)

    def token(self, accountId=1, **kw):
        return issueAccessToken(KEY, accountId, f"login-{accountId}", 3600,
                                self.reactor.seconds(), **kw)

    async def client(self, accountId=1, **kw):
        client = await connect(self.reactor, self.address, self.token(accountId), **kw)
        self.addCleanup(lambda: Deferred.fromCoroutine(client.close()))
        return client

    async def test_requestsAndEvents(self):
        """
        Over real sockets the client is welcomed, gets replies and numbered events, typed
        errors, pongs and round-trip times both ways, and a logout ends the session.
        """
        await self.startServer()
        client = await self.client(accountId=11)
        self.assertEqual(client.welcome["account_id"], 11)
        reply = await client.request("test.echo", text="héllo")
        self.assertEqual((reply["text"], reply["account"]), ("héllo", 11))
        await client.request("test.push", count=3)
        events = [await client.nextEvent() for i in range(3)]
        self.assertEqual([(e["t"], e["n"], e["seq"]) for e in events],
                         [("test.event", 0, 1), ("test.event", 1, 2), ("test.event", 2, 3)])
        error = await self.assertFailure(client.request("test.nothing"), RequestError)
        self.assertEqual(error.code, errors.UNKNOWN_TYPE)
        pong = await client.request("ping", n=5)
        self.assertEqual(pong["n"], 5)
        # Heartbeats both ways measure the round trip.
        await waitFor(self.reactor, lambda: client.rtt is not None and all(
            s.rtt is not None for s in self.service.manager.sessions.values()))
        await client.close()
        self.assertEqual(await client.ended, "closed")
        await waitFor(self.reactor, lambda: self.listener.events[-1][0] == "ended")
        self.assertEqual(self.listener.events[-1][2], "logout")

    async def test_busySentAgain(self):
        """A request answered server.busy (the node past max_pending) is sent again after its retry_after and answered then; one whose session closes meanwhile fails with ConnectionLost; with busyRetries=0 the caller gets server.busy."""
        await self.startServer(max_pending=1)
        held = []

        def slow(session, message):
            held.append(Deferred())
            return held[-1]

        self.service.manager.addHandlers("busy", {"busy.slow": slow})
        first = await self.client(accountId=21)
        second = await self.client(accountId=22)
        patient = await self.client(accountId=23, busyRetries=0)
        out = first.request("busy.slow")
        await waitFor(self.reactor, lambda: held)
        error = await self.assertFailure(patient.request("test.echo", text="x"), RequestError)
        self.assertEqual(error.code, errors.BUSY)
        again = second.request("test.echo", text="later")
        # The node answers it server.busy; the client waits 0.5-1 s (retry_after 1 s).
        leaving = await self.client(accountId=24)
        gone = leaving.request("test.echo", text="never")
        await deferLater(self.reactor, 0.2)
        self.assertFalse(again.called or gone.called)
        # A session closed while its request waits to go again fails that request.
        await leaving.close()
        self.assertIsInstance(self.failureResultOf(gone).value, ConnectionLost)
        held[0].callback({})
        await out
        reply = await again
        self.assertEqual((reply["text"], reply["account"]), ("later", 22))

    async def test_invalidToken(self):
        """
        The client's connect fails with auth.invalid_token for a bad token and ends with
        that code.
        """
        await self.startServer()
        client = SessionClient(self.reactor, self.address, "garbage")
        error = await self.assertFailure(Deferred.fromCoroutine(client.connect()), RequestError)
        self.assertEqual(error.code, errors.INVALID_TOKEN)
        self.assertEqual(await client.ended, errors.INVALID_TOKEN)

    async def test_automaticResume(self):
        """
        A dropped client resumes on its own, gets the event sent while it was away and keeps
        its session.
        """
        await self.startServer(resume_grace=5.0)
        client = await self.client(accountId=12)
        session = self.service.manager.sessions[client.sessionId]
        session.send("test.event", {"n": 0})
        self.assertEqual((await client.nextEvent())["n"], 0)
        client.drop()
        await waitFor(self.reactor, lambda: session.linkDead or client.resumes)
        session.send("test.event", {"n": 1})
        await waitFor(self.reactor, lambda: client.resumes == 1)
        self.assertEqual((await client.nextEvent())["n"], 1)
        reply = await client.request("test.echo", text="still here")
        self.assertEqual(reply["text"], "still here")
        kinds = [e[0] for e in self.listener.events]
        self.assertNotIn("ended", kinds)
        self.assertFalse(client.ended.called)

    async def test_replacedAcrossClients(self):
        """A second client of the same account ends the first with replaced."""
        await self.startServer()
        first = await self.client(accountId=13)
        await self.client(accountId=13)
        self.assertEqual(await first.ended, errors.REPLACED)

    async def test_serverShutdown(self):
        """
        Without resume on another node, stopping the service sends server.shutdown, ends
        the client with shutdown and stops listening.
        """
        await self.startServer(resume_anywhere=False)
        client = await self.client(accountId=14)
        await self.service.stop()
        notice = await client.nextEvent()
        self.assertEqual(notice["t"], "server.shutdown")
        self.assertNotIn("resume", notice)
        self.assertEqual(await client.ended, "shutdown")
        self.assertEqual(self.listener.events[-1][2], "shutdown")
        self.assertEqual(self.node.listeningPorts[self.transport].connected, False)

    async def test_serverShutdownResumable(self):
        """
        With resume on another node, stopping the service tells the client resume: true and
        ends the session with moved (no logout); the client tries to resume and ends with
        resume_failed only when no node of the role took it within the grace.
        """
        await self.startServer(resume_grace=1.0)
        client = await self.client(accountId=15)
        await self.service.stop()
        notice = await client.nextEvent()
        self.assertEqual((notice["t"], notice.get("resume")), ("server.shutdown", True))
        self.assertEqual(self.listener.events[-1][2], "moved")
        self.assertEqual(await client.ended, "resume_failed")

    async def test_requestsWaitForTheResume(self):
        """
        A request made while the client resumes (its link just dropped) waits for the
        resume's answer and then goes: it is answered, not refused before the session is
        back, nor lost.
        """
        await self.startServer(resume_grace=5.0)
        client = await self.client(accountId=16)
        # Its first try goes to a node that is gone: the resume takes a moment.
        gone = f"tcp:127.0.0.1:{freePort()}"
        client.addresses = [Address.parse(gone), client.address]
        client.address = client.addresses[0]
        client.drop()
        await waitFor(self.reactor, lambda: not client.linked, step=0.001)
        reply = await client.request("test.echo", text="after the resume")
        self.assertEqual((reply["text"], client.resumes), ("after the resume", 1))
        self.assertFalse(client.ended.called)

    async def test_stopResendsWhatWasNotTaken(self):
        """
        A node stopping (a rolling restart) answers the request it took before its notice;
        the request the client sent after that is not taken there, named in the notice,
        and sent again by the client where it resumes, the other node: both are answered.
        """
        await self.startServer(resume_grace=5.0)
        _, _, _, other = await startNode(self, self.transport,
                                         self.node.lookup(IVolatileStore), "e2e-b",
                                         resume_grace=5.0)
        waiting = []

        def slow(session, message):
            waiting.append(Deferred())
            return waiting[-1]

        self.service.manager.addHandlers("slow", {"slow.one": slow})
        client = await self.client(accountId=17, alternates=[other])
        taken = client.request("slow.one")
        await waitFor(self.reactor, lambda: waiting)
        stopped = Deferred.fromCoroutine(self.service.stop())
        later = client.request("test.echo", text="not taken here")
        await deferLater(self.reactor, 0.1)
        waiting[0].callback({"done": True})
        self.assertTrue((await taken)["done"])
        reply = await later
        self.assertEqual((reply["text"], client.resumes), ("not taken here", 1))
        await stopped
        self.assertFalse(client.ended.called)


class TCPEndToEndTests(EndToEndMixin, TestCase):
    transport = "tcp"


class WebSocketEndToEndTests(EndToEndMixin, TestCase):
    transport = "websocket"


class LoginTests(TestCase):
    """The client's REST login against a stand-in for the auth role's endpoint."""

    async def serve(self, code, body):
        import json

        from twisted.web.resource import Resource
        from twisted.web.server import Site

        seen = self.seen = []

        class Sessions(Resource):
            isLeaf = True

            def render_POST(self, request):
                seen.append(json.loads(request.content.read()))
                request.setResponseCode(code)
                request.setHeader(b"content-type", b"application/json")
                return json.dumps(body).encode()

        root = Resource()
        v1 = Resource()
        root.putChild(b"v1", v1)
        v1.putChild(b"sessions", Sessions())
        reactor = realReactor()
        port = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return f"http://127.0.0.1:{port.getHost().port}/"

    async def test_login(self):
        """login posts the username and password to /v1/sessions and returns the body."""
        from mmoshard.wire.client import login

        base = await self.serve(200, {"access_token": "tok", "account_id": 3})
        body = await login(realReactor(), base, "ann", "pw")
        self.assertEqual(body["access_token"], "tok")
        self.assertEqual(self.seen, [{"username": "ann", "password": "pw"}])

    async def test_loginRefused(self):
        """A refused login raises RequestError with the server's error code."""
        from mmoshard.wire.client import login

        base = await self.serve(401, {"error": {"code": "auth.bad_credentials", "message": "no"}})
        error = await self.assertFailure(
            Deferred.fromCoroutine(login(realReactor(), base, "ann", "bad")), RequestError)
        self.assertEqual(error.code, "auth.bad_credentials")
