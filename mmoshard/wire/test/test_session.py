"""Deterministic tests of the session layer over simulated TCP: handshake, dispatch, liveness, and the interfaces its objects provide."""

from twisted.internet.defer import Deferred, succeed
from twisted.trial.unittest import TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from mmoshard.interfaces import IClientGate, IMessageRouter, ISession, ISessionListener
from mmoshard.store.errors import SQLUnavailable, VolatileUnavailable
from mmoshard.revocations import revokeLogin
from mmoshard.wire import errors
from mmoshard.wire.errors import ErrorInfo, ProtocolError
from mmoshard.wire.handshake import BYE_WAIT
from mmoshard.wire.test.helpers import FakeVerifier, RecordingListener, Server


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

    def maintenance(self):
        return None


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
        """
        A valid hello gets a welcome with the session id, account, heartbeat, resume token
        and server time; the session is registered and listeners hear it started.
        """
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
        """
        A hello with a token that does not decode is closed with auth.invalid_token and
        opens no session.
        """
        peer = self.server.tcp()
        peer.send(hello("not-a-token"))
        self.assertClosedWith(peer, errors.INVALID_TOKEN)
        self.assertEqual(self.server.manager.sessions, {})

    def test_expiredToken(self):
        """A hello with an expired token is closed with auth.invalid_token saying it expired."""
        token = self.server.token(3, ttl=5)
        self.server.clock.advance(6)
        peer = self.server.tcp()
        peer.send(hello(token))
        error = self.assertClosedWith(peer, errors.INVALID_TOKEN)
        self.assertIn("expired", error["message"])

    def test_revokedToken(self):
        """A hello with a token whose login was revoked is closed with auth.invalid_token."""
        token = self.server.token(3, sid="gone")
        self.successResultOf(revokeLogin(self.server.volatile, "gone", 60))
        peer = self.server.tcp()
        peer.send(hello(token))
        self.assertClosedWith(peer, errors.INVALID_TOKEN)

    def test_storeDown(self):
        """
        A hello that cannot be checked because the volatile store is down is closed with
        unavailable and a retry hint of 5 s.
        """
        self.server.manager.verifier = FakeVerifier(VolatileUnavailable("down"))
        peer = self.server.tcp()
        peer.send(hello(self.server.token()))
        error = self.assertClosedWith(peer, errors.UNAVAILABLE)
        self.assertEqual(error["retry_after"], 5.0)

    def test_updateRequired(self):
        """
        The client gate is asked with the account, version and platform; a refused client
        version is closed with its error, an accepted one welcomed.
        """
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
        """Without an IClientGate every client version is welcomed."""
        self.assertIsNone(self.server.manager.gate())
        peer = self.server.tcp()
        peer.send(hello(self.server.token(), client_version="0.0.1"))
        self.assertEqual(peer.received()[0]["t"], "welcome")

    def test_helloTimeout(self):
        """
        A connection that sends no hello within hello_timeout is closed with hello_timeout,
        not before.
        """
        peer = self.server.tcp()
        self.server.clock.advance(4.9)
        self.assertFalse(peer.closed)
        self.server.clock.advance(0.2)
        self.assertClosedWith(peer, errors.HELLO_TIMEOUT, requestId=None)

    def test_helloTimeoutWhileVerifying(self):
        """
        The hello timeout also closes a connection whose token check is still pending; the
        late answer opens no session.
        """
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
        """
        A routed message before hello is closed with not_authenticated, answering its
        request id.
        """
        peer = self.server.tcp()
        peer.send({"t": "chat.say", "id": 4})
        self.assertClosedWith(peer, errors.NOT_AUTHENTICATED, requestId=4)

    def test_badHello(self):
        """
        A hello whose token, client_version or platform has the wrong type or length is
        closed with bad_request.
        """
        for bad in [{"token": 5}, {"client_version": ["x"]}, {"platform": "p" * 100}]:
            peer = self.server.tcp()
            message = hello(self.server.token())
            message.update(bad)
            peer.send(message)
            self.assertClosedWith(peer, errors.BAD_REQUEST)

    def test_secondHello(self):
        """A hello inside a session gets bad_request for its request id and the session goes on."""
        peer = self.server.welcomed()
        peer.send(hello(self.server.token(), id=2))
        [error] = peer.received()
        self.assertEqual((error["code"], error["id"]), (errors.BAD_REQUEST, 2))
        self.assertFalse(peer.closed)

    def test_bye(self):
        """bye is answered, the connection closed and the session ended with reason logout."""
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

        def refuseWithDetails(session, message):
            raise ProtocolError("test.later", "not yet", retry_after=3.0,
                                details={"reset_at": 100.5, "code": "ignored"})

        def wrongType(session, message):
            return [1, 2]

        self.pending = Deferred()
        router.addHandlers("test", {
            "test.echo": echo, "test.later": later, "test.silent": silent,
            "test.boom": boom, "test.refuse": refuse, "test.wrong": wrongType,
            "test.details": refuseWithDetails,
            "test.pending": lambda session, message: self.pending,
        })
        self.peer = self.server.welcomed(accountId=5)

    def test_reply(self):
        """
        A handler's dict is sent back as a reply of the request's type, with its request id;
        the handler sees the session's account.
        """
        self.peer.send({"t": "test.echo", "id": 7, "text": "hi"})
        self.assertEqual(self.peer.received(), [{"t": "test.echo", "id": 7, "echo": "hi"}])
        self.assertEqual(self.calls[0][0], 5)

    def test_asyncReply(self):
        """
        Coroutine and Deferred handlers reply when they finish, with the request's type and
        id.
        """
        self.peer.send({"t": "test.later", "id": "a"})
        self.assertEqual(self.peer.received(), [{"t": "test.later", "id": "a", "ok": True}])
        self.peer.send({"t": "test.pending", "id": 3})
        self.assertEqual(self.peer.received(), [])
        self.pending.callback({"done": 1})
        self.assertEqual(self.peer.received(), [{"t": "test.pending", "id": 3, "done": 1}])

    def test_noReply(self):
        """A handler that returns None sends nothing."""
        self.peer.send({"t": "test.silent", "id": 1})
        self.assertEqual(self.peer.received(), [])

    def test_unknownType(self):
        """
        An unregistered type in a session gets unknown_type for its request id; the
        connection keeps working.
        """
        self.peer.send({"t": "test.nothing", "id": 9})
        [error] = self.peer.received()
        self.assertEqual((error["code"], error["id"]), (errors.UNKNOWN_TYPE, 9))
        self.peer.send({"t": "test.echo", "id": 10})
        self.assertEqual(self.peer.received()[0]["id"], 10)

    def test_raisingHandler(self):
        """
        A handler that raises gets internal for its request without the exception's text,
        the traceback is logged, and the connection stays open.
        """
        self.peer.send({"t": "test.boom", "id": 11})
        [error] = self.peer.received()
        self.assertEqual((error["code"], error["id"]), (errors.INTERNAL, 11))
        self.assertNotIn("handler bug", error["message"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertFalse(self.peer.closed)
        self.peer.send({"t": "test.echo", "id": 12})
        self.assertEqual(self.peer.received()[0]["id"], 12)

    def test_failingDeferred(self):
        """A handler's Deferred that fails gets internal for its request and is logged."""
        self.peer.send({"t": "test.pending", "id": 3})
        self.pending.errback(ValueError("async bug"))
        [error] = self.peer.received()
        self.assertEqual((error["code"], error["id"]), (errors.INTERNAL, 3))
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_byeAnswersRequestsInFlightFirst(self):
        """
        bye after a request still in flight: its answer comes first, then
        bye's reply and the logout; what is sent after bye is not handled.
        """
        sid = self.peer.welcome["session_id"]
        self.peer.send({"t": "test.pending", "id": 3})
        self.peer.send({"t": "bye", "id": 8})
        self.peer.send({"t": "test.echo", "id": 9, "text": "late"})
        self.assertEqual(self.peer.received(), [])
        self.assertFalse(self.peer.closed)
        self.pending.callback({"done": 1})
        self.assertEqual(self.peer.received(), [{"t": "test.pending", "id": 3, "done": 1},
                                                {"t": "bye", "id": 8}])
        self.assertTrue(self.peer.closed)
        self.assertEqual(self.calls, [])
        self.assertEqual(self.server.listener.events[-1], ("ended", sid, "logout"))

    def test_byeNamesRequestsNotAnsweredInTime(self):
        """
        A request still unanswered BYE_WAIT seconds after bye is named in
        bye's reply as unanswered, and its late answer is not sent after it.
        """
        self.peer.send({"t": "test.pending", "id": 3})
        self.peer.send({"t": "bye", "id": 8})
        self.server.clock.advance(BYE_WAIT)
        self.assertEqual(self.peer.received(), [{"t": "bye", "id": 8, "unanswered": [3]}])
        self.assertTrue(self.peer.closed)
        self.pending.callback({"done": 1})
        self.assertEqual(self.peer.received(), [])
        self.assertEqual(self.server.manager.sessions, {})

    def test_linkLostWhileByeWaits(self):
        """A link that drops while bye waits still logs the session out, with no grace."""
        sid = self.peer.welcome["session_id"]
        self.peer.send({"t": "test.pending", "id": 3})
        self.peer.send({"t": "bye", "id": 8})
        self.peer.lose()
        self.pending.callback({"done": 1})
        self.assertEqual(self.server.listener.events[-1], ("ended", sid, "logout"))
        self.assertEqual(self.server.manager.sessions, {})

    def test_noAnswerAfterTheClosingError(self):
        """A connection closed with a typed error gets no late answer after that error."""
        self.peer.send({"t": "test.pending", "id": 3})
        self.peer.conn.fail(ErrorInfo(errors.BAD_FRAME, "test"))
        self.pending.errback(ProtocolError("test.nope", "not allowed"))
        [error] = self.peer.received()
        self.assertEqual(error["code"], errors.BAD_FRAME)

    def test_storeUnavailable(self):
        """
        A handler failing because the SQL or the volatile store did not answer
        within its deadline gets server.unavailable with retry_after for its
        request, logs no traceback, and the connection stays open.
        """
        for requestId, failure in [(4, SQLUnavailable("no answer within 1.0s")),
                                   (5, VolatileUnavailable("no answer within 1.0s"))]:
            self.pending = Deferred()
            self.peer.send({"t": "test.pending", "id": requestId})
            self.pending.errback(failure)
            [error] = self.peer.received()
            self.assertEqual((error["code"], error["id"], error["retry_after"]),
                             (errors.UNAVAILABLE, requestId, errors.UNAVAILABLE_RETRY_AFTER))
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertFalse(self.peer.closed)

    def test_protocolError(self):
        """
        A handler raising ProtocolError sends its typed error for the request and logs
        nothing.
        """
        self.peer.send({"t": "test.refuse", "id": 2})
        self.assertEqual(self.peer.received(), [
            {"t": "error", "id": 2, "code": "test.nope", "message": "not allowed"}])
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_protocolErrorDetails(self):
        """A ProtocolError's details are extra fields of its error; they never replace code, message or retry_after."""
        self.peer.send({"t": "test.details", "id": 3})
        self.assertEqual(self.peer.received(), [
            {"t": "error", "id": 3, "code": "test.later", "message": "not yet",
             "retry_after": 3.0, "reset_at": 100.5}])

    def test_wrongReturnType(self):
        """
        A handler returning neither a dict, None nor a Deferred gets internal and a logged
        TypeError.
        """
        self.peer.send({"t": "test.wrong", "id": 2})
        self.assertEqual(self.peer.received()[0]["code"], errors.INTERNAL)
        self.assertEqual(len(self.flushLoggedErrors(TypeError)), 1)

    def test_addHandlersChecks(self):
        """
        addHandlers refuses types outside the namespace, duplicate types, an empty namespace
        and non-callable handlers; messageTypes lists built-in and registered types.
        """
        router = self.server.manager
        self.assertRaises(ValueError, router.addHandlers, "chat", {"world.move": print})
        self.assertRaises(ValueError, router.addHandlers, "test", {"test.echo": print})
        self.assertRaises(ValueError, router.addHandlers, "", {".x": print})
        self.assertRaises(TypeError, router.addHandlers, "chat", {"chat.x": 5})
        self.assertIn("test.echo", router.messageTypes)
        self.assertIn("welcome", router.messageTypes)

    def test_sessionSend(self):
        """
        Session.send numbers replayable messages from 1 and sends non-replayable ones
        without a seq.
        """
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
        """
        Session.close sends its error, closes the connection and ends the session with
        reason closed; later sends are dropped.
        """
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
        """
        Messages in and out, bytes, errors by code, connections and sessions are exported,
        unknown types counted as other.
        """
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
        """
        The server pings every heartbeat and records the pong's round-trip time on the
        session and in the RTT histogram.
        """
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

    def test_unexpectedPongIgnored(self):
        """A pong that answers no outstanding ping, or comes before hello, records no round trip."""
        self.clock.advance(10)
        [ping] = self.peer.received()
        self.peer.send({"t": "pong", "n": ping["n"] + 1})
        session = self.server.manager.sessions[self.peer.welcome["session_id"]]
        self.assertIsNone(session.rtt)
        early = self.server.tcp()
        early.send({"t": "pong", "n": 1})
        self.assertEqual(early.received(), [])
        self.assertFalse(early.closed)
        registry = self.server.node.metrics
        self.assertIsNone(registry.get_sample_value(
            "mmoshard_session_rtt_seconds_count", {"transport": "tcp"}))

    def test_clientPing(self):
        """A client's ping is answered with a pong carrying its nonce and request id."""
        self.peer.send({"t": "ping", "id": 4, "n": 77})
        self.assertEqual(self.peer.received(), [{"t": "pong", "id": 4, "n": 77}])

    def test_answeringPeerStays(self):
        """A peer that answers every ping stays connected past many heartbeat timeouts."""
        for i in range(10):
            self.clock.advance(10)
            for message in self.peer.received():
                self.peer.send({"t": "pong", "n": message["n"]})
        self.assertFalse(self.peer.closed)

    def test_silentPeerClosed(self):
        """
        A peer silent for heartbeat_timeout is closed with heartbeat_timeout and its session
        left link-dead.
        """
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
        """A closing connection the peer does not let flush is aborted after the close timeout."""
        self.peer.send({"t": "bye"})
        self.assertTrue(self.peer.closed)
        self.assertFalse(self.peer.transport.disconnected)
        self.clock.advance(5)
        self.assertTrue(self.peer.transport.disconnected)


class InterfaceTests(TestCase):
    def test_providers(self):
        """The session manager, sessions and this package's test fakes provide their interfaces."""
        server = Server(self)
        peer = server.welcomed()
        verifyObject(IMessageRouter, server.manager)
        verifyObject(ISession, server.manager.sessions[peer.welcome["session_id"]])
        verifyObject(ISessionListener, server.listener)
        verifyObject(ISessionListener, RecordingListener())
        verifyObject(IClientGate, MinimumVersionGate((1, 0)))
