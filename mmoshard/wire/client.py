"""The Python session-protocol client: TCP or WebSocket, requests by id, events, heartbeats, automatic resume."""

import random
from urllib.parse import urlsplit

import attrs
from twisted.internet.abstract import isIPAddress
from twisted.internet.defer import Deferred, DeferredQueue
from twisted.internet.endpoints import HostnameEndpoint, TCP4ClientEndpoint
from twisted.internet.error import ConnectionLost
from twisted.internet.protocol import Factory
from twisted.logger import Logger

from mmoshard.wire import errors
from mmoshard.wire.clientlinks import _TCPLink, _WebSocketLinkFactory
from mmoshard.wire.codec import DecodeError, decode, encode
from mmoshard.wire.websocket import SUBPROTOCOL

# The longest wait (s) before a request answered server.busy goes again.
BUSY_MAX_WAIT = 8.0

# Errors after which resuming is pointless: the server ended the session.
FATAL_CODES = frozenset(
    {
        errors.INVALID_TOKEN,
        errors.REVOKED,
        errors.UPDATE_REQUIRED,
        errors.MAINTENANCE,
        errors.REPLACED,
        errors.RESUME_FAILED,
        errors.NOT_AUTHENTICATED,
        errors.IP_LIMIT,
        errors.SERVER_FULL,
    }
)


class RequestError(Exception):
    """The server answered a request with an error."""

    def __init__(self, message):
        self.code = message.get("code")
        self.message = message.get("message")
        self.retry_after = message.get("retry_after")
        self.body = message
        super().__init__(f"{self.code}: {self.message}")


class SessionEnded(Exception):
    """The session is over; C{reason} says why (an error code, "closed", "shutdown"...)."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


@attrs.frozen
class Address:
    """Where a session listener is: C{tcp} host and port, or a C{ws://} URL."""

    transport: str
    host: str
    port: int
    url: str | None = None

    @classmethod
    def parse(cls, address):
        """
        Accept C{ws://host:port/path}, C{tcp:host:port} or C{host:port}.
        """
        if address.startswith(("ws://", "wss://")):
            parts = urlsplit(address)
            if parts.scheme == "wss":
                raise ValueError("wss:// needs TLS, which this client does not do yet")
            return cls("websocket", parts.hostname, parts.port or 80, address)
        if address.startswith("tcp:"):
            address = address[4:]
        host, _, port = address.rpartition(":")
        return cls("tcp", host or "127.0.0.1", int(port))


class SessionClient:
    """
    One session with a node.

    Server-initiated messages (those without a pending request id) go to
    C{onEvent(message)} when given, else into the C{events} DeferredQueue.
    C{ended} fires with the reason once the session is over for good.
    """

    log = Logger()

    def __init__(
        self,
        reactor,
        address,
        token,
        clientVersion="0.0.0",
        platform="python",
        onEvent=None,
        autoResume=True,
        maxFrame=65536,
        heartbeat=None,
        alternates=(),
        onMoved=None,
        busyRetries=3,
    ):
        """
        @param alternates: addresses of the other nodes of the role (from
            the directory): a resume that cannot reach the current node
            tries them in turn (the session moves there).
        @param onMoved: called with the C{resumed} reply when the session
            moved to another node (chat adopts the character there by itself;
            a world session re-sends C{world.enter}, a matchmaking one
            C{mm.hello}); when it returns a Deferred, the requests made
            meanwhile wait for it.
        @param busyRetries: times a request answered C{server.busy} (the
            node did nothing with it) is sent again, after the error's
            C{retry_after} doubled each time (0: never).
        """
        self.reactor = reactor
        self.address = Address.parse(address) if isinstance(address, str) else address
        self.addresses = [self.address] + [
            Address.parse(a) if isinstance(a, str) else a for a in alternates]
        self.onMoved = onMoved
        self.token = token
        self.clientVersion = clientVersion
        self.platform = platform
        self.onEvent = onEvent
        self.autoResume = autoResume
        self.maxFrame = maxFrame
        self.heartbeat = heartbeat
        self.events = DeferredQueue()
        self.ended = Deferred()
        self.welcome = None
        self.sessionId = None
        self.resumeToken = None
        self.resumeGrace = 0.0
        self.lastSeq = 0
        self.rtt = None
        self.resumes = 0
        self._link = None
        self._linkLostWaiters = []
        # request id -> (Deferred, message) of requests sent, not answered
        self._pending = {}
        self.busyRetries = busyRetries
        self._busyTries = {}  # request id -> times it was answered server.busy before
        self._busyWaiting = set()  # Deferreds of requests waiting to go again
        self._random = random.Random()
        # While the session is between nodes (a stop notice came, a resume
        # is under way) requests wait here, (message, Deferred), to go out
        # once it is resumed: a request before the resume's answer would be
        # refused, and one to a stopping node would not be taken.
        self._holding = False
        self._held = []
        self._nextId = 0
        self._closing = False
        self._fatal = None
        self._attempt = None
        self._sleeping = None
        self._timers = set()
        self._pingNonce = 0
        self._pingSentAt = None
        self._heard = 0
        self._heardAtLastBeat = 0
        self._silentBeats = 0
        self._resuming = None

    # -- public API -------------------------------------------------------

    async def connect(self):
        """Open the connection and say hello. @return: the welcome message."""
        await self._open()
        welcome = await self._exchange(
            {
                "t": "hello",
                "token": self.token,
                "client_version": self.clientVersion,
                "platform": self.platform,
            }
        )
        self.welcome = welcome
        self._holding = False
        self.sessionId = welcome["session_id"]
        self.resumeToken = welcome["resume_token"]
        self.resumeGrace = welcome.get("resume_grace_s", 0.0)
        if self.heartbeat is None:
            self.heartbeat = welcome["heartbeat_s"]
        self._later(self.heartbeat, self._beat)
        return welcome

    @property
    def linked(self):
        """Whether a connection is up (it may still be resuming on it)."""
        return self._link is not None

    def request(self, type, **body):
        """
        Send a request. @return: a Deferred firing with the reply message, or
        failing with L{RequestError} or C{ConnectionLost}.
        """
        body["t"] = type
        return self._call(body)

    def send(self, type, **body):
        """Send a message expecting no reply; C{ConnectionLost} while the session is between nodes."""
        if self._holding:
            raise ConnectionLost("resuming")
        body["t"] = type
        self._write(body)

    def nextEvent(self):
        """@return: a Deferred firing with the next server-initiated message."""
        return self.events.get()

    async def close(self):
        """Log out (C{bye}) and close. @return: when the connection is gone."""
        if self._link is None:
            # A resume may be under way: stop it (its attempt and its wait).
            self._stopResuming()
            self._end("closed")
            return
        self._closing = True
        lost = self._lostDeferred()
        try:
            self._write({"t": "bye"})
        except ConnectionLost:
            pass
        self._later(2.0, self.drop)
        await lost
        self._end("closed")

    def drop(self):
        """
        Drop the connection without logging out, as a network failure would.
        With no connection up (a resume under way, the node gone) there is
        nothing left to drop: the resume is given up and the session ends
        (C{resume_failed}), so nothing of it stays scheduled.
        """
        if self._link is not None:
            self._link.abort()
        elif self._resuming is not None:
            self._stopResuming()

    def _stopResuming(self):
        # The resume's attempt in flight and its wait end now; the loop sees
        # _closing and gives up (the session ends as resume_failed).
        self._closing = True
        if self._attempt is not None:
            self._attempt.cancel()
        if self._sleeping is not None and not self._sleeping.called:
            self._sleeping.callback(None)

    # -- connection -------------------------------------------------------

    async def _open(self):
        address = self.address
        if isIPAddress(address.host):
            # No name to resolve; and cancelling it (the session ended while
            # resuming) leaves no timer behind, unlike HostnameEndpoint.
            endpoint = TCP4ClientEndpoint(self.reactor, address.host, address.port, timeout=10)
        else:
            endpoint = HostnameEndpoint(self.reactor, address.host, address.port, timeout=10)
        if address.transport == "tcp":
            factory = Factory.forProtocol(lambda: _TCPLink(self, self.maxFrame))
            link = await self._connecting(endpoint, factory)
            await link.opened
        else:
            factory = _WebSocketLinkFactory(
                address.url, protocols=[SUBPROTOCOL], reactor=self.reactor
            )
            factory.client = self
            factory.setProtocolOptions(
                openHandshakeTimeout=0,
                closeHandshakeTimeout=0,
                serverConnectionDropTimeout=0,
                autoPingInterval=0,
                maxMessagePayloadSize=self.maxFrame,
                maxFramePayloadSize=self.maxFrame,
            )
            link = await self._connecting(endpoint, factory)
            await link.opened
        self._link = link
        self._linkLostWaiters = []
        return link

    async def _connecting(self, endpoint, factory):
        # Kept so that ending the session cancels an attempt in flight.
        d = self._attempt = endpoint.connect(factory)
        try:
            return await d
        finally:
            self._attempt = None

    async def _pause(self, delay):
        # A wait that close() cuts short.
        if self._closing:
            return
        d = self._sleeping = Deferred()
        self._later(delay, lambda: d.called or d.callback(None))
        await d
        self._sleeping = None

    def _lostDeferred(self):
        d = Deferred()
        self._linkLostWaiters.append(d)
        return d

    def _write(self, message):
        if self._link is None:
            raise ConnectionLost("not connected")
        self._link.writeFrame(encode(message))

    def _call(self, message):
        """A request: sent now, or once the session is resumed."""
        if self._holding:
            self._nextId += 1
            message["id"] = self._nextId
            d = Deferred()
            self._held.append((message, d))
            return d
        return self._exchange(message)

    def _exchange(self, message, d=None):
        """Send request C{message} now (a new id unless it has one). @return: C{d} or a new Deferred."""
        if "id" not in message:
            self._nextId += 1
            message["id"] = self._nextId
        d = Deferred() if d is None else d
        try:
            self._write(message)
        except ConnectionLost as e:
            d.errback(e)
            return d
        self._pending[message["id"]] = (d, message)
        return d

    def _stopping(self, message):
        """
        The node stops and keeps the session resumable: hold new requests
        until the resume; when it says what it did not take (C{pending}: it
        answered what it took before this notice), send every request still
        unanswered again after the resume, but those it names C{unanswered}
        (taken, their outcome unknown: they fail with the link).
        """
        self._holding = True
        if "pending" not in message:
            return  # a node that does not say: every unanswered request fails with the link
        unanswered = set(message.get("unanswered") or ())
        again = [(rid, entry) for rid, entry in self._pending.items() if rid not in unanswered]
        for rid, (d, request) in again:
            del self._pending[rid]
            self._held.append((request, d))
        self._held.sort(key=lambda held: held[0]["id"])

    def _sendHeld(self):
        held, self._held = self._held, []
        for message, d in held:
            self._exchange(message, d)

    def _failHeld(self, why):
        held, self._held = self._held, []
        for _, d in held:
            d.errback(ConnectionLost(why))

    def _busyAgain(self, error, entry, tries):
        """Send a request answered C{server.busy} again after its C{retry_after}, doubled C{tries} times (jittered, at most L{BUSY_MAX_WAIT}). @return: whether it will be."""
        d, request = entry
        if (error.get("code") != errors.BUSY or tries >= self.busyRetries
                or request.get("t") in ("hello", "resume")):
            return False
        base = error.get("retry_after") or 1.0
        delay = min(BUSY_MAX_WAIT, base * 2 ** tries) * (0.5 + self._random.random() / 2)
        self._busyWaiting.add(d)

        def again():
            self._busyWaiting.discard(d)
            request.pop("id", None)
            sent = self._call(request)
            self._busyTries[request["id"]] = tries + 1
            sent.chainDeferred(d)

        self._later(delay, again)
        return True

    def _later(self, delay, f, *args):
        """Schedule C{f}; every pending call is cancelled when the session ends."""
        holder = []

        def run():
            self._timers.discard(holder[0])
            f(*args)

        call = self.reactor.callLater(delay, run)
        holder.append(call)
        self._timers.add(call)

    # -- incoming ---------------------------------------------------------

    def _frameReceived(self, payload):
        self._heard += 1
        try:
            message = decode(payload)
        except DecodeError:
            self.log.warn("undecodable message from the server; dropping the link")
            self.drop()
            return
        seq = message.get("seq")
        if seq is not None:
            if seq <= self.lastSeq:
                return  # already seen before a resume
            self.lastSeq = seq
        kind = message["t"]
        if kind == "ping":
            pong = {"t": "pong"}
            if "n" in message:
                pong["n"] = message["n"]
            try:
                self._write(pong)
            except ConnectionLost:
                pass  # the link is going: its loss ends or resumes the session
            return
        if kind == "pong" and "id" not in message:
            if message.get("n") == self._pingNonce and self._pingSentAt is not None:
                self.rtt = self.reactor.seconds() - self._pingSentAt
                self._pingSentAt = None
            return
        if kind == "error" and message.get("code") in FATAL_CODES:
            self._fatal = message.get("code")
        elif kind == "server.shutdown":
            if message.get("resume") and self.autoResume:
                self._stopping(message)
                if len(self.addresses) > 1:
                    # Go on on the next node of the role when the link closes.
                    at = self.addresses.index(self.address) if self.address in self.addresses else -1
                    self.address = self.addresses[(at + 1) % len(self.addresses)]
            elif not message.get("resume"):
                self._fatal = "shutdown"
        requestId = message.get("id")
        if requestId is not None:
            entry = self._pending.pop(requestId, None)
            tries = self._busyTries.pop(requestId, 0)
            if entry is not None:
                d = entry[0]
                if kind == "error":
                    if not self._busyAgain(message, entry, tries):
                        d.errback(RequestError(message))
                else:
                    d.callback(message)
                return
        if self.onEvent is not None:
            self.onEvent(message)
        else:
            self.events.put(message)

    def _linkLost(self, link):
        if link is not self._link:
            return
        self._link = None
        pending, self._pending = self._pending, {}
        for rid, (d, _) in pending.items():
            self._busyTries.pop(rid, None)
            d.errback(ConnectionLost("connection lost before the reply"))
        waiters, self._linkLostWaiters = self._linkLostWaiters, []
        for d in waiters:
            d.callback(None)
        if self._closing or self.ended.called:
            return
        if self.autoResume and self.resumeToken and self._fatal is None and self._resuming is None:
            self._holding = True
            self._resuming = Deferred.fromCoroutine(self._resume())
            self._resuming.addBoth(self._resumeDone)
        else:
            self._end(self._fatal or "disconnected")

    def _resumeDone(self, result):
        self._resuming = None
        if not isinstance(result, dict):
            self._end("resume_failed")  # which fails the requests held

    async def resume(self):
        """
        Resume the session now (after L{drop}, with C{autoResume} off), on
        this node or, when it cannot be reached, the next of C{alternates}.
        @return: the C{resumed} reply, or None when no node took it.
        """
        return await self._resume()

    async def _resume(self):
        deadline = self.reactor.seconds() + self.resumeGrace
        delay = 0.05
        while not self._closing:
            try:
                await self._open()
                reply = await self._exchange(
                    {"t": "resume", "resume_token": self.resumeToken, "last_seq": self.lastSeq}
                )
            except RequestError:
                return None
            except Exception:
                if self.reactor.seconds() + delay >= deadline:
                    return None
                # The node may be gone: try the next one of the role.
                at = self.addresses.index(self.address) if self.address in self.addresses else -1
                self.address = self.addresses[(at + 1) % len(self.addresses)]
                await self._pause(delay)
                delay = min(delay * 2, 2.0)
                continue
            self.resumeToken = reply["resume_token"]
            self.resumes += 1
            self._holding = False
            if reply.get("moved") and self.onMoved is not None:
                # Its requests (a world.enter, an mm.hello) go before those held,
                # which wait for it when it returns a Deferred.
                moving = self.onMoved(reply)
                if isinstance(moving, Deferred):
                    self._holding = True
                    try:
                        await moving
                    except Exception:
                        pass  # its caller's to handle; the held requests go anyway
                    self._holding = False
            self._sendHeld()
            return reply
        return None

    # -- heartbeat --------------------------------------------------------

    def _beat(self):
        if self.ended.called or self._closing:
            return
        if self._link is not None:
            if self._heard == self._heardAtLastBeat:
                self._silentBeats += 1
                if self._silentBeats >= 3:
                    # The server pings every beat: three silent beats mean
                    # the link is dead even if TCP has not noticed.
                    self.drop()
            else:
                self._silentBeats = 0
            self._heardAtLastBeat = self._heard
            self._pingNonce += 1
            self._pingSentAt = self.reactor.seconds()
            try:
                self._write({"t": "ping", "n": self._pingNonce})
            except ConnectionLost:
                pass
        self._later(self.heartbeat, self._beat)

    def _end(self, reason):
        if self.ended.called:
            return
        self._holding = False
        self._failHeld(reason)
        waiting, self._busyWaiting = self._busyWaiting, set()
        for d in waiting:
            d.errback(ConnectionLost(reason))
        for call in list(self._timers):
            if call.active():
                call.cancel()
        self._timers.clear()
        self.ended.callback(reason)


async def connect(reactor, address, token, **kwargs):
    """
    Connect and complete the handshake.

    @param address: C{ws://host:port/}, C{tcp:host:port} or C{host:port}.
    @return: a connected L{SessionClient}.
    @raise RequestError: when the server refuses the hello.
    """
    client = SessionClient(reactor, address, token, **kwargs)
    await client.connect()
    return client


async def login(reactor, httpBaseURL, username, password):
    """
    Log in through the auth role's REST API (C{POST /v1/sessions}).

    @return: the response body: C{access_token}, C{refresh_token},
        C{account_id}...
    @raise RequestError: with the API's error code when refused.
    """
    from treq.client import HTTPClient
    from twisted.web.client import Agent

    http = HTTPClient(Agent(reactor))
    response = await http.post(
        httpBaseURL.rstrip("/") + "/v1/sessions",
        json={"username": username, "password": password},
    )
    body = await response.json()
    if response.code != 200 and response.code != 201:
        error = body.get("error", body) if isinstance(body, dict) else {}
        raise RequestError(
            {"code": error.get("code", f"http.{response.code}"), "message": error.get("message", "")}
        )
    return body
