"""The core parts every node runs: SQL, volatile store, tokens, gate, directory and listeners."""

import os
import secrets

from twisted.internet.defer import maybeDeferred
from twisted.logger import Logger
from twisted.web.server import Site

from mmoshard.directory import Directory
from mmoshard.gate import StoreGate
from mmoshard.interfaces import (
    IAdminSite, IClientGate, IDirectory, IInstances, ILocator, IMatchResults, IMessageRouter,
    IParties, ISQLStore, ITokenVerifier, IVolatileStore, IWebSite, IZoneChannels,
)
from mmoshard.instanceclient import StoreInstances
from mmoshard.locator import StoreLocator
from mmoshard.node import StartupFailed, listenOn
from mmoshard.partystore import StoreParties
from mmoshard.ratings import SqlMatchResults
from mmoshard.service import AsyncService
from mmoshard.store.errors import SchemaMismatch, SQLUnavailable, VolatileUnavailable
from mmoshard.web.admin import makeAdminSite
from mmoshard.web.channel import directChannel
from mmoshard.web.cors import makePublicRoot
from mmoshard.web.spaces import SpaceViews
from mmoshard.web.site import SiteRoot
from mmoshard.web.static import mountPublicFiles
from mmoshard.zonechat import StoreZoneChannels


class SQLService(AsyncService):
    """Opens the SQL pool; migrates SQLite, refuses a MySQL schema out of step."""

    log = Logger()

    def __init__(self, store, nodeId):
        self.setName("sql")
        self.store = store
        self.nodeId = nodeId

    async def start(self):
        from mmoshard.store.migrations import checkSchema, migrate

        store = self.store
        try:
            store.open()
            if store.dialect == "sqlite":
                applied = await self.migrate(store, migrate)
                if applied:
                    self.log.info(
                        "applied {count} SQLite migration(s) for node {node_id}",
                        count=len(applied),
                        node_id=self.nodeId,
                    )
            else:
                await checkSchema(store)
        except (SchemaMismatch, SQLUnavailable, OSError) as e:
            # OSError: SQLite's directory could not be made.  The redacted URL
            # names the file, or the MySQL host and port, the operator fixes.
            raise StartupFailed(f"SQL store {store.url.redacted()}: {e}")

    async def migrate(self, store, migrate):
        """Migrate SQLite before any client is served: without the clients' deadline."""
        deadline, store.deadline = store.deadline, None
        try:
            return await migrate(store)
        finally:
            store.deadline = deadline

    async def stop(self):
        await maybeDeferred(self.store.close)


class VolatileService(AsyncService):
    """
    Connects the volatile store and waits for one answer: a store not
    answering within its timeout stops the start-up (docs/operations.md,
    "When start-up fails"); once started, outages are ridden out.
    """

    log = Logger()

    def __init__(self, store, url, nodeId):
        self.setName("volatile")
        self.store = store
        self.url = url
        self.nodeId = nodeId

    async def start(self):
        self.store.open()
        try:
            await self.store.ping()
        except VolatileUnavailable as e:
            # Fatal, for every role alike: without it the tokens, the gate,
            # the directory and the roles would each wait out their own
            # timeout in turn.  The orchestrator restarts the node.
            raise StartupFailed(f"volatile store {_redact(self.url)} not answering: {e}")

    async def stop(self):
        await maybeDeferred(self.store.close)


class PartService(AsyncService):
    """
    The lifecycle of a part with its own C{start()} and C{stop()} (the token
    verifier's revocation mirror, the client gate, the directory): the part
    stays a plain object its users are given, this service runs it.
    """

    def __init__(self, name, part, start=True):
        self.setName(name)
        self.part = part
        self.startsPart = start

    async def start(self):
        if self.startsPart:
            await maybeDeferred(self.part.start)

    async def stop(self):
        await maybeDeferred(self.part.stop)


def tokensReadiness(verifier, clock):
    """@return: a readiness check: the revocation mirror was read, recently."""

    def check():
        syncedAt = verifier.syncedAt
        if syncedAt is None:
            return "revocations not loaded yet"
        age = clock.seconds() - syncedAt
        if age > verifier.staleAfter:
            return f"revocations not refreshed for {age:.0f}s"
        return "ok"

    return check


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


class HTTPListener(AsyncService):
    """One HTTP site on an endpoint string: the public site or the admin site."""

    log = Logger()

    def __init__(self, reactor, name, endpoint, root, ports, nodeId):
        self.setName(name)
        self.reactor = reactor
        self.endpoint = endpoint
        self.root = root
        self.ports = ports
        self.nodeId = nodeId
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
        self.port = await listenOn(self.reactor, self.name, self.endpoint, site)
        self.ports[self.name] = self.port
        self.log.info(
            "{name} site of node {node_id} listening on {address}",
            name=self.name,
            node_id=self.nodeId,
            address=self.port.getHost(),
        )

    async def stop(self):
        if self.port is not None:
            port, self.port = self.port, None
            await maybeDeferred(port.stopListening)


class Announce(AsyncService):
    """Publishes the now-open endpoints and starts the directory heartbeat."""

    def __init__(self, directory, endpoints):
        self.setName("announce")
        self.directory = directory
        self.endpoints = endpoints  # callable() -> {transport: address}

    async def start(self):
        self.directory.endpoints = self.endpoints()
        await self.directory.start()


def publicEndpoints(config, ports):
    """
    The addresses clients use: configured C{[public]} values, else derived
    from C{public.host} and the ports actually bound (C{ports}: name ->
    IListeningPort).
    """
    public = config.public
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
    Build the core parts, register each as its interface, and return the
    services that run them, in start order.  No I/O happens here.
    """
    from mmoshard.store.requestmetrics import registerRequestMetrics
    from mmoshard.store.sql import SQLStore
    from mmoshard.store.volatile import makeVolatileStore
    from mmoshard.tokens import TokenVerifier

    config, reactor = node.config, node.reactor
    sql = SQLStore(reactor, config.sql.url, config.sql.pool_min, config.sql.pool_max,
                   deadline=config.sql.deadline)
    node.provide(ISQLStore, sql)
    cfg = config.volatile
    volatile = makeVolatileStore(cfg.url, reactor, cfg.prefix, cfg.timeout)
    node.provide(IVolatileStore, volatile)
    registerRequestMetrics(node.metrics, volatile)
    # The verifier mirrors the store's revocations in memory; until its
    # first read succeeds it fails closed (server.unavailable).
    verifier = TokenVerifier(node.tokenKey(), volatile, reactor)
    node.provide(ITokenVerifier, verifier)
    node.readinessChecks["tokens"] = tokensReadiness(verifier, reactor)
    # The gate reads rules a version role published, wherever that role
    # runs; with none published it lets everyone in.
    gate = StoreGate(volatile, reactor)
    node.provide(IClientGate, gate)
    directory = Directory(
        volatile=volatile,
        clock=reactor,
        nodeId=node.nodeId,
        roles=node.roleNames,
        heartbeat=config.directory.heartbeat,
        ttl=config.directory.ttl,
    )
    node.provide(IDirectory, directory)
    # Who is where: entries kept alive like the directory entry, gone within
    # its TTL when this node dies.
    locator = StoreLocator(volatile, reactor, node.nodeId, config.directory.ttl,
                           config.directory.heartbeat)
    node.provide(ILocator, locator)
    # Match results (arena ratings) are SQL: the world reports them on the
    # node it runs on, which needs no matchmaking role.
    node.provide(IMatchResults, SqlMatchResults(sql, reactor))
    # Zone channels reach whichever process hosts chat; a chat role in this
    # process provides its own, richer ones.
    if not any(IZoneChannels in role.provides for role in node.roles):
        node.provide(IZoneChannels, StoreZoneChannels(volatile))
    # A process without chat reads chat's parties in the store (read-only);
    # one without the world role reaches the world processes' instances
    # through their inboxes (a matchmaking-only node matches with these).
    if not any(IParties in role.provides for role in node.roles):
        node.provide(IParties, StoreParties(volatile))
    instanceClient = None
    wanted = any(IInstances in role.uses or IInstances in role.requires for role in node.roles)
    if wanted and not any(IInstances in role.provides for role in node.roles):
        instanceClient = StoreInstances(sql, volatile, directory, reactor, node.nodeId)
        node.provide(IInstances, instanceClient)
    if node.uses("session"):
        from mmoshard.wire.manager import SessionManager
        from mmoshard.wire.resumestore import ResumeStore

        s = config.session
        resumeStore = (ResumeStore(volatile, reactor, node.nodeId, s.replay_buffer, s.resume_grace)
                       if s.resume_anywhere and s.resume_grace > 0 else None)
        manager = SessionManager(
            s, reactor, node.nodeId, node.metrics,
            verifier=verifier, volatile=volatile, gate=gate, resumeStore=resumeStore,
        )
        node.provide(IMessageRouter, manager)
        directory.addInfoSource("sessions", manager.counts)
    if node.uses("http") and config.listen.http:
        site = SiteRoot(makePublicRoot(config.web))
        # The browser play client (/play/) and the client library (/lib/).
        mountPublicFiles(site)
        node.provide(IWebSite, site)
    spaces = SpaceViews(volatile, reactor, node.nodeId, directory)
    if config.listen.admin:
        admin = makeAdminSite(node, sql, volatile, directory, gate, verifier, spaces,
                              locator)
        node.provide(IAdminSite, admin)
    services = [
        SQLService(sql, node.nodeId),
        VolatileService(volatile, cfg.url, node.nodeId),
        PartService("tokens", verifier),
        PartService("gate", gate),
        # The directory's heartbeat starts once the listeners are open
        # (Announce); its entry is removed when the node stops.
        PartService("directory", directory, start=False),
        PartService("locator", locator),
        # Subscribes at the console's first question; unsubscribes at stop.
        PartService("spaces", spaces, start=False),
    ]
    if instanceClient is not None:
        services.append(PartService("instances", instanceClient))
    return services


def makeListenerServices(node):
    """@return: the listener services, in start order, then the announcement."""
    config, reactor = node.config, node.reactor
    ports = node.listeningPorts
    listeners = []
    manager = node.query(IMessageRouter)
    if manager is not None:
        from mmoshard.wire.service import SessionService

        listeners.append(
            SessionService(reactor, manager, config.listen, config.shutdown.drain_timeout,
                           ports, node.nodeId)
        )
    public = node.query(IWebSite)
    if public is not None:
        listeners.append(HTTPListener(reactor, "http", config.listen.http, public.root,
                                      ports, node.nodeId))
    admin = node.query(IAdminSite)
    if admin is not None:
        listeners.append(HTTPListener(reactor, "admin", config.listen.admin, admin.root,
                                      ports, node.nodeId))
    listeners.append(
        Announce(node.lookup(IDirectory), lambda: publicEndpoints(config, ports))
    )
    return listeners
