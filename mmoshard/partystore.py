"""Chat's party keys in the volatile store, shared by chat and the core's read-only IParties for processes without chat."""

import json

from twisted.internet.defer import Deferred
from zope.interface import implementer

from mmoshard.interfaces import IParties
from mmoshard.store.common import Script
from mmoshard.store.slots import everyBatch, slotBatches


def partyKey(partyId):
    """@return: the volatile key of party C{partyId}: its JSON (id, leader, members [[cid, name]...], v)."""
    # The party id is the hash tag: its invites share its slot on a Redis Cluster.
    return f"chat:party:{{{partyId}}}"


def partyOfKey(characterId):
    """@return: the volatile key holding the id of the party character C{characterId} is in."""
    return f"chat:pof:{characterId}"


def _str(value):
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _getMany(view, keys, args):
    # False, not None, for a missing key: None would cut the reply there.
    return [view.get(key) or False for key in keys]


# The values of KEYS (one hash slot on a Redis Cluster), false where missing.
GET_MANY = Script(
    name="party_get_many",
    lua="local out = {} for i = 1, #KEYS do out[i] = redis.call('GET', KEYS[i]) end return out",
    python=_getMany)

# Keys one read takes at most.
READ_BATCH = 500


def memberIdsOf(raw):
    """@return: the member ids, leader first, in party JSON C{raw} ([] when missing or unreadable)."""
    if raw is None:
        return []
    try:
        return [int(m[0]) for m in json.loads(_str(raw))["members"]]
    except (ValueError, KeyError, TypeError, IndexError):
        return []


async def _values(volatile, keys):
    """@return: key -> value (None when missing) of C{keys}: one script call per hash slot, sent together."""
    batches = slotBatches(volatile, list(dict.fromkeys(keys)), str, READ_BATCH)
    replies = await everyBatch(batches, lambda b: volatile.evalScript(GET_MANY, b, []))
    return {key: value for batch, reply in zip(batches, replies)
            for key, value in zip(batch, reply)}


async def readParties(volatile, characterIds):
    """
    The parties of many characters in two round trips (their party ids,
    then those parties), whatever their number: L{IParties.partiesOf}.

    @return: character id -> (party id, member ids leader first) for
        those of C{characterIds} in a party.
    """
    cids = [int(c) for c in characterIds]
    if not cids:
        return {}
    pids = await _values(volatile, [partyOfKey(c) for c in cids])
    pids = {c: _str(pids[partyOfKey(c)]) for c in cids if pids.get(partyOfKey(c))}
    if not pids:
        return {}
    parties = await _values(volatile, [partyKey(p) for p in pids.values()])
    return {c: (p, memberIdsOf(parties.get(partyKey(p)))) for c, p in pids.items()}


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
        return memberIdsOf(await self.volatile.get(partyKey(partyId)))

    def partiesOf(self, characterIds):
        return Deferred.fromCoroutine(readParties(self.volatile, characterIds))
