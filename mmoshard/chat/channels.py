"""Named and zone channels with member limits, their history, and IZoneChannels for the world role."""

import re

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from mmoshard.chat import errors
from mmoshard.interfaces import IZoneChannels
from mmoshard.zonechat import ZONES_CHANNEL, decodeChange

CHANNEL_NAME = re.compile(r"^[a-z0-9_-]{1,32}$")
ZONE_PREFIX = "zone:"


def _str(value):
    return value.decode("utf-8") if isinstance(value, bytes) else value


@implementer(IZoneChannels)
class Channels:
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

    def __init__(self, chat):
        self.chat = chat
        self._pending = []
        self._writing = False
        self._waiters = []
        self._zoneSubscription = None
        chat.controls["zone"] = self.onZoneControl

    def handlers(self):
        return {
            "chat.channel.join": self.join,
            "chat.channel.leave": self.leave,
            "chat.channel.say": self.say,
            "chat.channel.members": self.members,
            "chat.history": self.history,
        }

    @property
    def store(self):
        return self.chat.store

    @staticmethod
    def zoneChannel(zoneId):
        return f"{ZONE_PREFIX}{zoneId}"

    # -- local membership --------------------------------------------------------

    def _addLocal(self, user, channel):
        user.channels.add(channel)
        self.chat.channelLocal.setdefault(channel, set()).add(user.cid)

    def _removeLocal(self, user, channel):
        user.channels.discard(channel)
        members = self.chat.channelLocal.get(channel)
        if members is not None:
            members.discard(user.cid)
            if not members:
                del self.chat.channelLocal[channel]

    # -- requests --------------------------------------------------------------------

    @staticmethod
    def _name(message):
        name = message.get("channel")
        if not isinstance(name, str):
            raise errors.error(errors.BAD_CHANNEL, "channel must be a string")
        return name.lower()

    async def join(self, user, message):
        chat = self.chat
        name = self._name(message)
        if not CHANNEL_NAME.match(name):
            raise errors.error(
                errors.BAD_CHANNEL, "channel names are 1-32 of a-z, 0-9, _ and -"
            )
        if name not in user.channels:
            own = [c for c in user.channels if not c.startswith(ZONE_PREFIX)]
            if len(own) >= chat.config.max_channels:
                raise errors.error(errors.TOO_MANY_CHANNELS, "you are in too many channels")
            if not await self.store.joinChannel(
                name, user.cid, chat.procId, chat.config.channel_max_members
            ):
                raise errors.error(errors.CHANNEL_FULL, f"channel {name} is full")
            self._addLocal(user, name)
        await self.flush()
        return {"channel": name, "history": await self.store.history(name)}

    async def leave(self, user, message):
        name = self._name(message)
        if name.startswith(ZONE_PREFIX):
            raise errors.error(errors.BAD_CHANNEL, "zone channels follow your zone")
        if name not in user.channels:
            raise errors.error(errors.NOT_IN_CHANNEL, f"you are not in {name}")
        self._removeLocal(user, name)
        await self.store.leaveChannel(name, user.cid, self.chat.procId)
        return {}

    async def members(self, user, message):
        name = self._name(message)
        if name not in user.channels:
            raise errors.error(errors.NOT_IN_CHANNEL, f"you are not in {name}")
        members = await self.store.channelMembers(name)
        return {"channel": name, "count": len(members)}

    async def say(self, user, message):
        chat = self.chat
        name = self._name(message)
        if name not in user.channels:
            raise errors.error(errors.NOT_IN_CHANNEL, f"you are not in {name}")
        text = chat.handlers.checkSend(user, message.get("text"))
        text = chat.handlers.filter(user, "channel", name, text)
        ts = chat.now()
        body = {"channel": name, "from": user.cid, "from_name": user.name, "text": text,
                "ts": ts}
        chat.metrics.counted("channel")
        self.record(name, ts, body)
        await self.fanout(
            name, {"k": "c", "ch": name, "t": "chat.channel.message", "b": body, "ts": ts,
                   "w": user.cid, "x": user.cid},
        )
        return {"ts": ts}

    async def history(self, user, message):
        if message.get("party"):
            if not user.partyId:
                raise errors.error(errors.NOT_IN_PARTY, "you are not in a party")
            target = f"party:{user.partyId}"
        else:
            target = self._name(message)
            if target not in user.channels:
                raise errors.error(errors.NOT_IN_CHANNEL, f"you are not in {target}")
        await self.flush()
        return {"history": await self.store.history(target)}

    # -- fan-out -------------------------------------------------------------------------

    async def fanout(self, channel, envelope):
        chat = self.chat
        procs = await self.store.channelProcs(channel)
        for proc in procs:
            receivers = await chat.bus.send(proc, envelope)
            if not receivers and proc != chat.procId:
                alive = await chat.volatile.get(self.store.procKey(proc))
                if alive is None:
                    purged = await self.store.purgeChannel(channel, proc)
                    self.log.info(
                        "channel {channel}: dropped {count} members of dead process {proc}",
                        channel=channel, count=purged, proc=proc,
                    )

    def onChannelEnvelope(self, envelope):
        chat = self.chat
        members = chat.channelLocal.get(envelope["ch"])
        if not members:
            return False
        sender = envelope.get("w")
        skip = envelope.get("x")
        t, body, ts = envelope["t"], envelope["b"], envelope.get("ts")
        users = chat.users
        for cid in list(members):
            if cid == skip:
                continue
            user = users.get(cid)
            if user is None or (sender is not None and sender in user.blocks):
                continue
            chat.deliverLocal(user, t, body, "channel", ts)
        return True

    # -- zone channels (IZoneChannels) -------------------------------------------------

    async def start(self):
        """Listen for zone changes made by processes that do not host chat."""
        self._zoneSubscription = await self.store.volatile.subscribe(
            ZONES_CHANNEL, self.onZoneChange
        )

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
        self.onZoneControl({"cid": cid})

    def joinZone(self, characterId, zoneId):
        return Deferred.fromCoroutine(self._setZone(characterId, str(zoneId)))

    def leaveZone(self, characterId, zoneId):
        return Deferred.fromCoroutine(self._setZone(characterId, None, str(zoneId)))

    async def _setZone(self, cid, zoneId, leaving=None):
        volatile = self.chat.volatile
        key = self.store.zoneKey(cid)
        if zoneId is None:
            current = await volatile.get(key)
            if current is None or _str(current) != leaving:
                return None
            await volatile.delete(key)
        else:
            await volatile.set(key, zoneId, ttl=self.chat.config.party_ttl)
        user = self.chat.users.get(cid)
        if user is not None:
            await self.applyZone(user)
            return None
        presence = (await self.store.presenceOf([cid])).get(cid)
        if presence and presence.get("proc"):
            await self.chat.bus.send(presence["proc"], {"k": "ctl", "op": "zone", "cid": cid})
        return None

    def onZoneControl(self, envelope):
        user = self.chat.users.get(envelope.get("cid"))
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
        chat = self.chat
        zone = await chat.volatile.get(self.store.zoneKey(user.cid))
        zone = _str(zone) if zone is not None else None
        if zone == user.zone:
            return
        if user.zone:
            old = self.zoneChannel(user.zone)
            self._removeLocal(user, old)
            await self.store.leaveChannel(old, user.cid, chat.procId)
            if announce:
                user.session.send("chat.channel.left", {"channel": old})
        user.zone = zone
        if not zone:
            return
        channel = self.zoneChannel(zone)
        if not await self.store.joinChannel(
            channel, user.cid, chat.procId, chat.config.zone_max_members
        ):
            self.log.warn(
                "zone channel {channel} is full; {character_id} not joined",
                channel=channel, character_id=user.cid,
            )
            return
        self._addLocal(user, channel)
        if announce:
            await self.flush()
            user.session.send(
                "chat.channel.joined",
                {"channel": channel, "history": await self.store.history(channel)},
            )

    # -- history ----------------------------------------------------------------------------

    def record(self, target, ts, entry):
        """
        Keep C{entry} in the history of C{target}.  One write is in flight
        at a time; entries arriving meanwhile go together in the next one.
        """
        if self.chat.config.history <= 0:
            return
        self._pending.append((target, ts, entry))
        if not self._writing:
            self._writing = True
            Deferred.fromCoroutine(self._write())

    async def _write(self):
        config = self.chat.config
        try:
            while self._pending:
                batch, self._pending = self._pending[:200], self._pending[200:]
                await self.store.pushHistory(batch, config.history, config.history_ttl)
        except Exception as e:
            self.log.warn("chat history write failed: {why}", why=e)
            self._pending = []
        finally:
            self._writing = False
            waiters, self._waiters = self._waiters, []
            for d in waiters:
                d.callback(None)

    async def flush(self):
        """Wait until every recorded entry is written."""
        if self._writing:
            d = Deferred()
            self._waiters.append(d)
            await d
