"""Test fixtures for the session protocol: nodes on a Clock, simulated TCP and WebSocket peers."""

import base64
import os
import struct

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from zope.interface import implementer

from mmoshard.config import parseConfig
from mmoshard.interfaces import IClientGate, ISessionListener, ITokenVerifier, IVolatileStore
from mmoshard.node import Node
from mmoshard.store.volatile import MemoryStore
from mmoshard.tokens import TokenVerifier, issueAccessToken
from mmoshard.wire.codec import decode, encode
from mmoshard.wire.framing import FrameDecoder, frame
from mmoshard.wire.manager import SessionManager
from mmoshard.wire.resumestore import ResumeStore
from mmoshard.wire.tcp import SessionTCPFactory
from mmoshard.wire.websocket import SessionWebSocketFactory

KEY = "test-signing-key-0123456789"


def makeVolatile(clock):
    """A fresh in-memory volatile store."""
    store = MemoryStore(clock, "test:")
    store.open()
    return store


def makeNode(clock=None, volatile=None, nodeId="node-a", listen=None, **session):
    """
    A real L{Node} with no roles, a volatile store and a token verifier
    registered, and C{session} overriding C{[session]} settings.
    """
    clock = Clock() if clock is None else clock
    raw = {
        "session": session,
        "secrets": {"token_key": KEY},
        "listen": listen or {"tcp": "", "websocket": "", "http": "", "admin": ""},
    }
    config = parseConfig(raw, plugins=[], nodeId=nodeId, env={})
    node = Node(config, clock, roles=[])
    volatile = makeVolatile(clock) if volatile is None else volatile
    node.provide(IVolatileStore, volatile)
    node.provide(ITokenVerifier, TokenVerifier(KEY, volatile, clock))
    return node


def makeManager(node):
    """A L{SessionManager} given what C{node} provides, as the core would build it."""
    s = node.config.session
    volatile = node.query(IVolatileStore)
    resumeStore = None
    if s.resume_anywhere and s.resume_grace > 0 and volatile is not None:
        resumeStore = ResumeStore(volatile, node.reactor, node.nodeId, s.replay_buffer,
                                  s.resume_grace)
    return SessionManager(
        s, node.reactor, node.nodeId, node.metrics,
        verifier=node.query(ITokenVerifier),
        volatile=volatile,
        gate=node.query(IClientGate),
        resumeStore=resumeStore,
    )


def makeSessionService(node):
    """A L{SessionService} for C{node}'s C{[listen]} endpoints, its manager registered as the router."""
    from mmoshard.interfaces import IMessageRouter
    from mmoshard.wire.service import SessionService

    manager = makeManager(node)
    node.provide(IMessageRouter, manager)
    config = node.config
    return SessionService(node.reactor, manager, config.listen, config.shutdown.drain_timeout,
                          node.listeningPorts, node.nodeId)


def token(clock, accountId=1, sid=None, ttl=3600.0, flags=()):
    return issueAccessToken(
        KEY, accountId, sid or f"login-{accountId}", ttl, clock.seconds(), flags
    )


@implementer(ISessionListener)
class RecordingListener:
    """Records every session event as (event, session id, extra)."""

    def __init__(self):
        self.events = []

    def sessionStarted(self, session):
        self.events.append(("started", session.sessionId))

    def sessionLinkDead(self, session):
        self.events.append(("linkdead", session.sessionId))

    def sessionResumed(self, session):
        self.events.append(("resumed", session.sessionId))

    def sessionMoved(self, session, fromNode):
        self.events.append(("moved", session.sessionId, fromNode))

    def sessionEnded(self, session, reason):
        self.events.append(("ended", session.sessionId, reason))


class Server:
    """A L{SessionManager} on a Clock, started, with peers made on demand."""

    def __init__(self, testCase, clock=None, volatile=None, nodeId="node-a", **session):
        self.testCase = testCase
        self.clock = Clock() if clock is None else clock
        self.node = makeNode(self.clock, volatile, nodeId, **session)
        self.volatile = self.node.lookup(IVolatileStore)
        self.manager = makeManager(self.node)
        self.listener = RecordingListener()
        self.manager.addListener(self.listener)
        self.started = Deferred.fromCoroutine(self.manager.start())
        if self.started.called:
            # On a Clock with the memory store, start-up is synchronous.
            testCase.successResultOf(self.started)
        self.tcpFactory = SessionTCPFactory(self.manager)
        self.wsFactory = None

    def tcp(self, host="10.0.0.1"):
        return TCPPeer(self, host)

    def ws(self, host="10.0.0.1", protocols=("mmoshard.v1",)):
        if self.wsFactory is None:
            self.wsFactory = SessionWebSocketFactory(self.manager)
        return WebSocketPeer(self, host, protocols)

    def token(self, accountId=1, **kw):
        return token(self.clock, accountId, **kw)

    def welcomed(self, accountId=1, transport="tcp", host="10.0.0.1", sid=None):
        """
        @param sid: the token's login id (default C{login-<accountId>}).
        @return: a peer that completed the handshake, its welcome read.
        """
        peer = self.tcp(host) if transport == "tcp" else self.ws(host)
        peer.send({"t": "hello", "id": 1, "token": self.token(accountId, sid=sid),
                   "client_version": "1.0", "platform": "test"})
        replies = peer.received()
        assert replies and replies[0]["t"] == "welcome", replies
        peer.welcome = replies[0]
        return peer


class TCPPeer:
    """A client on a StringTransport, speaking length-prefixed frames."""

    def __init__(self, server, host):
        self.server = server
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", host, 40000))
        self.protocol = server.tcpFactory.buildProtocol(self.transport.getPeer())
        self.protocol.makeConnection(self.transport)
        self._decoder = FrameDecoder(1 << 30)
        self.welcome = None

    def sendBytes(self, data):
        self.protocol.dataReceived(data)

    def send(self, message):
        self.sendBytes(frame(encode(message)))

    def received(self):
        data = self.transport.value()
        self.transport.clear()
        return [decode(p) for p in self._decoder.feed(data)]

    @property
    def closed(self):
        return self.transport.disconnecting

    def lose(self):
        self.protocol.connectionLost(Failure(ConnectionDone()))

    @property
    def conn(self):
        return self.protocol.conn


def wsFrame(payload, opcode=2, mask=b"\x11\x22\x33\x44"):
    """A masked client WebSocket frame."""
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + body


def parseServerFrames(data):
    """@return: (frames as (opcode, payload), rest) of unmasked server frames."""
    frames = []
    while len(data) >= 2:
        opcode = data[0] & 0x0F
        n = data[1] & 0x7F
        offset = 2
        if n == 126:
            if len(data) < 4:
                break
            (n,) = struct.unpack(">H", data[2:4])
            offset = 4
        elif n == 127:
            if len(data) < 10:
                break
            (n,) = struct.unpack(">Q", data[2:10])
            offset = 10
        if len(data) < offset + n:
            break
        frames.append((opcode, data[offset : offset + n]))
        data = data[offset + n :]
    return frames, data


class WebSocketPeer:
    """A WebSocket client on a StringTransport, upgraded by hand."""

    def __init__(self, server, host, protocols):
        self.server = server
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", host, 40001))
        self.protocol = server.wsFactory.buildProtocol(self.transport.getPeer())
        self.protocol.makeConnection(self.transport)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            "GET / HTTP/1.1",
            "Host: 127.0.0.1",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if protocols:
            lines.append("Sec-WebSocket-Protocol: " + ", ".join(protocols))
        self.protocol.dataReceived(("\r\n".join(lines) + "\r\n\r\n").encode())
        response = self.transport.value()
        head, _, rest = response.partition(b"\r\n\r\n")
        self.handshake = head.decode("latin-1")
        self.transport.clear()
        self._rest = rest
        self.closeFrames = []
        self.welcome = None

    @property
    def upgraded(self):
        return self.handshake.startswith("HTTP/1.1 101")

    def sendBytes(self, data):
        self.protocol.dataReceived(data)

    def send(self, message):
        self.sendBytes(wsFrame(encode(message)))

    def sendText(self, text):
        self.sendBytes(wsFrame(text.encode(), opcode=1))

    def received(self):
        data = self._rest + self.transport.value()
        self.transport.clear()
        frames, self._rest = parseServerFrames(data)
        messages = []
        for opcode, payload in frames:
            if opcode == 8:
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                self.closeFrames.append(code)
            elif opcode == 2:
                messages.append(decode(payload))
        return messages

    @property
    def closed(self):
        return self.transport.disconnecting or bool(self.closeFrames)

    def lose(self):
        self.protocol.connectionLost(Failure(ConnectionDone()))

    @property
    def conn(self):
        return self.protocol.conn


@implementer(ITokenVerifier)
class FakeVerifier:
    """An L{ITokenVerifier} whose answer the test decides; it never hears of revocations."""

    def __init__(self, result):
        self.result = result

    def checkRevoked(self, claims):
        return succeed(None)

    def isRevoked(self, claims):
        return False

    def addRevocationObserver(self, observer):
        pass

    def removeRevocationObserver(self, observer):
        pass

    def verify(self, token):
        if isinstance(self.result, Exception):
            from twisted.internet.defer import fail

            return fail(self.result)
        return succeed(self.result)
