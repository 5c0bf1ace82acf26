"""Tests for the codec and TCP framing, in isolation and through the TCP transport."""

import msgpack
from twisted.trial.unittest import TestCase

from mmoshard.wire import errors
from mmoshard.wire.codec import DecodeError, OutOfRange, decode, encode
from mmoshard.wire.framing import EmptyFrame, FrameDecoder, FrameTooLarge, frame
from mmoshard.wire.test.helpers import Server


class CodecTests(TestCase):
    def test_roundTrip(self):
        """A message with str, int and bytes values decodes to what was encoded."""
        message = {"t": "chat.say", "id": 3, "text": "hi", "blob": b"\x00\x01"}
        self.assertEqual(decode(encode(message)), message)

    def test_rejects(self):
        """
        decode refuses empty, invalid, non-map, untyped, trailing-byte, non-str-key,
        extension, bad UTF-8 and deeply nested payloads with DecodeError.
        """
        bad = [
            b"",
            b"\xc1",
            msgpack.packb([1, 2]),
            msgpack.packb({"id": 1}),
            msgpack.packb({"t": 5}),
            msgpack.packb({"t": "x"}) + b"\x00",
            msgpack.packb({1: 2, "t": "x"}),
            msgpack.packb({"t": "x", "e": msgpack.ExtType(5, b"zz")}),
            b"\xa3\xff\xfe\xfd",
            b"\x91" * 5000 + b"\x00",
        ]
        for payload in bad:
            self.assertRaises(DecodeError, decode, payload)

    def test_rejects_what_main_let_through(self):
        """
        decode refuses bytes (bin) map keys at any depth and the timestamp
        extension (type -1, which msgpack decodes without ext_hook), which
        main let through to handlers, and an integer beyond signed 64 bits
        as OutOfRange, carrying the message for its id.
        """
        for message in ({"t": "x", b"k": 1}, {"t": "x", "a": [{"b": {b"k": 1}}]},
                        {"t": "x", "a": msgpack.Timestamp(1, 0)},
                        {"t": "x", "a": [msgpack.Timestamp(2**40, 5)]}):
            with self.assertRaises(DecodeError) as caught:
                decode(msgpack.packb(message, use_bin_type=True))
            self.assertNotIsInstance(caught.exception, OutOfRange)
        with self.assertRaises(OutOfRange) as caught:
            decode(encode({"t": "chat.unblock", "id": 4, "character_id": 2**64 - 1}))
        self.assertEqual(caught.exception.message["id"], 4)
        edge = {"t": "x", "n": [2**63 - 1, -(2**63)], "f": 1.5, "b": b"\xcf\xc4", "s": "\xcf"}
        self.assertEqual(decode(encode(edge)), edge)


class FrameDecoderTests(TestCase):
    messages = [{"t": "a", "n": i, "pad": "x" * (i * 37)} for i in range(6)]

    def stream(self):
        return b"".join(frame(encode(m)) for m in self.messages)

    def test_splitAtEveryByte(self):
        """
        A stream of frames split in two at any byte decodes to the same messages, nothing
        left pending.
        """
        data = self.stream()
        for cut in range(len(data) + 1):
            decoder = FrameDecoder(65536)
            frames = decoder.feed(data[:cut]) + decoder.feed(data[cut:])
            self.assertEqual([decode(f) for f in frames], self.messages)
            self.assertEqual(decoder.pending, 0)

    def test_byteByByte(self):
        """Frames fed one byte at a time decode to the same messages."""
        decoder = FrameDecoder(65536)
        frames = []
        for i, byte in enumerate(self.stream()):
            frames.extend(decoder.feed(bytes([byte])))
        self.assertEqual([decode(f) for f in frames], self.messages)

    def test_coalesced(self):
        """Many frames in one chunk all decode, in order."""
        decoder = FrameDecoder(65536)
        frames = decoder.feed(self.stream() * 3)
        self.assertEqual([decode(f) for f in frames], self.messages * 3)

    def test_tooLargeBeforeBody(self):
        """
        A header announcing more than the limit raises FrameTooLarge with the size and limit
        before any body arrives.
        """
        decoder = FrameDecoder(100)
        decoder.feed(frame(b"x" * 100))
        e = self.assertRaises(FrameTooLarge, decoder.feed, b"\x00\x00\x00\x65")
        self.assertEqual((e.size, e.limit), (101, 100))

    def test_empty(self):
        """A zero-length frame raises EmptyFrame."""
        self.assertRaises(EmptyFrame, FrameDecoder(10).feed, b"\x00\x00\x00\x00")


class TCPTransportTests(TestCase):
    def test_splitAtEveryByteThroughServer(self):
        """
        A hello and a ping split at any byte through the TCP transport get a welcome and a
        pong.
        """
        server = Server(self)
        hello = {"t": "hello", "id": 1, "token": server.token(5),
                 "client_version": "1", "platform": "t"}
        data = frame(encode(hello)) + frame(encode({"t": "ping", "id": 2, "n": 9}))
        for cut in range(len(data) + 1):
            peer = server.tcp()
            peer.sendBytes(data[:cut])
            peer.sendBytes(data[cut:])
            replies = peer.received()
            self.assertEqual([r["t"] for r in replies], ["welcome", "pong"], cut)
            self.assertEqual(replies[1]["n"], 9)
            peer.lose()

    def test_coalescedThroughServer(self):
        """Ten pings in one TCP chunk get ten pongs, in order."""
        server = Server(self)
        peer = server.welcomed()
        data = b"".join(frame(encode({"t": "ping", "id": i})) for i in range(10))
        peer.sendBytes(data)
        self.assertEqual([r["id"] for r in peer.received()], list(range(10)))

    def test_sizeLimit(self):
        """
        A frame under max_frame is handled; one announcing more is closed with
        frame_too_large.
        """
        server = Server(self, max_frame=1024)
        peer = server.welcomed()
        peer.send({"t": "ping", "pad": "x" * 900})
        self.assertEqual(peer.received()[0]["t"], "pong")
        self.assertFalse(peer.closed)
        peer.sendBytes(b"\x00\x00\x04\x01")
        [error] = peer.received()
        self.assertEqual(error["t"], "error")
        self.assertEqual(error["code"], errors.FRAME_TOO_LARGE)
        self.assertTrue(peer.closed)

    def test_garbage(self):
        """A frame that is not msgpack is closed with bad_frame; bytes after it are ignored."""
        server = Server(self)
        peer = server.welcomed()
        peer.sendBytes(frame(b"\xc1\xc1garbage"))
        [error] = peer.received()
        self.assertEqual(error["code"], errors.BAD_FRAME)
        self.assertTrue(peer.closed)
        # Later bytes on a closing connection are ignored, not processed.
        peer.sendBytes(frame(encode({"t": "ping"})))
        self.assertEqual(peer.received(), [])

    def test_emptyFrame(self):
        """An empty TCP frame is closed with bad_frame."""
        server = Server(self)
        peer = server.tcp()
        peer.sendBytes(b"\x00\x00\x00\x00")
        self.assertEqual(peer.received()[0]["code"], errors.BAD_FRAME)
        self.assertTrue(peer.closed)
