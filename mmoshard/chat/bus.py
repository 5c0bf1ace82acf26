"""Cross-process delivery: one pub/sub inbox per chat process, addressed through presence."""

import secrets

import msgpack
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger


def newProcId(nodeId):
    """A chat process id: the node id plus a per-start suffix, so a restart never inherits stale routes."""
    return f"{nodeId}.{secrets.token_hex(3)}"


class Bus:
    """
    Envelopes between chat processes.  Each process subscribes to its own
    inbox channel only; a sender finds the recipient's process in its
    presence entry (or a channel's per-process member counts) and publishes
    there, so the traffic a process receives is only the traffic for its own
    players.  An envelope for this process is handled at once, without the
    store.

    Envelopes are msgpack maps with a kind C{k}:
      - C{d}: deliver C{t}/C{b} to local characters C{to}
      - C{c}: deliver to this process's members of channel C{ch}
      - C{all}: deliver to every local character (announcements)
      - C{ctl}: a control operation for the chat service
      - C{ack}: the answer to an envelope sent with L{request}

    Envelopes for one process queued in the same reactor turn are published
    together as one msgpack list.
    """

    log = Logger()

    def __init__(self, chatStore, procId, clock, metrics, handler, ackTimeout):
        self.store = chatStore
        self.volatile = chatStore.volatile
        self.procId = procId
        self.clock = clock
        self.metrics = metrics
        self.handler = handler  # callable(envelope) -> bool (delivered)
        self.ackTimeout = ackTimeout
        self.subscription = None
        self._pending = {}
        self._next = 0
        self._outbox = {}
        self._flushCall = None

    async def start(self):
        self.subscription = await self.volatile.subscribe(
            self.store.inbox(self.procId), self._received
        )

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

    def send(self, proc, envelope):
        """
        Deliver C{envelope} to process C{proc}.

        @return: a Deferred firing with the number of receivers (0: the
            process is gone).
        """
        if proc == self.procId:
            self.handler(envelope)
            return succeed(1)
        d = Deferred()
        self._queue(proc, envelope, d, None)
        return d

    def post(self, proc, envelope, onGone=None):
        """
        Deliver C{envelope} to process C{proc} without waiting; C{onGone()}
        is called if nobody was listening on that process's inbox.
        """
        if proc == self.procId:
            self.handler(envelope)
            return
        self._queue(proc, envelope, None, onGone)

    def _queue(self, proc, envelope, waiter, onGone):
        # Envelopes for one process within one reactor turn travel in one
        # publish: under load that is far fewer store round trips.
        batch = self._outbox.get(proc)
        if batch is None:
            batch = self._outbox[proc] = ([], [], [])
            if self._flushCall is None:
                self._flushCall = self.clock.callLater(0, self._flush)
        batch[0].append(envelope)
        if waiter is not None:
            batch[1].append(waiter)
        if onGone is not None:
            batch[2].append(onGone)

    def _flush(self):
        self._flushCall = None
        outbox, self._outbox = self._outbox, {}
        for proc, (envelopes, waiters, gone) in outbox.items():
            payload = msgpack.packb(
                envelopes[0] if len(envelopes) == 1 else envelopes, use_bin_type=True
            )
            self.metrics.publishes.inc()
            d = self.volatile.publish(self.store.inbox(proc), payload)
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

    def request(self, proc, envelope):
        """
        Deliver C{envelope} and wait for the receiving process's answer.

        @return: a Deferred firing with True when the receiver delivered it,
            False when it did not or did not answer within the timeout.
        """
        if proc == self.procId:
            return succeed(bool(self.handler(envelope)))
        self._next += 1
        rid = self._next
        envelope["ack"] = [self.procId, rid]
        d = Deferred()
        timer = self.clock.callLater(self.ackTimeout, self._expire, rid)
        self._pending[rid] = (d, timer)

        def published(receivers):
            if not receivers:
                self._resolve(rid, False)
            return receivers

        def failed(failure):
            self._resolve(rid, False)

        self.send(proc, envelope).addCallbacks(published, failed)
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
            envelope = msgpack.unpackb(payload, raw=False, strict_map_key=False)
        except Exception:
            self.log.warn("undecodable chat envelope on {channel}", channel=channel)
            return
        if type(envelope) is list:
            for one in envelope:
                self._handle(one)
        else:
            self._handle(envelope)

    def _handle(self, envelope):
        self.metrics.received.inc()
        if envelope.get("k") == "ack":
            self._resolve(envelope.get("id"), bool(envelope.get("ok")))
            return
        try:
            ok = self.handler(envelope)
        except Exception:
            self.log.failure("chat envelope {kind} failed", kind=envelope.get("k"))
            ok = False
        ack = envelope.get("ack")
        if ack:
            proc, rid = ack
            self.post(proc, {"k": "ack", "id": rid, "ok": bool(ok)})
