"""Cross-process delivery: one pub/sub inbox per chat process, addressed through presence."""

import secrets

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from mmoshard.chat import messages
from mmoshard.chat.messages import Ack, Request


def newProcId(nodeId):
    """A chat process id: the node id plus a per-start suffix, so a restart never inherits stale routes."""
    return f"{nodeId}.{secrets.token_hex(3)}"


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
    """

    log = Logger()

    def __init__(self, chatStore, procId, clock, metrics, handler, ackTimeout):
        """
        @param handler: callable(message) -> bool (delivered), for every
            message but requests and acknowledgements.
        """
        self.store = chatStore
        self.procId = procId
        self.clock = clock
        self.metrics = metrics
        self.handler = handler
        self.ackTimeout = ackTimeout
        self.subscription = None
        self._pending = {}
        self._next = 0
        self._outbox = {}
        self._flushCall = None

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
            False when it did not or did not answer within the timeout.
        """
        if proc == self.procId:
            return succeed(bool(self.handler(message)))
        self._next += 1
        rid = self._next
        d = Deferred()
        timer = self.clock.callLater(self.ackTimeout, self._expire, rid)
        self._pending[rid] = (d, timer)

        def published(receivers):
            if not receivers:
                self._resolve(rid, False)
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
        try:
            ok = self.handler(inner)
        except Exception:
            self.log.failure("chat message {kind} failed", kind=messages.KINDS[type(inner)])
            ok = False
        if cls is Request:
            self.post(message.replyTo, Ack(message.id, bool(ok)))
