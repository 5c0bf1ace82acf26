"""Revocations: the verifier's in-memory mirror (pub/sub, resync, fail closed, pruning) and live sessions ended by it, on the memory store and on Redis."""

from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock, deferLater
from twisted.trial.unittest import TestCase

from mmoshard.interfaces import ITokenVerifier
from mmoshard.store.errors import VolatileUnavailable
from mmoshard.store.volatile import MemoryStore, makeVolatileStore
from mmoshard.testing import requireRedis
from mmoshard.revocations import (
    REVOCATION_CHANNEL,
    REVOCATION_SEQ,
    REVOKED_ACCOUNTS,
    REVOKED_SIDS,
    revokeAccount,
    revokeLogin,
    revokeLogins,
)
from mmoshard.tokens import InvalidToken, TokenVerifier, issueAccessToken
from mmoshard.wire import errors
from mmoshard.wire.test.helpers import KEY, Server


class Outage:
    """Makes a store's calls fail with L{VolatileUnavailable} while C{down}."""

    def __init__(self, testCase, store, names=("evalScript", "subscribe")):
        self.down = False
        for name in names:
            real = getattr(store, name)

            def call(*a, real=real, **k):
                if self.down:
                    return fail(VolatileUnavailable("the store is down (test)"))
                return real(*a, **k)

            testCase.patch(store, name, call)


class VerifierContract:
    """
    The verifier against a store shared with "another process" (a second
    store object on the same backend), which makes the revocations.
    """

    interval = 2.0

    async def makeStores(self):
        """@return: (clock, the verifier's store, the other process's store)."""
        raise NotImplementedError

    async def settle(self, predicate, timeout=2.0):
        """Let published messages arrive until C{predicate()} holds."""
        raise NotImplementedError

    async def elapse(self, seconds):
        """Let C{seconds} pass on the verifier's clock."""
        raise NotImplementedError

    async def setUp(self):
        self.clock, self.store, self.other = await self.makeStores()
        self.outage = Outage(self, self.store)

    async def started(self, interval=None, staleAfter=30.0):
        verifier = TokenVerifier(
            KEY, self.store, self.clock, interval=interval or self.interval,
            staleAfter=staleAfter,
        )
        await verifier.start()
        self.addCleanup(verifier.stop)
        return verifier

    def token(self, accountId=7, sid="s7", ttl=600.0, iat=None):
        now = self.clock.seconds() if iat is None else iat
        return issueAccessToken(KEY, accountId, sid, ttl, now)

    def now(self):
        return self.clock.seconds()

    def verdict(self, verifier, token):
        """@return: claims, or the exception class the verification failed with."""
        d = verifier.verify(token)
        # The mirror answers at once: no store round trip per token.
        self.assertTrue(d.called, "verification waited for the store")
        result = []
        d.addCallbacks(result.append, lambda f: result.append(f.type))
        return result[0]

    async def test_valid_without_round_trip(self):
        """A started verifier accepts a valid token from its mirror, even with the store down."""
        verifier = await self.started()
        self.outage.down = True
        claims = self.verdict(verifier, self.token())
        self.assertEqual((claims.account_id, claims.sid), (7, "s7"))

    async def test_fails_closed_before_first_sync(self):
        """Until its first read succeeds the verifier refuses with VolatileUnavailable (forged tokens still as InvalidToken), then accepts."""
        self.outage.down = True
        verifier = await self.started()
        self.assertIs(self.verdict(verifier, self.token()), VolatileUnavailable)
        # A forged token is still refused as such.
        forged = issueAccessToken("another-key-0123456789", 7, "s7", 600, self.now())
        self.assertIs(self.verdict(verifier, forged), InvalidToken)
        self.outage.down = False
        await self.elapse(self.interval)
        await self.settle(lambda: verifier.syncedAt is not None)
        self.assertEqual(self.verdict(verifier, self.token()).sid, "s7")

    async def test_fails_closed_when_stale(self):
        """With no successful read for staleAfter seconds the verifier refuses with VolatileUnavailable, and accepts again once reads succeed."""
        verifier = await self.started(interval=0.2, staleAfter=1.0)
        self.outage.down = True
        await self.elapse(1.5)
        self.assertIs(self.verdict(verifier, self.token()), VolatileUnavailable)
        self.outage.down = False
        await self.elapse(0.3)
        await self.settle(lambda: self.now() - verifier.syncedAt < 1.0)
        self.assertEqual(self.verdict(verifier, self.token()).sid, "s7")

    async def test_revocation_applied_from_the_channel(self):
        """A login revocation heard on the channel refuses that login's tokens, tells observers with its reason, and leaves other logins alone."""
        # No periodic read in this test's time: only pub/sub can tell it.
        verifier = await self.started(interval=3600.0)
        token, other = self.token(sid="s7"), self.token(sid="s8")
        seen = []
        verifier.addRevocationObserver(lambda *a: seen.append(a))
        await revokeLogin(self.other, "s7", 600, now=self.now(), accountId=7, reason="logout")
        await self.settle(lambda: seen)
        self.assertEqual(seen, [({"s7"}, {}, "logout")])
        self.assertIs(self.verdict(verifier, token), InvalidToken)
        self.assertEqual(self.verdict(verifier, other).sid, "s8")

    async def test_account_revocation(self):
        """An account revocation refuses the account's tokens issued at or before it, not later ones nor other accounts'."""
        verifier = await self.started(interval=3600.0)
        before = self.now()
        old = self.token(sid="a", iat=before - 5)
        same = self.token(sid="b", iat=before)
        later = self.token(sid="c", iat=before + 1)
        stranger = self.token(accountId=8, sid="d", iat=before - 5)
        seen = []
        verifier.addRevocationObserver(lambda *a: seen.append(a))
        await revokeAccount(self.other, 7, before, 600, reason="ban")
        await self.settle(lambda: seen)
        self.assertEqual(seen, [(set(), {7: before}, "ban")])
        self.assertIs(self.verdict(verifier, old), InvalidToken)
        self.assertIs(self.verdict(verifier, same), InvalidToken)
        self.assertEqual(self.verdict(verifier, later).sid, "c")
        self.assertEqual(self.verdict(verifier, stranger).sid, "d")

    async def test_periodic_resync_covers_missed_messages(self):
        """Revocations whose messages were lost are found by the periodic read (observers hear no reason)."""
        verifier = await self.started()
        # Messages are lost (the subscription is gone, as across a reconnect).
        await verifier._follower._subscription.unsubscribe()
        seen = []
        verifier.addRevocationObserver(lambda *a: seen.append(a))
        await revokeLogins(self.other, ["s7", "s9"], 600, now=self.now(), reason="password_change")
        self.assertEqual(self.verdict(verifier, self.token(sid="s7")).sid, "s7")
        await self.elapse(self.interval)
        await self.settle(lambda: seen)
        # Found by a read: no reason known.
        self.assertEqual(seen, [({"s7", "s9"}, {}, None)])
        self.assertIs(self.verdict(verifier, self.token(sid="s7")), InvalidToken)

    async def test_gap_in_counter_triggers_resync(self):
        """A message whose counter skips one makes the verifier read every revocation, the missed one included."""
        verifier = await self.started(interval=3600.0)
        await verifier._follower._subscription.unsubscribe()
        await revokeLogin(self.other, "lost", 600, now=self.now())
        # The subscription is back (a reconnect); the next message shows the gap.
        verifier._follower._subscription = await self.store.subscribe(
            REVOCATION_CHANNEL, verifier._received
        )
        await revokeLogin(self.other, "heard", 600, now=self.now())
        await self.settle(lambda: "lost" in verifier.revokedSids)
        self.assertIs(self.verdict(verifier, self.token(sid="lost")), InvalidToken)
        self.assertIs(self.verdict(verifier, self.token(sid="heard")), InvalidToken)

    async def test_unchanged_counter_reads_no_sets(self):
        """A read while the counter is unchanged returns only the counter."""
        verifier = await self.started()
        await revokeLogin(self.other, "s1", 600, now=self.now())
        await self.settle(lambda: "s1" in verifier.revokedSids)
        calls = []
        real = self.store.evalScript

        def spy(script, keys, args):
            d = real(script, keys, args)
            d.addCallback(lambda r: calls.append(r) or r)
            return d

        self.patch(self.store, "evalScript", spy)
        await verifier.sync()
        self.assertEqual(len(calls), 1)
        self.assertEqual(len(calls[0]), 1, "only the counter comes back")

    async def test_pruned_by_expiry(self):
        """Expired marks are not loaded, are pruned from the store by the next revocation, and leave the mirror once expired."""
        now = self.now()
        await revokeLogin(self.other, "old", 10, now=now - 20)
        await revokeAccount(self.other, 5, now - 20, 10)
        self.assertEqual(await self.other.zcard(REVOKED_SIDS), 1)
        verifier = await self.started()
        # Expired marks are not loaded...
        self.assertEqual(verifier.revokedSids, {})
        self.assertEqual(verifier.revokedAccounts, {})
        # ...and the next revocation removes them from the store.
        await revokeLogin(self.other, "new", 1, now=now)
        self.assertEqual(await self.other.zrangebyscore(REVOKED_SIDS, "-inf", "+inf"), ["new"])
        self.assertEqual(await self.other.zcard(REVOKED_ACCOUNTS), 0)
        self.assertEqual(await self.other.get(REVOCATION_SEQ), b"3")
        await self.settle(lambda: "new" in verifier.revokedSids)
        # The mirror forgets it once expired.
        await self.elapse(self.interval + 1.2)
        await self.settle(lambda: "new" not in verifier.revokedSids)

    async def test_unstarted_verifier_reads_the_store(self):
        """A verifier never started checks revocations in the store on each call, failing when the store is down."""
        verifier = TokenVerifier(KEY, self.store, self.clock)
        await revokeLogin(self.other, "s7", 600, now=self.now())
        with self.assertRaises(InvalidToken):
            await verifier.verify(self.token(sid="s7"))
        claims = await verifier.verify(self.token(sid="s8"))
        self.assertEqual(claims.sid, "s8")
        self.outage.down = True
        with self.assertRaises(VolatileUnavailable):
            await verifier.verify(self.token(sid="s8"))

    async def test_stop(self):
        """Stopping the verifier stops its reads and its subscription."""
        verifier = TokenVerifier(KEY, self.store, self.clock)
        await verifier.start()
        await verifier.stop()
        self.assertFalse(verifier._follower.running)
        self.assertIsNone(verifier._follower._loop)
        self.assertIsNone(verifier._follower._subscription)


class MemoryVerifierTests(VerifierContract, TestCase):
    async def makeStores(self):
        clock = Clock()
        clock.advance(1_000_000)
        store = MemoryStore(clock, "test:")
        store.open()
        other = MemoryStore(clock, "test:", backend=store.backend)
        other.open()
        return clock, store, other

    async def settle(self, predicate, timeout=2.0):
        self.clock.advance(0)
        self.assertTrue(predicate(), "not settled")

    async def elapse(self, seconds):
        # In steps, as time passes, so periodic reads happen on the way.
        steps = max(1, int(seconds / 0.1))
        for _ in range(steps):
            self.clock.advance(seconds / steps)
        self.clock.advance(1e-6)


class RedisVerifierTests(VerifierContract, TestCase):
    async def makeStores(self):
        from twisted.internet import reactor

        url, prefix, cleaner = requireRedis()
        self.addCleanup(cleaner)
        store = makeVolatileStore(url, reactor, prefix, timeout=2.0)
        store.open()
        other = makeVolatileStore(url, reactor, prefix, timeout=2.0)
        other.open()
        self.addCleanup(store.close)
        self.addCleanup(other.close)
        return reactor, store, other

    async def settle(self, predicate, timeout=2.0):
        deadline = self.clock.seconds() + timeout
        while not predicate():
            if self.clock.seconds() > deadline:
                self.fail("not settled in time")
            await deferLater(self.clock, 0.01)

    async def elapse(self, seconds):
        await deferLater(self.clock, seconds)

    interval = 0.3


class LiveSessionTests(TestCase):
    """Sessions of revoked logins end at once, in the process that hears it."""

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1_000_000)
        # Several sessions per account, as a player has across processes.
        self.server = Server(self, clock=self.clock, one_session_per_account=False)
        self.verifier = self.server.node.lookup(ITokenVerifier)
        self.successResultOf(self.verifier.start())
        self.addCleanup(self.verifier.stop)
        # "Another process" making revocations on the same backend.
        store = self.server.volatile
        self.other = MemoryStore(self.clock, store.prefix, backend=store.backend)
        self.other.open()

    def hello(self, accountId, sid, iat=None):
        peer = self.server.tcp(host=f"10.0.0.{accountId}")
        now = self.clock.seconds() if iat is None else iat
        token = issueAccessToken(KEY, accountId, sid, 3600, now)
        peer.send({"t": "hello", "id": 1, "token": token,
                   "client_version": "1.0", "platform": "test"})
        replies = peer.received()
        self.assertEqual(replies[0]["t"], "welcome", replies)
        peer.welcome = replies[0]
        return peer

    def revokedNotice(self, peer):
        replies = peer.received()
        self.assertEqual([r.get("code") for r in replies if r["t"] == "error"],
                         [errors.REVOKED], replies)
        self.assertTrue(peer.closed)
        return replies[-1]

    def ended(self):
        return [e for e in self.server.listener.events if e[0] == "ended"]

    def test_logout_ends_the_login_session(self):
        """A logout ends the live session of that login with auth.revoked, not other sessions."""
        mine = self.hello(1, "login-a")
        other = self.hello(2, "login-b")
        self.successResultOf(revokeLogin(self.other, "login-a", 3600,
                                         now=self.clock.seconds(), accountId=1,
                                         reason="logout"))
        self.clock.advance(0)
        notice = self.revokedNotice(mine)
        self.assertEqual(notice["message"], "signed out")
        self.assertEqual(self.ended(), [("ended", mine.welcome["session_id"], "revoked")])
        self.assertEqual(other.received(), [])
        self.assertFalse(other.closed)
        self.assertEqual(len(self.server.manager.sessions), 1)

    def test_password_change_keeps_the_current_login(self):
        """A password change ends the account's other logins' sessions and keeps the current one."""
        keep = self.hello(1, "current")
        gone = self.hello(1, "other-login")
        self.successResultOf(revokeLogins(self.other, ["other-login"], 3600,
                                          now=self.clock.seconds(), accountId=1,
                                          reason="password_change"))
        self.clock.advance(0)
        self.revokedNotice(gone)
        self.assertEqual(keep.received(), [])
        self.assertFalse(keep.closed)

    def test_ban_ends_sessions_issued_before(self):
        """A ban ends the account's sessions whose tokens predate it, not other accounts', and a later token opens a session."""
        now = self.clock.seconds()
        old = self.hello(1, "l1", iat=now - 10)
        stranger = self.hello(2, "l2", iat=now - 10)
        self.successResultOf(revokeAccount(self.other, 1, now, 3600, reason="ban"))
        self.clock.advance(0)
        self.assertEqual(self.revokedNotice(old)["message"], "the account is banned")
        self.assertFalse(stranger.closed)
        # A token issued after the ban (an unban and a new login) opens a session.
        self.clock.advance(1)
        self.hello(1, "l3")

    def test_link_dead_session_ended_and_resume_refused(self):
        """A revoked login's link-dead session is ended and its resume refused."""
        peer = self.hello(1, "login-a")
        peer.lose()
        self.assertIn(("linkdead", peer.welcome["session_id"]), self.server.listener.events)
        self.successResultOf(revokeLogin(self.other, "login-a", 3600, now=self.clock.seconds()))
        self.clock.advance(0)
        self.assertEqual(self.ended(), [("ended", peer.welcome["session_id"], "revoked")])
        again = self.server.tcp()
        again.send({"t": "resume", "id": 2, "resume_token": peer.welcome["resume_token"],
                    "last_seq": 0})
        replies = again.received()
        self.assertEqual(replies[0]["code"], errors.RESUME_FAILED)
        self.assertTrue(again.closed)

    def test_resume_checks_revocation_heard_late(self):
        """A resume is refused when the login was revoked even though the manager missed the event."""
        peer = self.hello(1, "login-a")
        peer.lose()
        # The manager misses the event (as if it came before it listened).
        self.server.manager._watchRevocations(None)
        self.successResultOf(revokeLogin(self.other, "login-a", 3600, now=self.clock.seconds()))
        self.clock.advance(0)
        self.assertEqual(self.ended(), [])
        again = self.server.tcp()
        again.send({"t": "resume", "id": 2, "resume_token": peer.welcome["resume_token"],
                    "last_seq": 0})
        replies = again.received()
        self.assertEqual([r["code"] for r in replies], [errors.REVOKED])
        self.assertTrue(again.closed)
        self.assertEqual(self.ended(), [("ended", peer.welcome["session_id"], "revoked")])
        self.assertEqual(self.server.manager.sessions, {})

    def test_resume_fails_closed_when_unsynced(self):
        """A resume while revocations are unknown fails as unavailable, and succeeds once they are read."""
        peer = self.hello(1, "login-a")
        peer.lose()
        self.verifier.syncedAt = None
        again = self.server.tcp()
        again.send({"t": "resume", "id": 2, "resume_token": peer.welcome["resume_token"],
                    "last_seq": 0})
        self.assertEqual([r["code"] for r in again.received()], [errors.UNAVAILABLE])
        # The session waits for a retry.
        self.assertEqual(self.ended(), [])
        self.clock.advance(self.verifier.interval)
        third = self.server.tcp()
        third.send({"t": "resume", "id": 3, "resume_token": peer.welcome["resume_token"],
                    "last_seq": 0})
        self.assertEqual(third.received()[0]["t"], "resumed")

    def test_resume_of_live_session_still_works(self):
        """A resume of a login that was not revoked works as usual."""
        peer = self.hello(1, "login-a")
        peer.lose()
        again = self.server.tcp()
        again.send({"t": "resume", "id": 2, "resume_token": peer.welcome["resume_token"],
                    "last_seq": 0})
        self.assertEqual(again.received()[0]["t"], "resumed")

    def test_revocation_during_handshake(self):
        """A login revoked while its hello is being decided is refused, not welcomed."""
        # The gate is asked after the token check: revoke while it decides.
        decided = Deferred()

        class SlowGate:
            def check(self, claims, version, platform):
                return decided

        self.patch(self.server.manager, "gate", lambda: SlowGate())
        peer = self.server.tcp()
        token = issueAccessToken(KEY, 1, "login-a", 3600, self.clock.seconds())
        peer.send({"t": "hello", "id": 1, "token": token, "client_version": "1.0",
                   "platform": "test"})
        self.successResultOf(revokeLogin(self.other, "login-a", 3600, now=self.clock.seconds()))
        self.clock.advance(0)
        decided.callback(None)
        replies = peer.received()
        self.assertEqual([r.get("code") for r in replies], [errors.INVALID_TOKEN])
        self.assertEqual(self.server.manager.sessions, {})

    def test_shutdown_stops_listening(self):
        """The manager's shutdown removes its revocation observer from the verifier."""
        self.successResultOf(Deferred.fromCoroutine(self.server.manager.shutdown(0)))
        self.assertEqual(self.verifier._observers, [])


class RedisLiveSessionTests(TestCase):
    """The same on Redis: process B's session ends when process A revokes."""

    async def test_revocation_ends_session_in_other_process(self):
        """On Redis, a logout and a ban made by one process end the matching sessions in another."""
        from twisted.internet import reactor

        url, prefix, cleaner = requireRedis()
        self.addCleanup(cleaner)
        storeB = makeVolatileStore(url, reactor, prefix, timeout=2.0)
        storeB.open()
        storeA = makeVolatileStore(url, reactor, prefix, timeout=2.0)
        storeA.open()
        self.addCleanup(storeA.close)
        self.addCleanup(storeB.close)
        server = Server(self, clock=reactor, volatile=storeB, nodeId="proc-b")
        await server.started
        verifier = server.node.lookup(ITokenVerifier)
        await verifier.start()
        self.addCleanup(verifier.stop)
        peers = []
        self.addCleanup(lambda: Deferred.fromCoroutine(server.manager.shutdown(0.0)))
        # Peers lose their connections before the server shuts down.
        self.addCleanup(lambda: [p.lose() for p in peers])

        async def until(predicate, timeout=1.0):
            deadline = reactor.seconds() + timeout
            while not predicate():
                self.assertLess(reactor.seconds(), deadline, "not in time")
                await deferLater(reactor, 0.005)

        async def hello(accountId, sid, iat):
            peer = server.tcp(host=f"10.0.0.{accountId}")
            peers.append(peer)
            peer.send({"t": "hello", "id": 1,
                       "token": issueAccessToken(KEY, accountId, sid, 3600, iat),
                       "client_version": "1", "platform": "test"})
            seen = []
            await until(lambda: seen.extend(peer.received()) or seen)
            self.assertEqual(seen[0]["t"], "welcome", seen)
            return peer

        now = reactor.seconds()
        a = await hello(1, "login-a", now)
        b = await hello(2, "login-b", now - 5)
        await revokeLogin(storeA, "login-a", 3600, now=reactor.seconds(), reason="logout")
        await until(lambda: a.closed)
        self.assertEqual([r.get("code") for r in a.received()], [errors.REVOKED])
        await revokeAccount(storeA, 2, reactor.seconds(), 3600, reason="ban")
        await until(lambda: b.closed)
        self.assertEqual([r.get("code") for r in b.received()], [errors.REVOKED])
        self.assertEqual(server.manager.sessions, {})


class RedisReconnectTests(TestCase):
    """A real pub/sub reconnect: what was published meanwhile is read back."""

    async def test_missed_while_disconnected(self):
        """On Redis, a revocation published while pub/sub reconnects is read back when the next message shows the gap."""
        import socket

        from twisted.internet import reactor

        from mmoshard.testing import redisAddress

        url, prefix, cleaner = requireRedis()
        self.addCleanup(cleaner)
        store = makeVolatileStore(url, reactor, prefix, timeout=2.0)
        store.open()
        other = makeVolatileStore(url, reactor, prefix, timeout=2.0)
        other.open()
        self.addCleanup(store.close)
        self.addCleanup(other.close)
        # No periodic read in the test's time: only the counter gap can tell.
        verifier = TokenVerifier(KEY, store, reactor, interval=3600.0)
        await verifier.start()
        self.addCleanup(verifier.stop)

        async def until(predicate, timeout=5.0):
            deadline = reactor.seconds() + timeout
            while not predicate():
                self.assertLess(reactor.seconds(), deadline, "not in time")
                await deferLater(reactor, 0.01)

        # Drop exactly this store's pub/sub connection, server side.
        subscriber = store.subscriber.connection
        local = subscriber.transport.getHost()
        host, port = redisAddress()
        with socket.create_connection((host, port), timeout=2) as s:
            s.sendall(b"CLIENT KILL ADDR %s:%d\r\n" % (local.host.encode(), local.port))
            self.assertEqual(s.recv(64), b":1\r\n")  # one connection killed
        await until(lambda: store.subscriber.connection is not subscriber)
        # Published while the subscriber is down or not yet resubscribed: lost.
        await revokeLogin(other, "lost", 600, now=reactor.seconds())
        await until(lambda: store.subscriber.confirmed(REVOCATION_CHANNEL))
        self.assertNotIn("lost", verifier.revokedSids)
        gaps = []
        resync = verifier._resyncSoon
        self.patch(verifier, "_resyncSoon", lambda: gaps.append(1) or resync())
        await revokeLogin(other, "heard", 600, now=reactor.seconds())
        await until(lambda: {"lost", "heard"} <= set(verifier.revokedSids))
        self.assertEqual(gaps, [1])
