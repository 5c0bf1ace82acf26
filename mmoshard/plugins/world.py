"""The world role plugin: zones, authoritative movement, area of interest, persistence and transfers."""

from mmoshard.interfaces import (
    IAdminSite, IDirectory, IInstances, ILocator, IMatchResults, IMessageRouter, IParties,
    IProgression, ISQLStore, IVolatileStore, IZoneChannels,
)
from mmoshard.role import Role
from mmoshard.world.config import WORLD_FIELDS, WorldConfig, validate


def makeService(ctx):
    from mmoshard.world.service import WorldService

    service = WorldService(
        ctx.config, ctx.reactor, ctx.nodeId, ctx.metrics,
        **ctx.providers(
            sql=ISQLStore, volatile=IVolatileStore, router=IMessageRouter,
            directory=IDirectory, admin=IAdminSite, zoneChannels=IZoneChannels,
            parties=IParties, locator=ILocator, matchResults=IMatchResults,
        ),
    )
    ctx.provide(IProgression, service.progression)
    ctx.provide(IInstances, service.instances)
    return service


world = Role(
    name="world",
    factory=makeService,
    transports=frozenset({"session"}),
    provides=(IProgression, IInstances),
    requires=(ISQLStore, IVolatileStore, IDirectory, IMessageRouter),
    uses=(IAdminSite, IZoneChannels, IParties, ILocator, IMatchResults),
    fields=WORLD_FIELDS,
    configClass=WorldConfig,
    validate=validate,
)
