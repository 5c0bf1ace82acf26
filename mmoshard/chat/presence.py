"""Presence entries of this process's characters: writing, announcing and keeping them alive."""

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from mmoshard.chat.routing import ChatPart
from mmoshard.store.slots import everyBatch

# Lapsed presence entries a refresh writes again at once (after a Redis
# restart, every character of the process: thousands of writes all out
# together would put their replies past the store's deadline).
REWRITE_BATCH = 500


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
        try:
            await self._keepPresence(users, ttl)
        finally:
            # Parties, zones and carried state are kept even when a presence
            # rewrite failed (the store slow in a storm): they outlive it.
            longKeys = []
            for u in users:
                longKeys.append(store.zoneKey(u.cid))
                longKeys.append(store.sessionKey(u.session.sessionId))
                if u.partyId:
                    longKeys.append(store.partyKey(u.partyId))
                    longKeys.append(store.partyOfKey(u.cid))
            if longKeys:
                await store.expireMany(longKeys, self.config.party_ttl)

    async def _keepPresence(self, users, ttl):
        """Renew the presence and name keys of C{users}; write again those that lapsed."""
        store = self.store
        keys = []
        for u in users:
            keys.append(store.presenceKey(u.cid))
            keys.append(store.nameKey(u.name))
        kept = await store.expireEach(keys, ttl) if keys else []
        lapsed = [u for i, u in enumerate(users) if not (kept[2 * i] and kept[2 * i + 1])]
        # Some entry vanished (the store restarted, it expired while the
        # reactor was blocked, or the character's hello is still writing it):
        # write those again, REWRITE_BATCH at once.  Before, one missing key
        # had every character of the node written again, one after the other
        # (it compared a "sid" presenceOf does not read): in a login storm a
        # refresh outlasted the TTL, names lapsed, and party invites answered
        # chat.offline (2026-12-03).
        for i in range(0, len(lapsed), REWRITE_BATCH):
            chunk = lapsed[i : i + REWRITE_BATCH]
            present = await store.presenceOf([u.cid for u in chunk])
            stale = [
                u for u in chunk
                if self.roster.users.get(u.cid) is u
                # (another process's entry: the character is there now)
                and present.get(u.cid, {}).get("proc") in (None, self.procId)
            ]
            await everyBatch(stale, self.write)

    def _refreshSafely(self):
        d = Deferred.fromCoroutine(self.refresh())
        d.addErrback(
            lambda f: self.log.warn(
                "chat presence refresh of {proc} failed: {why}", proc=self.procId,
                why=f.getErrorMessage(),
            )
        )
        return d
