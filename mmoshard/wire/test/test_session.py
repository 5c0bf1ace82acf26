"""Deterministic tests of the session layer over simulated TCP: handshake, dispatch, liveness, and the interfaces its objects provide."""

from twisted.internet.defer import Deferred, succeed
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from mmoshard.interfaces import IClientGate
from mmoshard.store.errors import VolatileUnavailable
from mmoshard.revocations import revokeLogin
from mmoshard.wire import errors
from mmoshard.wire.errors import ErrorInfo, ProtocolError
from mmoshard.wire.test.helpers import FakeVerifier, Server


def hello(token, **extra):
    message = {"t": "hello", "id": 1, "token": token, "client_version": "1.2.0",
               "platform": "test"}
    message.update(extra)
    return message


@implementer(IClientGate)
class MinimumVersionGate:
    def __init__(self, minimum):
        self.minimum = minimum
        self.asked = []

    def check(self, claims, clientVersion, platform):
        self.asked.append((claims.account_id, clientVersion, platform))
        if tuple(int(p) for p in clientVersion.split(".")) < self.minimum:
            return succeed(ErrorInfo(errors.UPDATE_REQUIRED, "please update", None))
        return succeed(None)


class HandshakeTests(TestCase):
    def setUp(self):
        self.server = Server(self)
        self.server.clock.advance(1000)

    def assertClosedWith(self, peer, code, requestId=1):
        replies = peer.received()
        self.assertEqual(replies[-1]["t"], "error", replies)
        self.assertEqual(replies[-1]["code"], code)
        if requestId is not None:
            self.assertEqual(replies[-1]["id"], requestId)
        self.assertTrue(peer.closed)
        return replies[-1]

    def test_welcome(self):
        peer = self.server.tcp()
        peer.send(hello(self.server.token(42)))
        [welcome] = peer.received()
        self.assertEqual(welcome["t"], "welcome")
        self.assertEqual(welcome["id"], 1)
        self.assertEqual(welcome["account_id"], 42)
        self.assertEqual(welcome["heartbeat_s"], 10.0)
        self.assertEqual(welcome["server_time"], 1000.0)
        self.assertTrue(welcome["resume_token"].startswith(welcome["session_id"] + "."))
        self.assertFalse(peer.closed)
        session = self.server.manager.sessions[welcome["session_id"]]
        self.assertEqual(session.accountId, 42)
        self.assertEqual(session.clientVersion, "1.2.0")
        self.assertEqual(self.server.listener.events, [("started", session.sessionId)])

    def test_invalidToken(self):
        peer = self.server.tcp()
        peer.send(hello("not-a-token"))
        self.assertClosedWith(peer, errors.INVALID_TOKEN)
        self.assertEqual(self.server.manager.sessions, {})

    def test_expiredToken(self):
        token = self.server.token(3, ttl=5)
        self.server.clock.advance(6)
        peer = self.server.tcp()
        peer.send(hello(token))
        error = self.assertClosedWith(peer, errors.INVALID_TOKEN)
        self.assertIn("expired", error["message"])

    def test_revokedToken(self):
        token = self.server.token(3, sid="gone")
        self.successResultOf(revokeLogin(self.server.volatile, "gone", 60))
        peer = self.server.tcp()
        peer.send(hello(token))
        self.assertClosedWith(peer, errors.INVALID_TOKEN)

    def test_storeDown(self):
        self.server.manager.verifier = FakeVerifier(VolatileUnavailable("down"))
        peer = self.server.tcp()
        peer.send(hello(self.server.token()))
        error = self.assertClosedWith(peer, errors.UNAVAILABLE)
        self.assertEqual(error["retry_after"], 5.0)

    def test_updateRequired(self):
        gate = MinimumVersionGate((2, 0))
        self.server.manager.clientGate = gate
        peer = self.server.tcp()
        peer.send(hello(self.server.token(9)))
        self.assertClosedWith(peer, errors.UPDATE_REQUIRED)
        self.assertEqual(gate.asked, [(9, "1.2.0", "test")])
        ok = self.server.tcp()
        ok.send(hello(self.server.token(9), client_version="2.0.1"))
        self.assertEqual(ok.received()[0]["t"], "welcome")

    def test_noGateAllowsAll(self):
        self.assertIsNone(self.server.manager.gate())
        peer = self.server.tcp()
        peer.send(hello(self.server.token(), client_version="0.0.1"))
        self.assertEqual(peer.received()[0]["t"], "welcome")

    def test_helloTimeout(self):
        peer = self.server.tcp()
        self.server.clock.advance(4.9)
        self.assertFalse(peer.closed)
        self.server.clock.advance(0.2)
        self.assertClosedWith(peer, errors.HELLO_TIMEOUT, requestId=None)

    def test_helloTimeoutWhileVerifying(self):
        pending = Deferred()
        self.server.manager.verifier = FakeVerifier(None)
        self.server.manager.verifier.verify = lambda token: pending
        peer = self.server.tcp()
        peer.send(hello("x"))
        self.server.clock.advance(5.1)
        self.assertClosedWith(peer, errors.HELLO_TIMEOUT, requestId=None)
        # The late answer finds the connection closing and changes nothing.
        pending.callback(None)
        self.assertEqual(self.server.manager.sessions, {})

    def test_requestBeforeHello(self):
        peer = self.server.tcp()
        peer.send({"t": "chat.say", "id": 4})
        self.assertClosedWith(peer, errors.NOT_AUTHENTICATED, requestId=4)

    def test_badHello(self):
        for bad in [{"token": 5}, {"client_version": ["x"]}, {"platform": "p" * 100}]:
            peer = self.server.tcp()
            message = hello(self.server.token())
            message.update(bad)
            peer.send(message)
            self.assertClosedWith(peer, errors.BAD_REQUEST)

    def test_secondHello(self):
        peer = self.server.welcomed()
        peer.send(hello(self.server.token(), id=2))
        [error] = peer.received()
        self.assertEqual((error["code"], error["id"]), (errors.BAD_REQUEST, 2))
        self.assertFalse(peer.closed)

    def test_bye(self):
        peer = self.server.welcomed()
        sid = peer.welcome["session_id"]
        peer.send({"t": "bye", "id": 8})
        self.assertEqual(peer.received(), [{"t": "bye", "id": 8}])
        self.assertTrue(peer.closed)
        peer.lose()
        self.assertEqual(self.server.listener.events[-1], ("ended", sid, "logout"))
        self.assertEqual(self.server.manager.sessions, {})


class DispatchTests(TestCase):
    def setUp(self):
        self.server = Server(self)
        self.calls = []
        router = self.server.manager

        def echo(session, message):
            self.calls.append((session.accountId, message))
            return {"echo": message.get("text")}

        async def later(session, message):
            return {"ok": True}

        def silent(session, message):
            return None

        def boom(session, message):
            raise RuntimeError("handler bug")

        def refuse(session, message):
            raise ProtocolError("test.nope", "not allowed")

        def wrongType(session, message):
            return [1, 2]

        self.pending = Deferred()
        router.addHandlers("test", {
            "test.echo": echo, "test.later": later, "test.silent": silent,
            "test.boom": boom, "test.refuse": refuse, "test.wrong": wrongType,
            "test.pending": lambda session, message: self.pending,
        })
        self.peer = self.server.welcomed(accountId=5)

    def test_reply(self):
        self.peer.send({"t": "test.echo", "id": 7, "text": "hi"})
        self.assertEqual(self.peer.received(), [{"t": "test.echo", "id": 7, "echo": "hi"}])
        self.assertEqual(self.calls[0][0], 5)

    def test_asyncReply(self):
        self.peer.send({"t": "test.later", "id": "a"})
        self.assertEqual(self.peer.received(), [{"t": "test.later", "id": "a", "ok": True}])
        self.peer.send({"t": "test.pending", "id": 3})
        self.assertEqual(self.peer.received(), [])
        self.pending.callback({"done": 1})
        self.assertEqual(self.peer.received(), [{"t": "test.pending", "id": 3, "done": 1}])

    def test_noReply(self):
        self.peer.send({"t": "test.silent", "id": 1})
        self.assertEqual(self.peer.received(), [])

    def test_unknownType(self):
        self.peer.send({"t": "test.nothing", "id": 9})
        [error] = self.peer.received()
        self.assertEqual((error["code"], error["id"]), (errors.UNKNOWN_TYPE, 9))
        self.peer.send({"t": "test.echo", "id": 10})
        self.assertEqual(self.peer.received()[0]["id"], 10)

    def test_raisingHandler(self):
        self.peer.send({"t": "test.boom", "id": 11})
        [error] = self.peer.received()
        self.assertEqual((error["code"], error["id"]), (errors.INTERNAL, 11))
        self.assertNotIn("handler bug", error["message"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertFalse(self.peer.closed)
        self.peer.send({"t": "test.echo", "id": 12})
        self.assertEqual(self.peer.received()[0]["id"], 12)

    def test_failingDeferred(self):
        self.peer.send({"t": "test.pending", "id": 3})
        self.pending.errback(ValueError("async bug"))
        [error] = self.peer.received()
        self.assertEqual((error["code"], error["id"]), (errors.INTERNAL, 3))
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_protocolError(self):
        self.peer.send({"t": "test.refuse", "id": 2})
        self.assertEqual(self.peer.received(), [
            {"t": "error", "id": 2, "code": "test.nope", "message": "not allowed"}])
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_wrongReturnType(self):
        self.peer.send({"t": "test.wrong", "id": 2})
        self.assertEqual(self.peer.received()[0]["code"], errors.INTERNAL)
        self.assertEqual(len(self.flushLoggedErrors(TypeError)), 1)

    def test_addHandlersChecks(self):
        router = self.server.manager
        self.assertRaises(ValueError, router.addHandlers, "chat", {"world.move": print})
        self.assertRaises(ValueError, router.addHandlers, "test", {"test.echo": print})
        self.assertRaises(ValueError, router.addHandlers, "", {".x": print})
        self.assertRaises(TypeError, router.addHandlers, "chat", {"chat.x": 5})
        self.assertIn("test.echo", router.messageTypes)
        self.assertIn("welcome", router.messageTypes)

    def test_sessionSend(self):
        session = self.server.manager.sessions[self.peer.welcome["session_id"]]
        session.send("test.event", {"x": 1})
        session.send("test.event", {"x": 2})
        session.send("test.note", {"x": 3}, replayable=False)
        self.assertEqual(self.peer.received(), [
            {"t": "test.event", "x": 1, "seq": 1},
            {"t": "test.event", "x": 2, "seq": 2},
            {"t": "test.note", "x": 3},
        ])

    def test_sessionClose(self):
        session = self.server.manager.sessions[self.peer.welcome["session_id"]]
        session.close("test.kicked", "kicked by a moderator")
        self.assertEqual(self.peer.received(), [
            {"t": "error", "code": "test.kicked", "message": "kicked by a moderator"}])
        self.assertTrue(self.peer.closed)
        self.assertEqual(self.server.listener.events[-1], ("ended", session.sessionId, "closed"))
        session.send("test.event", {})  # a late send on an ended session is dropped
        self.peer.lose()
        self.assertEqual(self.server.listener.events[-1][2], "closed")

    def test_metrics(self):
        self.peer.send({"t": "test.echo", "id": 1})
        self.peer.send({"t": "test.nothing", "id": 1})
        registry = self.server.node.metrics
        get = registry.get_sample_value
        self.assertEqual(get("mmoshard_session_messages_in_total",
                             {"transport": "tcp", "type": "test.echo"}), 1)
        self.assertEqual(get("mmoshard_session_messages_in_total",
                             {"transport": "tcp", "type": "other"}), 1)
        self.assertEqual(get("mmoshard_session_messages_out_total",
                             {"transport": "tcp", "type": "welcome"}), 1)
        self.assertGreater(get("mmoshard_session_bytes_in_total",
                               {"transport": "tcp", "type": "hello"}), 100)
        self.assertEqual(get("mmoshard_session_errors_total",
                             {"code": errors.UNKNOWN_TYPE}), 1)
        self.assertEqual(get("mmoshard_session_connections", {"transport": "tcp"}), 1)
        self.assertEqual(get("mmoshard_sessions"), 1)


class LivenessTests(TestCase):
    def setUp(self):
        self.server = Server(self, heartbeat=10.0, heartbeat_timeout=30.0)
        self.peer = self.server.welcomed()
        self.clock = self.server.clock

    def test_serverPingsAndMeasuresRTT(self):
        self.clock.advance(10)
        [ping] = self.peer.received()
        self.assertEqual(ping["t"], "ping")
        self.clock.advance(0.25)
        self.peer.send({"t": "pong", "n": ping["n"]})
        session = self.server.manager.sessions[self.peer.welcome["session_id"]]
        self.assertEqual(session.rtt, 0.25)
        registry = self.server.node.metrics
        self.assertEqual(registry.get_sample_value(
            "mmoshard_session_rtt_seconds_count", {"transport": "tcp"}), 1)

    def test_clientPing(self):
        self.peer.send({"t": "ping", "id": 4, "n": 77})
        self.assertEqual(self.peer.received(), [{"t": "pong", "id": 4, "n": 77}])

    def test_answeringPeerStays(self):
        for i in range(10):
            self.clock.advance(10)
            for message in self.peer.received():
                self.peer.send({"t": "pong", "n": message["n"]})
        self.assertFalse(self.peer.closed)

    def test_silentPeerClosed(self):
        for i in range(2):
            self.clock.advance(10)
            self.assertFalse(self.peer.closed)
        self.clock.advance(10)
        self.assertTrue(self.peer.closed)
        self.assertEqual(self.peer.received()[-1]["code"], errors.HEARTBEAT_TIMEOUT)
        sid = self.peer.welcome["session_id"]
        self.peer.lose()
        self.assertEqual(self.server.listener.events[-1], ("linkdead", sid))

    def test_unflushedCloseAborts(self):
        self.peer.send({"t": "bye"})
        self.assertTrue(self.peer.closed)
        self.assertFalse(self.peer.transport.disconnected)
        self.clock.advance(5)
        self.assertTrue(self.peer.transport.disconnected)
