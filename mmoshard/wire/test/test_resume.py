"""Deterministic tests of session lifetime over simulated TCP: resume and replay, one session per account, shutdown."""

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from mmoshard.wire import errors
from mmoshard.wire.codec import decode
from mmoshard.wire.test.helpers import Server, makeVolatile


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
        """
        A link-dead session resumed within the grace gets resumed with a new resume token
        and the messages after last_seq; the expiry is cancelled and the old token no longer
        works.
        """
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
        """
        A resume while the old connection still looks alive retires that connection; what it
        sends afterwards is ignored and its loss does not make the session link-dead.
        """
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
        """
        After the grace period the session is ended with reason expired and a resume fails
        with resume_failed.
        """
        self.peer.lose()
        self.server.clock.advance(30)
        self.assertEqual(self.server.listener.events[-1], ("ended", self.sid, "expired"))
        peer = self.resume()
        self.assertEqual(peer.received()[0]["code"], errors.RESUME_FAILED)
        self.assertTrue(peer.closed)
        registry = self.server.node.metrics
        self.assertEqual(registry.get_sample_value("mmoshard_session_link_dead"), 0)

    def test_resumeWithGap(self):
        """
        A resume whose missed messages fell out of the replay buffer fails and ends the
        session with reason resume_failed.
        """
        self.peer.lose()
        for n in range(6):
            self.session.send("t.event", {"n": n})
        peer = self.resume(lastSeq=1)
        self.assertEqual(peer.received()[0]["code"], errors.RESUME_FAILED)
        self.assertEqual(self.server.listener.events[-1], ("ended", self.sid, "resume_failed"))

    def test_resumeBadToken(self):
        """
        Unknown, malformed or wrong-secret resume tokens get resume_failed; wrongly typed
        fields get bad_request.
        """
        for token in ["nope", self.sid + ".wrong", ".", self.sid]:
            peer = self.resume(token=token)
            self.assertEqual(peer.received()[0]["code"], errors.RESUME_FAILED)
        peer = self.server.tcp()
        peer.send({"t": "resume", "resume_token": 3, "last_seq": "x"})
        self.assertEqual(peer.received()[0]["code"], errors.BAD_REQUEST)

    def test_noGrace(self):
        """
        With resume_grace 0 a lost connection ends its session at once with reason
        disconnected.
        """
        server = Server(self, resume_grace=0.0)
        peer = server.welcomed()
        peer.lose()
        self.assertEqual(server.listener.events[-1][2], "disconnected")


class ReplacedTests(TestCase):
    def test_sameProcess(self):
        """
        A second hello for the same account ends the first session with replaced and keeps
        the new one.
        """
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
        """A hello for another account leaves an existing session alone."""
        server = Server(self)
        first = server.welcomed(accountId=7)
        server.welcomed(accountId=8)
        self.assertEqual(first.received(), [])

    def test_acrossProcesses(self):
        """
        A hello on another node kicks the account's session here through the volatile store;
        the loser's release does not remove the winner's claim.
        """
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
        """With one_session_per_account off, two sessions of one account coexist."""
        server = Server(self, one_session_per_account=False)
        first = server.welcomed(accountId=7)
        server.welcomed(accountId=7)
        self.assertEqual(first.received(), [])
        self.assertEqual(len(server.manager.sessions), 2)


class ShutdownTests(TestCase):
    def test_shutdownWithoutResumeAnywhere(self):
        """
        Without resume on another node, shutdown tells sessions, ends them with reason
        shutdown, closes every connection, aborts the slow ones at the timeout, and refuses
        new ones with unavailable.
        """
        server = Server(self, resume_anywhere=False)
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
