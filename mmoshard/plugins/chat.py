"""The chat role plugin: presence, friends, whispers, parties and channels."""

from mmoshard.chat.config import FIELDS, ChatConfig, validate
from mmoshard.chat.moderation import IChatFilter
from mmoshard.interfaces import (
    IAdminSite,
    ILocator,
    IMessageRouter,
    IParties,
    ISQLStore,
    IVolatileStore,
    IZoneChannels,
)
from mmoshard.role import Role


def _makeService(ctx):
    from mmoshard.chat.service import ChatService

    service = ChatService(
        ctx.config, ctx.reactor, ctx.nodeId, ctx.metrics,
        resumeGrace=ctx.nodeConfig.session.resume_grace,
        **ctx.providers(
            sql=ISQLStore, volatile=IVolatileStore, router=IMessageRouter, chatFilter=IChatFilter,
            locator=ILocator, admin=IAdminSite,
        ),
    )
    ctx.provide(IParties, service.parties)
    ctx.provide(IZoneChannels, service.channels)
    return service


chat = Role(
    name="chat",
    factory=_makeService,
    transports=frozenset({"session"}),
    provides=(IZoneChannels, IParties),
    requires=(ISQLStore, IVolatileStore, IMessageRouter),
    uses=(IChatFilter, ILocator, IAdminSite),
    fields=FIELDS,
    configClass=ChatConfig,
    validate=validate,
)
