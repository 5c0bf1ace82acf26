"""The chat role plugin: presence, friends, whispers, parties and channels."""

from mmoshard.chat.config import FIELDS, ChatConfig, validate
from mmoshard.interfaces import (
    IMessageRouter,
    IParties,
    ISQLStore,
    IVolatileStore,
    IZoneChannels,
)
from mmoshard.role import Role


def _makeService(node):
    from mmoshard.chat.service import ChatService

    return ChatService(node)


chat = Role(
    name="chat",
    factory=_makeService,
    transports=frozenset({"session"}),
    provides=(IZoneChannels, IParties),
    requires=(ISQLStore, IVolatileStore, IMessageRouter),
    fields=FIELDS,
    configClass=ChatConfig,
    validate=validate,
)
