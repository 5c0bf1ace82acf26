"""The WebSocket transport (Autobahn): one binary message per session-protocol message."""

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny

from mmoshard.wire import errors
from mmoshard.wire.errors import ErrorInfo
from mmoshard.wire.connection import Connection

SUBPROTOCOL = "mmoshard.v1"
CLOSE_NORMAL = 1000
# Autobahn lets an application send 1000 or 3000-4999; 4000 says "see the
# typed error sent just before".
CLOSE_ERROR = 4000


class SessionWebSocketProtocol(WebSocketServerProtocol):
    """One WebSocket client, driving a L{Connection} like the TCP transport does."""

    ready = False
    conn = None

    def connectionMade(self):
        # The Connection exists from the TCP accept, so connection limits and
        # the hello timeout also cover clients that never finish the upgrade.
        peer = self.transport.getPeer()
        self.conn = Connection(
            self.factory.manager, "websocket", getattr(peer, "host", str(peer)), self
        )
        self.transport.registerProducer(self.conn, True)
        super().connectionMade()

    def onConnect(self, request):
        if SUBPROTOCOL not in request.protocols:
            raise ConnectionDeny(
                ConnectionDeny.BAD_REQUEST, f"subprotocol {SUBPROTOCOL} required"
            )
        return SUBPROTOCOL

    def onOpen(self):
        self.ready = True
        self.conn.linkReady()

    def onMessage(self, payload, isBinary):
        conn = self.conn
        if not isBinary:
            conn.fail(ErrorInfo(errors.TEXT_FRAME, "messages must be binary msgpack"))
            return
        if len(payload) > self.factory.manager.config.max_frame:
            # Autobahn enforces the same bound; this check keeps the limit
            # even if its options are changed or extensions inflate payloads.
            conn.fail(ErrorInfo(errors.FRAME_TOO_LARGE, "message too large"))
            return
        conn.messageReceived(payload)

    def onClose(self, wasClean, code, reason):
        pass

    def connectionLost(self, reason):
        super().connectionLost(reason)
        if self.conn is not None:
            self.conn.connectionLost()

    # The link the Connection drives.

    def writeFrame(self, payload):
        if self.state != self.STATE_OPEN:
            # The peer started the closing handshake (a browser's
            # WebSocket.close()): the connection is going, and Autobahn
            # refuses to send.  What is replayable waits in the session's
            # buffer for a resume, as after any lost connection.
            return
        self.sendMessage(payload, isBinary=True)

    def closeLink(self, error=None):
        if self.ready:
            self.sendClose(CLOSE_ERROR if error is not None else CLOSE_NORMAL)
        else:
            self.transport.loseConnection()

    def abortLink(self):
        self.transport.abortConnection()


class SessionWebSocketFactory(WebSocketServerFactory):
    """Autobahn factory with our limits, and Autobahn's own timers off (ours use the node's clock)."""

    protocol = SessionWebSocketProtocol
    noisy = False

    def __init__(self, manager):
        super().__init__(reactor=manager.clock, protocols=[SUBPROTOCOL])
        self.manager = manager
        maxFrame = manager.config.max_frame
        self.setProtocolOptions(
            maxFramePayloadSize=maxFrame,
            maxMessagePayloadSize=maxFrame,
            autoFragmentSize=0,
            openHandshakeTimeout=0,
            closeHandshakeTimeout=0,
            autoPingInterval=0,
            failByDrop=True,
        )
