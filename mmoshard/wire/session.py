"""Sessions and the transport-independent connection logic shared by TCP and WebSocket."""

import collections
import itertools
import hmac
import inspect
import secrets

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from mmoshard.interfaces import ISession
from mmoshard.store.errors import VolatileUnavailable
from mmoshard.tokens import InvalidToken
from mmoshard.wire import errors
from mmoshard.wire.codec import DecodeError, decode, encode
from mmoshard.wire.errors import ErrorInfo, ProtocolError

# How long a closing connection may take to flush before it is aborted: a
# peer that stops reading must not hold its socket (and our buffer) forever.
CLOSE_TIMEOUT = 5.0

NEW, HANDSHAKE, OPEN, CLOSING, CLOSED = range(5)


@implementer(ISession)
class Session:
    """
    One client's session: outlives its connection for the resume grace
    period and keeps the replayable messages it was sent.
    """

    __slots__ = (
        "manager", "sessionId", "claims", "accountId", "clientVersion", "platform", "conn",
        "linkDead", "ended", "seq", "rtt", "graceTimer", "resumeSecret",
        "_replayPayloads", "_replayTypes", "__weakref__",
    )

    def __init__(self, manager, sessionId, claims, clientVersion, platform, bufferSize):
        self.manager = manager
        self.sessionId = sessionId
        self.claims = claims
        self.accountId = claims.account_id
        self.clientVersion = clientVersion
        self.platform = platform
        self.conn = None
        self.linkDead = False
        self.ended = False
        self.seq = 0
        self.rtt = None
        self.graceTimer = None
        self.resumeSecret = secrets.token_urlsafe(24)
        # The last messages sent, encoded, so a replay costs no re-encoding.
        # Two deques of bytes and str rather than one of tuples: neither is
        # tracked by the garbage collector, so thousands of full buffers add
        # nothing to a full collection.  Sequence numbers are implicit: the
        # newest entry is self.seq.
        self._replayPayloads = collections.deque(maxlen=bufferSize)
        self._replayTypes = collections.deque(maxlen=bufferSize)

    def __repr__(self):
        return f"<Session {self.sessionId} account={self.accountId}>"

    @property
    def resumeToken(self):
        return f"{self.sessionId}.{self.resumeSecret}"

    def rotateResumeToken(self):
        self.resumeSecret = secrets.token_urlsafe(24)

    def matchesResumeSecret(self, secret):
        return hmac.compare_digest(self.resumeSecret.encode(), secret.encode())

    def send(self, type, body, replayable=True):
        if self.ended:
            return
        message = dict(body)
        message["t"] = type
        if replayable:
            self.seq = seq = self.seq + 1
            message["seq"] = seq
            payload = encode(message)
            self._replayPayloads.append(payload)
            self._replayTypes.append(type)
        else:
            payload = encode(message)
        conn = self.conn
        if conn is not None:
            conn.sendEncoded(payload, type)

    def sendEncoded(self, payload, type):
        if self.ended:
            return
        conn = self.conn
        if conn is not None:
            conn.sendEncoded(payload, type)

    def replayAfter(self, lastSeq):
        """
        @return: the (payload, type) pairs sent after C{lastSeq}, or None
            when some of them are no longer buffered.
        """
        if lastSeq >= self.seq:
            return []
        payloads = self._replayPayloads
        oldest = self.seq - len(payloads) + 1
        if lastSeq + 1 < oldest:
            return None
        skip = lastSeq + 1 - oldest
        return list(
            zip(
                itertools.islice(payloads, skip, None),
                itertools.islice(self._replayTypes, skip, None),
            )
        )

    def close(self, code=None, message=None):
        self.manager.endSession(self, "closed", ErrorInfo(code, message or code) if code else None)


def sendEncodedMany(sends, kind):
    """
    C{session.sendEncoded(payload, kind)} for each C{(session, payload)} of
    C{sends}, with the per-message bookkeeping (two calls, the metrics) done
    once per run of sessions on one transport: a world tick sends one
    update to every player, thousands per tick.
    """
    stats = None
    count = size = 0
    for session, payload in sends:
        if type(session) is not Session:
            session.sendEncoded(payload, kind)
            continue
        conn = session.conn
        if conn is None or session.ended or conn.state == CLOSED:
            # Link-dead or gone: Session.sendEncoded would drop it too.
            continue
        if conn._paused:
            # Queued and counted by the connection itself.
            conn.sendEncoded(payload, kind)
            continue
        if conn._stats is not stats:
            if count:
                _count(stats, kind, count, size)
            stats = conn._stats
            count = size = 0
        count += 1
        size += len(payload)
        conn.link.writeFrame(payload)
    if count:
        _count(stats, kind, count, size)


def _count(stats, kind, count, size):
    counts = stats.messagesOut
    counts[kind] = counts.get(kind, 0) + count
    sizes = stats.bytesOut
    sizes[kind] = sizes.get(kind, 0) + size


@implementer(IPushProducer)
class Connection:
    """
    The protocol state machine of one connection, whatever carries it.

    The transport gives it a C{link} with C{writeFrame(payload)},
    C{closeLink(error)} and C{abortLink()}, calls L{linkReady} once messages
    can flow, L{messageReceived} with each frame's payload and
    L{connectionLost} at the end.  The transport registers it as a
    streaming producer so output is queued here, bounded, while the socket
    buffer is full.
    """

    log = Logger()

    # Thousands of connections each touch these per message: slots keep them
    # in the object itself, not in a dict beside it.
    __slots__ = (
        "manager", "transport", "peerHost", "link", "session", "state", "clock",
        "_seconds", "_stats", "_routes", "_rate", "_burst", "_abuseLimit", "_maxOutput",
        "_tokens", "_refilled", "_abuse", "_paused", "_queued", "_queuedBytes",
        "_received", "_seenReceived", "_silentSince", "_pingNonce", "_pingSentAt",
        "_heartbeatTimer", "_abortTimer", "_helloTimer", "_builtins", "_refusal",
        "__weakref__",
    )

    def __init__(self, manager, transport, peerHost, link):
        self.manager = manager
        self.transport = transport
        self.peerHost = peerHost
        self.link = link
        self.session = None
        self.state = NEW
        cfg = manager.config
        self.clock = manager.clock
        # One bound method for every connection: this runs per message.
        self._seconds = manager.seconds
        self._stats = manager.metrics.forTransport(transport)
        self._routes = manager.routes
        self._rate = cfg.rate
        self._burst = float(cfg.burst)
        self._abuseLimit = cfg.abuse_limit
        self._maxOutput = cfg.max_output
        self._tokens = self._burst
        self._refilled = self._seconds()
        self._abuse = 0
        self._paused = False
        self._queued = []
        self._queuedBytes = 0
        self._received = 0
        self._seenReceived = 0
        self._silentSince = self._refilled
        self._pingNonce = 0
        self._pingSentAt = None
        self._heartbeatTimer = None
        self._abortTimer = None
        self._builtins = _PRE_SESSION
        self._refusal = manager.admit(self)
        self._helloTimer = self.clock.callLater(cfg.hello_timeout, self._helloTimedOut)

    def __repr__(self):
        return f"<Connection {self.transport} from {self.peerHost} state={self.state}>"

    @property
    def closing(self):
        return self.state >= CLOSING

    def _logIds(self):
        session = self.session
        if session is None:
            return {"session_id": None, "account_id": None}
        return {"session_id": session.sessionId, "account_id": session.accountId}

    # -- transport side ---------------------------------------------------

    def linkReady(self):
        """Messages can flow: refuse now if a connection limit was hit."""
        if self._refusal is not None:
            self.fail(self._refusal)

    def messageReceived(self, payload):
        """Handle one frame's payload: decode, rate-limit, dispatch."""
        if self.state >= CLOSING:
            return
        self._received += 1
        try:
            message = decode(payload)
        except DecodeError as e:
            self.fail(ErrorInfo(errors.BAD_FRAME, str(e)))
            return
        # Token bucket, refilled lazily from the time since the last message.
        now = self._seconds()
        tokens = self._tokens + (now - self._refilled) * self._rate
        self._refilled = now
        if tokens >= self._burst:
            tokens = self._burst
            self._abuse = 0
        if tokens < 1.0:
            self._tokens = tokens
            self._rateLimited(message)
            return
        self._tokens = tokens - 1.0

        kind = message["t"]
        builtin = self._builtins.get(kind)
        handler = builtin
        if handler is None and self.session is not None:
            handler = self._routes.get(kind)
        # Unknown types count as "other": a flood of invented types must not
        # grow the metric's label set.
        label = kind if handler is not None else "other"
        stats = self._stats
        counts = stats.messagesIn
        counts[label] = counts.get(label, 0) + 1
        sizes = stats.bytesIn
        sizes[label] = sizes.get(label, 0) + len(payload)
        if builtin is not None:
            builtin(self, message)
        elif handler is not None:
            # _dispatch's common case inlined: a handler that answers
            # nothing (world.move, many times a second per client).
            try:
                result = handler(self.session, message)
            except Exception:
                self._handlerFailed(Failure(), kind, message)
                return
            if result is not None:
                self._handled(result, kind, message)
        elif self.session is None:
            self.fail(
                ErrorInfo(errors.NOT_AUTHENTICATED, "send hello first"), message.get("id")
            )
        else:
            self.sendError(
                ErrorInfo(errors.UNKNOWN_TYPE, f"unknown message type {kind[:64]!r}"),
                message.get("id"),
            )

    def connectionLost(self):
        """The transport is gone: release the connection, leave the session link-dead."""
        if self.state == CLOSED:
            return
        self.state = CLOSED
        for timer in (self._helloTimer, self._heartbeatTimer, self._abortTimer):
            if timer is not None and timer.active():
                timer.cancel()
        self._helloTimer = self._heartbeatTimer = self._abortTimer = None
        self._queued = []
        session = self.session
        self.session = None
        self.manager.connectionClosed(self)
        if session is not None and session.conn is self:
            self.manager.linkLost(session)

    # IPushProducer: the transport pauses us when its buffer is full.

    def pauseProducing(self):
        self._paused = True

    def resumeProducing(self):
        self._paused = False
        queued, self._queued, self._queuedBytes = self._queued, [], 0
        write = self.link.writeFrame
        for i, payload in enumerate(queued):
            if self._paused or self.state == CLOSED:
                # Paused again mid-flush: keep the rest, in order.
                self._queued = queued[i:]
                self._queuedBytes = sum(len(p) for p in self._queued)
                return
            write(payload)

    def stopProducing(self):
        pass

    # -- sending ----------------------------------------------------------

    def sendEncoded(self, payload, kind):
        """Write one encoded message, or queue it while the peer is slow."""
        if self.state == CLOSED:
            return
        _count(self._stats, kind, 1, len(payload))
        if self._paused:
            self._queued.append(payload)
            self._queuedBytes += len(payload)
            if self._queuedBytes > self._maxOutput and self.state < CLOSING:
                self._slowConsumer()
            return
        self.link.writeFrame(payload)

    def sendMessage(self, message):
        """Send a message dict that is not replayable (replies, errors, pings)."""
        self.sendEncoded(encode(message), message["t"])

    def sendError(self, info, requestId=None):
        self.manager.metrics.errors.labels(info.code).inc()
        body = info.toBody()
        body["t"] = "error"
        if requestId is not None:
            body["id"] = requestId
        self.sendMessage(body)

    def fail(self, info, requestId=None):
        """Send a typed error and close the connection."""
        if self.state >= CLOSING:
            return
        self.sendError(info, requestId)
        self.close(info)

    def close(self, error=None):
        """Close gracefully, aborting if the peer does not let us flush in time."""
        if self.state >= CLOSING:
            return
        self.state = CLOSING
        if self._helloTimer is not None and self._helloTimer.active():
            self._helloTimer.cancel()
        self._helloTimer = None
        self._abortTimer = self.clock.callLater(CLOSE_TIMEOUT, self.abort)
        self.link.closeLink(error)

    def retire(self):
        """Give up the session to a newer connection and drop this one."""
        self.session = None
        if self.state < CLOSING:
            self.state = CLOSING
        self.abort()

    def abort(self):
        """Drop the connection now, discarding unsent output."""
        self._abortTimer = None
        if self.state != CLOSED:
            self._queued = []
            self.link.abortLink()

    def _slowConsumer(self):
        self.log.info(
            "closing slow consumer {peer} of session {session_id} (account "
            "{account_id}): {queued} bytes unsent",
            peer=self.peerHost,
            queued=self._queuedBytes,
            **self._logIds(),
        )
        # The queue is dropped; replayable messages are still in the
        # session's buffer, so a resume can recover them.
        self._queued = []
        self._queuedBytes = 0
        info = ErrorInfo(errors.SLOW_CONSUMER, "too much unsent output; reconnect")
        self.manager.metrics.errors.labels(info.code).inc()
        body = info.toBody()
        body["t"] = "error"
        # Straight to the transport: its buffer takes it even while paused.
        self.link.writeFrame(encode(body))
        self.close(info)

    def _rateLimited(self, message):
        self._abuse += 1
        if self._abuse >= self._abuseLimit:
            self.log.info(
                "closing {peer} of session {session_id} (account {account_id}) "
                "for sustained flooding",
                peer=self.peerHost,
                **self._logIds(),
            )
            self.fail(
                ErrorInfo(errors.RATE_LIMITED, "sustained flooding; closing"),
                message.get("id"),
            )
            return
        self.sendError(
            ErrorInfo(errors.RATE_LIMITED, "too many messages; slow down", 1.0 / self._rate),
            message.get("id"),
        )

    # -- handshake --------------------------------------------------------

    def _helloTimedOut(self):
        self._helloTimer = None
        if self.state in (NEW, HANDSHAKE):
            if not self.link.ready:
                # The WebSocket upgrade never finished: nothing to say it in.
                self.abort()
                return
            self.fail(ErrorInfo(errors.HELLO_TIMEOUT, "no hello in time"))

    def _onHello(self, message):
        if self.state != NEW:
            self.sendError(
                ErrorInfo(errors.BAD_REQUEST, "hello already sent"), message.get("id")
            )
            return
        self.state = HANDSHAKE
        d = Deferred.fromCoroutine(self._hello(message))
        d.addErrback(self._handshakeCrashed)

    def _handshakeCrashed(self, failure):
        self.log.failure(
            "handshake from {peer} failed", failure, peer=self.peerHost, **self._logIds()
        )
        self.fail(ErrorInfo(errors.INTERNAL, "internal error"))

    async def _hello(self, message):
        requestId = message.get("id")
        token = message.get("token")
        version = message.get("client_version", "")
        platform = message.get("platform", "")
        if not (
            isinstance(token, str)
            and isinstance(version, str)
            and isinstance(platform, str)
            and len(version) <= 64
            and len(platform) <= 64
        ):
            self.fail(
                ErrorInfo(
                    errors.BAD_REQUEST,
                    "hello needs a str token, client_version and platform",
                ),
                requestId,
            )
            return
        manager = self.manager
        verifier = manager.tokenVerifier()
        if verifier is None:
            self.fail(ErrorInfo(errors.UNAVAILABLE, "no token verifier", 5.0), requestId)
            return
        try:
            claims = await verifier.verify(token)
        except InvalidToken as e:
            self.fail(
                ErrorInfo(errors.INVALID_TOKEN, f"access token {e.reason}"), requestId
            )
            return
        except VolatileUnavailable:
            self.fail(
                ErrorInfo(errors.UNAVAILABLE, "cannot check the token now", 5.0),
                requestId,
            )
            return
        if self.state != HANDSHAKE:
            return
        gate = manager.gate()
        if gate is not None:
            refusal = await gate.check(claims, version, platform)
            if self.state != HANDSHAKE:
                return
            if refusal is not None:
                self.fail(refusal, requestId)
                return
        sessionId = secrets.token_hex(12)
        await manager.claimAccount(claims.account_id, sessionId)
        if self.state != HANDSHAKE:
            manager.releaseAccount(claims.account_id, sessionId)
            return
        # A revocation heard while the gate or the claim was awaited found no
        # session to end: look again now that nothing is awaited any more.
        if verifier.isRevoked(claims):
            manager.releaseAccount(claims.account_id, sessionId)
            self.fail(ErrorInfo(errors.INVALID_TOKEN, "access token revoked"), requestId)
            return
        session = manager.createSession(self, sessionId, claims, version, platform)
        self._attach(session)
        body = {
            "t": "welcome",
            "session_id": session.sessionId,
            "account_id": session.accountId,
            "heartbeat_s": manager.config.heartbeat,
            "resume_token": session.resumeToken,
            "resume_grace_s": manager.config.resume_grace,
            "max_frame": manager.config.max_frame,
            "server_time": self._seconds(),
        }
        if requestId is not None:
            body["id"] = requestId
        self.sendMessage(body)
        manager.notifyStarted(session)

    def _onResume(self, message):
        if self.state != NEW:
            self.sendError(
                ErrorInfo(errors.BAD_REQUEST, "hello already sent"), message.get("id")
            )
            return
        requestId = message.get("id")
        token = message.get("resume_token")
        lastSeq = message.get("last_seq", 0)
        if not isinstance(token, str) or type(lastSeq) is not int or lastSeq < 0:
            self.fail(
                ErrorInfo(errors.BAD_REQUEST, "resume needs a str resume_token and an int last_seq"),
                requestId,
            )
            return
        manager = self.manager
        session = manager.findResumable(token)
        if session is None:
            self.fail(
                ErrorInfo(errors.RESUME_FAILED, "unknown or expired resume token"),
                requestId,
            )
            return
        # A revoked login's sessions are ended when the revocation is heard;
        # this covers one heard late.  The access token may have expired
        # since the hello: only revocation is checked.
        self.state = HANDSHAKE
        d = manager.tokenVerifier().checkRevoked(session.claims)
        d.addCallbacks(
            self._resumeChecked,
            self._resumeRefused,
            callbackArgs=(session, lastSeq, requestId),
            errbackArgs=(session, requestId),
        )
        d.addErrback(self._handshakeCrashed)

    def _resumeChecked(self, result, session, lastSeq, requestId):
        if self.state != HANDSHAKE:
            return
        if session.ended:
            self.fail(
                ErrorInfo(errors.RESUME_FAILED, "the session ended meanwhile"), requestId
            )
            return
        self._resume(session, lastSeq, requestId)

    def _resumeRefused(self, failure, session, requestId):
        if failure.check(InvalidToken):
            info = errors.revokedError()
            self.manager.endSession(session, "revoked", info)
            self.fail(info, requestId)
            return
        failure.trap(VolatileUnavailable)
        # The session stays link-dead: the client may try again.
        self.fail(
            ErrorInfo(errors.UNAVAILABLE, "cannot check the login now", 5.0), requestId
        )

    def _resume(self, session, lastSeq, requestId):
        manager = self.manager
        missed = session.replayAfter(lastSeq)
        if lastSeq > session.seq or missed is None:
            why = (
                "last_seq is ahead of the server"
                if lastSeq > session.seq
                else "missed messages are no longer buffered"
            )
            info = ErrorInfo(errors.RESUME_FAILED, why)
            manager.endSession(session, "resume_failed", info)
            self.fail(info, requestId)
            return
        old = session.conn
        if old is not None:
            # The client noticed the loss before we did: retire the old link.
            old.retire()
        manager.resumeSession(session)
        session.rotateResumeToken()
        self._attach(session)
        body = {
            "t": "resumed",
            "session_id": session.sessionId,
            "resume_token": session.resumeToken,
            "heartbeat_s": manager.config.heartbeat,
            "replayed": len(missed),
            "server_time": self._seconds(),
        }
        if requestId is not None:
            body["id"] = requestId
        self.sendMessage(body)
        for payload, kind in missed:
            self.sendEncoded(payload, kind)
        manager.notifyResumed(session)

    def _attach(self, session):
        self.state = OPEN
        self.session = session
        session.conn = self
        self._builtins = _IN_SESSION
        if self._helloTimer is not None and self._helloTimer.active():
            self._helloTimer.cancel()
        self._helloTimer = None
        self._seenReceived = self._received
        self._silentSince = self._seconds()
        self._heartbeatTimer = self.clock.callLater(
            self.manager.config.heartbeat, self._heartbeat
        )

    def _onSecondHello(self, message):
        self.sendError(
            ErrorInfo(errors.BAD_REQUEST, "already in a session"), message.get("id")
        )

    # -- liveness ---------------------------------------------------------

    def _heartbeat(self):
        self._heartbeatTimer = None
        if self.state != OPEN:
            return
        now = self._seconds()
        # Counting frames instead of stamping each one keeps a clock read
        # off the per-message path; precision is one heartbeat.
        if self._received != self._seenReceived:
            self._seenReceived = self._received
            self._silentSince = now
        elif now - self._silentSince >= self.manager.config.heartbeat_timeout:
            self.log.info(
                "peer {peer} of session {session_id} (account {account_id}) silent "
                "for {silent:.1f}s, closing",
                peer=self.peerHost,
                silent=now - self._silentSince,
                **self._logIds(),
            )
            self.fail(ErrorInfo(errors.HEARTBEAT_TIMEOUT, "no traffic from the client"))
            return
        self._pingNonce += 1
        self._pingSentAt = now
        self.sendMessage({"t": "ping", "n": self._pingNonce})
        self._heartbeatTimer = self.clock.callLater(
            self.manager.config.heartbeat, self._heartbeat
        )

    def _onPing(self, message):
        reply = {"t": "pong"}
        if "n" in message:
            reply["n"] = message["n"]
        if "id" in message:
            reply["id"] = message["id"]
        self.sendMessage(reply)

    def _onPong(self, message):
        sentAt = self._pingSentAt
        if sentAt is not None and message.get("n") == self._pingNonce:
            self._pingSentAt = None
            rtt = self._seconds() - sentAt
            if self.session is not None:
                self.session.rtt = rtt
            self.manager.metrics.rtt.labels(self.transport).observe(rtt)

    def _onBye(self, message):
        session = self.session
        reply = {"t": "bye"}
        if "id" in message:
            reply["id"] = message["id"]
        self.sendMessage(reply)
        self.manager.endSession(session, "logout")
        self.close()

    # -- dispatch ---------------------------------------------------------

    def _handled(self, result, kind, message):
        """What a route's handler returned: a reply, a coroutine or Deferred of one."""
        if type(result) is dict:
            self._reply(result, kind, message)
            return
        if inspect.iscoroutine(result):
            result = ensureDeferred(result)
        if isinstance(result, Deferred):
            result.addCallbacks(
                self._asyncReply,
                self._handlerFailed,
                callbackArgs=(kind, message),
                errbackArgs=(kind, message),
            )
            return
        self._handlerFailed(
            Failure(TypeError(f"handler returned {type(result).__name__}, not a dict")),
            kind,
            message,
        )

    def _asyncReply(self, result, kind, message):
        if result is None:
            return
        if type(result) is not dict:
            self._handlerFailed(
                Failure(TypeError(f"handler returned {type(result).__name__}, not a dict")),
                kind,
                message,
            )
            return
        self._reply(result, kind, message)

    def _reply(self, body, kind, message):
        reply = dict(body)
        reply["t"] = kind
        requestId = message.get("id")
        if requestId is not None:
            reply["id"] = requestId
        try:
            payload = encode(reply)
        except Exception:
            self._handlerFailed(Failure(), kind, message)
            return
        self.sendEncoded(payload, kind)

    def _handlerFailed(self, failure, kind, message):
        if failure.check(ProtocolError):
            self.sendError(failure.value.info, message.get("id"))
            return
        session = self.session
        self.log.failure(
            "handler for {type} failed in session {session_id} (account {account_id})",
            failure,
            type=kind,
            session_id=session.sessionId if session else None,
            account_id=session.accountId if session else None,
        )
        self.sendError(ErrorInfo(errors.INTERNAL, "internal error"), message.get("id"))


# The built-in messages, before and after hello: class-level tables of plain
# functions, called as handler(connection, message), shared by every
# connection.  They name Connection's own methods: a subclass or a patched
# method is not seen here (Connection is not meant to be subclassed).
_PRE_SESSION = {
    "hello": Connection._onHello,
    "resume": Connection._onResume,
    "ping": Connection._onPing,
    "pong": Connection._onPong,
}
_IN_SESSION = {
    "hello": Connection._onSecondHello,
    "resume": Connection._onSecondHello,
    "ping": Connection._onPing,
    "pong": Connection._onPong,
    "bye": Connection._onBye,
}
