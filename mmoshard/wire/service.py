"""SessionService: the TCP and WebSocket listeners of the session protocol, as a core service."""

from twisted.internet.defer import maybeDeferred
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger

from mmoshard.interfaces import IMessageRouter
from mmoshard.node import CoreService
from mmoshard.wire.manager import SessionManager
from mmoshard.wire.tcp import SessionTCPFactory
from mmoshard.wire.websocket import SessionWebSocketFactory

# Clients get this long after the shutdown notice to disconnect by
# themselves; the stop of the whole process must stay bounded.
SHUTDOWN_WAIT = 2.0


class SessionService(CoreService):
    """
    Listens on C{[listen] tcp} and C{websocket}; its L{SessionManager} is
    the process's L{IMessageRouter}.
    """

    log = Logger()

    def __init__(self, node):
        self.setName("sessions")
        self.node = node
        self.manager = SessionManager(node)
        self.ports = {}
        node.provide(IMessageRouter, self.manager)

    async def start(self):
        node = self.node
        await self.manager.start()
        listen = node.config.listen
        factories = [
            ("tcp", listen.tcp, SessionTCPFactory),
            ("websocket", listen.websocket, SessionWebSocketFactory),
        ]
        for name, endpoint, factoryClass in factories:
            if not endpoint:
                continue
            port = await serverFromString(node.reactor, endpoint).listen(
                factoryClass(self.manager)
            )
            self.ports[name] = port
            node.listeningPorts[name] = port
            self.log.info(
                "session protocol of node {node_id} listening on {transport} {address}",
                node_id=node.nodeId,
                transport=name,
                address=port.getHost(),
            )

    async def stop(self):
        ports, self.ports = self.ports, {}
        for port in ports.values():
            await maybeDeferred(port.stopListening)
        wait = min(SHUTDOWN_WAIT, self.node.config.shutdown.drain_timeout)
        await self.manager.shutdown(wait)
