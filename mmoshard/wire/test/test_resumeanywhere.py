"""Deterministic tests of resuming a session on another node of the role, from the volatile store."""

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from mmoshard.wire import errors
from mmoshard.wire.resumestore import NODES_KEY, bufferKey, recordKey
from mmoshard.wire.test.helpers import Server, makeVolatile


class ResumeAnywhereTests(TestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1000)
        self.volatile = makeVolatile(self.clock)
        self.a = Server(self, clock=self.clock, volatile=self.volatile, nodeId="node-a",
                        resume_grace=30.0, replay_buffer=4)
        self.b = Server(self, clock=self.clock, volatile=self.volatile, nodeId="node-b",
                        resume_grace=30.0, replay_buffer=4)
        self.peer = self.a.welcomed(accountId=7)
        self.sid = self.peer.welcome["session_id"]
        self.session = self.a.manager.sessions[self.sid]
        self.clock.advance(0)

    def resumeOn(self, server, token=None, lastSeq=0):
        peer = server.tcp()
        peer.send({"t": "resume", "id": 1,
                   "resume_token": token or self.peer.welcome["resume_token"],
                   "last_seq": lastSeq})
        self.clock.advance(0)
        return peer

    def stored(self, key):
        return self.successResultOf(self.volatile.hgetall(key))

    def test_bufferWrittenOncePerTurn(self):
        """
        Replayable events reach the store in one write per session per reactor turn, keep
        only the last replay_buffer of them, and non-replayable ones never reach it.
        """
        writes = self.a.manager.resumeStore.writesSent
        for n in range(1, 7):
            self.session.send("t.event", {"n": n})
            self.session.send("world.u", {}, replayable=False)
        self.clock.advance(0)
        self.assertEqual(self.a.manager.resumeStore.writesSent - writes, 1)
        self.assertEqual(sorted(int(k) for k in self.stored(bufferKey(self.sid))), [3, 4, 5, 6])
        self.assertEqual(self.stored(recordKey(self.sid))["seq"], b"6")
        self.session.send("t.event", {"n": 7})
        self.clock.advance(0)
        self.assertEqual(sorted(int(k) for k in self.stored(bufferKey(self.sid))), [4, 5, 6, 7])

    def test_sessionsShareTheTurnsWrite(self):
        """Two sessions sending events in one reactor turn are stored by one write, each its own buffer."""
        other = self.a.welcomed(accountId=8)
        otherSid = other.welcome["session_id"]
        self.clock.advance(0)
        writes = self.a.manager.resumeStore.writesSent
        self.session.send("t.event", {"n": 1})
        self.a.manager.sessions[otherSid].send("t.event", {"n": 2})
        self.clock.advance(0)
        self.assertEqual(self.a.manager.resumeStore.writesSent - writes, 1)
        self.assertEqual(len(self.stored(bufferKey(self.sid))), 1)
        self.assertEqual(len(self.stored(bufferKey(otherSid))), 1)

    def test_resumeOnOtherNode(self):
        """
        A session dropped on node A resumes on node B with its token: B replays what the
        client missed, says moved, continues the seq; A lets go with reason moved, and the
        account's owners hash names B.
        """
        self.session.send("t.event", {"n": 1})
        self.peer.received()
        self.peer.lose()
        self.session.send("t.event", {"n": 2})
        self.session.send("t.event", {"n": 3})
        self.clock.advance(0)
        peer = self.resumeOn(self.b, lastSeq=1)
        replies = peer.received()
        self.assertEqual(replies[0]["t"], "resumed")
        self.assertTrue(replies[0]["moved"])
        self.assertEqual(replies[0]["replayed"], 2)
        self.assertEqual([(m["seq"], m["n"]) for m in replies[1:]], [(2, 2), (3, 3)])
        self.assertEqual(self.a.listener.events[-1], ("ended", self.sid, "moved"))
        self.assertEqual(self.b.listener.events, [("moved", self.sid, "node-a")])
        moved = self.b.manager.sessions[self.sid]
        moved.send("t.event", {"n": 4})
        self.assertEqual(peer.received()[0]["seq"], 4)
        self.clock.advance(0)
        self.assertEqual(self.stored(recordKey(self.sid))["node"], b"node-b")
        owners = self.stored("session:owners:7")
        self.assertEqual(list(owners), [f"{self.sid}@node-b"])
        # The token B handed out works (on A too, which takes it back).
        again = self.resumeOn(self.a, token=replies[0]["resume_token"], lastSeq=4)
        self.assertEqual(again.received()[0]["t"], "resumed")
        self.assertEqual(self.b.listener.events[-1], ("ended", self.sid, "moved"))

    def test_oldTokenRefused(self):
        """The token used for a move no longer works anywhere: each resume rotates it."""
        self.peer.lose()
        self.assertEqual(self.resumeOn(self.b).received()[0]["t"], "resumed")
        for server in (self.a, self.b):
            peer = self.resumeOn(server)
            self.assertEqual(peer.received()[0]["code"], errors.RESUME_FAILED)

    def test_forgedSecretRefused(self):
        """A right session id with a wrong secret is refused and leaves the session on A."""
        peer = self.resumeOn(self.b, token=self.sid + ".forged")
        self.assertEqual(peer.received()[0]["code"], errors.RESUME_FAILED)
        self.assertIn(self.sid, self.a.manager.sessions)
        self.assertEqual(self.stored(recordKey(self.sid))["node"], b"node-a")

    def test_crashedNodeWithinGrace(self):
        """
        A node that stopped stamping its liveness (a crash) has its sessions resumable
        elsewhere for the grace after its last stamp, and not after.
        """
        self.session.send("t.event", {"n": 1})
        self.clock.advance(0)
        self.a.manager.resumeStore.stop()  # node A "crashes": no more stamps
        self.clock.advance(20)
        peer = self.resumeOn(self.b, lastSeq=0)
        replies = peer.received()
        self.assertEqual([m["t"] for m in replies], ["resumed", "t.event"])
        # A second crash, this time of B, resumed too late.
        self.b.manager.resumeStore.stop()
        c = Server(self, clock=self.clock, volatile=self.volatile, nodeId="node-c",
                   resume_grace=30.0, replay_buffer=4)
        self.clock.advance(40)
        late = c.tcp()
        late.send({"t": "resume", "resume_token": replies[0]["resume_token"], "last_seq": 1})
        self.clock.advance(0)
        self.assertEqual(late.received()[0]["code"], errors.RESUME_FAILED)

    def test_clientAheadOfStore(self):
        """
        When the crashed node sent events it had not stored yet, the client's last_seq is
        ahead of the store: the resume succeeds with nothing replayed and seq continues.
        """
        self.session.send("t.event", {"n": 1})
        self.session.send("t.event", {"n": 2})  # both in this turn: not stored yet
        self.a.manager.resumeStore.stop()
        self.a.manager.resumeStore.pending.clear()
        peer = self.resumeOn(self.b, lastSeq=2)
        replies = peer.received()
        self.assertEqual((replies[0]["t"], replies[0]["replayed"]), ("resumed", 0))
        self.b.manager.sessions[self.sid].send("t.event", {})
        self.assertEqual(peer.received()[0]["seq"], 3)

    def test_expiryAfterMoveIsNotALogout(self):
        """
        If A's grace runs out after B took the session but before A heard of it, A ends it
        with moved, not expired.
        """
        self.peer.lose()
        self.a.manager.resumeStore.stop()
        self.successResultOf(self.volatile.hset(recordKey(self.sid), {"node": "node-b"}))
        self.clock.advance(30)
        self.assertEqual(self.a.listener.events[-1], ("ended", self.sid, "moved"))

    def test_endReleasesRecord(self):
        """A session that ends for good leaves no record or buffer behind."""
        self.session.send("t.event", {})
        self.clock.advance(0)
        self.session.close()
        self.clock.advance(0)
        self.assertEqual(self.stored(recordKey(self.sid)), {})
        self.assertEqual(self.stored(bufferKey(self.sid)), {})
        self.assertIsNotNone(self.successResultOf(self.volatile.zscore(NODES_KEY, "node-a")))

    def test_shutdownLeavesSessionsResumable(self):
        """
        A stopping node (SIGTERM, a rolling restart) tells its clients resume: true, ends
        its sessions with moved (no logout), stores what they were sent that very turn and
        stamps its last-alive time: a client resumes on another node for the grace after
        the stop, with nothing missed.
        """
        self.clock.advance(4)  # past the last periodic stamp
        self.session.send("t.event", {"n": 1})  # not stored yet at the stop
        d = Deferred.fromCoroutine(self.a.manager.shutdown(1.0))
        notice = [m for m in self.peer.received() if m["t"] == "server.shutdown"]
        self.assertEqual([m.get("resume") for m in notice], [True])
        self.assertEqual(self.a.listener.events[-1], ("ended", self.sid, "moved"))
        self.peer.lose()
        self.clock.advance(1)
        self.successResultOf(d)
        self.assertEqual(self.stored(recordKey(self.sid))["node"], b"node-a")
        self.assertEqual(self.successResultOf(self.volatile.zscore(NODES_KEY, "node-a")),
                         self.clock.seconds() - 1)
        self.clock.advance(28)
        replies = self.resumeOn(self.b, lastSeq=0).received()
        self.assertEqual([m["t"] for m in replies], ["resumed", "t.event"])
        self.assertTrue(replies[0]["moved"])
        self.assertEqual(self.b.listener.events, [("moved", self.sid, "node-a")])

    def test_shutdownGraceCountsFromTheStop(self):
        """A session of a stopped node cannot be resumed elsewhere once the grace after the stop is over."""
        d = Deferred.fromCoroutine(self.a.manager.shutdown(1.0))
        self.peer.lose()
        self.clock.advance(1)
        self.successResultOf(d)
        self.clock.advance(40)
        peer = self.resumeOn(self.b, lastSeq=0)
        self.assertEqual(peer.received()[0]["code"], errors.RESUME_FAILED)

    def test_stoppingAnswersWhatItTookAndNamesTheRest(self):
        """
        A stopping node takes no request any more: the one in flight is answered before the
        notice, which names the one that came after it (pending: not taken) and the one
        still unanswered at the deadline (unanswered: taken, outcome unknown).
        """
        waiting = []

        def slow(session, message):
            waiting.append(Deferred())
            return waiting[-1]

        self.a.manager.addHandlers("t", {"t.slow": slow})
        self.peer.send({"t": "t.slow", "id": 5})
        self.peer.send({"t": "t.slow", "id": 6})
        d = Deferred.fromCoroutine(self.a.manager.shutdown(1.0, 3.0))
        self.peer.send({"t": "t.slow", "id": 7})
        self.assertEqual((len(waiting), self.peer.received()), (2, []))
        waiting[0].callback({"done": 5})
        self.clock.advance(3)
        replies = self.peer.received()
        self.assertEqual([(m["t"], m.get("id")) for m in replies],
                         [("t.slow", 5), ("server.shutdown", None)])
        self.assertEqual((replies[1]["pending"], replies[1]["unanswered"]), ([7], [6]))
        self.peer.lose()
        self.clock.advance(1)
        self.successResultOf(d)

    def test_movedAnsweredOnceTheRolesTookItIn(self):
        """
        A resume on another node is answered only once its roles took the session in (their
        sessionMoved finished): a request sent right after resumed finds them ready.
        """
        taking = Deferred()
        self.b.listener.sessionMoved = lambda session, fromNode: taking
        self.peer.lose()
        peer = self.resumeOn(self.b)
        self.assertEqual(peer.received(), [])
        taking.callback(None)
        self.assertEqual(peer.received()[0]["t"], "resumed")

    def test_replacedWhileItsNodeWasDownRefused(self):
        """
        A session whose node stopped, and whose account then opened a newer session on
        another node (the kick went unheard), is refused session.replaced when it resumes
        there: it does not end the newer session, and its record goes.
        """
        d = Deferred.fromCoroutine(self.a.manager.shutdown(1.0))
        self.peer.lose()
        self.clock.advance(1)
        self.successResultOf(d)
        newer = self.b.welcomed(accountId=7)
        self.clock.advance(0)
        [refused] = self.resumeOn(self.b).received()
        self.assertEqual(refused["code"], errors.REPLACED)
        self.assertIn(newer.welcome["session_id"], self.b.manager.sessions)
        self.clock.advance(0)
        self.assertEqual(self.stored(recordKey(self.sid)), {})

    def test_resumeOnTheRestartedNode(self):
        """
        A session of a node stopped for a restart resumes on that node's next run (the same
        node id) and stays there: the move's kick to the old node does not end it.
        """
        d = Deferred.fromCoroutine(self.a.manager.shutdown(1.0))
        self.peer.lose()
        self.clock.advance(1)
        self.successResultOf(d)
        again = Server(self, clock=self.clock, volatile=self.volatile, nodeId="node-a",
                       resume_grace=30.0, replay_buffer=4)
        peer = self.resumeOn(again)
        self.assertEqual(peer.received()[0]["t"], "resumed")
        self.clock.advance(1)
        self.assertIn(self.sid, again.manager.sessions)
        self.assertFalse(peer.closed)
