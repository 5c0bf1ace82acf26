"""The world role plugin: zones, authoritative movement, area of interest, persistence and transfers."""

from mmoshard.interfaces import (
    IDirectory, IMessageRouter, IProgression, ISQLStore, IVolatileStore,
)
from mmoshard.role import Role
from mmoshard.world.config import WORLD_FIELDS, WorldConfig, validate


def makeService(node):
    from mmoshard.world.service import WorldService

    return WorldService(node)


world = Role(
    name="world",
    factory=makeService,
    transports=frozenset({"session"}),
    provides=(IProgression,),
    requires=(ISQLStore, IVolatileStore, IDirectory, IMessageRouter),
    fields=WORLD_FIELDS,
    configClass=WorldConfig,
    validate=validate,
)
