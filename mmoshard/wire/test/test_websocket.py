"""Deterministic tests of the WebSocket transport over a StringTransport."""

import struct

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import TestCase

from mmoshard.wire import errors
from mmoshard.wire.codec import encode
from mmoshard.wire.test.helpers import Server, wsFrame


class WebSocketTests(TestCase):
    def setUp(self):
        self.server = Server(self, max_frame=1024)

    def test_upgradeAndHandshake(self):
        """
        The upgrade agrees on mmoshard.v1; hello and ping over WebSocket are answered and
        counted under the websocket transport.
        """
        peer = self.server.ws()
        self.assertTrue(peer.upgraded, peer.handshake)
        self.assertIn("Sec-WebSocket-Protocol: mmoshard.v1", peer.handshake)
        peer.send({"t": "hello", "id": 1, "token": self.server.token(3),
                   "client_version": "1", "platform": "web"})
        [welcome] = peer.received()
        self.assertEqual(welcome["t"], "welcome")
        self.assertEqual(welcome["account_id"], 3)
        peer.send({"t": "ping", "id": 2})
        self.assertEqual(peer.received(), [{"t": "pong", "id": 2}])
        registry = self.server.node.metrics
        self.assertEqual(registry.get_sample_value(
            "mmoshard_session_messages_in_total", {"transport": "websocket", "type": "ping"}), 1)

    def test_subprotocolRequired(self):
        """An upgrade without the mmoshard.v1 subprotocol is refused with 400."""
        peer = self.server.ws(protocols=("chat",))
        self.assertFalse(peer.upgraded)
        self.assertIn("400", peer.handshake.splitlines()[0])

    def test_textFrameRejected(self):
        """A text message in a session is closed with text_frame and close code 4000."""
        peer = self.server.welcomed(transport="ws")
        peer.sendText('{"t": "ping"}')
        [error] = peer.received()
        self.assertEqual(error["code"], errors.TEXT_FRAME)
        self.assertEqual(peer.closeFrames, [4000])

    def test_textFrameBeforeHello(self):
        """A text message before hello is closed with text_frame."""
        peer = self.server.ws()
        peer.sendText("hello?")
        self.assertEqual(peer.received()[0]["code"], errors.TEXT_FRAME)
        self.assertTrue(peer.closed)

    def test_sizeLimit(self):
        """
        A message under max_frame is handled; a frame over it drops the connection before
        its body is buffered.
        """
        peer = self.server.welcomed(transport="ws")
        peer.send({"t": "ping", "pad": "x" * 900})
        self.assertEqual(peer.received()[0]["t"], "pong")
        peer.sendBytes(wsFrame(encode({"t": "ping", "pad": "x" * 1100})))
        # Autobahn refuses the frame header before buffering the body.
        self.assertEqual(peer.received(), [])
        self.assertTrue(peer.transport.disconnecting)

    def test_ownSizeCheck(self):
        """
        A message over max_frame that reaches onMessage is closed with frame_too_large by
        our own check.
        """
        peer = self.server.welcomed(transport="ws")
        peer.protocol.onMessage(b"\x80" * 1025, True)
        self.assertEqual(peer.received()[0]["code"], errors.FRAME_TOO_LARGE)
        self.assertEqual(peer.closeFrames, [4000])

    def test_sendWhileThePeerCloses(self):
        """
        An event sent to a client that started the closing handshake (a browser's close())
        raises nothing, and a resume replays it.
        """
        peer = self.server.welcomed(transport="ws")
        session = self.server.manager.sessions[peer.welcome["session_id"]]
        peer.sendBytes(wsFrame(struct.pack(">H", 4001), opcode=8))
        session.send("t.event", {"n": 1})
        peer.lose()
        again = self.server.ws()
        again.send({"t": "resume", "resume_token": peer.welcome["resume_token"], "last_seq": 0})
        replies = again.received()
        self.assertEqual([r["t"] for r in replies], ["resumed", "t.event"])
        self.assertEqual(replies[1]["n"], 1)

    def test_garbage(self):
        """A binary message that is not msgpack is closed with bad_frame and close code 4000."""
        peer = self.server.welcomed(transport="ws")
        peer.sendBytes(wsFrame(b"\xc1\x00\x01"))
        self.assertEqual(peer.received()[0]["code"], errors.BAD_FRAME)
        self.assertEqual(peer.closeFrames, [4000])

    def test_invalidToken(self):
        """
        A hello with a bad token over WebSocket is closed with auth.invalid_token and close
        code 4000.
        """
        peer = self.server.ws()
        peer.send({"t": "hello", "token": "bad", "client_version": "1", "platform": "web"})
        self.assertEqual(peer.received()[0]["code"], errors.INVALID_TOKEN)
        self.assertEqual(peer.closeFrames, [4000])

    def test_helloTimeoutWithoutUpgrade(self):
        """A connection that never finishes the upgrade is dropped at the hello timeout."""
        self.server.ws()  # builds the factory
        transport = StringTransport(peerAddress=IPv4Address("TCP", "10.1.1.1", 5))
        protocol = self.server.wsFactory.buildProtocol(transport.getPeer())
        protocol.makeConnection(transport)
        protocol.dataReceived(b"GET / HTTP/1.1\r\n")
        self.server.clock.advance(5.1)
        self.assertTrue(transport.disconnected)

    def test_connectionLimitOverWebSocket(self):
        """max_per_ip also refuses WebSocket connections, with ip_limit."""
        server = Server(self, max_per_ip=1)
        first = server.ws()
        second = server.ws()
        self.assertFalse(first.closed)
        self.assertEqual(second.received()[0]["code"], errors.IP_LIMIT)
        self.assertTrue(second.closed)

    def test_resumeOverWebSocket(self):
        """A session resumed over WebSocket gets resumed and the missed event."""
        peer = self.server.welcomed(transport="ws")
        session = self.server.manager.sessions[peer.welcome["session_id"]]
        peer.lose()
        session.send("t.event", {"n": 1})
        again = self.server.ws()
        again.send({"t": "resume", "resume_token": peer.welcome["resume_token"],
                    "last_seq": 0})
        replies = again.received()
        self.assertEqual([r["t"] for r in replies], ["resumed", "t.event"])
