"""A small IRole implementation so role plugin modules stay a few lines long."""

import attrs
from twisted.plugin import IPlugin
from zope.interface import implementer

from mmoshard.config import readTable
from mmoshard.interfaces import IRole


@implementer(IPlugin, IRole)
@attrs.frozen
class Role:
    """
    A role described by data: its name, what it provides, requires and may
    use, its config fields (name -> L{mmoshard.config.Field}) and config
    class, and a service factory C{factory(ctx)} given a L{RoleContext}.
    """

    name: str
    factory: object  # callable(RoleContext) -> IService
    configSection: str = attrs.field(
        default=attrs.Factory(lambda self: self.name, takes_self=True)
    )
    provides: tuple = ()
    requires: tuple = ()
    uses: tuple = ()  # interfaces taken when some part of the node provides them
    transports: frozenset = frozenset()
    fields: dict = attrs.field(factory=dict)
    configClass: object = None  # attrs class built from the fields
    validate: object = None  # callable(values, path, problems) for cross-field checks

    def parseConfig(self, section, path):
        from mmoshard.config import ConfigError

        problems = []
        values = readTable(section, path, self.fields, problems)
        if self.validate is not None:
            self.validate(values, path, problems)
        if problems:
            raise ConfigError(problems)
        if self.configClass is None:
            return values
        return self.configClass(**values)

    def makeService(self, ctx):
        return self.factory(ctx)


class UndeclaredInterface(LookupError):
    """A role asked for, or offered, an interface its L{Role} does not declare."""


@attrs.frozen
class RoleContext:
    """
    What a role's factory is given: its own config section, the node's
    config, reactor, id and metrics, and the providers of exactly the
    interfaces its L{Role} declares.  A role meets the rest of the node
    only through this: it cannot reach an undeclared interface.
    """

    role: Role
    config: object
    nodeConfig: object
    reactor: object
    nodeId: str
    metrics: object
    # Private: a role reaches the registry only through require/optional/provide.
    _registry: object  # zope.interface.registry.Components
    _readinessChecks: dict
    _tokenKeySource: object  # callable() -> str, the shared token signing key

    def require(self, iface):
        """
        @return: the provider of C{iface}, one of the role's C{requires}.
        @raise UndeclaredInterface: when the role does not require C{iface}.
        @raise LookupError: when nothing provides it (the node checks
            requirements before building, so this is a bug).
        """
        if iface not in self.role.requires:
            raise UndeclaredInterface(
                f"role {self.role.name!r} does not declare it requires {iface.__name__}")
        provider = self._registry.queryUtility(iface)
        if provider is None:
            raise LookupError(f"nothing provides {iface.__name__} for role {self.role.name!r}")
        return provider

    def optional(self, iface):
        """@return: the provider of C{iface} (in C{uses} or C{requires}), or None."""
        if iface not in self.role.uses and iface not in self.role.requires:
            raise UndeclaredInterface(
                f"role {self.role.name!r} does not declare it uses {iface.__name__}")
        return self._registry.queryUtility(iface)

    def providers(self, **interfaces):
        """
        @param interfaces: keyword -> interface, each one the role declares.
        @return: keyword -> the interface's provider, for a service's keyword
            arguments: L{require}d where the role requires the interface,
            else L{optional} (None when nothing provides it).
        """
        return {
            name: self.require(iface) if iface in self.role.requires else self.optional(iface)
            for name, iface in interfaces.items()
        }

    def provide(self, iface, provider):
        """Register C{provider} as the node's C{iface}, one of the role's C{provides}."""
        if iface not in self.role.provides:
            raise UndeclaredInterface(
                f"role {self.role.name!r} does not declare it provides {iface.__name__}")
        self._registry.registerUtility(provider, iface)

    def addReadinessCheck(self, name, check):
        """Report C{check()} ("ok" or why not) on the admin site's /readyz."""
        self._readinessChecks[name] = check

    def tokenKey(self):
        """@return: the deployment's token signing key (read or created on first call)."""
        return self._tokenKeySource()
