"""Tests that the Twisted internals mmoshard.twistedcompat relies on still exist and behave as it assumes, naming what changed when an upgrade breaks them."""

import os
import re

import twisted
from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.test.requesthelper import DummyChannel

from mmoshard import twistedcompat
from mmoshard.twistedcompat import (
    DIRECT_WRITE_ATTRIBUTES,
    canSendNow,
    httpChannelProtocol,
    requestDisconnected,
    supportsDirectWrite,
    unsentBytes,
)

CHANGED = (f"Twisted {twisted.__version__} changed {{what}}: mmoshard.twistedcompat.{{fn}} must be "
           "adapted (and setup.py's Twisted pin moved) before this Twisted is used")


def changed(what, fn):
    return CHANGED.format(what=what, fn=fn)


class Sender(Protocol):
    def __init__(self, made):
        self.made = made

    def connectionMade(self):
        self.made.callback(self)


class Collect(Protocol):
    def __init__(self):
        self.data = bytearray()

    def dataReceived(self, data):
        self.data += data


class TCPConnectionTests(TestCase):
    """tcp.Connection's send state, as canSendNow and unsentBytes read it."""

    @inlineCallbacks
    def connected(self):
        """@return: (the server side's transport, the client's Collect) of a loopback connection."""
        made = Deferred()
        port = reactor.listenTCP(0, Factory.forProtocol(lambda: Sender(made)), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        collect = Collect()
        yield connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port), collect)
        sender = yield made
        self.addCleanup(sender.transport.abortConnection)
        self.addCleanup(collect.transport.abortConnection)
        return sender.transport, collect

    @inlineCallbacks
    def waitFor(self, predicate, what):
        for _ in range(500):
            if predicate():
                return
            yield deferLater(reactor, 0.01)
        self.fail(what)

    @inlineCallbacks
    def test_attributes(self):
        """A plain TCP connection has every attribute canSendNow reads, with the types it assumes."""
        t, _ = yield self.connected()
        for name in DIRECT_WRITE_ATTRIBUTES:
            self.assertTrue(hasattr(t, name), changed(f"tcp.Connection: it has no {name}", "canSendNow"))
        self.assertIsInstance(t._tempDataLen, int, changed("tcp.Connection._tempDataLen's type", "canSendNow"))
        self.assertIsInstance(t.offset, int, changed("FileDescriptor.offset's type", "unsentBytes"))
        self.assertIs(t._writeDisconnected, False,
                      changed("FileDescriptor._writeDisconnected of an open connection", "canSendNow"))
        self.assertTrue(supportsDirectWrite(t))
        self.assertTrue(canSendNow(t), changed("an idle TCP connection's send state", "canSendNow"))

    @inlineCallbacks
    def test_queued_write(self):
        """What transport.write queues is counted (in _tempDataLen) until the reactor sends it."""
        t, collect = yield self.connected()
        t.write(b"queued")
        self.assertEqual(unsentBytes(t), 6, changed("where write() queues data (_tempDataLen)", "unsentBytes"))
        self.assertFalse(canSendNow(t), changed("where write() queues data (_tempDataLen)", "canSendNow"))
        yield self.waitFor(lambda: bytes(collect.data) == b"queued", "the queued write never arrived")
        self.assertEqual(unsentBytes(t), 0, changed("how doWrite empties the queue", "unsentBytes"))
        self.assertTrue(canSendNow(t), changed("how doWrite empties the queue", "canSendNow"))

    @inlineCallbacks
    def test_write_disconnected(self):
        """After loseWriteConnection takes effect, _writeDisconnected is set and nothing may be sent directly."""
        t, _ = yield self.connected()
        t.loseWriteConnection()
        yield self.waitFor(lambda: t._writeDisconnected is True,
                           changed("loseWriteConnection: _writeDisconnected is never set", "canSendNow"))
        self.assertFalse(canSendNow(t))

    @inlineCallbacks
    def test_disconnecting(self):
        """A connection being closed is not sent to directly."""
        t, _ = yield self.connected()
        t.write(b"x")
        t.loseConnection()
        self.assertFalse(canSendNow(t), changed("loseConnection's state", "canSendNow"))

    def test_other_transports(self):
        """Anything but a TCP connection of the socket reactors is not written to directly."""
        from twisted.internet.testing import StringTransport

        self.assertFalse(supportsDirectWrite(StringTransport()))


class RequestTests(TestCase):
    """twisted.web's Request records a lost connection where requestDisconnected reads it."""

    def test_connection_lost(self):
        """A request is connected until its connectionLost, disconnected after."""
        request = http.Request(DummyChannel())
        self.assertFalse(requestDisconnected(request),
                         changed("Request._disconnected of a new request", "requestDisconnected"))
        request.connectionLost(Failure(ConnectionDone()))
        self.assertTrue(requestDisconnected(request),
                        changed("Request.connectionLost: _disconnected is not set", "requestDisconnected"))

    def test_request_class_default(self):
        """Request defines _disconnected itself, so reading it never relies on the getattr default."""
        self.assertIs(vars(http.Request).get("_disconnected"), False,
                      changed("Request._disconnected's class default", "requestDisconnected"))


class ChannelProtocolTests(TestCase):
    """Site's own channel wrapper, which httpChannelProtocol uses for our channel."""

    def test_site_default_is_the_wrapper(self):
        """Site's default protocol is the wrapper httpChannelProtocol makes."""
        built = Site(Resource()).buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
        self.assertIs(type(built), type(httpChannelProtocol(http.HTTPChannel())),
                      changed("Site's default protocol (no longer _GenericHTTPChannelProtocol)",
                              "httpChannelProtocol"))

    def test_wrapper_passes_to_the_channel(self):
        """What Site sets on the protocol it builds reaches our channel inside the wrapper."""
        channel = http.HTTPChannel()
        site = Site(Resource())
        site.protocol = lambda: httpChannelProtocol(channel)
        site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
        self.assertIs(getattr(channel, "site", None), site,
                      changed("_GenericHTTPChannelProtocol: attributes set on it no longer reach the channel",
                              "httpChannelProtocol"))
        self.assertIs(channel.requestFactory, site.requestFactory)


class ConfinedTests(TestCase):
    """Only mmoshard.twistedcompat touches Twisted's (or CPython's) private names."""

    # The private names the project has used: Twisted's, and CPython's
    # private hash modules.
    PRIVATE = re.compile(r"\b(_tempDataLen|_writeDisconnected|_disconnected|_GenericHTTPChannelProtocol"
                         r"|_genericHTTPChannelProtocolFactory|_sha2|_sha256|_hashlib)\b")

    def test_confined(self):
        """No module of mmoshard but twistedcompat (and this test) names one of them."""
        root = os.path.dirname(os.path.abspath(twistedcompat.__file__))
        allowed = {os.path.abspath(twistedcompat.__file__), os.path.abspath(__file__)}
        found = []
        for folder, _, files in os.walk(root):
            for name in files:
                path = os.path.join(folder, name)
                if name.endswith(".py") and os.path.abspath(path) not in allowed:
                    with open(path, encoding="utf-8") as f:
                        for number, line in enumerate(f, 1):
                            if self.PRIVATE.search(line):
                                found.append(f"{os.path.relpath(path, root)}:{number}: {line.strip()}")
        self.assertEqual(found, [], "private names outside mmoshard.twistedcompat")
