"""Deterministic tests of the session layer over simulated TCP: handshake, dispatch, liveness, limits, resume."""

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from mmoshard.interfaces import IClientGate
from mmoshard.store.errors import VolatileUnavailable
from mmoshard.revocations import revokeLogin
from mmoshard.wire import errors
from mmoshard.wire.codec import decode
from mmoshard.wire.errors import ErrorInfo, ProtocolError
from mmoshard.wire.test.helpers import FakeVerifier, Server, makeVolatile


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


class LimitTests(TestCase):
    def test_rateLimit(self):
        server = Server(self, rate=10.0, burst=5, abuse_limit=3)
        server.manager.addHandlers("t", {"t.x": lambda s, m: {}})
        peer = server.welcomed()
        # The hello took one token of the burst of 5.
        for i in range(4):
            peer.send({"t": "t.x", "id": i})
        self.assertEqual([r["t"] for r in peer.received()], ["t.x"] * 4)
        peer.send({"t": "t.x", "id": 4})
        peer.send({"t": "t.x", "id": 5})
        first, second = peer.received()
        self.assertEqual((first["code"], first["id"]), (errors.RATE_LIMITED, 4))
        self.assertEqual((second["code"], second["id"]), (errors.RATE_LIMITED, 5))
        self.assertEqual(first["retry_after"], 0.1)
        server.clock.advance(0.1)
        peer.send({"t": "t.x", "id": 6})
        self.assertEqual(peer.received()[0]["t"], "t.x")
        self.assertFalse(peer.closed)
        peer.send({"t": "t.x", "id": 7})
        self.assertEqual(peer.received()[-1]["code"], errors.RATE_LIMITED)
        self.assertTrue(peer.closed)

    def test_rateRecovers(self):
        server = Server(self, rate=10.0, burst=2, abuse_limit=3)
        peer = server.welcomed()
        for round in range(5):
            peer.send({"t": "ping"})
            peer.send({"t": "ping"})
            peer.send({"t": "ping"})
            self.assertEqual(peer.received()[-1]["code"], errors.RATE_LIMITED)
            server.clock.advance(1)
        self.assertFalse(peer.closed)

    def test_slowConsumer(self):
        server = Server(self, max_output=1500)
        peer = server.welcomed()
        other = server.welcomed(accountId=2)
        sessions = server.manager.sessions
        session = sessions[peer.welcome["session_id"]]
        otherSession = sessions[other.welcome["session_id"]]
        peer.conn.pauseProducing()
        for i in range(9):
            session.send("t.event", {"pad": "x" * 100})
            otherSession.send("t.event", {"pad": "x" * 100})
        self.assertEqual(peer.received(), [])
        peer.conn.resumeProducing()
        self.assertEqual([m["seq"] for m in peer.received()], list(range(1, 10)))
        peer.conn.pauseProducing()
        for i in range(15):
            session.send("t.event", {"pad": "x" * 100})
            otherSession.send("t.event", {"pad": "x" * 100})
        [error] = peer.received()
        self.assertEqual(error["code"], errors.SLOW_CONSUMER)
        self.assertTrue(peer.closed)
        self.assertEqual(len(other.received()), 24)
        self.assertFalse(other.closed)

    def test_connectionLimits(self):
        server = Server(self, max_connections=3, max_per_ip=2)
        a = server.tcp("10.0.0.1")
        b = server.tcp("10.0.0.1")
        c = server.tcp("10.0.0.1")
        self.assertFalse(a.closed or b.closed)
        self.assertEqual(c.received()[0]["code"], errors.IP_LIMIT)
        self.assertTrue(c.closed)
        c.lose()
        d = server.tcp("10.0.0.2")
        e = server.tcp("10.0.0.3")
        self.assertFalse(d.closed)
        self.assertEqual(e.received()[0]["code"], errors.SERVER_FULL)
        e.lose()
        a.lose()
        f = server.tcp("10.0.0.3")
        self.assertFalse(f.closed)


class ResumeTests(TestCase):
    def setUp(self):
        self.server = Server(self, resume_grace=30.0, replay_buffer=4)
        self.peer = self.server.welcomed()
        self.sid = self.peer.welcome["session_id"]
        self.session = self.server.manager.sessions[self.sid]

    def resume(self, token=None, lastSeq=0):
        peer = self.server.tcp()
        peer.send({"t": "resume", "id": 1,
                   "resume_token": token or self.peer.welcome["resume_token"],
                   "last_seq": lastSeq})
        return peer

    def test_resumeReplays(self):
        self.session.send("t.event", {"n": 1})
        self.peer.received()
        self.peer.lose()
        self.assertTrue(self.session.linkDead)
        self.session.send("t.event", {"n": 2})
        self.session.send("t.event", {"n": 3})
        self.server.clock.advance(29)
        peer = self.resume(lastSeq=1)
        replies = peer.received()
        self.assertEqual(replies[0]["t"], "resumed")
        self.assertEqual(replies[0]["session_id"], self.sid)
        self.assertEqual(replies[0]["replayed"], 2)
        self.assertNotEqual(replies[0]["resume_token"], self.peer.welcome["resume_token"])
        self.assertEqual([(m["seq"], m["n"]) for m in replies[1:]], [(2, 2), (3, 3)])
        self.assertFalse(self.session.linkDead)
        # Past the original grace period: the resume cancelled the expiry.
        self.server.clock.advance(2)
        self.assertEqual(self.server.listener.events, [
            ("started", self.sid), ("linkdead", self.sid), ("resumed", self.sid)])
        self.session.send("t.event", {"n": 4})
        self.assertEqual(peer.received()[0]["seq"], 4)
        # The old token was rotated away.
        self.assertEqual(self.resume().received()[0]["code"], errors.RESUME_FAILED)

    def test_replayBufferBounds(self):
        """Only the last replay_buffer replayable messages can be replayed; older gaps fail."""
        for n in range(1, 7):
            self.session.send("t.event", {"n": n})
            self.session.send("t.reply", {}, replayable=False)
        self.assertIsNone(self.session.replayAfter(1), "seq 2 fell out of a 4-message buffer")
        replay = self.session.replayAfter(2)
        self.assertEqual([kind for payload, kind in replay], ["t.event"] * 4)
        self.assertEqual([decode(payload)["seq"] for payload, kind in replay], [3, 4, 5, 6])
        self.assertEqual([decode(p)["n"] for p, k in self.session.replayAfter(5)], [6])
        self.assertEqual(self.session.replayAfter(6), [])

    def test_resumeBeforeServerNoticedLoss(self):
        peer = self.resume()
        self.assertEqual(peer.received()[0]["t"], "resumed")
        self.assertTrue(self.peer.transport.disconnected)
        # Whatever still arrives on the retired link is ignored.
        self.peer.send({"t": "bye"})
        self.assertEqual(self.peer.received(), [])
        self.peer.lose()
        self.assertFalse(self.session.linkDead)
        self.session.send("t.event", {})
        self.assertEqual(peer.received()[0]["seq"], 1)

    def test_resumeAfterExpiry(self):
        self.peer.lose()
        self.server.clock.advance(30)
        self.assertEqual(self.server.listener.events[-1], ("ended", self.sid, "expired"))
        peer = self.resume()
        self.assertEqual(peer.received()[0]["code"], errors.RESUME_FAILED)
        self.assertTrue(peer.closed)
        registry = self.server.node.metrics
        self.assertEqual(registry.get_sample_value("mmoshard_session_link_dead"), 0)

    def test_resumeWithGap(self):
        self.peer.lose()
        for n in range(6):
            self.session.send("t.event", {"n": n})
        peer = self.resume(lastSeq=1)
        self.assertEqual(peer.received()[0]["code"], errors.RESUME_FAILED)
        self.assertEqual(self.server.listener.events[-1], ("ended", self.sid, "resume_failed"))

    def test_resumeBadToken(self):
        for token in ["nope", self.sid + ".wrong", ".", self.sid]:
            peer = self.resume(token=token)
            self.assertEqual(peer.received()[0]["code"], errors.RESUME_FAILED)
        peer = self.server.tcp()
        peer.send({"t": "resume", "resume_token": 3, "last_seq": "x"})
        self.assertEqual(peer.received()[0]["code"], errors.BAD_REQUEST)

    def test_noGrace(self):
        server = Server(self, resume_grace=0.0)
        peer = server.welcomed()
        peer.lose()
        self.assertEqual(server.listener.events[-1][2], "disconnected")


class ReplacedTests(TestCase):
    def test_sameProcess(self):
        server = Server(self)
        first = server.welcomed(accountId=7)
        second = server.welcomed(accountId=7)
        self.assertEqual(first.received()[-1]["code"], errors.REPLACED)
        self.assertTrue(first.closed)
        first.lose()
        self.assertFalse(second.closed)
        sid1 = first.welcome["session_id"]
        sid2 = second.welcome["session_id"]
        self.assertEqual(server.listener.events, [
            ("started", sid1), ("ended", sid1, "replaced"), ("started", sid2)])
        self.assertEqual(list(server.manager.sessions), [sid2])

    def test_otherAccountUntouched(self):
        server = Server(self)
        first = server.welcomed(accountId=7)
        server.welcomed(accountId=8)
        self.assertEqual(first.received(), [])

    def test_acrossProcesses(self):
        clock = Clock()
        volatile = makeVolatile(clock)
        a = Server(self, clock=clock, volatile=volatile, nodeId="proc-a")
        b = Server(self, clock=clock, volatile=volatile, nodeId="proc-b")
        first = a.welcomed(accountId=7)
        second = b.welcomed(accountId=7)
        clock.advance(0)  # pub/sub delivers from the clock
        self.assertEqual(first.received()[-1]["code"], errors.REPLACED)
        self.assertEqual(a.listener.events[-1][2], "replaced")
        self.assertEqual(list(a.manager.sessions), [])
        self.assertFalse(second.closed)
        # The loser's release does not remove the winner's claim.
        third = a.welcomed(accountId=7)
        clock.advance(0)
        self.assertEqual(second.received()[-1]["code"], errors.REPLACED)
        self.assertFalse(third.closed)

    def test_disabled(self):
        server = Server(self, one_session_per_account=False)
        first = server.welcomed(accountId=7)
        server.welcomed(accountId=7)
        self.assertEqual(first.received(), [])
        self.assertEqual(len(server.manager.sessions), 2)


class ShutdownTests(TestCase):
    def test_shutdown(self):
        server = Server(self)
        peer = server.welcomed()
        waiting = server.tcp("10.0.0.9")
        sid = peer.welcome["session_id"]
        d = Deferred.fromCoroutine(server.manager.shutdown(2.0))
        replies = peer.received()
        self.assertEqual(replies[0]["t"], "server.shutdown")
        self.assertTrue(peer.closed and waiting.closed)
        self.assertEqual(server.listener.events[-1], ("ended", sid, "shutdown"))
        self.assertNoResult(d)
        peer.lose()
        self.assertNoResult(d)
        server.clock.advance(2)
        self.assertTrue(waiting.transport.disconnected)
        waiting.lose()
        self.successResultOf(d)
        late = server.tcp()
        self.assertEqual(late.received()[0]["code"], errors.UNAVAILABLE)


class SendManyTests(TestCase):
    """sendEncodedMany: what one sendEncoded per session would do, in one pass."""

    def test_likeSendEncoded(self):
        from mmoshard.wire.codec import encode
        from mmoshard.wire.output import sendEncodedMany

        server = Server(self, max_output=1 << 20)
        sessions = server.manager.sessions
        tcp = [server.welcomed(accountId=i) for i in (1, 2, 3, 4)]
        ws = server.welcomed(accountId=5, transport="ws")
        live, paused, linkDead, ended = (sessions[p.welcome["session_id"]] for p in tcp)
        wsSession = sessions[ws.welcome["session_id"]]
        tcp[1].conn.pauseProducing()
        tcp[2].lose()
        server.manager.endSession(ended, "logout")
        for p in tcp + [ws]:
            p.received()

        class Other:
            def __init__(self):
                self.got = []

            def sendEncoded(self, payload, type):
                self.got.append((payload, type))

        other = Other()
        stats = server.manager.metrics.forTransport
        before = {t: (stats(t).messagesOut.get("t.u", 0), stats(t).bytesOut.get("t.u", 0))
                  for t in ("tcp", "websocket")}
        payloads = [encode({"t": "t.u", "n": i}) for i in range(6)]
        sendEncodedMany(list(zip([live, paused, linkDead, ended, wsSession, other], payloads)),
                        "t.u")

        self.assertEqual(tcp[0].received(), [{"t": "t.u", "n": 0}])
        self.assertEqual(ws.received(), [{"t": "t.u", "n": 4}])
        self.assertEqual(other.got, [(payloads[5], "t.u")])
        self.assertEqual(tcp[1].received(), [])
        tcp[1].conn.resumeProducing()
        self.assertEqual(tcp[1].received(), [{"t": "t.u", "n": 1}])
        self.assertEqual(tcp[3].received(), [])
        # Counted per transport as sendEncoded would: the live and the paused
        # TCP sessions, the WebSocket one; not the dropped ones.
        tcpCount, tcpBytes = before["tcp"]
        self.assertEqual(stats("tcp").messagesOut["t.u"], tcpCount + 2)
        self.assertEqual(stats("tcp").bytesOut["t.u"],
                         tcpBytes + len(payloads[0]) + len(payloads[1]))
        wsCount, wsBytes = before["websocket"]
        self.assertEqual(stats("websocket").messagesOut["t.u"], wsCount + 1)
        self.assertEqual(stats("websocket").bytesOut["t.u"], wsBytes + len(payloads[4]))
