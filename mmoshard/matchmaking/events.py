"""Events to characters wherever their matchmaking session is: local sessions at once, other matchmaking nodes through their pub/sub inbox."""

from operator import attrgetter

import attrs
import msgpack
from twisted.internet.defer import Deferred, DeferredList, fail, succeed
from twisted.logger import Logger

from mmoshard.store.errors import StoreError

# The kind of session binding (ILocator.bind) a matchmaking session records.
KIND = "matchmaking"

# The events a matchmaking node sends players (docs/matchmaking.md "Protocol").
EVENT_TYPES = ("mm.queued", "mm.proposal", "mm.matched", "mm.requeued", "mm.removed")

# Why a ticket left a ready check or the queue (mm.requeued / mm.removed).
REASONS = ("declined", "timeout", "cancelled", "party_changed", "gone", "banned", "no_instance")


def inbox(nodeId):
    """@return: the pub/sub channel of matchmaking node C{nodeId}."""
    return f"mm:inbox:{nodeId}"


@attrs.frozen
class Deliver:
    """Hand event C{type}/C{body} to the receiving node's sessions of characters C{to}."""

    to: tuple  # character ids
    type: str  # mm.proposal, mm.matched, ...
    body: dict


@attrs.frozen
class Settle:
    """Every member of proposal C{match} of C{queue} accepted: its queue's lease holder finishes it now."""

    queue: str
    match: str


# One short kind per class: the first element of a message on the wire.
KINDS = {Deliver: "d", Settle: "settle"}
_CLASSES = {kind: cls for cls, kind in KINDS.items()}
_FIELDS = {cls: attrgetter(*(f.name for f in attrs.fields(cls))) for cls in KINDS}


def encode(messages):
    """@return: the bytes published for C{messages} (instances of the classes above)."""
    return msgpack.packb([[KINDS[type(m)], *_FIELDS[type(m)](m)] for m in messages],
                         use_bin_type=True)


def decode(payload):
    """
    @return: the list of messages in C{payload}, as L{encode} made it.
    @raise ValueError: C{payload} is not such a list.
    """
    try:
        items = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except Exception as e:
        raise ValueError(f"undecodable matchmaking payload: {e}") from None
    if type(items) is not list:
        raise ValueError("a matchmaking payload is an array of messages")
    out = []
    for item in items:
        if type(item) is not list or not item or item[0] not in _CLASSES:
            raise ValueError(f"not a matchmaking message: {item!r:.80}")
        cls = _CLASSES[item[0]]
        try:
            message = cls(*item[1:])
        except TypeError as e:
            raise ValueError(f"malformed matchmaking message {item[0]!r}: {e}") from None
        if cls is Deliver:
            message = Deliver(tuple(message.to), message.type, message.body)
        out.append(message)
    return out


class Courier:
    """
    Delivers mm.* events to characters: to this node's sessions at once,
    to another node's through its inbox (L{inbox}), found with
    L{mmoshard.interfaces.ILocator} (the node of the character's
    C{matchmaking} binding).  Messages for one node queued in one reactor
    turn travel in one publish.  Without a locator only this node's
    sessions are reached.

    @ivar handlers: message class -> callable(message), for what other
        nodes send this one (L{Deliver} is handled here).
    """

    log = Logger()

    def __init__(self, volatile, nodeId, clock, locator, localUser, metrics):
        """
        @param localUser: callable(character id) -> the character's
            L{mmoshard.matchmaking.service.MMUser} on this node (it said
            mm.hello here), or None.
        @param metrics: the L{MatchmakingMetrics}.
        """
        self.volatile = volatile
        self.nodeId = nodeId
        self.clock = clock
        self.locator = locator
        self.localUser = localUser
        self.metrics = metrics
        self.handlers = {Deliver: self.onDeliver}
        self.subscription = None
        self._outbox = {}  # node -> [message]
        self._eventCounts = {}  # event type -> its mmoshard_mm_events_total child
        self._flushCall = None

    async def start(self):
        self.subscription = await self.volatile.subscribe(inbox(self.nodeId), self._received)

    async def stop(self):
        if self._flushCall is not None and self._flushCall.active():
            self._flushCall.cancel()
            self._flush()
        if self.subscription is not None:
            subscription, self.subscription = self.subscription, None
            try:
                await subscription.unsubscribe()
            except StoreError:
                pass

    # -- sending ---------------------------------------------------------------

    def send(self, cids, type, body):
        """
        Send event C{type}/C{body} to characters C{cids} wherever they are.

        @return: a Deferred firing with the number of characters it was
            handed to here or published for, or None when the store did not
            answer for any of them (a location or a publish).  It never
            fails: an outage is logged and the event lost; the players see
            their state with mm.status, and a match's mm.matched is sent
            again (L{mmoshard.matchmaking.loop.MatchLoop.announce}).
        """
        cids = tuple(cids)

        def failed(f):
            self.log.warn("mm event {type} to {character_ids} not sent: {why}", type=type,
                          character_ids=list(cids), why=f.getErrorMessage())
            return None

        localUser = self.localUser
        users = [localUser(cid) for cid in cids]
        if any(user is None for user in users):
            return Deferred.fromCoroutine(self._send(cids, type, body)).addErrback(failed)
        # All on this node (a party's mm.queued, most events): no coroutine.
        try:
            for user in users:
                self._deliverLocal(user, type, body)
        except Exception:
            return fail().addErrback(failed)
        return succeed(len(users))

    async def _send(self, cids, type, body):
        remote = []
        sent = 0
        for cid in cids:
            user = self.localUser(cid)
            if user is not None:
                self._deliverLocal(user, type, body)
                sent += 1
            else:
                remote.append(cid)
        if not remote or self.locator is None:
            return sent
        found = await DeferredList([self.locator.where(cid) for cid in remote],
                                   consumeErrors=True)
        byNode = {}
        unread = []
        for cid, (ok, location) in zip(remote, found):
            if not ok:
                unread.append((cid, location))
                continue
            node = self.nodeOf(location)
            if node is None or node == self.nodeId:
                # Not bound anywhere (or only here, by a session gone meanwhile).
                self.metrics.undelivered.inc()
                continue
            byNode.setdefault(node, []).append(cid)
        posted = [(to, self.post(node, Deliver(tuple(to), type, body)))
                  for node, to in byNode.items()]
        if unread:
            # Where they are is unknown: the event did not go out (None).
            self.metrics.undelivered.inc(len(unread))
            self.log.warn("mm event {type} to {character_ids} not sent: {why}", type=type,
                          character_ids=[cid for cid, _ in unread],
                          why=unread[0][1].getErrorMessage())
        published = True
        for to, d in posted:
            if await d:
                sent += len(to)
            else:
                published = False
        return sent if published and not unread else None

    @staticmethod
    def nodeOf(location):
        """@return: the node of C{location}'s matchmaking session, or None."""
        if location is None:
            return None
        for kind, node, _ in location.sessions:
            if kind == KIND:
                return node
        return None

    def _deliverLocal(self, user, type, body):
        user.deliver(type, body)
        counted = self._eventCounts.get(type)
        if counted is None:
            # labels() is a locked lookup: each type's child is kept.
            counted = self._eventCounts[type] = self.metrics.events.labels(type)
        counted.inc()

    def post(self, node, message):
        """
        Send C{message} to matchmaking node C{node} (this one: handled at once).

        @return: a Deferred firing with whether it was published (never
            failing).  A publish nobody heard counts: that node is dead,
            and its players, reconnecting, learn their state from
            C{mm.hello}.
        """
        if node == self.nodeId:
            self._handle(message)
            return succeed(True)
        entry = self._outbox.get(node)
        if entry is None:
            entry = self._outbox[node] = ([], [])
            if self._flushCall is None:
                self._flushCall = self.clock.callLater(0, self._flush)
        entry[0].append(message)
        published = Deferred()
        entry[1].append(published)
        return published

    def _flush(self):
        self._flushCall = None
        outbox, self._outbox = self._outbox, {}
        for node, (batch, waiters) in outbox.items():
            self.metrics.publishes.inc()
            d = self.volatile.publish(inbox(node), encode(batch))
            d.addCallbacks(self._published, self._publishFailed, callbackArgs=(node, batch),
                           errbackArgs=(node,))
            d.addCallback(self._tell, waiters)

    @staticmethod
    def _tell(published, waiters):
        for waiter in waiters:
            waiter.callback(published)

    def _published(self, receivers, node, batch):
        if not receivers:
            self.log.info("mm inbox of node {node_id} unheard: {count} message(s) lost",
                          node_id=node, count=len(batch))
            self.metrics.undelivered.inc(len(batch))
        return True

    def _publishFailed(self, failure, node):
        self.log.warn("mm publish to node {node_id} failed: {why}", node_id=node,
                      why=failure.getErrorMessage())
        return False

    # -- receiving ---------------------------------------------------------------

    def _received(self, channel, payload):
        try:
            batch = decode(payload)
        except ValueError as e:
            self.log.warn("undecodable mm payload on {channel}: {why}", channel=channel, why=e)
            return
        for message in batch:
            self._handle(message)

    def _handle(self, message):
        handler = self.handlers.get(type(message))
        if handler is None:
            return
        try:
            handler(message)
        except Exception:
            self.log.failure("mm message {kind} failed", kind=KINDS[type(message)])

    def onDeliver(self, message):
        for cid in message.to:
            user = self.localUser(cid)
            if user is not None:
                self._deliverLocal(user, message.type, message.body)
            else:
                self.metrics.undelivered.inc()
