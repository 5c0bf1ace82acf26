"""The chat.* request handlers for identity, status, whispers, friends, blocks and moderation."""

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.logger import Logger

from mmoshard.chat import errors, social
from mmoshard.chat.channels import Channels
from mmoshard.chat.messages import Announce, Deliver, Mute, Replaced
from mmoshard.chat.metrics import ChatMetrics
from mmoshard.chat.moderation import SpeechGate, TokenBucket, checkText
from mmoshard.chat.parties import Parties
from mmoshard.chat.presence import Presence
from mmoshard.chat.routing import FOLLOW_STEP, FOLLOW_WAIT, ChatPart
from mmoshard.chat.social import Social
from mmoshard.chat.users import STATUSES, ChatUser, publicPresence
from mmoshard.store.errors import StoreError
from mmoshard.wire.errors import ProtocolError

# A whisper whose recipient's process is gone (it stopped: a rolling
# restart) follows the recipient's presence to its new node, looking as
# often and as long as the router's follows (FOLLOW_STEP, FOLLOW_WAIT).
MAX_HOPS = 2  # processes a whisper follows its recipient to


def intArg(message, key):
    value = message.get(key)
    if type(value) is not int:
        raise errors.error(errors.BAD_REQUEST, f"{key} must be an integer")
    return value


def strArg(message, key, maxLength=64):
    value = message.get(key)
    if not isinstance(value, str) or not value or len(value) > maxLength:
        raise errors.error(errors.BAD_REQUEST, f"{key} must be a non-empty string")
    return value


def wrap(fn, roster, metrics, needUser=True):
    """
    @return: C{fn(user or session, message)} as a router handler: it finds
        the session's character, counts refusals and turns store failures
        into C{chat.unavailable}.
    """

    def handler(session, message):
        try:
            subject = roster.userFor(session) if needUser else session
            result = fn(subject, message)
        except ProtocolError as e:
            metrics.refused.labels(e.info.code).inc()
            raise
        if type(result) is dict:
            # The hot paths (local whispers, party chat) finish at once.
            return result
        d = Deferred.fromCoroutine(result)
        d.addErrback(_translate, metrics)
        return d

    return handler


def _translate(failure, metrics):
    if failure.check(StoreError):
        Handlers.log.warn(
            "chat request failed on a store: {why}", why=failure.getErrorMessage()
        )
        metrics.refused.labels(errors.UNAVAILABLE).inc()
        raise errors.error(errors.UNAVAILABLE, "chat is unavailable, try again")
    if failure.check(ProtocolError):
        metrics.refused.labels(failure.value.info.code).inc()
    return failure


@attrs.define(eq=False, kw_only=True)
class Handlers(ChatPart):
    """The chat.* requests that are not party or channel ones: identity, whispers, friends, blocks, moderation."""

    log = Logger()

    social: Social
    presence: Presence
    parties: Parties
    channels: Channels
    gate: SpeechGate
    metrics: ChatMetrics
    # The node's ILocator (None: nobody is told where characters speak).
    locator: object = None

    def intercepts(self):
        """@return: the events that change a local character's friends list."""
        return {
            "chat.friend.added": self._friendAdded,
            "chat.friend.removed": self._friendRemoved,
        }

    def inbound(self):
        """@return: the messages from other processes this part handles."""
        return {Mute: self.onMute, Replaced: self.onReplaced}

    @staticmethod
    def _friendAdded(user, body):
        user.friends[body["character_id"]] = body["name"]

    @staticmethod
    def _friendRemoved(user, body):
        user.friends.pop(body["character_id"], None)

    def handlers(self):
        """@return: request type -> method(user or session, message)."""
        return {
            "chat.hello": self.hello,
            "chat.status": self.status,
            "chat.whisper": self.whisper,
            "chat.friend.request": self.friendRequest,
            "chat.friend.accept": self.friendAccept,
            "chat.friend.decline": self.friendDecline,
            "chat.friend.cancel": self.friendCancel,
            "chat.friend.remove": self.friendRemove,
            "chat.friend.list": self.friendList,
            "chat.block": self.block,
            "chat.unblock": self.unblock,
            "chat.block.list": self.blockList,
            "chat.mute": self.mute,
            "chat.unmute": self.unmute,
            "chat.announce": self.announce,
        }

    # -- shared checks ---------------------------------------------------------

    async def resolveName(self, name):
        row = await self.social.characterByName(name)
        if row is None:
            raise errors.error(errors.NO_SUCH_CHARACTER, f"no character named {name!r}")
        return row

    # -- identity and status ---------------------------------------------------

    async def hello(self, session, message):
        cid = intArg(message, "character_id")
        current = self.roster.bySession.get(session.sessionId)
        if current is not None:
            if current.cid != cid:
                raise errors.error(
                    errors.BAD_REQUEST, "this session already speaks as another character"
                )
            state = await self.social.load(cid)
            return self._withRequests(await self.snapshot(current), state)
        row = await self.social.character(cid)
        if row is None or row.account_id != session.accountId:
            raise errors.error(
                errors.NOT_YOUR_CHARACTER, "no such character on this account"
            )
        state = await self.social.load(cid)
        status = message.get("status", "online")
        if status not in STATUSES:
            raise errors.error(errors.BAD_REQUEST, f"status must be one of {STATUSES}")
        user = self._newUser(session, row, state, status)
        previous = (await self.store.presenceOf([cid])).get(cid)
        raced = self.roster.bySession.get(session.sessionId)
        if raced is not None:
            # The session moved here and its character was rebuilt meanwhile.
            if raced.cid != cid:
                raise errors.error(
                    errors.BAD_REQUEST, "this session already speaks as another character"
                )
            return self._withRequests(await self.snapshot(raced), state)
        await self._establish(user)
        await self.remember(user)
        if previous and previous.get("proc") not in (None, self.procId) and (
            previous.get("sid") != session.sessionId
        ):
            self.router.send(
                previous["proc"],
                Replaced(cid, previous.get("sid")),
            ).addErrback(lambda f: None)
        self.log.info(
            "chat character {character_id} of account {account_id} online on {proc}",
            character_id=cid, account_id=user.accountId, proc=self.procId,
        )
        return self._withRequests(await self.snapshot(user), state)

    def _newUser(self, session, row, state, status):
        user = ChatUser(
            session, row, TokenBucket(self.config.rate, self.config.burst, self.router.now())
        )
        user.status = status
        user.friends = dict(state.friends)
        user.blocks = dict(state.blocks)
        user.mutedUntil, user.muteReason = state.muted_until, state.mute_reason
        return user

    async def _establish(self, user):
        """Make C{user} this process's: roster, locator, party, presence, zone channel."""
        self.roster.add(user)
        if self.locator is not None:
            await self.locator.bind(user.cid, "chat", user.session.sessionId)
        await self.parties.load(user)
        await self.presence.changed(user)
        await self.channels.restoreZone(user)

    async def adopt(self, session, carried):
        """
        The session moved here from another node (L{Carried}: what its
        character took along): rebuild the character as its C{chat.hello}
        did, without one.  Friends and party members see it online (it was
        link-dead), never offline.  @return: the L{ChatUser}, or None.
        """
        row = await self.social.character(carried.cid)
        if row is None or row.account_id != session.accountId:
            return None
        state = await self.social.load(carried.cid)
        if session.ended or self.roster.bySession.get(session.sessionId) is not None:
            return None  # gone again, or the client's own chat.hello came first
        user = self._newUser(session, row, state, carried.status)
        user.text = carried.text
        await self._establish(user)
        for name in carried.channels:
            if await self.store.joinChannel(
                name, user.cid, self.procId, self.config.channel_max_members
            ):
                self.roster.joinChannel(user, name)
        await self.remember(user)
        return user

    @staticmethod
    def _withRequests(snapshot, state):
        snapshot["incoming"] = [{"character_id": i, "name": n} for i, n in state.incoming]
        snapshot["outgoing"] = [{"character_id": i, "name": n} for i, n in state.outgoing]
        return snapshot

    async def snapshot(self, user):
        body = {
            "character_id": user.cid,
            "name": user.name,
            "operator": user.operator,
            "status": user.status,
            "text": user.text,
            "friends": await self.friendsWithPresence(user),
            "blocks": [{"character_id": i, "name": n} for i, n in user.blocks.items()],
            "muted_until": user.mutedUntil,
            "party": user.party,
            "party_history": (
                await self.store.history(f"party:{user.partyId}") if user.partyId else []
            ),
            "channels": sorted(user.channels),
        }
        if user.zone:
            body["zone_channel"] = self.channels.zoneChannel(user.zone)
            body["zone_history"] = await self.store.history(body["zone_channel"])
        return body

    async def friendsWithPresence(self, user):
        presence = await self.store.presenceOf(list(user.friends))
        return [
            dict(publicPresence(presence.get(cid)), character_id=cid, name=name)
            for cid, name in sorted(user.friends.items(), key=lambda kv: kv[1].lower())
        ]

    async def status(self, user, message):
        status = message.get("status", user.status)
        text = message.get("text", user.text)
        if status not in STATUSES:
            raise errors.error(errors.BAD_REQUEST, f"status must be one of {STATUSES}")
        if not isinstance(text, str) or len(text) > self.config.status_text_length:
            raise errors.error(
                errors.TOO_LONG,
                f"status text is longer than {self.config.status_text_length}",
            )
        user.status, user.text = status, text.strip()
        await self.presence.changed(user)
        await self.remember(user)
        return {"status": user.status, "text": user.text}

    # -- whispers ----------------------------------------------------------------

    def whisper(self, user, message):
        """A local recipient is served at once; another process's through its inbox."""
        name = strArg(message, "to")
        text = self.gate.checkSend(user, message.get("text"))
        lower = name.lower()
        if lower == user.name.lower():
            raise errors.error(errors.SELF, "you cannot whisper to yourself")
        local = self.roster.byName.get(lower)
        if local is None:
            return self._whisperRemote(user, name, text)
        if local.cid in user.blocks:
            raise errors.error(errors.YOU_BLOCK, f"you block {name}; unblock them first")
        text = self.gate.filter(user, "whisper", name, text)
        if not self.router.receive(self._whisperMessage(user, local.cid, text)):
            raise errors.error(errors.OFFLINE, f"{name} is not online")
        return {"to": local.cid, "delivered": True}

    def _whisperMessage(self, user, cid, text):
        ts = self.router.now()
        self.metrics.counted("whisper")
        body = {"from": user.cid, "from_name": user.name, "text": text, "ts": ts}
        return Deliver([cid], "chat.whisper", body, "whisper", ts, sender=user.cid)

    async def _whisperRemote(self, user, name, text):
        target = await self.store.lookupName(name)
        if target is None:
            raise errors.error(errors.OFFLINE, f"{name} is not online")
        cid, proc = target
        if cid in user.blocks:
            raise errors.error(errors.YOU_BLOCK, f"you block {name}; unblock them first")
        text = self.gate.filter(user, "whisper", name, text)
        message = self._whisperMessage(user, cid, text)
        delivered = await self.router.routeTo(cid, message, proc)
        waited, hops = 0.0, 0
        while not delivered:
            # The recipient's session may have moved to another node meanwhile
            # (docs/chat.md "Sessions that move"): follow its presence.  Its
            # process gone (None) and the presence not moved yet: the session
            # is on its way to another node; wait for it a moment.
            again = await self.store.lookupName(name)
            if again is None:
                raise errors.error(errors.OFFLINE, f"{name} is not online")
            if again[1] != proc:
                hops += 1
                if hops > MAX_HOPS:
                    raise errors.error(errors.OFFLINE, f"{name} is not online")
            elif delivered is not None or waited >= FOLLOW_WAIT:
                raise errors.error(errors.OFFLINE, f"{name} is not online")
            else:
                await deferLater(self.router.clock, FOLLOW_STEP, lambda: None)
                waited += FOLLOW_STEP
            proc = again[1]
            delivered = await self.router.routeTo(cid, message, proc)
        return {"to": cid, "delivered": True}

    # -- friends -------------------------------------------------------------------

    async def friendRequest(self, user, message):
        row = await self.resolveName(strArg(message, "name"))
        if row.id == user.cid:
            raise errors.error(errors.SELF, "you cannot befriend yourself")
        if row.id in user.blocks:
            raise errors.error(errors.YOU_BLOCK, f"you block {row.name}; unblock them first")
        outcome = await self.social.friendRequest(user.cid, row.id)
        if outcome == social.ALREADY:
            raise errors.error(errors.ALREADY_FRIENDS, f"{row.name} is already a friend")
        if outcome == social.TOO_MANY:
            raise errors.error(errors.FRIENDS_FULL, "the friends list is full")
        if outcome == social.ACCEPTED:
            await self._becameFriends(user, row.id, row.name)
            return {"character_id": row.id, "name": row.name, "status": "accepted"}
        if outcome == social.SENT:
            await self.router.deliver(
                [row.id], "chat.friend.requested",
                {"character_id": user.cid, "name": user.name}, "friend",
            )
        # SILENT (the target blocks us) answers exactly like SENT.
        return {"character_id": row.id, "name": row.name, "status": "sent"}

    async def _becameFriends(self, user, otherId, otherName):
        user.friends[otherId] = otherName
        body = dict(user.publicPresence(), character_id=user.cid, name=user.name)
        await self.router.deliver([otherId], "chat.friend.added", body, "friend")

    async def friendAccept(self, user, message):
        other = intArg(message, "character_id")
        outcome = await self.social.acceptRequest(user.cid, other)
        if outcome is None:
            raise errors.error(errors.NO_REQUEST, "no friend request from that character")
        if outcome == social.TOO_MANY:
            raise errors.error(errors.FRIENDS_FULL, "a friends list is full")
        row = await self.social.character(other)
        name = row.name if row else str(other)
        if outcome == social.ACCEPTED:
            await self._becameFriends(user, other, name)
        presence = (await self.store.presenceOf([other])).get(other)
        return dict(publicPresence(presence), character_id=other, name=name)

    async def friendDecline(self, user, message):
        if not await self.social.declineRequest(user.cid, intArg(message, "character_id")):
            raise errors.error(errors.NO_REQUEST, "no friend request from that character")
        return {}

    async def friendCancel(self, user, message):
        if not await self.social.cancelRequest(user.cid, intArg(message, "character_id")):
            raise errors.error(errors.NO_REQUEST, "no friend request to that character")
        return {}

    async def friendRemove(self, user, message):
        other = intArg(message, "character_id")
        if not await self.social.removeFriend(user.cid, other):
            raise errors.error(errors.NOT_FRIENDS, "that character is not a friend")
        user.friends.pop(other, None)
        await self.router.deliver(
            [other], "chat.friend.removed", {"character_id": user.cid, "name": user.name},
            "friend",
        )
        return {}

    async def friendList(self, user, message):
        state = await self.social.load(user.cid)
        user.friends = dict(state.friends)
        return {
            "friends": await self.friendsWithPresence(user),
            "incoming": [{"character_id": i, "name": n} for i, n in state.incoming],
            "outgoing": [{"character_id": i, "name": n} for i, n in state.outgoing],
        }

    # -- blocks ---------------------------------------------------------------------

    async def block(self, user, message):
        row = await self.resolveName(strArg(message, "name"))
        if row.id == user.cid:
            raise errors.error(errors.SELF, "you cannot block yourself")
        result = await self.social.block(user.cid, row.id)
        if result is None:
            raise errors.error(errors.BLOCKS_FULL, "the block list is full")
        added, wereFriends = result
        user.blocks[row.id] = row.name
        if wereFriends:
            user.friends.pop(row.id, None)
            # To the blocked side this is an ordinary friend removal.
            await self.router.deliver(
                [row.id], "chat.friend.removed",
                {"character_id": user.cid, "name": user.name}, "friend",
            )
        return {"character_id": row.id, "name": row.name}

    async def unblock(self, user, message):
        other = intArg(message, "character_id")
        await self.social.unblock(user.cid, other)
        user.blocks.pop(other, None)
        return {}

    async def blockList(self, user, message):
        return {"blocks": [{"character_id": i, "name": n} for i, n in user.blocks.items()]}

    # -- moderation -------------------------------------------------------------------

    def requireOperator(self, user):
        if not user.operator:
            raise errors.error(errors.FORBIDDEN, "operators only")

    async def mute(self, user, message):
        self.requireOperator(user)
        row = await self.resolveName(strArg(message, "name"))
        seconds = message.get("seconds")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds <= 0:
            raise errors.error(errors.BAD_REQUEST, "seconds must be a positive number")
        reason = message.get("reason") or ""
        if not isinstance(reason, str) or len(reason) > 255:
            raise errors.error(errors.BAD_REQUEST, "reason must be a string of 255 or less")
        until = self.router.now() + float(seconds)
        await self.social.mute(row.id, until, reason or None, user.cid)
        self.log.info(
            "operator {operator_id} muted character {character_id} until {until}: {reason}",
            operator_id=user.cid, character_id=row.id, until=until, reason=reason,
        )
        await self._muteControl(row.id, until, reason)
        return {"character_id": row.id, "until": until}

    async def unmute(self, user, message):
        self.requireOperator(user)
        row = await self.resolveName(strArg(message, "name"))
        await self.social.unmute(row.id)
        await self._muteControl(row.id, None, None)
        return {"character_id": row.id}

    async def _muteControl(self, cid, until, reason):
        await self.router.routeTo(cid, Mute(cid, until, reason))

    def onMute(self, message):
        user = self.roster.users.get(message.cid)
        if user is None:
            return False
        user.mutedUntil, user.muteReason = message.until, message.reason
        user.session.send(
            "chat.muted" if message.until else "chat.unmuted",
            {"until": message.until, "reason": message.reason},
        )
        return True

    def onReplaced(self, message):
        user = self.roster.users.get(message.cid)
        if user is None or user.session.sessionId != message.sid:
            return False
        self.roster.detach(user)
        if self.locator is not None:
            self.locator.unbind(user.cid, "chat", user.session.sessionId)
        user.session.send("chat.replaced", {"character_id": user.cid}, False)
        return True

    async def announce(self, user, message):
        self.requireOperator(user)
        text = checkText(message.get("text"), self.config.max_length * 4)
        ts = self.router.now()
        body = {"text": text, "from_name": user.name, "ts": ts}
        procs = await self.store.liveProcesses(self.procId)
        self.metrics.counted("announce")
        await self.router.sendToProcs(
            procs, Announce("chat.announcement", body, ts)
        )
        return {"processes": len(procs)}
