"""Deterministic tests of the session layer's limits and output over simulated TCP: rate, connections, back-pressure, sendEncodedMany."""

from twisted.trial.unittest import TestCase

from mmoshard.wire import errors
from mmoshard.wire.codec import encode
from mmoshard.wire.output import sendEncodedMany
from mmoshard.wire.test.helpers import Server


class LimitTests(TestCase):
    def test_rateLimit(self):
        """
        Past the burst, messages get rate_limited with retry_after 1/rate; refilled tokens
        let messages through again; abuse_limit refusals in a row close the connection.
        """
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

    def test_busyPastMaxPending(self):
        """
        With max_pending requests of any session waiting on their handlers, the next is
        answered server.busy (retry_after 1 s) without reaching its handler; once one
        answers, requests are served again; the connection stays open throughout.
        """
        from twisted.internet.defer import Deferred

        server = Server(self, max_pending=2, rate=100.0, burst=100)
        waiting = []

        def slow(session, message):
            waiting.append(Deferred())
            return waiting[-1]

        server.manager.addHandlers("t", {"t.slow": slow})
        one, two = server.welcomed(accountId=1), server.welcomed(accountId=2)
        one.send({"t": "t.slow", "id": 1})
        two.send({"t": "t.slow", "id": 1})
        two.send({"t": "t.slow", "id": 2})
        [busy] = two.received()
        self.assertEqual((busy["code"], busy["id"], busy["retry_after"]), (errors.BUSY, 2, 1.0))
        self.assertEqual(len(waiting), 2)
        waiting[0].callback({"done": 1})
        self.assertEqual(one.received(), [{"t": "t.slow", "id": 1, "done": 1}])
        two.send({"t": "t.slow", "id": 3})
        self.assertEqual(len(waiting), 3)
        self.assertEqual(two.received(), [])
        waiting[1].errback(RuntimeError("a failed handler is answered too"))
        waiting[2].callback({"done": 3})
        self.assertEqual([r.get("code", r["t"]) for r in two.received()], [errors.INTERNAL, "t.slow"])
        self.assertEqual(server.manager.pending, 0)
        self.assertFalse(one.closed or two.closed)
        self.flushLoggedErrors(RuntimeError)

    def test_integerBeyondColumn(self):
        """
        A message holding an integer beyond signed 64 bits (what no id column
        holds) is a protocol.bad_request answering its id, before any handler
        sees it, counted against the rate limit; the connection stays.  On
        main it reached the handler (chat.unblock: a 500 internal from SQLite).
        """
        server = Server(self, rate=10.0, burst=3, abuse_limit=100)
        seen = []
        server.manager.addHandlers("t", {"t.x": lambda s, m: seen.append(m) or {}})
        peer = server.welcomed()
        peer.send({"t": "t.x", "id": 1, "character_id": 2**64 - 1})
        [reply] = peer.received()
        self.assertEqual((reply["t"], reply["code"], reply["id"]),
                         ("error", errors.BAD_REQUEST, 1))
        self.assertEqual(seen, [])
        peer.send({"t": "t.x", "id": 2, "character_id": 2**63})
        peer.send({"t": "t.x", "id": 3, "character_id": 2**63})
        self.assertEqual([r["code"] for r in peer.received()],
                         [errors.BAD_REQUEST, errors.RATE_LIMITED])
        server.clock.advance(1)
        peer.send({"t": "t.x", "id": 4, "character_id": 2**63 - 1})
        self.assertEqual(peer.received()[0]["t"], "t.x")
        self.assertFalse(peer.closed)

    def test_rateRecovers(self):
        """
        Occasional bursts over the limit, with the bucket refilling between them, are
        refused but never closed.
        """
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
        """
        A paused connection queues its output and flushes it in order on resume; past
        max_output it is closed with slow_consumer while other connections are untouched.
        """
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

    def test_pausedAgainMidFlush(self):
        """A transport that pauses again while the backlog is flushed keeps the rest, in order, for the next resume."""
        server = Server(self)
        peer = server.welcomed()
        session = server.manager.sessions[peer.welcome["session_id"]]
        conn = peer.conn
        conn.pauseProducing()
        for n in range(4):
            session.send("t.event", {"n": n})
        write = peer.protocol.writeFrame

        def writeAndPause(payload):
            write(payload)
            conn.pauseProducing()

        self.patch(peer.protocol, "writeFrame", writeAndPause)
        conn.resumeProducing()
        self.assertEqual([m["n"] for m in peer.received()], [0])
        self.patch(peer.protocol, "writeFrame", write)
        session.send("t.event", {"n": 4})
        conn.resumeProducing()
        self.assertEqual([m["n"] for m in peer.received()], [1, 2, 3, 4])
        self.assertFalse(peer.closed)

    def test_connectionLimits(self):
        """
        Connections over max_per_ip or max_connections are refused with ip_limit and
        server_full; a closed connection frees its place.
        """
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


class SendManyTests(TestCase):
    """sendEncodedMany: what one sendEncoded per session would do, in one pass."""

    def test_likeSendEncoded(self):
        """
        sendEncodedMany writes to live connections, queues for paused ones, drops link-dead
        and ended sessions, calls other ISession providers' sendEncoded, and counts per
        transport as sendEncoded would.
        """
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
