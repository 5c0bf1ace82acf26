"""SessionService: the TCP and WebSocket listeners of the session protocol, as a core service."""

from twisted.internet.defer import maybeDeferred
from twisted.logger import Logger

from mmoshard.node import listenOn
from mmoshard.service import AsyncService
from mmoshard.wire.tcp import SessionTCPFactory
from mmoshard.wire.websocket import SessionWebSocketFactory

# Clients get this long after the shutdown notice to disconnect by
# themselves; the stop of the whole process must stay bounded.
SHUTDOWN_WAIT = 2.0
# Requests in flight get this long to be answered before the notice (a
# whisper waits up to [chat] whisper_ack_timeout, 3 s, for its ack).
ANSWER_WAIT = 5.0


class SessionService(AsyncService):
    """
    Listens on C{[listen] tcp} and C{websocket} for its L{SessionManager},
    the process's L{IMessageRouter}; on stop, tells clients and waits a
    bounded time for them to go.
    """

    log = Logger()

    def __init__(self, reactor, manager, listen, drainTimeout, ports, nodeId):
        """
        @param listen: the C{[listen]} config section.
        @param ports: the node's name -> IListeningPort map, filled here.
        """
        self.setName("sessions")
        self.reactor = reactor
        self.manager = manager
        self.listen = listen
        self.drainTimeout = drainTimeout
        self.nodePorts = ports
        self.nodeId = nodeId
        self.ports = {}

    async def start(self):
        await self.manager.start()
        factories = [
            ("tcp", self.listen.tcp, SessionTCPFactory),
            ("websocket", self.listen.websocket, SessionWebSocketFactory),
        ]
        for name, endpoint, factoryClass in factories:
            if not endpoint:
                continue
            port = await listenOn(self.reactor, name, endpoint, factoryClass(self.manager))
            self.ports[name] = port
            self.nodePorts[name] = port
            self.log.info(
                "session protocol of node {node_id} listening on {transport} {address}",
                node_id=self.nodeId,
                transport=name,
                address=port.getHost(),
            )

    async def stop(self):
        ports, self.ports = self.ports, {}
        for port in ports.values():
            await maybeDeferred(port.stopListening)
        wait = min(SHUTDOWN_WAIT, self.drainTimeout)
        await self.manager.shutdown(wait, min(ANSWER_WAIT, self.drainTimeout))
