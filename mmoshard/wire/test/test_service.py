"""SessionService as a core service of a Node."""

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import TestCase

from mmoshard.interfaces import IMessageRouter
from mmoshard.wire.tcp import SessionTCPFactory
from mmoshard.wire.test.helpers import makeNode, makeSessionService
from mmoshard.wire.websocket import SessionWebSocketFactory


class SessionServiceTests(TestCase):
    def test_providesRouter(self):
        """The session service's manager is the node's message router."""
        node = makeNode()
        service = makeSessionService(node)
        self.assertEqual(service.name, "sessions")
        self.assertIs(node.lookup(IMessageRouter), service.manager)

    def test_listensOnBothEndpoints(self):
        """
        Starting the service listens on the TCP and WebSocket endpoints with their factories
        and records the ports; stopping succeeds.
        """
        reactor = MemoryReactorClock()
        node = makeNode(reactor, listen={"tcp": "tcp:7100", "websocket": "tcp:7101",
                                           "http": "", "admin": ""})
        service = makeSessionService(node)
        self.successResultOf(service.startService())
        ports = {port: factory for port, factory, backlog, interface in reactor.tcpServers}
        self.assertIsInstance(ports[7100], SessionTCPFactory)
        self.assertIsInstance(ports[7101], SessionWebSocketFactory)
        self.assertEqual(set(node.listeningPorts), {"tcp", "websocket"})
        self.successResultOf(service.stopService())

    def test_emptyEndpointSkipped(self):
        """An empty endpoint string opens no listener for that transport."""
        reactor = MemoryReactorClock()
        node = makeNode(reactor, listen={"tcp": "tcp:7100", "websocket": "",
                                           "http": "", "admin": ""})
        service = makeSessionService(node)
        self.successResultOf(service.startService())
        self.assertEqual(set(node.listeningPorts), {"tcp"})
        self.assertEqual(len(reactor.tcpServers), 1)
