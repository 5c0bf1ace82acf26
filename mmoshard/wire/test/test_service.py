"""SessionService as a core service of a Node."""

from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import TestCase

from mmoshard.interfaces import IMessageRouter
from mmoshard.wire.service import SessionService
from mmoshard.wire.tcp import SessionTCPFactory
from mmoshard.wire.test.helpers import makeNode
from mmoshard.wire.websocket import SessionWebSocketFactory


class SessionServiceTests(TestCase):
    def test_providesRouter(self):
        node = makeNode()
        service = SessionService(node)
        self.assertEqual(service.name, "sessions")
        self.assertIs(node.lookup(IMessageRouter), service.manager)

    def test_listensOnBothEndpoints(self):
        reactor = MemoryReactorClock()
        node = makeNode(reactor, listen={"tcp": "tcp:7100", "websocket": "tcp:7101",
                                           "http": "", "admin": ""})
        service = SessionService(node)
        self.successResultOf(Deferred.fromCoroutine(service.start()))
        ports = {port: factory for port, factory, backlog, interface in reactor.tcpServers}
        self.assertIsInstance(ports[7100], SessionTCPFactory)
        self.assertIsInstance(ports[7101], SessionWebSocketFactory)
        self.assertEqual(set(node.listeningPorts), {"tcp", "websocket"})
        self.successResultOf(Deferred.fromCoroutine(service.stop()))

    def test_emptyEndpointSkipped(self):
        reactor = MemoryReactorClock()
        node = makeNode(reactor, listen={"tcp": "tcp:7100", "websocket": "",
                                           "http": "", "admin": ""})
        service = SessionService(node)
        self.successResultOf(Deferred.fromCoroutine(service.start()))
        self.assertEqual(set(node.listeningPorts), {"tcp"})
        self.assertEqual(len(reactor.tcpServers), 1)
