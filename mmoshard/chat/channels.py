"""Named and zone channels with member limits, their history, and IZoneChannels for the world role."""

import re

import attrs
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from mmoshard.chat import errors
from mmoshard.chat.history import History
from mmoshard.chat.messages import ChannelMessage, ZoneChanged
from mmoshard.chat.metrics import ChatMetrics
from mmoshard.chat.moderation import SpeechGate
from mmoshard.chat.routing import ChatPart
from mmoshard.interfaces import IZoneChannels
from mmoshard.zonechat import decodeChange

CHANNEL_NAME = re.compile(r"^[a-z0-9_-]{1,32}$")
ZONE_PREFIX = "zone:"


@implementer(IZoneChannels)
@attrs.define(eq=False, kw_only=True)
class Channels(ChatPart):
    """
    Channel membership lives in the volatile store as C{cid -> process} plus
    a count of members per process; a message is published once to each
    process that has members, which delivers it to its own members.  The
    world role puts a character in its zone's channel with L{joinZone}; the
    zone is remembered (C{chat:zone:<cid>}) so a character saying hello
    later is joined to it then.  A process without chat changes the zone
    through L{mmoshard.zonechat.StoreZoneChannels}, which announces it on
    C{chat:zones}; every chat process listens there for its own characters.
    """

    log = Logger()

    gate: SpeechGate
    history: History
    metrics: ChatMetrics
    _zoneSubscription: object = attrs.field(init=False, default=None)

    def handlers(self):
        return {
            "chat.channel.join": self.join,
            "chat.channel.leave": self.leave,
            "chat.channel.say": self.say,
            "chat.channel.members": self.members,
            "chat.history": self.readHistory,
        }

    def inbound(self):
        """@return: the messages from other processes this part handles."""
        return {ChannelMessage: self.onChannelMessage, ZoneChanged: self.onZoneChanged}

    @staticmethod
    def zoneChannel(zoneId):
        return f"{ZONE_PREFIX}{zoneId}"

    # -- requests --------------------------------------------------------------------

    @staticmethod
    def _name(message):
        name = message.get("channel")
        if not isinstance(name, str):
            raise errors.error(errors.BAD_CHANNEL, "channel must be a string")
        return name.lower()

    async def join(self, user, message):
        name = self._name(message)
        if not CHANNEL_NAME.match(name):
            raise errors.error(
                errors.BAD_CHANNEL, "channel names are 1-32 of a-z, 0-9, _ and -"
            )
        if name not in user.channels:
            own = [c for c in user.channels if not c.startswith(ZONE_PREFIX)]
            if len(own) >= self.config.max_channels:
                raise errors.error(errors.TOO_MANY_CHANNELS, "you are in too many channels")
            if not await self.store.joinChannel(
                name, user.cid, self.procId, self.config.channel_max_members
            ):
                raise errors.error(errors.CHANNEL_FULL, f"channel {name} is full")
            self.roster.joinChannel(user, name)
            await self.remember(user)
        return {"channel": name, "history": await self.history.read(name)}

    async def leave(self, user, message):
        name = self._name(message)
        if name.startswith(ZONE_PREFIX):
            raise errors.error(errors.BAD_CHANNEL, "zone channels follow your zone")
        if name not in user.channels:
            raise errors.error(errors.NOT_IN_CHANNEL, f"you are not in {name}")
        self.roster.leaveChannel(user, name)
        await self.store.leaveChannel(name, user.cid, self.procId)
        await self.remember(user)
        return {}

    async def members(self, user, message):
        name = self._name(message)
        if name not in user.channels:
            raise errors.error(errors.NOT_IN_CHANNEL, f"you are not in {name}")
        members = await self.store.channelMembers(name)
        return {"channel": name, "count": len(members)}

    async def say(self, user, message):
        name = self._name(message)
        if name not in user.channels:
            raise errors.error(errors.NOT_IN_CHANNEL, f"you are not in {name}")
        text = self.gate.checkSend(user, message.get("text"))
        text = self.gate.filter(user, "channel", name, text)
        ts = self.router.now()
        body = {"channel": name, "from": user.cid, "from_name": user.name, "text": text,
                "ts": ts}
        self.metrics.counted("channel")
        self.history.record(name, ts, body)
        await self.fanout(
            name, ChannelMessage(name, "chat.channel.message", body, ts, user.cid, user.cid)
        )
        return {"ts": ts}

    async def readHistory(self, user, message):
        if message.get("party"):
            if not user.partyId:
                raise errors.error(errors.NOT_IN_PARTY, "you are not in a party")
            target = f"party:{user.partyId}"
        else:
            target = self._name(message)
            if target not in user.channels:
                raise errors.error(errors.NOT_IN_CHANNEL, f"you are not in {target}")
        return {"history": await self.history.read(target)}

    # -- fan-out -------------------------------------------------------------------------

    async def fanout(self, channel, message):
        procs = await self.store.channelProcs(channel)
        for proc in procs:
            receivers = await self.router.send(proc, message)
            if not receivers and proc != self.procId:
                if not await self.store.processAlive(proc):
                    purged = await self.store.purgeChannel(channel, proc)
                    self.log.info(
                        "channel {channel}: dropped {count} members of dead process {proc}",
                        channel=channel, count=purged, proc=proc,
                    )

    def onChannelMessage(self, message):
        members = self.roster.channelLocal.get(message.channel)
        if not members:
            return False
        sender, skip = message.sender, message.skip
        t, body, ts = message.type, message.body, message.ts
        users = self.roster.users
        deliverLocal = self.router.deliverLocal
        for cid in list(members):
            if cid == skip:
                continue
            user = users.get(cid)
            if user is None or (sender is not None and sender in user.blocks):
                continue
            deliverLocal(user, t, body, "channel", ts)
        return True

    # -- zone channels (IZoneChannels) -------------------------------------------------

    async def start(self):
        """Listen for zone changes made by processes that do not host chat."""
        self._zoneSubscription = await self.store.subscribeZones(self.onZoneChange)

    async def stop(self):
        if self._zoneSubscription is not None:
            await self._zoneSubscription.unsubscribe()
            self._zoneSubscription = None

    def onZoneChange(self, channel, payload):
        try:
            cid, _ = decodeChange(payload)
        except ValueError as e:
            self.log.warn("ignoring zone change on {channel}: {why}", channel=channel, why=e)
            return
        # The key was written before the publish: apply what it holds now.
        self.onZoneChanged(ZoneChanged(cid))

    def joinZone(self, characterId, zoneId):
        return Deferred.fromCoroutine(self._setZone(characterId, str(zoneId)))

    def leaveZone(self, characterId, zoneId):
        return Deferred.fromCoroutine(self._setZone(characterId, None, str(zoneId)))

    async def _setZone(self, cid, zoneId, leaving=None):
        if zoneId is None:
            if not await self.store.clearZone(cid, leaving):
                return None
        else:
            await self.store.setZone(cid, zoneId, self.config.party_ttl)
        user = self.roster.users.get(cid)
        if user is not None:
            await self.applyZone(user)
            return None
        presence = (await self.store.presenceOf([cid])).get(cid)
        if presence and presence.get("proc"):
            await self.router.send(presence["proc"], ZoneChanged(cid))
        return None

    def onZoneChanged(self, message):
        user = self.roster.users.get(message.cid)
        if user is None:
            return False
        d = Deferred.fromCoroutine(self.applyZone(user))
        d.addErrback(lambda f: self.log.failure(
            "zone channel change of {character_id} failed", f, character_id=user.cid))
        return True

    async def restoreZone(self, user):
        await self.applyZone(user, announce=False)

    async def applyZone(self, user, announce=True):
        """Move C{user} to the channel of the zone recorded for it."""
        zone = await self.store.zoneOf(user.cid)
        if zone == user.zone:
            return
        if user.zone:
            old = self.zoneChannel(user.zone)
            self.roster.leaveChannel(user, old)
            await self.store.leaveChannel(old, user.cid, self.procId)
            if announce:
                user.session.send("chat.channel.left", {"channel": old})
        user.zone = zone
        if not zone:
            return
        channel = self.zoneChannel(zone)
        if not await self.store.joinChannel(
            channel, user.cid, self.procId, self.config.zone_max_members
        ):
            self.log.warn(
                "zone channel {channel} is full; {character_id} not joined",
                channel=channel, character_id=user.cid,
            )
            return
        self.roster.joinChannel(user, channel)
        if announce:
            user.session.send(
                "chat.channel.joined",
                {"channel": channel, "history": await self.history.read(channel)},
            )
