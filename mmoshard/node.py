"""The Node: config, reactor, registry and the ordered tree of core and role services."""

import os
import signal
import time

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client import PlatformCollector, ProcessCollector
from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, ensureDeferred, maybeDeferred
from twisted.logger import Logger
from zope.interface.registry import Components

from mmoshard.config import ConfigError, Problem
from mmoshard.interfaces import (
    IAdminSite,
    IClientGate,
    IDirectory,
    IMessageRouter,
    ISQLStore,
    ITokenVerifier,
    IVolatileStore,
    IWebSite,
)


class MissingProvider(LookupError):
    """No service in this process provides the interface asked for."""


def coreProvides(config, roles):
    """
    @return: the interfaces the core services provide for C{roles}.
    """
    provided = {ISQLStore, IVolatileStore, IDirectory, ITokenVerifier, IClientGate}
    provided.add(IAdminSite)
    if any("http" in r.transports for r in roles):
        provided.add(IWebSite)
    if any("session" in r.transports for r in roles):
        provided.add(IMessageRouter)
    return provided


def checkRequirements(config, roles):
    """
    Check every role's required interfaces have a provider among the core
    services and the selected roles.

    @raise ConfigError: naming each missing interface, the role needing it,
        and the installed roles that would provide it.
    """
    from mmoshard.plugins import discoverRoles

    provided = coreProvides(config, roles)
    for role in roles:
        provided.update(role.provides)
    problems = []
    installed = None
    for role in roles:
        for iface in role.requires:
            if iface not in provided:
                # Plugin discovery scans sys.path: only worth it for a hint.
                if installed is None:
                    installed = discoverRoles()
                providers = [r.name for r in installed if iface in r.provides]
                hint = (
                    f"add one of these roles: {', '.join(providers)}"
                    if providers
                    else "no installed role provides it"
                )
                problems.append(
                    Problem(
                        "node.roles",
                        f"role {role.name!r} requires {iface.__name__}, which "
                        f"nothing in this process provides ({hint})",
                    )
                )
    if problems:
        raise ConfigError(problems)


class Node:
    """
    What every service of one process shares: the config, the reactor, the
    interface registry, the Prometheus registry and the stores once started.
    """

    log = Logger()

    def __init__(self, config, reactor, roles):
        self.config = config
        self.reactor = reactor
        self.roles = list(roles)
        self.registry = Components("mmoshard")
        self.metrics = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.metrics)
        PlatformCollector(registry=self.metrics)
        self.startedAt = reactor.seconds()
        self.sql = None
        self.volatile = None
        self.listeningPorts = {}  # transport name -> IListeningPort
        self.ready = False
        # name -> callable returning "ok" or why not; /readyz reports each.
        self.readinessChecks = {}
        uptime = Gauge(
            "mmoshard_uptime_seconds", "Seconds since start", registry=self.metrics
        )
        uptime.set_function(lambda: self.reactor.seconds() - self.startedAt)

    @property
    def nodeId(self):
        return self.config.node.id

    @property
    def roleNames(self):
        return [r.name for r in self.roles]

    def uses(self, transport):
        """@return: True when a hosted role uses the C{transport} listener."""
        return any(transport in r.transports for r in self.roles)

    def provide(self, iface, provider):
        """Register C{provider} as the process's C{iface}."""
        self.registry.registerUtility(provider, iface)

    def lookup(self, iface):
        """
        @return: the provider of C{iface}.
        @raise MissingProvider: when nothing in this process provides it.
        """
        provider = self.registry.queryUtility(iface)
        if provider is None:
            raise MissingProvider(iface.__name__)
        return provider

    def query(self, iface, default=None):
        """@return: the provider of C{iface}, or C{default}."""
        return self.registry.queryUtility(iface, default=default)

    def roleConfig(self, name):
        return self.config.roleConfig(name)

    def varPath(self, *parts):
        """@return: a path under the var directory, which is created."""
        os.makedirs(self.config.node.var_dir, exist_ok=True)
        return os.path.join(self.config.node.var_dir, *parts)


class CoreService(Service):
    """A core service with async start and stop, run in order by L{NodeService}."""

    async def start(self):
        pass

    async def stop(self):
        pass


class StartupFailed(Exception):
    """A core service could not start; the message says why."""


class NodeService(MultiService):
    """
    The root service: starts core services, then roles, then listeners, each
    awaited in turn; stops in reverse, giving roles a bounded time to drain.
    """

    log = Logger()

    def __init__(self, node, core, listeners):
        super().__init__()
        self.setName("mmoshard")
        self.node = node
        self.core = core
        self.listeners = listeners
        self.roleServices = []
        self.started = None
        self._startWaiters = []
        self.exitCode = 0
        for svc in core:
            svc.setServiceParent(self)
        for role in node.roles:
            svc = role.makeService(node)
            if not svc.name:
                svc.setName(f"role:{role.name}")
            svc.setServiceParent(self)
            self.roleServices.append(svc)
        for svc in listeners:
            svc.setServiceParent(self)

    def startService(self):
        # Children are started by our own ordered sequence, not MultiService's
        # all-at-once loop, so a listener never opens before SQL is ready.
        Service.startService(self)
        self.started = Deferred.fromCoroutine(self._start())
        self.started.addErrback(self._startFailed)
        reactor = self.node.reactor
        if hasattr(reactor, "callWhenRunning"):
            reactor.callWhenRunning(self._installSignalHandlers)

    async def _start(self):
        node = self.node
        t0 = time.monotonic()
        for svc in self.core:
            await svc.start()
            svc.running = 1
        for svc in self.roleServices:
            await maybeDeferred(svc.startService)
        for svc in self.listeners:
            await svc.start()
            svc.running = 1
        node.ready = True
        waiters, self._startWaiters = self._startWaiters, []
        for d in waiters:
            d.callback(None)
        self.log.info(
            "node {node_id} started with roles {roles} in {elapsed:.2f}s",
            node_id=node.nodeId,
            roles=",".join(node.roleNames) or "(none)",
            elapsed=time.monotonic() - t0,
        )

    def whenStarted(self):
        """@return: a Deferred firing with None once start-up completed (never on failure)."""
        d = Deferred()
        if self.node.ready:
            d.callback(None)
        else:
            self._startWaiters.append(d)
        return d

    def _startFailed(self, failure):
        self.exitCode = 1
        self.log.critical(
            "node {node_id} failed to start: {why}",
            node_id=self.node.nodeId,
            why=failure.getErrorMessage(),
            failure=failure if not failure.check(StartupFailed) else None,
        )
        reactor = self.node.reactor
        if hasattr(reactor, "stop"):
            # twistd has no way to report an exit status, so a failed start
            # ends the process with 1 once the reactor has shut down.
            reactor.addSystemEventTrigger("after", "shutdown", os._exit, 1)
            try:
                reactor.stop()
            except Exception:
                pass

    def _installSignalHandlers(self):
        # twistd's own handlers re-kill the process with the signal after the
        # shutdown, so a graceful stop would exit with -15; ours exit 0.
        reactor = self.node.reactor

        def handler(signum, frame):
            self.log.info(
                "node {node_id} received signal {sig}, stopping",
                node_id=self.node.nodeId,
                sig=signal.Signals(signum).name,
            )
            reactor.callFromThread(reactor.stop)

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def stopService(self):
        Service.stopService(self)
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self):
        node = self.node
        node.ready = False
        if self.started is not None and not self.started.called:
            self.started.cancel()
        for svc in reversed(self.listeners):
            if svc.running:
                await self._safely(svc.stop(), f"listener {svc.name}")
                svc.running = 0
        drain = self.node.config.shutdown.drain_timeout
        for svc in reversed(self.roleServices):
            if svc.running:
                d = maybeDeferred(svc.stopService)
                d.addTimeout(drain, node.reactor)
                await self._safely(d, f"role {svc.name}")
        for svc in reversed(self.core):
            if svc.running:
                await self._safely(svc.stop(), f"core {svc.name}")
                svc.running = 0
        self.log.info("node {node_id} stopped", node_id=node.nodeId)

    async def _safely(self, awaitable, what):
        try:
            await ensureDeferred(awaitable)
        except Exception:
            self.log.failure(
                "error stopping {what} of node {node_id}",
                what=what,
                node_id=self.node.nodeId,
            )


def buildNode(config, reactor, roles):
    """
    Build the Node and its service tree for C{config}.

    @param roles: the selected L{mmoshard.interfaces.IRole} plugins.
    @return: the root L{NodeService}; its C{node} attribute is the Node.
    @raise ConfigError: when a role's requirement has no provider.
    """
    from mmoshard.core import makeCoreServices

    checkRequirements(config, roles)
    node = Node(config, reactor, roles)
    core, listeners = makeCoreServices(node)
    return NodeService(node, core, listeners)


def selectRoles(config, plugins):
    """@return: the plugins named by C{config.node.roles}, in that order."""
    byName = {p.name: p for p in plugins}
    return [byName[name] for name in config.node.roles]


__all__ = [
    "Node",
    "NodeService",
    "CoreService",
    "MissingProvider",
    "StartupFailed",
    "buildNode",
    "selectRoles",
    "checkRequirements",
    "ConfigError",
]
