"""The session manager: dispatch table, listeners, connection limits, session lifetime and single-session enforcement."""

import msgpack
from twisted.internet.defer import Deferred, DeferredList
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from mmoshard.interfaces import (
    IMessageRouter,
)
from mmoshard.logthrottle import LogThrottle
from mmoshard.store.errors import StoreError, VolatileUnavailable
from mmoshard.wire import errors, inflight
from mmoshard.wire.broadcast import BROADCAST_CHANNEL, Broadcast
from mmoshard.wire.codec import encode
from mmoshard.wire.direct import WriteBatch
from mmoshard.wire.errors import ErrorInfo
from mmoshard.wire.messages import BUILTIN_TYPES, SHUTDOWN
from mmoshard.wire.metrics import SessionMetrics, counterTotal
from mmoshard.wire.session import Session
from mmoshard.wire.states import OPEN

from mmoshard.wire.owners import (  # noqa: F401 (the names callers know from here)
    CLAIM_OWNER,
    OWNER_TTL,
    kickChannel,
    ownerField,
    ownersKey,
)


@implementer(IMessageRouter)
class SessionManager:
    """
    Everything the connections of one process share: the handler table,
    the session listeners, the live sessions and the connection counts.
    """

    log = Logger()

    def __init__(self, config, clock, nodeId, metrics, verifier=None, volatile=None, gate=None,
                 resumeStore=None):
        """
        @param config: the C{[session]} config section.
        @param metrics: the node's Prometheus registry.
        @param verifier: the L{ITokenVerifier} checking hello tokens (None:
            every hello is refused).
        @param volatile: the L{IVolatileStore} for the one-session rule
            across nodes (L{CLAIM_OWNER}) and its kicks (None: this node
            only).
        @param gate: the L{IClientGate} (None: everyone is let in).
        @param resumeStore: the L{ResumeStore} keeping sessions resumable on
            any node of the role (None: resume only here).
        """
        self.config = config
        self.clock = clock
        self.seconds = self.clock.seconds
        self.nodeId = nodeId
        self.metrics = SessionMetrics(metrics)
        # What a client's messages make fail is logged once a minute per
        # client, then counted (a client must not fill the log).
        self.logThrottle = LogThrottle(self.seconds)
        # Connections hold a reference to this dict: addHandlers updates it in
        # place so handlers registered late are seen without a rebind.
        self.routes = {}
        # The message namespaces this node serves: its kind, for the
        # one-session rule across nodes (see CLAIM_OWNER).
        self.namespaces = set()
        self.listeners = []
        self.connections = set()
        self.sessions = {}
        # Role requests whose handler has not answered yet ([session]
        # max_pending): their Deferred -> (connection, request id); while
        # stopping, requests not taken: connection -> [request id]
        # (mmoshard.wire.inflight).
        self.inflight = {}
        self.untaken = {}
        self.stopping = False
        self.settled = None
        self._byAccount = {}
        # login id -> the live sessions opened with its tokens, to end them
        # when the login is revoked
        self._bySid = {}
        self._perHost = {}
        self._releases = set()
        self._drained = None
        self._subscription = None
        self._broadcasts = None
        self.verifier = verifier
        self._watched = None
        self.volatile = volatile
        self.clientGate = gate
        self.resumeStore = resumeStore
        self.accepting = True
        # TCP connections' output waits here for the end of the reactor round.
        self.writeBatch = WriteBatch(self.clock)

    # -- IMessageRouter ---------------------------------------------------

    def addHandlers(self, namespace, handlers):
        if not namespace or not isinstance(namespace, str):
            raise ValueError(f"bad namespace {namespace!r}")
        prefix = namespace + "."
        for kind, handler in handlers.items():
            if not isinstance(kind, str) or not kind.startswith(prefix):
                raise ValueError(f"message type {kind!r} is not in namespace {namespace!r}")
            if kind in BUILTIN_TYPES or kind in self.routes:
                raise ValueError(f"message type {kind!r} is already registered")
            if not callable(handler):
                raise TypeError(f"handler for {kind!r} is not callable")
        self.routes.update(handlers)
        self.namespaces.add(namespace)

    def addListener(self, listener):
        self.listeners.append(listener)

    @property
    def messageTypes(self):
        """Every type this process understands or sends: built-in and registered."""
        return BUILTIN_TYPES | set(self.routes)

    # -- lifetime ---------------------------------------------------------

    async def start(self):
        self._watchRevocations(self.verifier)
        if self.resumeStore is not None:
            self.resumeStore.start()
        if self.volatile is not None:
            try:
                self._broadcasts = await self.volatile.subscribe(
                    BROADCAST_CHANNEL, self._broadcastReceived)
            except VolatileUnavailable as e:
                self.log.warn("node {node_id} cannot subscribe to broadcasts ({why}); its "
                              "sessions miss maintenance notices", node_id=self.nodeId, why=e)
        if self.verifier is None:
            self.log.warn(
                "no token verifier in node {node_id}: every hello will be refused",
                node_id=self.nodeId,
            )
        if self.volatile is not None and self.config.one_session_per_account:
            try:
                self._subscription = await self.volatile.subscribe(
                    kickChannel(self.nodeId), self._kickReceived
                )
            except VolatileUnavailable as e:
                self.log.warn(
                    "node {node_id} cannot subscribe to session kicks ({why}); "
                    "the one-session rule holds only within this process",
                    node_id=self.nodeId,
                    why=e,
                )

    @property
    def pending(self):
        """Role requests whose handler has not answered yet."""
        return len(self.inflight)

    async def shutdown(self, timeout, answerWithin=None):
        """
        Refuse new connections, tell clients, end every session and close
        every connection within C{timeout} seconds.  With a resume store the
        sessions stay resumable on another node of the role (a rolling
        restart): no request is taken any more, those in flight are
        answered (for up to C{answerWithin} seconds, default C{timeout}),
        their records and buffers are kept, the node stamps its last-alive
        time, clients are told C{resume: true} with the requests it did not
        take (L{inflight.noticeFor}) and listeners hear reason C{moved} (no
        logout); without one they end with C{shutdown}.
        """
        self.accepting = False
        self._watchRevocations(None)
        resumable = self.resumeStore is not None
        notice = {"t": SHUTDOWN, "reason": "server stopping", "retry_after": 5.0}
        if resumable:
            notice["resume"] = True
            self.stopping = True
            await inflight.answerTaken(self, timeout if answerWithin is None else answerWithin)
            self.resumeStore.flush()
        for conn in list(self.connections):
            if conn.state == OPEN:
                conn.sendMessage(inflight.noticeFor(self, conn, notice) if resumable else notice)
        if resumable:
            self.log.info("node {node_id} stopping: {count} sessions left resumable on the "
                          "other nodes of the role", node_id=self.nodeId,
                          count=len(self.sessions))
        for session in list(self.sessions.values()):
            self.endSession(session, "moved" if resumable else "shutdown")
        for conn in list(self.connections):
            conn.close()
        if self.connections:
            self._drained = Deferred()
            timer = self.clock.callLater(timeout, self._drained.callback, None)
            await self._drained
            if timer.active():
                timer.cancel()
            self._drained = None
        for conn in list(self.connections):
            conn.abort()
        if self._releases:
            await DeferredList(list(self._releases), consumeErrors=True)
        if self.resumeStore is not None:
            self.resumeStore.stop()
            await self.resumeStore.settle()
        subscriptions = [s for s in (self._subscription, self._broadcasts) if s is not None]
        self._subscription = self._broadcasts = None
        for subscription in subscriptions:
            try:
                await subscription.unsubscribe()
            except Exception:
                self.log.failure("unsubscribing {channel} of node {node_id}",
                                 channel=subscription.channel, node_id=self.nodeId)

    def counts(self):
        """
        @return: what the directory shows of this node's sessions (the
            operator console's CCU and rates): live sessions, and the
            connections accepted and errors sent since start.
        """
        return {"live": len(self.sessions),
                "accepted": int(counterTotal(self.metrics.accepted)),
                "errors": int(counterTotal(self.metrics.errors))}

    def tokenVerifier(self):
        """@return: the L{ITokenVerifier} checking hello tokens, or None."""
        return self.verifier

    # -- revocations ------------------------------------------------------

    def _watchRevocations(self, verifier):
        """Hear of revocations from C{verifier} (None: stop hearing)."""
        if self._watched is not None:
            self._watched.removeRevocationObserver(self._revoked)
            self._watched = None
        if verifier is not None:
            verifier.addRevocationObserver(self._revoked)
            self._watched = verifier

    def _revoked(self, sids, accounts, reason):
        """
        Logins C{sids} and accounts C{accounts} (id -> revoked-before time)
        were revoked, here or in another process: end the live sessions
        opened with their tokens, linked or link-dead, with C{auth.revoked}.
        """
        victims = []
        bySid = self._bySid
        for sid in sids:
            victims.extend(bySid.get(sid, ()))
        if accounts:
            for session in self.sessions.values():
                before = accounts.get(session.accountId)
                if before is not None and session.claims.iat <= before:
                    victims.append(session)
        for session in victims:
            self.endSession(session, "revoked", errors.revokedError(reason))

    def gate(self):
        """@return: the process's L{IClientGate}, or None (allow all)."""
        return self.clientGate

    # -- connections ------------------------------------------------------

    def admit(self, conn):
        """
        Count a new connection.
        @return: None, or the L{ErrorInfo} refusing it.
        """
        self.connections.add(conn)
        host = conn.peerHost
        perHost = self._perHost[host] = self._perHost.get(host, 0) + 1
        self.metrics.connections.labels(conn.transport).inc()
        self.metrics.accepted.labels(conn.transport).inc()
        if not self.accepting:
            return ErrorInfo(errors.UNAVAILABLE, "server stopping", 5.0)
        if len(self.connections) > self.config.max_connections:
            return ErrorInfo(errors.SERVER_FULL, "too many connections", 5.0)
        if perHost > self.config.max_per_ip:
            return ErrorInfo(errors.IP_LIMIT, "too many connections from your address")
        return None

    def connectionClosed(self, conn):
        if conn not in self.connections:
            return
        self.connections.discard(conn)
        host = conn.peerHost
        left = self._perHost.get(host, 1) - 1
        if left > 0:
            self._perHost[host] = left
        else:
            self._perHost.pop(host, None)
        self.metrics.connections.labels(conn.transport).dec()
        if not self.connections and self._drained is not None and not self._drained.called:
            self._drained.callback(None)

    # -- sessions ---------------------------------------------------------

    def createSession(self, conn, sessionId, claims, clientVersion, platform):
        if self.config.one_session_per_account:
            old = self._byAccount.get(claims.account_id)
            if old is not None:
                self.endSession(old, "replaced", _replaced())
        session = Session(
            self, sessionId, claims, clientVersion, platform, self.config.replay_buffer
        )
        self._register(session)
        if self.resumeStore is not None:
            session.resumeStore = self.resumeStore
            self.resumeStore.opened(session)
        self.log.info(
            "session {session_id} started for account {account_id} over {transport} "
            "from {peer} (client {version} on {platform})",
            session_id=sessionId,
            account_id=session.accountId,
            transport=conn.transport,
            peer=conn.peerHost,
            version=clientVersion,
            platform=platform,
        )
        return session

    def _register(self, session):
        self.sessions[session.sessionId] = session
        self._byAccount[session.accountId] = session
        self._bySid.setdefault(session.claims.sid, set()).add(session)
        self.metrics.sessions.inc()

    def adoptSession(self, sessionId, taken):
        """
        Continue here the session another node held (L{ResumeStore.take}
        succeeded): a local L{Session} with the stored seq and buffer.
        """
        old = self._byAccount.get(taken.claims.account_id)
        if old is not None and self.config.one_session_per_account:
            self.endSession(old, "replaced", _replaced())
        session = Session(self, sessionId, taken.claims, taken.clientVersion, taken.platform,
                          self.config.replay_buffer)
        session.restore(taken.seq, taken.buffered, _eventType)
        session.resumeStore = self.resumeStore
        self._register(session)
        self.log.info(
            "session {session_id} (account {account_id}) moved here from node {from_node}",
            session_id=sessionId, account_id=session.accountId, from_node=taken.fromNode)
        return session

    def findResumable(self, token):
        """@return: the live session C{token} resumes, or None."""
        sessionId, _, secret = token.partition(".")
        session = self.sessions.get(sessionId)
        if session is None or session.ended or not secret:
            return None
        if not session.matchesResumeSecret(secret):
            return None
        return session

    def linkLost(self, session):
        """The session's connection dropped: keep it link-dead for the grace period."""
        session.conn = None
        if session.ended:
            return
        grace = self.config.resume_grace
        if grace <= 0:
            self.endSession(session, "disconnected")
            return
        session.linkDead = True
        self.metrics.linkDead.inc()
        session.graceTimer = self.clock.callLater(grace, self._graceExpired, session)
        self.log.info(
            "session {session_id} (account {account_id}) link-dead, {grace}s to resume",
            session_id=session.sessionId,
            account_id=session.accountId,
            grace=grace,
        )
        self._notify([listener.sessionLinkDead for listener in self.listeners], session)

    def resumeSession(self, session):
        """A link-dead (or still linked) session gets a new connection."""
        if session.linkDead:
            session.linkDead = False
            self.metrics.linkDead.dec()
        if session.graceTimer is not None and session.graceTimer.active():
            session.graceTimer.cancel()
        session.graceTimer = None
        self.log.info(
            "session {session_id} (account {account_id}) resumed",
            session_id=session.sessionId,
            account_id=session.accountId,
        )

    def _graceExpired(self, session):
        session.graceTimer = None
        if self.resumeStore is None:
            self.endSession(session, "expired")
            return
        Deferred.fromCoroutine(self._expire(session))

    async def _expire(self, session):
        # Another node may have taken the session a moment ago, before its
        # word reached us: then it moved, it did not expire.
        try:
            mine = await self.resumeStore.owns(session.sessionId)
        except StoreError:
            mine = True
        if not session.linkDead:
            return
        self.endSession(session, "expired" if mine else "moved")

    def endSession(self, session, reason, error=None):
        """
        End C{session} for good: close its connection (sending C{error}
        first when given) and tell the listeners.
        """
        if session.ended:
            return
        session.ended = True
        if session.graceTimer is not None and session.graceTimer.active():
            session.graceTimer.cancel()
        session.graceTimer = None
        if session.linkDead:
            session.linkDead = False
            self.metrics.linkDead.dec()
        self.sessions.pop(session.sessionId, None)
        if self._byAccount.get(session.accountId) is session:
            del self._byAccount[session.accountId]
        sameLogin = self._bySid.get(session.claims.sid)
        if sameLogin is not None:
            sameLogin.discard(session)
            if not sameLogin:
                del self._bySid[session.claims.sid]
        self.metrics.sessions.dec()
        conn, session.conn = session.conn, None
        if conn is not None:
            conn.session = None
            if error is not None:
                conn.fail(error)
            else:
                conn.close()
        self.log.info(
            "session {session_id} (account {account_id}) ended: {reason}",
            session_id=session.sessionId,
            account_id=session.accountId,
            reason=reason,
        )
        self._notify(
            [listener.sessionEnded for listener in self.listeners], session, reason
        )
        if reason == "moved":
            # The owners entry and the stored record are the new node's now.
            return
        if self.resumeStore is not None:
            self.resumeStore.released(session)
        self.releaseAccount(session.accountId, session.sessionId)

    def notifyStarted(self, session):
        self._notify([listener.sessionStarted for listener in self.listeners], session)

    def notifyResumed(self, session):
        self._notify([listener.sessionResumed for listener in self.listeners], session)

    def _notify(self, hooks, session, *args):
        """Call each hook; @return: the Deferreds they returned (failures logged), for a caller that waits."""
        waits = []
        for hook in hooks:
            try:
                result = hook(session, *args)
            except Exception:
                self._hookFailed(None, hook, session)
                continue
            if isinstance(result, Deferred):
                waits.append(result.addErrback(self._hookFailed, hook, session))
        return waits

    def _hookFailed(self, failure, hook, session):
        self.log.failure(
            "session listener {hook} failed for session {session_id} (account {account_id})",
            failure,
            hook=getattr(hook, "__qualname__", repr(hook)),
            session_id=session.sessionId,
            account_id=session.accountId,
        )

    # -- one session per account and kind, across processes ---------------

    async def claimAccount(self, claims, sessionId):
        """
        Record session C{sessionId} of C{claims}' account as live on this
        node and tell the nodes of the sessions it ends (see L{CLAIM_OWNER})
        to end them.  A store outage only weakens the rule to this process,
        never blocks a login.
        """
        if not self.config.one_session_per_account or self.volatile is None:
            return
        accountId = claims.account_id
        kind = ",".join(sorted(self.namespaces))
        try:
            ended = await self.volatile.evalScript(
                CLAIM_OWNER,
                [ownersKey(accountId)],
                [ownerField(self.nodeId, sessionId), claims.sid, kind, int(OWNER_TTL * 1000)],
            )
            for field in ended:
                oldSession, _, owner = field.decode("utf-8", "replace").partition("@")
                # Sessions here were ended by createSession already.
                if owner != self.nodeId:
                    await self.volatile.publish(
                        kickChannel(owner), encode([accountId, oldSession])
                    )
        except StoreError as e:
            self.log.warn(
                "cannot claim account {account_id} for session {session_id}: {why}",
                account_id=accountId,
                session_id=sessionId,
                why=e,
            )

    def releaseAccount(self, accountId, sessionId):
        if not self.config.one_session_per_account or self.volatile is None:
            return
        # Only this session's own entry goes: the others, here or elsewhere,
        # keep theirs.
        d = self.volatile.hdel(ownersKey(accountId), ownerField(self.nodeId, sessionId))
        self._releases.add(d)

        def done(result):
            self._releases.discard(d)
            if isinstance(result, Failure):
                self.log.warn(
                    "could not release account {account_id} of session {session_id}: {why}",
                    account_id=accountId,
                    session_id=sessionId,
                    why=result.getErrorMessage(),
                )
            return None

        d.addBoth(done)

    def _broadcastReceived(self, channel, message):
        """A L{Broadcast}: every live session here gets it (link-dead ones on resume)."""
        try:
            notice = Broadcast.decode(message)
        except Exception:
            self.log.warn("ignoring a malformed broadcast on {channel}", channel=channel)
            return
        sessions = [s for s in self.sessions.values() if not s.ended]
        for session in sessions:
            session.send(notice.type, dict(notice.body))
        self.log.info("broadcast {type} to {count} session(s) of node {node_id}",
                      type=notice.type, count=len(sessions), node_id=self.nodeId)

    def _kickReceived(self, channel, message):
        try:
            accountId, sessionId, *why = msgpack.unpackb(message, raw=False)
        except Exception:
            self.log.warn("ignoring malformed session kick on {channel}", channel=channel)
            return
        session = self.sessions.get(sessionId)
        if session is None or session.accountId != accountId:
            return
        if why == ["moved"]:
            # Resumed on another node: its connection here (if any) just
            # closes, and listeners hear "moved", not a logout.
            self.endSession(session, "moved")
        else:
            self.endSession(session, "replaced", _replaced())


def _eventType(payload):
    try:
        return msgpack.unpackb(payload, raw=False).get("t", "other")
    except Exception:
        return "other"


def _replaced():
    return ErrorInfo(errors.REPLACED, "signed in from another connection")
