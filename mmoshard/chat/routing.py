"""Routing events to characters: local sessions at once, other chat processes through the bus (one pub/sub inbox per process)."""

import secrets
from collections.abc import Callable

import attrs
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.task import deferLater
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from mmoshard.chat import messages
from mmoshard.chat.config import ChatConfig
from mmoshard.chat.messages import Ack, Announce, Deliver, Request
from mmoshard.chat.metrics import ChatMetrics
from mmoshard.chat.roster import Roster
from mmoshard.chat.store import ChatStore
from mmoshard.chat.users import Carried
from mmoshard.store.errors import StoreError

# A character whose session moved to another node a moment ago (a rolling
# restart) is followed: for MOVED_AWAY s what arrives here for it is not
# refused but sent on (L{Router.follow}), or a whisper left unanswered for
# its sender to follow.  A follow looks the character's presence up every
# FOLLOW_STEP s for up to FOLLOW_WAIT s.
MOVED_AWAY = 10.0
FOLLOW_WAIT = 3.0
FOLLOW_STEP = 0.25


def newProcId(nodeId):
    """A chat process id: the node id plus a per-start suffix, so a restart never inherits stale routes."""
    return f"{nodeId}.{secrets.token_hex(3)}"


@attrs.define(eq=False)
class Bus:
    """
    Messages (L{mmoshard.chat.messages}) between chat processes.  Each
    process subscribes to its own inbox channel only; a sender finds the
    recipient's process in its presence entry (or a channel's per-process
    member counts) and publishes there, so the traffic a process receives is
    only the traffic for its own players.  A message for this process is
    handled at once, without the store or any encoding.

    Messages for one process queued in the same reactor turn are published
    together as one payload (L{messages.encode}).  L{request} wraps a
    message in a L{Request}, which the receiving bus answers with an L{Ack}.

    @ivar handler: callable(message) -> bool (delivered), for every message
        but requests and acknowledgements.
    """

    log = Logger()

    store: ChatStore
    procId: str
    clock: IReactorTime
    metrics: ChatMetrics
    handler: Callable
    ackTimeout: float
    subscription: object = attrs.field(init=False, default=None)
    _pending: dict = attrs.field(init=False, factory=dict)  # request id -> (Deferred, timer)
    _next: int = attrs.field(init=False, default=0)
    _outbox: dict = attrs.field(init=False, factory=dict)  # process -> queued batch
    _flushCall: object = attrs.field(init=False, default=None)
    # True while the handler runs for a Request (its sender waits for the
    # answer), False for a message merely posted.
    requesting: bool = attrs.field(init=False, default=False)

    async def start(self):
        self.subscription = await self.store.subscribeInbox(self.procId, self._received)

    async def stop(self):
        if self._flushCall is not None and self._flushCall.active():
            self._flushCall.cancel()
            self._flush()
        if self.subscription is not None:
            await self.subscription.unsubscribe()
            self.subscription = None
        for d, timer in list(self._pending.values()):
            if timer.active():
                timer.cancel()
            d.callback(False)
        self._pending.clear()

    def send(self, proc, message):
        """
        Deliver C{message} to process C{proc}.

        @return: a Deferred firing with the number of receivers (0: the
            process is gone).
        """
        if proc == self.procId:
            self.handler(message)
            return succeed(1)
        d = Deferred()
        self._queue(proc, message, d, None)
        return d

    def post(self, proc, message, onGone=None):
        """
        Deliver C{message} to process C{proc} without waiting; C{onGone()}
        is called if nobody was listening on that process's inbox.
        """
        if proc == self.procId:
            self.handler(message)
            return
        self._queue(proc, message, None, onGone)

    def _queue(self, proc, message, waiter, onGone):
        # Messages for one process within one reactor turn travel in one
        # publish: under load that is far fewer store round trips.
        batch = self._outbox.get(proc)
        if batch is None:
            batch = self._outbox[proc] = ([], [], [])
            if self._flushCall is None:
                self._flushCall = self.clock.callLater(0, self._flush)
        batch[0].append(message)
        if waiter is not None:
            batch[1].append(waiter)
        if onGone is not None:
            batch[2].append(onGone)

    def _flush(self):
        self._flushCall = None
        outbox, self._outbox = self._outbox, {}
        for proc, (batch, waiters, gone) in outbox.items():
            self.metrics.publishes.inc()
            d = self.store.publishInbox(proc, messages.encode(batch))
            d.addCallbacks(
                self._published, self._publishFailed,
                callbackArgs=(waiters, gone), errbackArgs=(waiters, proc),
            )

    @staticmethod
    def _published(receivers, waiters, gone):
        for d in waiters:
            d.callback(receivers)
        if not receivers:
            for f in gone:
                f()

    def _publishFailed(self, failure, waiters, proc):
        if not waiters:
            self.log.warn(
                "chat publish to {proc} failed: {why}", proc=proc,
                why=failure.getErrorMessage(),
            )
        for d in waiters:
            d.errback(failure)

    def request(self, proc, message):
        """
        Deliver C{message} and wait for the receiving process's answer.

        @return: a Deferred firing with True when the receiver delivered it,
            False when it did not or did not answer within the timeout, None
            (also false) when no process listens at C{proc}: it is gone.
        """
        if proc == self.procId:
            self.requesting = True
            try:
                return succeed(bool(self.handler(message)))
            finally:
                self.requesting = False
        self._next += 1
        rid = self._next
        d = Deferred()
        timer = self.clock.callLater(self.ackTimeout, self._expire, rid)
        self._pending[rid] = (d, timer)

        def published(receivers):
            if not receivers:
                self._resolve(rid, None)  # nobody there: the process is gone
            return receivers

        def failed(failure):
            self._resolve(rid, False)

        self.send(proc, Request(self.procId, rid, message)).addCallbacks(published, failed)
        return d

    def _expire(self, rid):
        entry = self._pending.pop(rid, None)
        if entry is not None:
            entry[0].callback(False)

    def _resolve(self, rid, ok):
        entry = self._pending.pop(rid, None)
        if entry is None:
            return
        d, timer = entry
        if timer.active():
            timer.cancel()
        d.callback(ok)

    def _received(self, channel, payload):
        try:
            batch = messages.decode(payload)
        except ValueError as e:
            self.log.warn("undecodable chat payload on {channel}: {why}", channel=channel, why=e)
            return
        for message in batch:
            self._handle(message)

    def _handle(self, message):
        self.metrics.received.inc()
        cls = type(message)
        if cls is Ack:
            self._resolve(message.id, bool(message.ok))
            return
        inner = message.message if cls is Request else message
        self.requesting = cls is Request
        try:
            ok = self.handler(inner)
        except Exception:
            self.log.failure("chat message {kind} failed", kind=messages.KINDS[type(inner)])
            ok = False
        finally:
            self.requesting = False
        if cls is Request and ok is not None:
            # None: the character moved away from here a moment ago; no
            # answer, the sender asks again where its presence then points.
            self.post(message.replyTo, Ack(message.id, bool(ok)))


@attrs.define(eq=False)
class Router:
    """
    Delivers events to characters wherever they are connected, and handles
    the messages other chat processes send this one.

    What arrives is dispatched by message class through L{inbound}; the
    chat service adds the parts' handlers to it when it wires them.
    L{intercepts} (event type -> callable(user, body)) lets a part update a
    local character's state from an event just before it is delivered.
    """

    log = Logger()

    store: ChatStore
    roster: Roster
    procId: str
    clock: IReactorTime
    metrics: ChatMetrics
    ackTimeout: float
    users: dict = attrs.field(init=False)  # the roster's, at hand on every delivery
    bus: Bus = attrs.field(init=False)
    inbound: dict = attrs.field(init=False)
    intercepts: dict = attrs.field(init=False, factory=dict)
    # cid -> until when: characters whose sessions moved to another node a
    # moment ago (a rolling restart); a request for them gets no answer.
    movedAway: dict = attrs.field(init=False, factory=dict)
    following: set = attrs.field(init=False, factory=set)  # the follows in flight (L{follow})

    def __attrs_post_init__(self):
        self.users = self.roster.users
        self.bus = Bus(
            self.store, self.procId, self.clock, self.metrics, self.receive, self.ackTimeout
        )
        self.inbound = {Deliver: self.onDeliver, Announce: self.onAnnounce}

    def start(self):
        return self.bus.start()

    async def stop(self):
        if self.following:
            # What arrived for characters on their way elsewhere goes first.
            await DeferredList(list(self.following))
        await self.bus.stop()

    def leftForAnotherNode(self, cid):
        """Character C{cid}'s session moved to another node: what arrives for it a moment after follows it."""
        now = self.now()
        if len(self.movedAway) > 10000:
            self.movedAway = {c: t for c, t in self.movedAway.items() if t > now}
        self.movedAway[cid] = now + MOVED_AWAY

    def follow(self, cids, gone, message):
        """
        Deliver C{message} (a L{Deliver}) to characters C{cids}, which are not
        at process C{gone} (they moved away, or it is gone), where their
        presence names another process: looked up every L{FOLLOW_STEP} s for
        up to L{FOLLOW_WAIT} s; those still named at C{gone} then, or
        offline, are left (the history has party and channel messages).
        """
        d = Deferred.fromCoroutine(self._follow(list(cids), gone, message))
        self.following.add(d)
        d.addErrback(lambda f: self.log.warn("following characters {cids} failed: {why}",
                                             cids=cids, why=f.getErrorMessage()))
        d.addBoth(lambda _: self.following.discard(d))

    async def _follow(self, cids, gone, message):
        waited = 0.0
        while cids and waited < FOLLOW_WAIT:
            await deferLater(self.clock, FOLLOW_STEP, lambda: None)
            waited += FOLLOW_STEP
            try:
                where = await self.store.presenceOf(cids)
            except StoreError:
                continue
            byProc, left = {}, []
            for cid in cids:
                proc = (where.get(cid) or {}).get("proc")
                if proc == gone:
                    left.append(cid)
                elif proc is not None:
                    byProc.setdefault(proc, []).append(cid)
            for proc, to in byProc.items():
                self.bus.post(proc, attrs.evolve(message, to=to))
            cids = left

    def now(self):
        return self.clock.seconds()

    # -- sending ---------------------------------------------------------------

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
            self.bus.post(proc, Deliver(to, type, body, kind, ts, replayable))

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
            self.bus.post(proc, Deliver(to, type, body, kind, ts),
                          self._goneThen(onGone, to, proc, Deliver(to, type, body, kind, ts)))

    def _goneThen(self, onGone, cids, proc, message):
        # Nobody listens at proc (it stopped): C{onGone()}, and C{message}
        # follows its recipients to where they are going.
        def gone():
            if onGone is not None:
                onGone()
            self.follow(cids, proc, message)
        return gone

    async def routeTo(self, cid, message, proc=None):
        """
        Send C{message} to the process of character C{cid} and wait for its
        acknowledgement.  @return: True when that process delivered it.
        """
        if proc is None:
            fields = (await self.store.presenceOf([cid])).get(cid)
            if not fields:
                return False
            proc = fields["proc"]
        return await self.bus.request(proc, message)

    def send(self, proc, message):
        """@return: a Deferred firing with the receivers of C{message} (0: C{proc} is gone)."""
        return self.bus.send(proc, message)

    async def sendToProcs(self, procs, message):
        """Publish to several processes; @return: the processes that are gone."""
        dead = []
        for proc in procs:
            if not await self.bus.send(proc, message):
                dead.append(proc)
        return dead

    # -- receiving ---------------------------------------------------------------

    def receive(self, message):
        """Handle a message for this process; @return: True when delivered."""
        handler = self.inbound.get(type(message))
        if handler is None:
            return False
        return handler(message)

    def onDeliver(self, message):
        type, body, kind = message.type, message.body, message.kind
        ts, replayable, sender = message.ts, message.replayable, message.sender
        intercept = self.intercepts.get(type)
        delivered = False
        away = []
        for cid in message.to:
            user = self.users.get(cid)
            if user is None:
                if self.movedAway.get(cid, 0.0) > self.now():
                    away.append(cid)
                continue
            if sender is not None and (
                sender in user.blocks or user.status == "invisible"
            ):
                continue
            if intercept is not None:
                intercept(user, body)
            self.deliverLocal(user, type, body, kind, ts, replayable)
            delivered = True
        if away and not self.bus.requesting:
            # Posted here for characters that just left: they get it there.
            self.follow(away, self.procId, message)
        return None if away and not delivered else delivered

    def onAnnounce(self, message):
        for user in list(self.users.values()):
            self.deliverLocal(user, message.type, message.body, "announce", message.ts)
        return True


@attrs.define(eq=False, kw_only=True)
class ChatPart:
    """
    What every part of a chat process (presence, channels, parties, the
    other requests) works with: the L{ChatStore} of every chat key, the
    L{Router} that delivers, the L{Roster} of local characters and the
    C{[chat]} section.  Parts are made with keyword arguments.
    """

    store: ChatStore
    router: Router
    roster: Roster
    config: ChatConfig

    @property
    def procId(self):
        """This chat process's id (its router's)."""
        return self.router.procId

    async def remember(self, user):
        """Keep what C{user} takes along if its session moves to another node."""
        await self.store.carry(user.session.sessionId, Carried.of(user).encode(),
                               self.config.party_ttl)
