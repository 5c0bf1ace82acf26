"""The TCP transport: length-prefixed frames carrying session-protocol messages."""

from twisted.internet.protocol import Factory, Protocol

from mmoshard.wire import errors
from mmoshard.wire.direct import directWriter
from mmoshard.wire.errors import ErrorInfo
from mmoshard.wire.framing import HEADER, EmptyFrame, FrameDecoder, FrameTooLarge
from mmoshard.wire.connection import Connection
from mmoshard.wire.states import CLOSING

_packHeader = HEADER.pack


class SessionTCPProtocol(Protocol):
    """One TCP client: frames in, frames out; the L{Connection} does the rest."""

    ready = True

    def __init__(self, manager):
        self.manager = manager
        self.conn = None
        self._decoder = FrameDecoder(manager.config.max_frame)
        self._writer = None
        self._write = None

    def connectionMade(self):
        peer = self.transport.getPeer()
        self._writer = directWriter(self.transport, self.manager.writeBatch,
                                    self.manager.config.direct_write)
        self._write = self._writer.write
        self.conn = Connection(self.manager, "tcp", getattr(peer, "host", str(peer)), self)
        self.transport.registerProducer(self.conn, True)
        self.conn.linkReady()

    def dataReceived(self, data):
        conn = self.conn
        if conn.state >= CLOSING:
            return
        try:
            frames = self._decoder.feed(data)
        except FrameTooLarge as e:
            conn.fail(ErrorInfo(errors.FRAME_TOO_LARGE, str(e)))
            return
        except EmptyFrame:
            conn.fail(ErrorInfo(errors.BAD_FRAME, "empty frame"))
            return
        received = conn.messageReceived
        for payload in frames:
            received(payload)

    def connectionLost(self, reason):
        if self.conn is not None:
            self.conn.connectionLost()

    # The link the Connection drives.

    def writeFrame(self, payload):
        self._write(_packHeader(len(payload)) + payload)

    def closeLink(self, error=None):
        # What waits for the end of the round (the error frame, say) goes
        # first: Twisted closes at once when its own buffer is empty.
        self._writer.flush()
        self.transport.loseConnection()

    def abortLink(self):
        self._writer.discard()
        self.transport.abortConnection()


class SessionTCPFactory(Factory):
    """Builds a L{SessionTCPProtocol} per connection."""

    noisy = False

    def __init__(self, manager):
        self.manager = manager

    def buildProtocol(self, addr):
        return SessionTCPProtocol(self.manager)
