"""SessionService: the TCP and WebSocket listeners of the session protocol, as a core service."""

from twisted.internet.defer import maybeDeferred
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger

from mmoshard.interfaces import IMessageRouter
from mmoshard.shard import CoreService
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

    def __init__(self, shard):
        self.setName("sessions")
        self.shard = shard
        self.manager = SessionManager(shard)
        self.ports = {}
        shard.provide(IMessageRouter, self.manager)

    async def start(self):
        shard = self.shard
        await self.manager.start()
        listen = shard.config.listen
        factories = [
            ("tcp", listen.tcp, SessionTCPFactory),
            ("websocket", listen.websocket, SessionWebSocketFactory),
        ]
        for name, endpoint, factoryClass in factories:
            if not endpoint:
                continue
            port = await serverFromString(shard.reactor, endpoint).listen(
                factoryClass(self.manager)
            )
            self.ports[name] = port
            shard.listeningPorts[name] = port
            self.log.info(
                "session protocol of shard {shard_id} listening on {transport} {address}",
                shard_id=shard.shardId,
                transport=name,
                address=port.getHost(),
            )

    async def stop(self):
        ports, self.ports = self.ports, {}
        for port in ports.values():
            await maybeDeferred(port.stopListening)
        wait = min(SHUTDOWN_WAIT, self.shard.config.shutdown.drain_timeout)
        await self.manager.shutdown(wait)
