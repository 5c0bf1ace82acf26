"""The chat.* request handlers for identity, status, whispers, friends, blocks and moderation."""

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from mmoshard.chat import errors, social
from mmoshard.chat.moderation import FilterInput, TokenBucket, checkText
from mmoshard.chat.users import STATUSES, ChatUser, publicPresence
from mmoshard.store.errors import StoreError
from mmoshard.wire.errors import ProtocolError


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


class Handlers:
    """Builds the handler table and holds the handlers that are not party or channel ones."""

    log = Logger()

    def __init__(self, chat):
        self.chat = chat
        chat.controls["mute"] = self.onMute
        chat.controls["replaced"] = self.onReplaced
        chat.intercepts["chat.friend.added"] = self._friendAdded
        chat.intercepts["chat.friend.removed"] = self._friendRemoved

    @staticmethod
    def _friendAdded(user, body):
        user.friends[body["character_id"]] = body["name"]

    @staticmethod
    def _friendRemoved(user, body):
        user.friends.pop(body["character_id"], None)

    def table(self):
        chat = self.chat
        own = {
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
        own.update(chat.parties.handlers())
        own.update(chat.channels.handlers())
        return {t: self.wrap(fn, needUser=(t != "chat.hello")) for t, fn in own.items()}

    def wrap(self, fn, needUser=True):
        chat = self.chat

        def handler(session, message):
            try:
                subject = chat.userFor(session) if needUser else session
                result = fn(subject, message)
            except ProtocolError as e:
                chat.metrics.refused.labels(e.info.code).inc()
                raise
            if type(result) is dict:
                # The hot paths (local whispers, party chat) finish at once.
                return result
            d = Deferred.fromCoroutine(result)
            d.addErrback(self._translate)
            return d

        return handler

    def _translate(self, failure):
        if failure.check(StoreError):
            self.log.warn("chat request failed on a store: {why}", why=failure.getErrorMessage())
            failure = errors.error(errors.UNAVAILABLE, "chat is unavailable, try again")
            self.chat.metrics.refused.labels(errors.UNAVAILABLE).inc()
            raise failure
        if failure.check(ProtocolError):
            self.chat.metrics.refused.labels(failure.value.info.code).inc()
        return failure

    # -- shared checks ---------------------------------------------------------

    def checkSend(self, user, text):
        """Mute, flood control and length: @return: the stripped text."""
        chat = self.chat
        now = chat.now()
        if user.mutedUntil is not None:
            if user.mutedUntil > now:
                raise errors.error(
                    errors.MUTED, f"you are muted: {user.muteReason or 'no reason given'}",
                    retry_after=round(user.mutedUntil - now, 3),
                )
            user.mutedUntil = user.muteReason = None
        wait = user.bucket.take(now)
        if wait:
            raise errors.error(
                errors.RATE_LIMITED, "you are sending too fast", retry_after=round(wait, 3)
            )
        return checkText(text, chat.config.max_length)

    def filter(self, user, kind, target, text):
        result = self.chat.filter.check(FilterInput(kind, user.cid, user.name, target, text))
        if result is None or not result.strip():
            raise errors.error(errors.FILTERED, "the message was refused by the chat filter")
        return result

    async def resolveName(self, name):
        row = await self.chat.social.characterByName(name)
        if row is None:
            raise errors.error(errors.NO_SUCH_CHARACTER, f"no character named {name!r}")
        return row

    # -- identity and status ---------------------------------------------------

    async def hello(self, session, message):
        chat = self.chat
        cid = intArg(message, "character_id")
        current = chat.bySession.get(session.sessionId)
        if current is not None:
            if current.cid != cid:
                raise errors.error(
                    errors.BAD_REQUEST, "this session already speaks as another character"
                )
            state = await chat.social.load(cid)
            return self._withRequests(await self.snapshot(current), state)
        row = await chat.social.character(cid)
        if row is None or row.account_id != session.accountId:
            raise errors.error(
                errors.NOT_YOUR_CHARACTER, "no such character on this account"
            )
        state = await chat.social.load(cid)
        user = ChatUser(
            session, row, TokenBucket(chat.config.rate, chat.config.burst, chat.now())
        )
        status = message.get("status", "online")
        if status not in STATUSES:
            raise errors.error(errors.BAD_REQUEST, f"status must be one of {STATUSES}")
        user.status = status
        user.friends = dict(state.friends)
        user.blocks = dict(state.blocks)
        user.mutedUntil, user.muteReason = state.muted_until, state.mute_reason
        previous = (await chat.store.presenceOf([cid])).get(cid)
        chat.addUser(user)
        await chat.parties.load(user)
        await chat.presenceChanged(user)
        if previous and previous.get("proc") not in (None, chat.procId):
            chat.bus.send(
                previous["proc"],
                {"k": "ctl", "op": "replaced", "cid": cid, "sid": previous.get("sid")},
            ).addErrback(lambda f: None)
        await chat.channels.restoreZone(user)
        self.log.info(
            "chat character {character_id} of account {account_id} online on {proc}",
            character_id=cid, account_id=user.accountId, proc=chat.procId,
        )
        return self._withRequests(await self.snapshot(user), state)

    @staticmethod
    def _withRequests(snapshot, state):
        snapshot["incoming"] = [{"character_id": i, "name": n} for i, n in state.incoming]
        snapshot["outgoing"] = [{"character_id": i, "name": n} for i, n in state.outgoing]
        return snapshot

    async def snapshot(self, user):
        chat = self.chat
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
                await chat.store.history(f"party:{user.partyId}") if user.partyId else []
            ),
            "channels": sorted(user.channels),
        }
        if user.zone:
            body["zone_channel"] = chat.channels.zoneChannel(user.zone)
            body["zone_history"] = await chat.store.history(body["zone_channel"])
        return body

    async def friendsWithPresence(self, user):
        presence = await self.chat.store.presenceOf(list(user.friends))
        return [
            dict(publicPresence(presence.get(cid)), character_id=cid, name=name)
            for cid, name in sorted(user.friends.items(), key=lambda kv: kv[1].lower())
        ]

    async def status(self, user, message):
        status = message.get("status", user.status)
        text = message.get("text", user.text)
        if status not in STATUSES:
            raise errors.error(errors.BAD_REQUEST, f"status must be one of {STATUSES}")
        if not isinstance(text, str) or len(text) > self.chat.config.status_text_length:
            raise errors.error(
                errors.TOO_LONG,
                f"status text is longer than {self.chat.config.status_text_length}",
            )
        user.status, user.text = status, text.strip()
        await self.chat.presenceChanged(user)
        return {"status": user.status, "text": user.text}

    # -- whispers ----------------------------------------------------------------

    def whisper(self, user, message):
        """A local recipient is served at once; another process's through its inbox."""
        chat = self.chat
        name = strArg(message, "to")
        text = self.checkSend(user, message.get("text"))
        lower = name.lower()
        if lower == user.name.lower():
            raise errors.error(errors.SELF, "you cannot whisper to yourself")
        local = chat.byName.get(lower)
        if local is None:
            return self._whisperRemote(user, name, text)
        if local.cid in user.blocks:
            raise errors.error(errors.YOU_BLOCK, f"you block {name}; unblock them first")
        text = self.filter(user, "whisper", name, text)
        envelope = self._whisperEnvelope(user, local.cid, text)
        if not chat.onEnvelope(envelope):
            raise errors.error(errors.OFFLINE, f"{name} is not online")
        return {"to": local.cid, "delivered": True}

    def _whisperEnvelope(self, user, cid, text):
        chat = self.chat
        ts = chat.now()
        chat.metrics.counted("whisper")
        body = {"from": user.cid, "from_name": user.name, "text": text, "ts": ts}
        return {"k": "d", "to": [cid], "t": "chat.whisper", "b": body, "kind": "whisper",
                "ts": ts, "w": user.cid}

    async def _whisperRemote(self, user, name, text):
        chat = self.chat
        target = await chat.store.lookupName(name)
        if target is None:
            raise errors.error(errors.OFFLINE, f"{name} is not online")
        cid, proc = target
        if cid in user.blocks:
            raise errors.error(errors.YOU_BLOCK, f"you block {name}; unblock them first")
        text = self.filter(user, "whisper", name, text)
        if not await chat.routeTo(cid, self._whisperEnvelope(user, cid, text), proc):
            raise errors.error(errors.OFFLINE, f"{name} is not online")
        return {"to": cid, "delivered": True}

    # -- friends -------------------------------------------------------------------

    async def friendRequest(self, user, message):
        chat = self.chat
        row = await self.resolveName(strArg(message, "name"))
        if row.id == user.cid:
            raise errors.error(errors.SELF, "you cannot befriend yourself")
        if row.id in user.blocks:
            raise errors.error(errors.YOU_BLOCK, f"you block {row.name}; unblock them first")
        outcome = await chat.social.friendRequest(user.cid, row.id)
        if outcome == social.ALREADY:
            raise errors.error(errors.ALREADY_FRIENDS, f"{row.name} is already a friend")
        if outcome == social.TOO_MANY:
            raise errors.error(errors.FRIENDS_FULL, "the friends list is full")
        if outcome == social.ACCEPTED:
            await self._becameFriends(user, row.id, row.name)
            return {"character_id": row.id, "name": row.name, "status": "accepted"}
        if outcome == social.SENT:
            await chat.deliver(
                [row.id], "chat.friend.requested",
                {"character_id": user.cid, "name": user.name}, "friend",
            )
        # SILENT (the target blocks us) answers exactly like SENT.
        return {"character_id": row.id, "name": row.name, "status": "sent"}

    async def _becameFriends(self, user, otherId, otherName):
        user.friends[otherId] = otherName
        body = dict(user.publicPresence(), character_id=user.cid, name=user.name)
        await self.chat.deliver([otherId], "chat.friend.added", body, "friend")

    async def friendAccept(self, user, message):
        chat = self.chat
        other = intArg(message, "character_id")
        outcome = await chat.social.acceptRequest(user.cid, other)
        if outcome is None:
            raise errors.error(errors.NO_REQUEST, "no friend request from that character")
        if outcome == social.TOO_MANY:
            raise errors.error(errors.FRIENDS_FULL, "a friends list is full")
        row = await chat.social.character(other)
        name = row.name if row else str(other)
        if outcome == social.ACCEPTED:
            await self._becameFriends(user, other, name)
        presence = (await chat.store.presenceOf([other])).get(other)
        return dict(publicPresence(presence), character_id=other, name=name)

    async def friendDecline(self, user, message):
        if not await self.chat.social.declineRequest(user.cid, intArg(message, "character_id")):
            raise errors.error(errors.NO_REQUEST, "no friend request from that character")
        return {}

    async def friendCancel(self, user, message):
        if not await self.chat.social.cancelRequest(user.cid, intArg(message, "character_id")):
            raise errors.error(errors.NO_REQUEST, "no friend request to that character")
        return {}

    async def friendRemove(self, user, message):
        other = intArg(message, "character_id")
        if not await self.chat.social.removeFriend(user.cid, other):
            raise errors.error(errors.NOT_FRIENDS, "that character is not a friend")
        user.friends.pop(other, None)
        await self.chat.deliver(
            [other], "chat.friend.removed", {"character_id": user.cid, "name": user.name},
            "friend",
        )
        return {}

    async def friendList(self, user, message):
        state = await self.chat.social.load(user.cid)
        user.friends = dict(state.friends)
        return {
            "friends": await self.friendsWithPresence(user),
            "incoming": [{"character_id": i, "name": n} for i, n in state.incoming],
            "outgoing": [{"character_id": i, "name": n} for i, n in state.outgoing],
        }

    # -- blocks ---------------------------------------------------------------------

    async def block(self, user, message):
        chat = self.chat
        row = await self.resolveName(strArg(message, "name"))
        if row.id == user.cid:
            raise errors.error(errors.SELF, "you cannot block yourself")
        result = await chat.social.block(user.cid, row.id)
        if result is None:
            raise errors.error(errors.BLOCKS_FULL, "the block list is full")
        added, wereFriends = result
        user.blocks[row.id] = row.name
        if wereFriends:
            user.friends.pop(row.id, None)
            # To the blocked side this is an ordinary friend removal.
            await chat.deliver(
                [row.id], "chat.friend.removed",
                {"character_id": user.cid, "name": user.name}, "friend",
            )
        return {"character_id": row.id, "name": row.name}

    async def unblock(self, user, message):
        other = intArg(message, "character_id")
        await self.chat.social.unblock(user.cid, other)
        user.blocks.pop(other, None)
        return {}

    async def blockList(self, user, message):
        return {"blocks": [{"character_id": i, "name": n} for i, n in user.blocks.items()]}

    # -- moderation -------------------------------------------------------------------

    def requireOperator(self, user):
        if not user.operator:
            raise errors.error(errors.FORBIDDEN, "operators only")

    async def mute(self, user, message):
        chat = self.chat
        self.requireOperator(user)
        row = await self.resolveName(strArg(message, "name"))
        seconds = message.get("seconds")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds <= 0:
            raise errors.error(errors.BAD_REQUEST, "seconds must be a positive number")
        reason = message.get("reason") or ""
        if not isinstance(reason, str) or len(reason) > 255:
            raise errors.error(errors.BAD_REQUEST, "reason must be a string of 255 or less")
        until = chat.now() + float(seconds)
        await chat.social.mute(row.id, until, reason or None, user.cid)
        self.log.info(
            "operator {operator_id} muted character {character_id} until {until}: {reason}",
            operator_id=user.cid, character_id=row.id, until=until, reason=reason,
        )
        await self._muteControl(row.id, until, reason)
        return {"character_id": row.id, "until": until}

    async def unmute(self, user, message):
        chat = self.chat
        self.requireOperator(user)
        row = await self.resolveName(strArg(message, "name"))
        await chat.social.unmute(row.id)
        await self._muteControl(row.id, None, None)
        return {"character_id": row.id}

    async def _muteControl(self, cid, until, reason):
        envelope = {"k": "ctl", "op": "mute", "cid": cid, "until": until, "reason": reason}
        await self.chat.routeTo(cid, envelope)

    def onMute(self, envelope):
        user = self.chat.users.get(envelope["cid"])
        if user is None:
            return False
        user.mutedUntil, user.muteReason = envelope["until"], envelope["reason"]
        user.session.send(
            "chat.muted" if envelope["until"] else "chat.unmuted",
            {"until": envelope["until"], "reason": envelope["reason"]},
        )
        return True

    def onReplaced(self, envelope):
        user = self.chat.users.get(envelope["cid"])
        if user is None or user.session.sessionId != envelope.get("sid"):
            return False
        self.chat.detach(user)
        user.session.send("chat.replaced", {"character_id": user.cid}, False)
        return True

    async def announce(self, user, message):
        chat = self.chat
        self.requireOperator(user)
        text = checkText(message.get("text"), chat.config.max_length * 4)
        ts = chat.now()
        body = {"text": text, "from_name": user.name, "ts": ts}
        procs = await chat.liveProcs()
        chat.metrics.counted("announce")
        await chat.sendToProcs(
            procs, {"k": "all", "t": "chat.announcement", "b": body, "ts": ts}
        )
        return {"processes": len(procs)}
