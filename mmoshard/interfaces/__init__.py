"""The contracts roles and core services share, as zope interfaces (one module per area, all importable from here)."""

from mmoshard.interfaces.stores import (  # noqa: F401
    IRole,
    ISQLStore,
    ISubscription,
    IVolatileStore,
    IDirectory,
    IDraining,
)
from mmoshard.interfaces.sessions import (  # noqa: F401
    ITokenVerifier,
    IClientGate,
    ISession,
    ISessionListener,
    IMessageRouter,
    ISite,
    IWebSite,
    IAdminSite,
    IOperatorLogin,
)
from mmoshard.interfaces.game import (  # noqa: F401
    IZoneChannels,
    IInstances,
    IParties,
    IProgression,
    IInterestSpace,
    ILocator,
    IMatchResults,
)

__all__ = [
    "IRole",
    "ISQLStore",
    "ISubscription",
    "IVolatileStore",
    "IDirectory",
    "IDraining",
    "ITokenVerifier",
    "IClientGate",
    "ISession",
    "ISessionListener",
    "IMessageRouter",
    "ISite",
    "IWebSite",
    "IAdminSite",
    "IOperatorLogin",
    "IZoneChannels",
    "IInstances",
    "IParties",
    "IProgression",
    "IInterestSpace",
    "ILocator",
    "IMatchResults",
]
