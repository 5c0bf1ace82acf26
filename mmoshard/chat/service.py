"""The chat service: wires chat's parts together and holds the session hooks."""

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList
from twisted.logger import Logger
from zope.interface import implementer

from mmoshard.chat.admin import CHAT_ADMIN_ERRORS, ChatAdminAPI
from mmoshard.chat.routing import newProcId
from mmoshard.chat.channels import Channels
from mmoshard.chat.handlers import Handlers, wrap
from mmoshard.chat.history import History
from mmoshard.chat.metrics import ChatMetrics
from mmoshard.chat.moderation import SpeechGate, loadFilter
from mmoshard.chat.parties import Parties
from mmoshard.chat.presence import Presence
from mmoshard.chat.roster import Roster
from mmoshard.chat.routing import Router
from mmoshard.chat.social import Social
from mmoshard.chat.store import ChatStore
from mmoshard.chat.users import Carried, publicPresence
from mmoshard.interfaces import ISessionListener
from mmoshard.store.errors import StoreError
from mmoshard.web.routes import Router as RouteTable, mountRouter


@implementer(ISessionListener)
class ChatService(Service):
    """
    One chat process.  Characters say C{chat.hello} on a session; from then
    on this process owns their presence entry (refreshing its TTL), holds
    their social lists and delivers what other processes route to them.

    The parts each get only what they use: the L{ChatStore} (every chat key),
    the L{Roster} of local characters, the L{Router} (delivery and the bus),
    L{Presence}, L{History} and the L{SpeechGate}.  This class builds them,
    hands the router the messages and events each part handles, and turns
    session lifetime into presence.
    """

    log = Logger()

    def __init__(self, config, reactor, nodeId, metrics, sql, volatile, router,
                 resumeGrace, chatFilter=None, locator=None, admin=None):
        """
        @param config: the C{[chat]} section.
        @param metrics: the node's Prometheus registry.
        @param volatile: the node's L{IVolatileStore} (started before this).
        @param router: the L{IMessageRouter} chat.* messages arrive by.
        @param resumeGrace: seconds a dropped session may resume
            (C{[session] resume_grace}): presence and party grace follow it.
        @param chatFilter: an L{IChatFilter} (None: the one C{config} names).
        @param locator: the node's L{ILocator}, told which session each
            character speaks through (None: nobody is told).
        @param admin: the L{IAdminSite} its console routes go on (None: none).
        """
        self.setName("chat")
        self.config = config
        self.clock = reactor
        self.nodeId = nodeId
        self.messageRouter = router
        self.admin = admin
        self.procId = newProcId(nodeId)
        self.store = ChatStore(volatile)
        self.social = Social(sql, reactor, config)
        self.roster = Roster()
        self.metrics = ChatMetrics(metrics, self.roster.__len__)
        self.router = Router(
            self.store, self.roster, self.procId, reactor, self.metrics,
            config.whisper_ack_timeout,
        )
        self.history = History(self.store, config)
        self.gate = SpeechGate(config, reactor, chatFilter or loadFilter(config))
        # What every part works with.
        common = dict(store=self.store, router=self.router, roster=self.roster, config=config)
        self.presence = Presence(clock=reactor, **common)
        leaderGrace = resumeGrace if config.leader_grace < 0 else config.leader_grace
        self.parties = Parties(
            gate=self.gate, history=self.history, metrics=self.metrics, clock=reactor,
            leaderGrace=leaderGrace, **common,
        )
        self.channels = Channels(
            gate=self.gate, history=self.history, metrics=self.metrics, **common
        )
        self.locator = locator
        self.handlers = Handlers(
            social=self.social, presence=self.presence, parties=self.parties,
            channels=self.channels, gate=self.gate, metrics=self.metrics, locator=locator,
            **common,
        )
        for part in (self.channels, self.handlers):
            self.router.inbound.update(part.inbound())
        for part in (self.parties, self.handlers):
            self.router.intercepts.update(part.intercepts())
        self._hooks = set()  # session hooks still running

    def table(self):
        """@return: the chat.* request handlers, for the L{IMessageRouter}."""
        own = dict(self.handlers.handlers())
        own.update(self.parties.handlers())
        own.update(self.channels.handlers())
        return {
            t: wrap(fn, self.roster, self.metrics, needUser=(t != "chat.hello"))
            for t, fn in own.items()
        }

    # -- lifetime ------------------------------------------------------------

    def startService(self):
        Service.startService(self)
        return Deferred.fromCoroutine(self._start())

    async def _start(self):
        await self.router.start()
        await self.channels.start()
        await self.presence.start()
        if self.messageRouter is not None:
            self.messageRouter.addHandlers("chat", self.table())
            self.messageRouter.addListener(self)
        if self.admin is not None:
            mountRouter(self.admin, RouteTable(ChatAdminAPI(self), CHAT_ADMIN_ERRORS))
        self.log.info(
            "chat process {proc} of node {node_id} started", proc=self.procId,
            node_id=self.nodeId,
        )

    def stopService(self):
        Service.stopService(self)
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self):
        self.presence.stopRefreshing()
        for user in list(self.roster.users.values()):
            try:
                await self.endUser(user, "server stop")
            except StoreError:
                pass
        # Sessions ended by the listener's stop are still being put offline:
        # let them finish while the stores are open.
        if self._hooks:
            await DeferredList(list(self._hooks))
        await self.history.flush()
        await self.channels.stop()
        await self.router.stop()
        try:
            await self.presence.withdraw()
        except StoreError:
            pass

    # -- session hooks ---------------------------------------------------------

    async def endUser(self, user, reason):
        roster = self.roster
        if self.locator is not None:
            # Only this session's binding goes: a newer one stays.
            await self.locator.unbind(user.cid, "chat", user.session.sessionId)
        if roster.users.get(user.cid) is not user:
            roster.detach(user)
            return
        channels = list(user.channels)
        roster.detach(user)
        await self.store.dropCarried(user.session.sessionId)
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
        await self.router.deliver(user.watchers(), "chat.presence", body, "presence", False)
        await self.parties.memberGone(user)

    # -- ISessionListener ---------------------------------------------------------

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
        user = self.roster.bySession.get(session.sessionId)
        if user is not None:
            return self._hook(self._linkDead(user), "link-dead", session)

    async def _linkDead(self, user):
        user.state = "linkdead"
        # The grace first: it needs no store, and a presence write that fails
        # (thousands of links dropping at once can put Redis's replies past
        # their deadline) must not leave a gone leader the lead for ever.
        self.parties.leaderLinkDead(user)
        await self.presence.changed(user)

    def sessionResumed(self, session):
        user = self.roster.bySession.get(session.sessionId)
        if user is not None:
            return self._hook(self._resumed(user), "resume", session)

    async def _resumed(self, user):
        user.state = "online"
        if user.leaderTimer is not None and user.leaderTimer.active():
            user.leaderTimer.cancel()
        user.leaderTimer = None
        await self.presence.changed(user)

    def sessionMoved(self, session, fromNode):
        # The character follows its session here by itself (what it took
        # along is in chat:sess:<session id>); its presence entry was never
        # dropped, so friends see link-dead, then online, never offline.
        return self._hook(self._moved(session, fromNode), "move", session)

    async def _moved(self, session, fromNode):
        raw = await self.store.carried(session.sessionId)
        if raw is None:
            self.log.info("chat session {session_id} of account {account_id} moved here from "
                          "node {from_node} without a character", session_id=session.sessionId,
                          account_id=session.accountId, from_node=fromNode)
            return
        try:
            carried = Carried.decode(raw)
        except ValueError as e:
            self.log.warn("chat session {session_id} moved here with bad state: {why}",
                          session_id=session.sessionId, why=e)
            return
        user = await self.handlers.adopt(session, carried)
        if user is not None:
            self.log.info(
                "chat character {character_id} of account {account_id} moved here from node "
                "{from_node} ({proc}, channels {channels})", character_id=user.cid,
                account_id=user.accountId, from_node=fromNode, proc=self.procId,
                channels=sorted(user.channels))

    def sessionEnded(self, session, reason):
        user = self.roster.bySession.get(session.sessionId)
        if user is None:
            return None
        if reason == "moved":
            # Resumed on another node: let go here without announcing offline.
            # What arrives here for it meanwhile follows it (docs/chat.md).
            self.roster.detach(user)
            self.router.leftForAnotherNode(user.cid)
            self.log.info("chat character {character_id} of account {account_id} moved to "
                          "another node", character_id=user.cid, account_id=user.accountId)
            return None
        return self._hook(self.endUser(user, reason), "end", session)
