"""Chat's party keys in the volatile store, shared by chat and the core's read-only IParties for processes without chat."""

import json

from twisted.internet.defer import Deferred
from zope.interface import implementer

from mmoshard.interfaces import IParties


def partyKey(partyId):
    """@return: the volatile key of party C{partyId}: its JSON (id, leader, members [[cid, name]...], v)."""
    # The party id is the hash tag: its invites share its slot on a Redis Cluster.
    return f"chat:party:{{{partyId}}}"


def partyOfKey(characterId):
    """@return: the volatile key holding the id of the party character C{characterId} is in."""
    return f"chat:pof:{characterId}"


def _str(value):
    return value.decode("utf-8") if isinstance(value, bytes) else value


@implementer(IParties)
class StoreParties:
    """
    L{IParties} in a process without the chat role: reads the keys chat
    writes (L{partyKey}, L{partyOfKey}); changes stay chat's.  A party
    whose JSON is missing or unreadable has no members.
    """

    def __init__(self, volatile):
        self.volatile = volatile

    def partyOf(self, characterId):
        async def get():
            return _str(await self.volatile.get(partyOfKey(int(characterId))))

        return Deferred.fromCoroutine(get())

    def members(self, partyId):
        return Deferred.fromCoroutine(self._members(partyId))

    async def _members(self, partyId):
        raw = await self.volatile.get(partyKey(partyId))
        if raw is None:
            return []
        try:
            party = json.loads(_str(raw))
            return [int(m[0]) for m in party["members"]]
        except (ValueError, KeyError, TypeError, IndexError):
            return []
