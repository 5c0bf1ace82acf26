"""The Node: config, reactor, registry and the ordered tree of core and role services."""

import os
import signal
import time

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client import PlatformCollector, ProcessCollector
from twisted.internet.defer import Deferred, TimeoutError, maybeDeferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IReactorCore
from twisted.logger import Logger
from zope.interface.registry import Components

from mmoshard.config import ConfigError, Problem
from mmoshard.role import RoleContext
from mmoshard.service import AsyncMultiService
from mmoshard.interfaces import (
    IAdminSite,
    IClientGate,
    IDirectory,
    IDraining,
    IInstances,
    ILocator,
    IMatchResults,
    IMessageRouter,
    IParties,
    ISQLStore,
    ITokenVerifier,
    IVolatileStore,
    IWebSite,
    IZoneChannels,
)


class MissingProvider(LookupError):
    """No service in this process provides the interface asked for."""


def coreProvides(config, roles):
    """
    @return: the interfaces the core services provide for C{roles}.
    """
    provided = {ISQLStore, IVolatileStore, IDirectory, ITokenVerifier, IClientGate, ILocator}
    provided.add(IZoneChannels)
    provided.add(IMatchResults)
    provided.update((IParties, IInstances))  # core StoreParties / StoreInstances without chat / world
    if config.listen.admin:
        provided.add(IAdminSite)
    if any("http" in r.transports for r in roles) and config.listen.http:
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
    What every part of one process shares: the config, the reactor, the
    interface registry, the Prometheus registry, the readiness checks and
    the ports once bound.  Parts get what they need from it when the tree
    is built (L{buildNode}); roles see only a L{RoleContext}.
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
        self.listeningPorts = {}  # transport name -> IListeningPort
        self.ready = False
        # name -> callable returning "ok" or why not; /readyz reports each.
        self.readinessChecks = {}
        self._tokenKey = None
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

    def tokenKey(self):
        """@return: the token signing key, read (or made) once, on first use."""
        if self._tokenKey is None:
            from mmoshard.core import tokenKey

            self._tokenKey = tokenKey(self)
        return self._tokenKey

    def contextFor(self, role):
        """@return: the L{RoleContext} given to C{role}'s factory."""
        return RoleContext(
            role=role,
            config=self.roleConfig(role.name),
            nodeConfig=self.config,
            reactor=self.reactor,
            nodeId=self.nodeId,
            metrics=self.metrics,
            registry=self.registry,
            readinessChecks=self.readinessChecks,
            tokenKeySource=self.tokenKey,
        )


class StartupFailed(Exception):
    """A core service could not start; the message says why."""


async def listenOn(reactor, key, endpoint, factory):
    """
    Listen with C{factory} on the C{[listen] key} endpoint string.

    @return: the L{IListeningPort}.
    @raise StartupFailed: when the port cannot be had, naming the key and
        its value (the operator edits the config, not a port number).
    """
    try:
        return await serverFromString(reactor, endpoint).listen(factory)
    except CannotListenError as e:
        raise StartupFailed(f'[listen] {key} = "{endpoint}": {e}') from e


class NodeService(AsyncMultiService):
    """
    The root service: the node's parts as ordered children (stores, tokens,
    directory, roles, listeners), started one after another and stopped in
    reverse, each role given a bounded time to drain.
    """

    log = Logger()

    def __init__(self, node, children, roleServices):
        super().__init__()
        self.setName("mmoshard")
        self.node = node
        self.roleServices = list(roleServices)
        self.started = None
        self._startWaiters = []
        self.exitCode = 0
        # Set by twistd's service maker: a failed start ends the process.
        self.exitOnFailure = False
        for svc in children:
            svc.setServiceParent(self)

    def startService(self):
        t0 = time.monotonic()
        self.started = super().startService()
        self.started.addCallback(self._startSucceeded, t0)
        self.started.addErrback(self._startFailed)
        reactor = self.node.reactor
        if IReactorCore.providedBy(reactor):
            reactor.callWhenRunning(self._installSignalHandlers)
        return self.started

    def _startSucceeded(self, _, t0):
        node = self.node
        if not self.running:
            return
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
        if failure.check(StartupFailed):
            # Expected (a store down, a port taken): the message says it all.
            self.log.critical(
                "node {node_id} failed to start: {why}",
                node_id=self.node.nodeId,
                why=failure.getErrorMessage(),
            )
        else:
            # A bug: the traceback goes with it.
            self.log.failure(
                "node {node_id} failed to start: {why}",
                failure,
                node_id=self.node.nodeId,
                why=failure.getErrorMessage(),
            )
        reactor = self.node.reactor
        if self.exitOnFailure and IReactorCore.providedBy(reactor):
            # twistd has no way to report an exit status, so a failed start
            # ends the process with 1 once the reactor has shut down.
            reactor.addSystemEventTrigger("after", "shutdown", os._exit, 1)
            if reactor.running:
                reactor.stop()
            else:
                reactor.callWhenRunning(reactor.stop)

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
        self.node.ready = False
        d = Deferred.fromCoroutine(self._drainThenStop())
        d.addCallback(lambda _: self.log.info("node {node_id} stopped", node_id=self.node.nodeId))
        return d

    async def _drainThenStop(self):
        """
        The roles that hand work to other nodes (L{IDraining}) drain first,
        each within its C{drainDeadline}, while sessions and stores are up;
        then every service stops in reverse order.
        """
        for svc in reversed(self.roleServices):
            if not (svc.running and IDraining.providedBy(svc)):
                continue
            d = maybeDeferred(svc.drain)
            d.addTimeout(svc.drainDeadline, self.node.reactor)
            try:
                await d
            except TimeoutError:
                self.log.warn("node {node_id}: {name} did not drain within {timeout}s; stopping anyway",
                              node_id=self.node.nodeId, name=svc.name, timeout=svc.drainDeadline)
            except Exception:
                self.log.failure("node {node_id}: draining {name} failed", node_id=self.node.nodeId,
                                 name=svc.name)
        await super().stopService()

    def stopTimeoutOf(self, child):
        if child in self.roleServices:
            return self.node.config.shutdown.drain_timeout
        return None

    def stopClock(self):
        return self.node.reactor


def orderRoles(roles):
    """
    @return: C{roles} in build order: a role comes after every role that
        provides an interface it requires or uses (so its factory finds the
        provider); otherwise the configured order is kept.
    """
    remaining = list(roles)
    ordered = []
    while remaining:
        for role in remaining:
            wanted = set(role.requires) | set(getattr(role, "uses", ()))
            waitsFor = [r for r in remaining if r is not role and wanted & set(r.provides)]
            if not waitsFor:
                break
        else:
            # A cycle: keep the configured order for the rest.
            role = remaining[0]
        remaining.remove(role)
        ordered.append(role)
    return ordered


def buildNode(config, reactor, roles):
    """
    Build the Node and its service tree for C{config}, with no I/O: the
    core parts, registered as their interfaces, then each role's service
    from its factory, then the listeners.

    @param roles: the selected L{mmoshard.interfaces.IRole} plugins.
    @return: the root L{NodeService}; its C{node} attribute is the Node.
    @raise ConfigError: when a role's requirement has no provider.
    """
    from mmoshard.core import makeCoreServices, makeListenerServices

    checkRequirements(config, roles)
    node = Node(config, reactor, roles)
    core = makeCoreServices(node)
    roleServices = []
    for role in orderRoles(node.roles):
        svc = role.makeService(node.contextFor(role))
        if not svc.name:
            svc.setName(f"role:{role.name}")
        roleServices.append(svc)
    listeners = makeListenerServices(node)
    return NodeService(node, core + roleServices + listeners, roleServices)


def selectRoles(config, plugins):
    """@return: the plugins named by C{config.node.roles}, in that order."""
    byName = {p.name: p for p in plugins}
    return [byName[name] for name in config.node.roles]


__all__ = [
    "Node",
    "NodeService",
    "MissingProvider",
    "StartupFailed",
    "listenOn",
    "buildNode",
    "selectRoles",
    "checkRequirements",
    "ConfigError",
]
