"""The Python client's links: one connection, over TCP or WebSocket, handing frames to its session client."""

from autobahn.exception import Disconnected
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionLost
from twisted.internet.protocol import Protocol

from mmoshard.wire.framing import HEADER, FrameDecoder

_packHeader = HEADER.pack


class _TCPLink(Protocol):
    def __init__(self, client, maxFrame):
        self.client = client
        self._decoder = FrameDecoder(maxFrame)
        self.opened = Deferred()

    def connectionMade(self):
        self.opened.callback(self)

    def dataReceived(self, data):
        try:
            frames = self._decoder.feed(data)
        except ValueError:
            self.transport.abortConnection()
            return
        for payload in frames:
            self.client._frameReceived(payload)

    def connectionLost(self, reason):
        self.client._linkLost(self)

    def writeFrame(self, payload):
        self.transport.write(_packHeader(len(payload)) + payload)

    def close(self):
        self.transport.loseConnection()

    def abort(self):
        self.transport.abortConnection()


class _WebSocketLink(WebSocketClientProtocol):
    client = None
    opened = None

    def onOpen(self):
        self.opened.callback(self)

    def onMessage(self, payload, isBinary):
        if isBinary:
            self.client._frameReceived(payload)

    def connectionLost(self, reason):
        super().connectionLost(reason)
        if self.opened is not None and not self.opened.called:
            self.opened.errback(ConnectionLost("WebSocket upgrade failed"))
        self.client._linkLost(self)

    def writeFrame(self, payload):
        try:
            self.sendMessage(payload, isBinary=True)
        except Disconnected:
            # Closing (the server's close frame came, the TCP close has
            # not): as on TCP, the write is lost with the connection.
            raise ConnectionLost("the WebSocket is closing")

    def close(self):
        self.sendClose(1000)
        # Autobahn's own drop timer would run on the global reactor; ours
        # runs on the client's.
        self.client._later(2.0, self.abort)

    def abort(self):
        if self.transport is not None:
            self.transport.abortConnection()


class _WebSocketLinkFactory(WebSocketClientFactory):
    protocol = _WebSocketLink
    noisy = False
    client = None

    def buildProtocol(self, addr):
        link = super().buildProtocol(addr)
        link.client = self.client
        link.opened = Deferred()
        return link
