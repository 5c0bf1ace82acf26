"""Zone channels across processes: the zone key and change channel shared by world and chat, and IZoneChannels over the volatile store."""

import msgpack
from twisted.internet.defer import Deferred
from zope.interface import implementer

from mmoshard.interfaces import IZoneChannels

# Where a zone change is announced (under the store prefix); every chat
# process subscribes and applies the change to its own characters.
ZONES_CHANNEL = "chat:zones"

# How long a recorded zone lives when no chat process refreshes it (chat's
# default party_ttl; a chat process extends it while the character is there).
ZONE_TTL = 3600.0


def zoneKey(cid):
    """@return: the volatile key holding the zone character C{cid} is in."""
    return f"chat:zone:{cid}"


def encodeChange(cid, zoneId):
    return msgpack.packb({"cid": cid, "zone": zoneId}, use_bin_type=True)


def decodeChange(payload):
    """@return: (cid, zone id or None) of a published change; ValueError if malformed."""
    try:
        change = msgpack.unpackb(payload, raw=False, strict_map_key=False)
        cid, zone = change["cid"], change.get("zone")
    except Exception as e:
        raise ValueError(f"malformed zone change: {e}") from None
    if not isinstance(cid, int) or not (zone is None or isinstance(zone, str)):
        raise ValueError("malformed zone change")
    return cid, zone


def _str(value):
    return value.decode("utf-8") if isinstance(value, bytes) else value


@implementer(IZoneChannels)
class StoreZoneChannels:
    """
    L{IZoneChannels} in a process that does not host chat: records the zone
    under L{zoneKey} and publishes C{{cid, zone}} on L{ZONES_CHANNEL}, so
    whichever chat process hosts the character moves it to the channel.
    """

    def __init__(self, volatile, ttl=ZONE_TTL):
        self.volatile = volatile
        self.ttl = ttl

    def joinZone(self, characterId, zoneId):
        return Deferred.fromCoroutine(self._setZone(characterId, str(zoneId)))

    def leaveZone(self, characterId, zoneId):
        return Deferred.fromCoroutine(self._setZone(characterId, None, str(zoneId)))

    async def _setZone(self, cid, zoneId, leaving=None):
        key = zoneKey(cid)
        if zoneId is None:
            current = await self.volatile.get(key)
            if current is None or _str(current) != leaving:
                return None
            await self.volatile.delete(key)
        else:
            await self.volatile.set(key, zoneId, ttl=self.ttl)
        await self.volatile.publish(ZONES_CHANNEL, encodeChange(cid, zoneId))
        return None
