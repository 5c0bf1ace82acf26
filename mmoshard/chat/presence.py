"""Presence entries of this process's characters: writing, announcing and keeping them alive."""

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from mmoshard.chat.routing import ChatPart


@attrs.define(eq=False, kw_only=True)
class Presence(ChatPart):
    """
    Each local character has a presence entry (its process, session, state
    and status) that others route by; this process refreshes those entries,
    its own liveness key and its players' parties and zones every third of
    the presence TTL, so a crashed process's players go offline within it.
    """

    log = Logger()

    clock: IReactorTime
    refresher: LoopingCall | None = attrs.field(init=False, default=None)

    async def start(self):
        await self.store.announceProcess(self.procId, self.config.presence_ttl)
        self.refresher = LoopingCall(self._refreshSafely)
        self.refresher.clock = self.clock
        self.refresher.start(self.config.presence_ttl / 3.0, now=False)

    def stopRefreshing(self):
        if self.refresher is not None and self.refresher.running:
            self.refresher.stop()

    async def withdraw(self):
        """This process stops: others no longer route to it."""
        await self.store.withdrawProcess(self.procId)

    def write(self, user):
        return Deferred.fromCoroutine(
            self.store.setPresence(
                user.cid, user.name, self.procId,
                dict(user.presenceFields(user.session.sessionId), proc=self.procId),
                self.config.presence_ttl,
            )
        )

    async def changed(self, user, watchers=None):
        """Write C{user}'s presence and tell its friends and party members."""
        await self.write(user)
        body = dict(user.publicPresence(), character_id=user.cid, name=user.name)
        await self.router.deliver(
            user.watchers() if watchers is None else watchers, "chat.presence", body,
            "presence", replayable=False,
        )

    async def refresh(self):
        """Keep this process's presence entries (and its players' parties) alive."""
        store = self.store
        ttl = self.config.presence_ttl
        await store.announceProcess(self.procId, ttl)
        users = list(self.roster.users.values())
        keys = []
        for u in users:
            keys.append(store.presenceKey(u.cid))
            keys.append(store.nameKey(u.name))
        if keys and await store.expireMany(keys, ttl) < len(keys):
            # Some presence entry vanished (the store restarted, or it expired
            # while the reactor was blocked): write those again.
            for i in range(0, len(users), 500):
                chunk = users[i : i + 500]
                present = await store.presenceOf([u.cid for u in chunk])
                for u in chunk:
                    if present.get(u.cid, {}).get("sid") != u.session.sessionId:
                        if self.roster.users.get(u.cid) is u:
                            await self.write(u)
        longKeys = []
        for u in users:
            longKeys.append(store.zoneKey(u.cid))
            longKeys.append(store.sessionKey(u.session.sessionId))
            if u.partyId:
                longKeys.append(store.partyKey(u.partyId))
                longKeys.append(store.partyOfKey(u.cid))
        if longKeys:
            await store.expireMany(longKeys, self.config.party_ttl)

    def _refreshSafely(self):
        d = Deferred.fromCoroutine(self.refresh())
        d.addErrback(
            lambda f: self.log.warn(
                "chat presence refresh of {proc} failed: {why}", proc=self.procId,
                why=f.getErrorMessage(),
            )
        )
        return d
