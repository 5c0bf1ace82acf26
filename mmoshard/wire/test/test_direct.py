"""Tests for the batched direct TCP writer: what reaches the peer, in order, whatever the socket buffer does."""

import socket

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import TestCase

from mmoshard.twistedcompat import unsentBytes
from mmoshard.wire.direct import WriteBatch, directWriter


class Collect(Protocol):
    def __init__(self):
        self.data = bytearray()
        self.lost = Deferred()

    def dataReceived(self, data):
        self.data += data

    def connectionLost(self, reason):
        self.lost.callback(None)


class Sender(Protocol):
    def __init__(self, made):
        self.made = made
        self.lost = Deferred()

    def connectionMade(self):
        self.made.callback(self)

    def connectionLost(self, reason):
        self.lost.callback(None)


class Producer:
    paused = 0

    def pauseProducing(self):
        self.paused += 1

    def resumeProducing(self):
        pass

    def stopProducing(self):
        pass


class DirectWriterTests(TestCase):
    def reactor(self):
        from twisted.internet import reactor

        return reactor

    @inlineCallbacks
    def connected(self):
        """@return: (server-side Sender, client-side Collect, client transport)."""
        reactor = self.reactor()
        made = Deferred()
        port = reactor.listenTCP(0, Factory.forProtocol(lambda: Sender(made)),
                                 interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        collect = Collect()
        from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

        yield connectProtocol(
            TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port), collect)
        sender = yield made

        def close():
            sender.transport.abortConnection()
            collect.transport.abortConnection()
            return sender.lost

        self.addCleanup(close)
        return sender, collect

    @inlineCallbacks
    def waitFor(self, predicate, timeout=10.0):
        waited = 0.0
        while not predicate():
            self.assertLess(waited, timeout, "condition not reached in time")
            yield deferLater(self.reactor(), 0.01)
            waited += 0.01

    def writer(self, transport, enabled=True):
        batch = WriteBatch(self.reactor())
        self.addCleanup(batch.flush)
        return batch, directWriter(transport, batch, enabled)

    @inlineCallbacks
    def test_oneSendPerRound(self):
        """
        Writes of one reactor round wait for its end and leave in one send,
        without going through Twisted's buffer.
        """
        sender, collect = yield self.connected()
        sends = []
        batch, writer = self.writer(sender.transport)
        realSend = writer._send
        writer._send = lambda data: sends.append(bytes(data)) or realSend(data)
        writer.write(b"hello ")
        writer.write(b"world")
        self.assertEqual(sends, [])
        yield deferLater(self.reactor(), 0)
        self.assertEqual(sends, [b"hello world"])
        self.assertEqual(unsentBytes(sender.transport), 0)
        yield self.waitFor(lambda: bytes(collect.data) == b"hello world")

    @inlineCallbacks
    def test_orderAndBackPressureWhenThePeerIsSlow(self):
        """
        With the socket buffer full, the rest is queued in Twisted, later
        writes queue behind it (never overtaking), the registered producer is
        paused, and the peer gets every byte in order once it reads.
        """
        sender, collect = yield self.connected()
        collect.transport.pauseProducing()
        sock = sender.transport.getHandle()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        producer = Producer()
        sender.transport.registerProducer(producer, True)
        batch, writer = self.writer(sender.transport)
        chunks = [bytes([i % 251]) * 1000 for i in range(3000)]
        for i, chunk in enumerate(chunks):
            writer.write(chunk)
            if i % 100 == 99:
                batch.flush()
        self.assertGreater(unsentBytes(sender.transport), 0)
        self.assertGreater(producer.paused, 0)
        collect.transport.resumeProducing()
        expected = b"".join(chunks)
        yield self.waitFor(lambda: len(collect.data) >= len(expected))
        self.assertEqual(bytes(collect.data), expected)

    @inlineCallbacks
    def test_flushBeforeClose(self):
        """A close right after a write still delivers the write (a final error frame)."""
        sender, collect = yield self.connected()
        batch, writer = self.writer(sender.transport)
        writer.write(b"last words")
        writer.flush()
        sender.transport.loseConnection()
        yield collect.lost
        self.assertEqual(bytes(collect.data), b"last words")

    @inlineCallbacks
    def test_peerGoneIsAnOrdinaryConnectionLoss(self):
        """Writing to a reset peer raises nothing; the connection is lost as usual."""
        sender, collect = yield self.connected()
        batch, writer = self.writer(sender.transport)
        collect.transport.abortConnection()
        yield collect.lost
        for _ in range(50):
            writer.write(b"x" * 1000)
            yield deferLater(self.reactor(), 0.001)
        yield sender.lost

    def test_otherTransportsUseTheirWrite(self):
        """Fake transports (and anything not a plain TCP connection) keep their own write."""
        transport = StringTransport()
        batch, writer = self.writer(transport)
        writer.write(b"now")
        self.assertEqual(transport.value(), b"now")

    @inlineCallbacks
    def test_disabled(self):
        """C{[session] direct_write = false} gives Twisted's own write."""
        sender, collect = yield self.connected()
        batch, writer = self.writer(sender.transport, enabled=False)
        writer.write(b"queued")
        self.assertEqual(unsentBytes(sender.transport), 6)
