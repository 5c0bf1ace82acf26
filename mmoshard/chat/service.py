"""The chat service: local characters, presence upkeep, routing and the session hooks."""

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from mmoshard.chat import errors
from mmoshard.chat.bus import Bus, newProcId
from mmoshard.chat.channels import Channels
from mmoshard.chat.handlers import Handlers
from mmoshard.chat.metrics import ChatMetrics
from mmoshard.chat.moderation import loadFilter
from mmoshard.chat.parties import Parties
from mmoshard.chat.social import Social
from mmoshard.chat.store import ChatStore
from mmoshard.chat.users import publicPresence
from mmoshard.interfaces import ISessionListener
from mmoshard.store.errors import StoreError


@implementer(ISessionListener)
class ChatService(Service):
    """
    One chat process.  Characters say C{chat.hello} on a session; from then
    on this process owns their presence entry (refreshing its TTL), holds
    their social lists and delivers what other processes route to them.
    """

    log = Logger()

    def __init__(self, config, reactor, nodeId, metrics, sql, volatile, router,
                 resumeGrace, chatFilter=None):
        """
        @param config: the C{[chat]} section.
        @param metrics: the node's Prometheus registry.
        @param router: the L{IMessageRouter} chat.* messages arrive by.
        @param resumeGrace: seconds a dropped session may resume
            (C{[session] resume_grace}): presence and party grace follow it.
        @param chatFilter: an L{IChatFilter} (None: the one C{config} names).
        """
        self.setName("chat")
        self.config = config
        self.clock = reactor
        self.nodeId = nodeId
        self.sql = sql
        self.volatile = volatile
        self.router = router
        self.resumeGrace = resumeGrace
        self.chatFilter = chatFilter
        self.users = {}  # cid -> ChatUser
        self.bySession = {}  # session id -> ChatUser
        self.byName = {}  # lower-case name -> local ChatUser
        self.channelLocal = {}  # channel -> set of local cids
        self.metrics = ChatMetrics(metrics, lambda: len(self.users))
        self.procId = newProcId(nodeId)
        self.controls = {}  # op -> callable(envelope); filled by the parts
        self.intercepts = {}  # event type -> callable(user, body) before delivery
        self.parties = Parties(self)
        self.channels = Channels(self)
        self.handlers = Handlers(self)
        self.store = None
        self.social = None
        self.bus = None
        self.filter = None
        self._refresher = None
        self._hooks = set()  # session hooks still running
        self._envelopeKinds = {
            "d": self._onDeliver,
            "c": self.channels.onChannelEnvelope,
            "all": self._onAll,
            "ctl": self._onControl,
        }

    # -- lifetime ------------------------------------------------------------

    @property
    def leaderGrace(self):
        g = self.config.leader_grace
        return self.resumeGrace if g < 0 else g

    def startService(self):
        Service.startService(self)
        return Deferred.fromCoroutine(self._start())

    async def _start(self):
        self.store = ChatStore(self.volatile)
        self.social = Social(self.sql, self.clock, self.config)
        self.filter = self.chatFilter or loadFilter(self.config)
        self.bus = Bus(
            self.store, self.procId, self.clock, self.metrics, self.onEnvelope,
            self.config.whisper_ack_timeout,
        )
        await self.bus.start()
        await self.channels.start()
        await self._announceProcess()
        router = self.router
        if router is not None:
            router.addHandlers("chat", self.handlers.table())
            router.addListener(self)
        self._refresher = LoopingCall(self._refreshSafely)
        self._refresher.clock = self.clock
        self._refresher.start(self.config.presence_ttl / 3.0, now=False)
        self.log.info(
            "chat process {proc} of node {node_id} started", proc=self.procId,
            node_id=self.nodeId,
        )

    async def _announceProcess(self):
        await self.volatile.set(
            self.store.procKey(self.procId), "1", ttl=self.config.presence_ttl
        )
        await self.volatile.sadd(self.store.PROCS, self.procId)

    def stopService(self):
        Service.stopService(self)
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self):
        if self._refresher is not None and self._refresher.running:
            self._refresher.stop()
        for user in list(self.users.values()):
            try:
                await self.endUser(user, "server stop")
            except StoreError:
                pass
        # Sessions ended by the listener's stop are still being put offline:
        # let them finish while the stores are open.
        if self._hooks:
            await DeferredList(list(self._hooks))
        await self.channels.flush()
        await self.channels.stop()
        if self.bus is not None:
            await self.bus.stop()
            try:
                await self.volatile.srem(self.store.PROCS, self.procId)
                await self.volatile.delete(self.store.procKey(self.procId))
            except StoreError:
                pass

    # -- presence ------------------------------------------------------------

    def writePresence(self, user):
        return Deferred.fromCoroutine(
            self.store.setPresence(
                user.cid, user.name, self.procId,
                dict(user.presenceFields(user.session.sessionId), proc=self.procId),
                self.config.presence_ttl,
            )
        )

    async def presenceChanged(self, user, watchers=None):
        """Write C{user}'s presence and tell its friends and party members."""
        await self.writePresence(user)
        body = dict(user.publicPresence(), character_id=user.cid, name=user.name)
        await self.deliver(
            user.watchers() if watchers is None else watchers, "chat.presence", body,
            "presence", replayable=False,
        )

    async def refresh(self):
        """Keep this process's presence entries (and its players' parties) alive."""
        volatile = self.volatile
        ttl = self.config.presence_ttl
        await volatile.set(self.store.procKey(self.procId), "1", ttl=ttl)
        await volatile.sadd(self.store.PROCS, self.procId)
        users = list(self.users.values())
        keys = []
        for u in users:
            keys.append(self.store.presenceKey(u.cid))
            keys.append(self.store.nameKey(u.name))
        if keys and await self.store.expireMany(keys, ttl) < len(keys):
            # Some presence entry vanished (the store restarted, or it expired
            # while the reactor was blocked): write those again.
            for i in range(0, len(users), 500):
                chunk = users[i : i + 500]
                present = await self.store.presenceOf([u.cid for u in chunk])
                for u in chunk:
                    if present.get(u.cid, {}).get("sid") != u.session.sessionId:
                        if self.users.get(u.cid) is u:
                            await self.writePresence(u)
        longKeys = []
        for u in users:
            longKeys.append(self.store.zoneKey(u.cid))
            if u.partyId:
                longKeys.append(self.store.partyKey(u.partyId))
                longKeys.append(self.store.partyOfKey(u.cid))
        if longKeys:
            await self.store.expireMany(longKeys, self.config.party_ttl)

    def _refreshSafely(self):
        d = Deferred.fromCoroutine(self.refresh())
        d.addErrback(
            lambda f: self.log.warn(
                "chat presence refresh failed: {why}", why=f.getErrorMessage()
            )
        )
        return d

    # -- routing -------------------------------------------------------------

    def now(self):
        return self.clock.seconds()

    def deliverLocal(self, user, type, body, kind, ts, replayable=True):
        user.session.send(type, body, replayable)
        self.metrics.delivered(kind, 1, self.now() - ts if ts is not None else None)

    async def deliver(self, cids, type, body, kind, replayable=True, exclude=None):
        """
        Send an event to characters wherever they are connected: local ones
        at once, the others through their process's inbox.
        """
        ts = self.now()
        remote = []
        intercept = self.intercepts.get(type)
        for cid in cids:
            if cid == exclude:
                continue
            user = self.users.get(cid)
            if user is not None:
                if intercept is not None:
                    intercept(user, body)
                self.deliverLocal(user, type, body, kind, ts, replayable)
            else:
                remote.append(cid)
        if not remote:
            return
        presence = await self.store.presenceOf(remote)
        byProc = {}
        for cid, fields in presence.items():
            proc = fields.get("proc")
            if proc and proc != self.procId:
                byProc.setdefault(proc, []).append(cid)
        for proc, to in byProc.items():
            self.bus.post(
                proc,
                {"k": "d", "to": to, "t": type, "b": body, "kind": kind, "ts": ts,
                 "r": replayable},
            )

    def routeByProc(self, procs, type, body, kind, ts, exclude=None, onGone=None):
        """
        Deliver to characters whose processes are known: C{procs} is cid ->
        proc.  C{onGone()} is called if one of those processes is gone.
        """
        byProc = {}
        mine = self.procId
        users = self.users
        for cid, proc in procs.items():
            if cid == exclude:
                continue
            if proc == mine:
                user = users.get(cid)
                if user is not None:
                    self.deliverLocal(user, type, body, kind, ts)
            else:
                byProc.setdefault(proc, []).append(cid)
        for proc, to in byProc.items():
            self.bus.post(
                proc, {"k": "d", "to": to, "t": type, "b": body, "kind": kind, "ts": ts},
                onGone,
            )

    def onEnvelope(self, envelope):
        """Handle an envelope from the bus; @return: True when delivered."""
        handler = self._envelopeKinds.get(envelope.get("k"))
        if handler is None:
            return False
        return handler(envelope)

    def _onDeliver(self, envelope):
        type = envelope["t"]
        body = envelope["b"]
        kind = envelope.get("kind", "event")
        ts = envelope.get("ts")
        replayable = envelope.get("r", True)
        sender = envelope.get("w")  # a whisper or invite: checked here
        intercept = self.intercepts.get(type)
        delivered = False
        for cid in envelope["to"]:
            user = self.users.get(cid)
            if user is None:
                continue
            if sender is not None and (
                sender in user.blocks or user.status == "invisible"
            ):
                continue
            if intercept is not None:
                intercept(user, body)
            self.deliverLocal(user, type, body, kind, ts, replayable)
            delivered = True
        return delivered

    def _onAll(self, envelope):
        ts = envelope.get("ts")
        for user in list(self.users.values()):
            self.deliverLocal(user, envelope["t"], envelope["b"], "announce", ts)
        return True

    def _onControl(self, envelope):
        handler = self.controls.get(envelope.get("op"))
        if handler is None:
            return False
        return handler(envelope)

    async def routeTo(self, cid, envelope, proc=None):
        """
        Send C{envelope} to the process of character C{cid} and wait for its
        acknowledgement.  @return: True when that process delivered it.
        """
        if proc is None:
            fields = (await self.store.presenceOf([cid])).get(cid)
            if not fields:
                return False
            proc = fields["proc"]
        return await self.bus.request(proc, envelope)

    async def sendToProcs(self, procs, envelope):
        """Publish to several processes; @return: the processes that are gone."""
        dead = []
        for proc in procs:
            receivers = await self.bus.send(proc, envelope)
            if not receivers:
                dead.append(proc)
        return dead

    async def liveProcs(self):
        """@return: the ids of every live chat process, pruning dead ones."""
        volatile = self.volatile
        procs = await volatile.smembers(self.store.PROCS)
        live = []
        for proc in procs:
            if proc == self.procId or await volatile.get(self.store.procKey(proc)):
                live.append(proc)
            else:
                await volatile.srem(self.store.PROCS, proc)
        return live

    # -- session hooks ---------------------------------------------------------

    def userFor(self, session):
        user = self.bySession.get(session.sessionId)
        if user is None:
            raise errors.error(errors.NO_HELLO, "say chat.hello with a character first")
        return user

    def addUser(self, user):
        old = self.users.get(user.cid)
        if old is not None and old.session is not user.session:
            self.detach(old)
            old.session.send("chat.replaced", {"character_id": old.cid}, False)
        self.users[user.cid] = user
        self.bySession[user.session.sessionId] = user
        self.byName[user.name.lower()] = user

    def detach(self, user):
        """Forget C{user} locally (its presence entry is left alone)."""
        if self.users.get(user.cid) is user:
            del self.users[user.cid]
        if self.bySession.get(user.session.sessionId) is user:
            del self.bySession[user.session.sessionId]
        if self.byName.get(user.name.lower()) is user:
            del self.byName[user.name.lower()]
        for channel in list(user.channels):
            members = self.channelLocal.get(channel)
            if members is not None:
                members.discard(user.cid)
                if not members:
                    del self.channelLocal[channel]
        if user.leaderTimer is not None and user.leaderTimer.active():
            user.leaderTimer.cancel()
        user.leaderTimer = None

    async def endUser(self, user, reason):
        if self.users.get(user.cid) is not user:
            self.detach(user)
            return
        channels = list(user.channels)
        self.detach(user)
        self.log.info(
            "chat character {character_id} of account {account_id} offline ({reason})",
            character_id=user.cid, account_id=user.accountId, reason=reason,
        )
        await self.store.dropPresence(
            user.cid, user.name, self.procId, user.session.sessionId
        )
        for channel in channels:
            await self.store.leaveChannel(channel, user.cid, self.procId)
        user.state = "offline"
        body = dict(publicPresence(None), character_id=user.cid, name=user.name)
        await self.deliver(user.watchers(), "chat.presence", body, "presence", False)
        await self.parties.memberGone(user)

    def _hook(self, coro, what, session):
        d = Deferred.fromCoroutine(coro)
        self._hooks.add(d)

        def failed(f):
            if f.check(StoreError):
                self.log.warn(
                    "chat {what} of session {session_id} failed: {why}", what=what,
                    session_id=session.sessionId, why=f.getErrorMessage(),
                )
            else:
                self.log.failure(
                    "chat {what} of session {session_id} failed", f, what=what,
                    session_id=session.sessionId,
                )

        d.addErrback(failed)
        d.addBoth(lambda _: self._hooks.discard(d))
        return d

    def sessionStarted(self, session):
        pass

    def sessionLinkDead(self, session):
        user = self.bySession.get(session.sessionId)
        if user is not None:
            return self._hook(self._linkDead(user), "link-dead", session)

    async def _linkDead(self, user):
        user.state = "linkdead"
        await self.presenceChanged(user)
        self.parties.leaderLinkDead(user)

    def sessionResumed(self, session):
        user = self.bySession.get(session.sessionId)
        if user is not None:
            return self._hook(self._resumed(user), "resume", session)

    async def _resumed(self, user):
        user.state = "online"
        if user.leaderTimer is not None and user.leaderTimer.active():
            user.leaderTimer.cancel()
        user.leaderTimer = None
        await self.presenceChanged(user)

    def sessionEnded(self, session, reason):
        user = self.bySession.get(session.sessionId)
        if user is not None:
            return self._hook(self.endUser(user, reason), "end", session)
