"""The matchmaking role plugin: party-aware queues with role quotas and ratings, ready checks, instance allocation."""

from mmoshard.interfaces import (
    IAdminSite, IInstances, ILocator, IMatchResults, IMessageRouter, IParties, ISQLStore,
    ITokenVerifier, IVolatileStore,
)
from mmoshard.matchmaking.config import FIELDS, MatchmakingConfig, validate
from mmoshard.role import Role


def _makeService(ctx):
    from mmoshard.matchmaking.service import MatchmakingService

    return MatchmakingService(
        ctx.config, ctx.reactor, ctx.nodeId, ctx.metrics,
        resumeGrace=ctx.nodeConfig.session.resume_grace,
        **ctx.providers(
            sql=ISQLStore, volatile=IVolatileStore, router=IMessageRouter, locator=ILocator,
            parties=IParties, instances=IInstances, results=IMatchResults,
            verifier=ITokenVerifier, admin=IAdminSite,
        ),
    )


matchmaking = Role(
    name="matchmaking",
    factory=_makeService,
    transports=frozenset({"session"}),
    requires=(ISQLStore, IVolatileStore, IMessageRouter),
    uses=(ILocator, IParties, IInstances, IMatchResults, ITokenVerifier, IAdminSite),
    fields=FIELDS,
    configClass=MatchmakingConfig,
    validate=validate,
)
