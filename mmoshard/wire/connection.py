"""The transport-independent connection shared by TCP and WebSocket: receive path, sending, closing."""

from twisted.internet.interfaces import IPushProducer
from twisted.python.failure import Failure
from zope.interface import implementer

from mmoshard.wire import dispatch, errors, handshake, inflight
from mmoshard.wire.codec import DecodeError, OutOfRange, decode, encode
from mmoshard.wire.errors import ErrorInfo
from mmoshard.wire.liveness import Heartbeat
from mmoshard.wire.output import Backlog, countOut
from mmoshard.wire.ratelimit import flooded
from mmoshard.wire.states import CLOSED, CLOSING, HANDSHAKE, LEAVING, NEW, OPEN

# How long a closing connection may take to flush before it is aborted: a
# peer that stops reading must not hold its socket (and our buffer) forever.
CLOSE_TIMEOUT = 5.0


@implementer(IPushProducer)
class Connection:
    """
    The protocol state machine of one connection, whatever carries it.

    The transport gives it a C{link} with C{writeFrame(payload)},
    C{closeLink(error)} and C{abortLink()}, calls L{linkReady} once messages
    can flow, L{messageReceived} with each frame's payload and
    L{connectionLost} at the end.  The transport registers it as a
    streaming producer so output waits in its L{Backlog}, bounded, while
    the socket buffer is full.

    The receive and send paths run for every message of thousands of
    clients, so they are inlined here, with their state in this object's
    slots: the token bucket (L{mmoshard.wire.ratelimit} handles what a
    flooding client gets), the dispatch lookup (L{mmoshard.wire.dispatch}
    handles replies), the counters.  The rest is in collaborators that use
    this class's public methods: L{mmoshard.wire.handshake} (hello, bye),
    L{mmoshard.wire.resume} (resume and replay), L{Heartbeat} (liveness)
    and L{Backlog} (output while the transport is paused).
    """

    # Thousands of connections each touch these per message: slots keep them
    # in the object itself, not in a dict beside it.
    __slots__ = (
        "manager", "transport", "peerHost", "link", "session", "state", "clock",
        "seconds", "stats", "paused", "received", "abuse", "backlog", "heartbeat",
        "_routes", "_builtins", "_rate", "_burst", "_tokens", "_refilled",
        "_helloTimer", "_abortTimer", "_refusal", "__weakref__",
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
        self.seconds = manager.seconds
        # The L{TransportStats} this connection's traffic is counted in.
        self.stats = manager.metrics.forTransport(transport)
        # Set while the transport's buffer is full: output goes to the backlog.
        self.paused = False
        # Frames received, for the heartbeat: a count, not a clock read per frame.
        self.received = 0
        # Rate-limited messages since the bucket was last full.
        self.abuse = 0
        # Made on the first pause: most connections never have one.
        self.backlog = None
        self.heartbeat = None
        self._routes = manager.routes
        self._builtins = dispatch.PRE_SESSION
        self._rate = cfg.rate
        self._burst = float(cfg.burst)
        self._tokens = self._burst
        self._refilled = self.seconds()
        self._abortTimer = None
        self._refusal = manager.admit(self)
        self._helloTimer = self.clock.callLater(cfg.hello_timeout, self._helloTimedOut)

    def __repr__(self):
        return f"<Connection {self.transport} from {self.peerHost} state={self.state}>"

    def logIds(self):
        """@return: the session and account ids for a log event about this connection."""
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
        if self.state >= LEAVING:
            # After bye or a close, what the peer still sends is not taken.
            return
        self.received += 1
        refused = None
        try:
            message = decode(payload)
        except OutOfRange as e:
            # Well-formed but unusable: refused after the rate limit, like
            # any request, and the connection stays.
            message, refused = e.message, e
        except DecodeError as e:
            self.fail(ErrorInfo(errors.BAD_FRAME, str(e)))
            return
        # Token bucket, refilled lazily from the time since the last message.
        # Inline rather than a limiter's method: a call per message costs.
        now = self.seconds()
        tokens = self._tokens + (now - self._refilled) * self._rate
        self._refilled = now
        if tokens >= self._burst:
            tokens = self._burst
            self.abuse = 0
        if tokens < 1.0:
            self._tokens = tokens
            flooded(self, message)
            return
        self._tokens = tokens - 1.0
        if refused is not None:
            self.sendError(ErrorInfo(errors.BAD_REQUEST, str(refused)), message.get("id"))
            return

        kind = message["t"]
        builtin = self._builtins.get(kind)
        handler = builtin
        if handler is None and self.session is not None:
            handler = self._routes.get(kind)
        # Unknown types count as "other": a flood of invented types must not
        # grow the metric's label set.
        label = kind if handler is not None else "other"
        stats = self.stats
        counts = stats.messagesIn
        counts[label] = counts.get(label, 0) + 1
        sizes = stats.bytesIn
        sizes[label] = sizes.get(label, 0) + len(payload)
        if builtin is not None:
            builtin(self, message)
        elif handler is not None:
            manager = self.manager
            if manager.stopping:
                inflight.notTaken(self, message)
                return
            if len(manager.inflight) >= manager.config.max_pending:
                # Shed: queued work past this makes every answer (and the
                # stores' replies) late enough to time out.  Cheap to refuse;
                # counted in mmoshard_session_errors{code="server.busy"}.
                self.sendError(ErrorInfo(errors.BUSY, "the server is busy, try again",
                                         errors.BUSY_RETRY_AFTER), message.get("id"))
                return
            # dispatch.handled's common case inlined: a handler that answers
            # nothing (world.move, many times a second per client).
            try:
                result = handler(self.session, message)
            except Exception:
                dispatch.handlerFailed(Failure(), self, kind, message)
                return
            if result is not None:
                dispatch.handled(result, self, kind, message)
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
        for timer in (self._helloTimer, self._abortTimer):
            if timer is not None and timer.active():
                timer.cancel()
        self._helloTimer = self._abortTimer = None
        if self.heartbeat is not None:
            self.heartbeat.stop()
            self.heartbeat = None
        if self.backlog is not None:
            self.backlog.clear()
        session = self.session
        self.session = None
        self.manager.connectionClosed(self)
        if session is not None and session.conn is self:
            self.manager.linkLost(session)

    # IPushProducer: the transport pauses us when its buffer is full.

    def pauseProducing(self):
        self.paused = True
        if self.backlog is None:
            self.backlog = Backlog(self, self.manager.config.max_output)

    def resumeProducing(self):
        self.paused = False
        if self.backlog is not None:
            self.backlog.flush()

    def stopProducing(self):
        pass

    # -- handshake --------------------------------------------------------

    def startHandshake(self):
        """
        A hello or resume arrived: from NEW to HANDSHAKE.
        @return: False, changing nothing, when one was already received.
        """
        if self.state != NEW:
            return False
        self.state = HANDSHAKE
        return True

    def attach(self, session):
        """The handshake succeeded: carry C{session} from now on."""
        self.state = OPEN
        self.session = session
        session.conn = self
        self._builtins = dispatch.IN_SESSION
        if self._helloTimer is not None and self._helloTimer.active():
            self._helloTimer.cancel()
        self._helloTimer = None
        self.heartbeat = Heartbeat(self, self.manager.config)

    def _helloTimedOut(self):
        self._helloTimer = None
        handshake.helloTimedOut(self)

    # -- sending ----------------------------------------------------------

    def sendEncoded(self, payload, kind):
        """Write one encoded message, or queue it while the peer is slow."""
        if self.state == CLOSED:
            return
        countOut(self.stats, kind, 1, len(payload))
        if self.paused:
            self.backlog.add(payload)
            return
        self.link.writeFrame(payload)

    def sendMessage(self, message):
        """Send a message dict that is not replayable (replies, errors, pings)."""
        self.sendEncoded(encode(message), message["t"])

    def sendError(self, info, requestId=None):
        """Send the typed error C{info}, answering request C{requestId} when given."""
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

    # -- closing ----------------------------------------------------------

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
            if self.backlog is not None:
                self.backlog.clear()
            self.link.abortLink()
