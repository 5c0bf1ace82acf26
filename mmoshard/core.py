"""The core services every process runs: SQL, volatile store, tokens, directory and listeners."""

import os
import secrets

from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger
from twisted.web.server import Site

from mmoshard.directory import Directory
from mmoshard.gate import StoreGate
from mmoshard.interfaces import (
    IAdminSite,
    IClientGate,
    IDirectory,
    ISQLStore,
    ITokenVerifier,
    IVolatileStore,
    IWebSite,
    IZoneChannels,
)
from mmoshard.node import CoreService, StartupFailed
from mmoshard.store.errors import SchemaMismatch, SQLUnavailable, VolatileUnavailable
from mmoshard.web.admin import makeAdminRoot
from mmoshard.web.channel import directChannel
from mmoshard.web.site import SiteRoot
from mmoshard.zonechat import StoreZoneChannels


class SQLService(CoreService):
    """Opens the SQL pool; migrates SQLite, refuses a MySQL schema out of step."""

    log = Logger()

    def __init__(self, node):
        self.setName("sql")
        self.node = node

    async def start(self):
        from mmoshard.store.sql import SQLStore, checkSchema, migrate

        node = self.node
        cfg = node.config.sql
        store = SQLStore(node.reactor, cfg.url, cfg.pool_min, cfg.pool_max)
        node.sql = store
        node.provide(ISQLStore, store)
        try:
            if store.dialect == "sqlite":
                applied = await migrate(store)
                if applied:
                    self.log.info(
                        "applied {count} SQLite migration(s) for node {node_id}",
                        count=len(applied),
                        node_id=node.nodeId,
                    )
            else:
                await checkSchema(store)
        except (SchemaMismatch, SQLUnavailable) as e:
            raise StartupFailed(str(e))

    async def stop(self):
        if self.node.sql is not None:
            await self.node.sql.close()


class VolatileService(CoreService):
    """Connects the volatile store; provides token verification, the client gate and zone channels over it."""

    log = Logger()

    def __init__(self, node):
        self.setName("volatile")
        self.node = node
        self.gate = None
        self.verifier = None

    async def start(self):
        from mmoshard.store.volatile import makeVolatileStore
        from mmoshard.tokens import TokenVerifier

        node = self.node
        cfg = node.config.volatile
        store = makeVolatileStore(cfg.url, node.reactor, cfg.prefix, cfg.timeout)
        node.volatile = store
        node.provide(IVolatileStore, store)
        try:
            await store.ping()
        except VolatileUnavailable as e:
            # Not fatal: /readyz reports it and calls recover when it returns.
            self.log.warn(
                "volatile store {url} not answering at start of node {node_id}: {why}",
                url=_redact(cfg.url),
                node_id=node.nodeId,
                why=e,
            )
        # The verifier mirrors the store's revocations in memory; until its
        # first read succeeds it fails closed (server.unavailable).
        self.verifier = TokenVerifier(tokenKey(node), store, node.reactor)
        node.provide(ITokenVerifier, self.verifier)
        node.readinessChecks["tokens"] = self._tokensReady
        await self.verifier.start()
        # The gate reads rules a version role published, wherever that role
        # runs; with none published it lets everyone in.
        self.gate = StoreGate(store, node.reactor)
        node.provide(IClientGate, self.gate)
        await self.gate.start()
        # Zone channels reach whichever process hosts chat; a chat role in
        # this process registered its richer provider when it was made
        # (before any core service starts) and keeps it.
        if node.query(IZoneChannels) is None:
            node.provide(IZoneChannels, StoreZoneChannels(store))

    def _tokensReady(self):
        syncedAt = self.verifier.syncedAt
        if syncedAt is None:
            return "revocations not loaded yet"
        age = self.node.reactor.seconds() - syncedAt
        if age > self.verifier.staleAfter:
            return f"revocations not refreshed for {age:.0f}s"
        return "ok"

    async def stop(self):
        if self.gate is not None:
            await self.gate.stop()
        if self.verifier is not None:
            await self.verifier.stop()
        if self.node.volatile is not None:
            await self.node.volatile.close()


def _redact(url):
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url.replace(":" + parts.password + "@", ":***@")
    return url


def tokenKey(node):
    """
    The token signing key: from config, else (one process on the embedded
    default) a random key kept in the var directory so restarts keep
    issued tokens valid.
    """
    key = node.config.secrets.token_key
    if key:
        return key
    path = node.varPath("token.key")
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    with open(path) as f:
        return f.read().strip()


class DirectoryService(CoreService):
    """Keeps this process's directory entry alive while it runs."""

    def __init__(self, node):
        self.setName("directory")
        self.node = node
        cfg = node.config
        self.directory = Directory(
            volatile=None,
            clock=node.reactor,
            nodeId=node.nodeId,
            roles=node.roleNames,
            heartbeat=cfg.directory.heartbeat,
            ttl=cfg.directory.ttl,
        )
        node.provide(IDirectory, self.directory)

    async def start(self):
        self.directory.volatile = self.node.volatile
        # Endpoints are filled in by the listeners; the first beat is written
        # once they listen (see ListenerService), so nobody is sent to a port
        # that is not open yet.

    async def stop(self):
        await self.directory.stop()


class HTTPListener(CoreService):
    """One HTTP site on an endpoint string: the public site or the admin site."""

    log = Logger()

    def __init__(self, node, name, endpoint, root):
        self.setName(name)
        self.node = node
        self.endpoint = endpoint
        self.root = root
        self.port = None

    async def start(self):
        # JSON APIs never take form posts; Twisted's form parsing costs a
        # Content-Type parse on every POST.
        site = Site(self.root, parsePOSTFormSubmission=False)
        site.protocol = directChannel
        site.displayTracebacks = False
        site.noisy = False
        # twisted.web logs every request at info; at our request rates that is
        # noise an operator does not want by default.
        site.log = lambda request: None
        ep = serverFromString(self.node.reactor, self.endpoint)
        self.port = await ep.listen(site)
        self.node.listeningPorts[self.name] = self.port
        self.log.info(
            "{name} site of node {node_id} listening on {address}",
            name=self.name,
            node_id=self.node.nodeId,
            address=self.port.getHost(),
        )

    async def stop(self):
        if self.port is not None:
            await self.port.stopListening()


class Announce(CoreService):
    """Publishes the now-open endpoints and starts the directory heartbeat."""

    def __init__(self, node, directory):
        self.setName("announce")
        self.node = node
        self.directory = directory

    async def start(self):
        self.directory.endpoints = publicEndpoints(self.node)
        await self.directory.start()

    async def stop(self):
        pass


def publicEndpoints(node):
    """
    The addresses clients use: configured C{[public]} values, else derived
    from C{public.host} and the ports actually bound.
    """
    public = node.config.public
    ports = node.listeningPorts
    endpoints = {}

    def port(name):
        return ports[name].getHost().port

    if "http" in ports:
        endpoints["http"] = public.http or f"http://{public.host}:{port('http')}"
    if "tcp" in ports:
        endpoints["tcp"] = public.tcp or f"{public.host}:{port('tcp')}"
    if "websocket" in ports:
        endpoints["websocket"] = public.websocket or f"ws://{public.host}:{port('websocket')}/"
    if "admin" in ports:
        endpoints["admin"] = f"http://127.0.0.1:{port('admin')}"
    return endpoints


def makeCoreServices(node):
    """
    @return: (core services, listener services) for C{node}, in start order.
    """
    config = node.config
    core = [SQLService(node), VolatileService(node)]
    directoryService = DirectoryService(node)
    core.append(directoryService)

    listeners = []
    if node.uses("session"):
        from mmoshard.wire.service import SessionService

        listeners.append(SessionService(node))
    if node.uses("http") and config.listen.http:
        public = SiteRoot()
        node.provide(IWebSite, public)
        listeners.append(HTTPListener(node, "http", config.listen.http, public.root))
    if config.listen.admin:
        admin = SiteRoot(makeAdminRoot(node))
        node.provide(IAdminSite, admin)
        listeners.append(HTTPListener(node, "admin", config.listen.admin, admin.root))
    listeners.append(Announce(node, directoryService.directory))
    return core, listeners
