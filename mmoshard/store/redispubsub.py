"""The pub/sub side of the Redis store: one reconnecting connection that keeps every wanted channel subscribed."""

import random

import attrs
import hiredis
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from mmoshard.store.common import Subscription, callSubscriber, encodeValue
from mmoshard.store.errors import VolatileUnavailable

__all__ = ["RedisSubscriber", "decode", "resp"]


def decode(raw):
    """Bytes from Redis (a key, channel or member) as str, any bytes kept."""
    return raw.decode("utf-8", "surrogateescape")


def resp(*parts):
    """One command in RESP, the way redis-cli sends it."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        part = encodeValue(part)
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


class _SubscriberProtocol(Protocol):
    """
    The pub/sub connection: a minimal RESP client that only authenticates,
    (un)subscribes and pings, handing every reply to its L{RedisSubscriber}.
    """

    def __init__(self, subscriber):
        self.subscriber = subscriber
        self.reader = hiredis.Reader()
        self._pingCall = None
        self._pongDeadline = None

    def connectionMade(self):
        try:
            self.transport.setTcpKeepAlive(1)
        except AttributeError:
            pass
        if self.subscriber.password is not None:
            self.send(b"AUTH", self.subscriber.password)
        self.subscriber._connected(self)
        self._schedulePing()

    def send(self, *parts):
        self.transport.write(resp(*parts))

    def dataReceived(self, data):
        self.reader.feed(data)
        try:
            while (reply := self.reader.gets()) is not False:
                self._pongReceived()
                self.subscriber._reply(self, reply)
        except hiredis.ProtocolError as e:
            self.subscriber._problem(f"protocol error: {e}")
            self.transport.abortConnection()

    # A peer that vanished without a FIN would keep the subscriptions
    # silently dead; a periodic PING notices.
    def _schedulePing(self):
        keepalive = self.subscriber.keepalive
        if keepalive:
            self._pingCall = self.subscriber.reactor.callLater(keepalive, self._ping)

    def _ping(self):
        self._pingCall = None
        self.send(b"PING")
        self._pongDeadline = self.subscriber.reactor.callLater(
            self.subscriber.timeout, self._pingTimedOut
        )

    def _pingTimedOut(self):
        self._pongDeadline = None
        self.subscriber._problem("no answer to PING")
        self.transport.abortConnection()

    def _pongReceived(self):
        if self._pongDeadline is not None:
            self._pongDeadline.cancel()
            self._pongDeadline = None
            self._schedulePing()

    def _stopPinging(self):
        for call in (self._pingCall, self._pongDeadline):
            if call is not None and call.active():
                call.cancel()
        self._pingCall = self._pongDeadline = None

    def connectionLost(self, reason):
        self._stopPinging()
        self.subscriber._lost(self, reason)


class _SubscriberFactory(Factory):
    noisy = False

    def __init__(self, subscriber):
        self.subscriber = subscriber

    def buildProtocol(self, addr):
        protocol = _SubscriberProtocol(self.subscriber)
        protocol.factory = self
        return protocol


@attrs.define(eq=False)
class RedisSubscriber:
    """
    The pub/sub connection of a L{mmoshard.store.redis.RedisStore}, which
    documents the behaviour.  It reconnects on its own (C{initialDelay}
    growing to C{maxDelay}) and subscribes again to every channel that has
    a live subscription each time it connects.

    @ivar connection: the connected protocol, or None while there is none.
    """

    log = Logger()

    reactor: object
    address: str  # host:port/db, for messages
    prefix: str
    password: str | None
    timeout: float
    keepalive: float | None
    initialDelay: float
    maxDelay: float
    connection: object = attrs.field(init=False, default=None)
    _service: object = attrs.field(init=False, default=None)
    _closed: bool = attrs.field(init=False, default=False)
    # channel (without prefix) -> live subscriptions
    _wanted: dict = attrs.field(init=False, factory=dict)
    _active: set = attrs.field(init=False, factory=set)
    _pendingAcks: dict = attrs.field(init=False, factory=dict)
    _waiters: dict = attrs.field(init=False, factory=dict)
    _down: bool = attrs.field(init=False, default=False)
    _error: object = attrs.field(init=False, default=None)

    def open(self, endpoint):
        """Start connecting to C{endpoint}, and keep reconnecting."""
        initialDelay = self.initialDelay
        self._service = ClientService(
            endpoint,
            _SubscriberFactory(self),
            retryPolicy=backoffPolicy(
                initialDelay, self.maxDelay, factor=2.0,
                jitter=lambda: random.random() * initialDelay,
            ),
            clock=self.reactor,
        )
        self._service.startService()

    def confirmed(self, channel):
        """Whether Redis has confirmed a subscription to C{channel} on the current connection."""
        return self.connection is not None and channel in self._active

    def _key(self, channel):
        return (self.prefix + channel).encode("utf-8")

    async def subscribe(self, channel, callback):
        """
        Subscribe C{callback} to C{channel}; see
        L{mmoshard.interfaces.IVolatileStore.subscribe} and
        L{mmoshard.store.redis.RedisStore} for what happens without Redis.
        """
        subscription = Subscription(channel, self.prefix + channel, callback, self._unsubscribe)
        self._wanted.setdefault(channel, []).append(subscription)
        if channel in self._active:
            return subscription
        waiter = Deferred()
        self._waiters.setdefault(channel, []).append(waiter)
        self._sendSubscribe([channel])
        waiter.addTimeout(self.timeout, self.reactor)
        try:
            await waiter
        except (defer.TimeoutError, defer.CancelledError) as e:
            waiters = self._waiters.get(channel, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if self._closed:
                subscription.unsubscribe()
                raise VolatileUnavailable("the volatile store was closed") from e
            if isinstance(e, defer.CancelledError):
                # The caller gave up and will never see the subscription.
                subscription.unsubscribe()
                raise
            err = VolatileUnavailable(
                f"Redis at {self.address} did not confirm the subscription to "
                f"{channel!r} within {self.timeout}s; it stays wanted and becomes "
                f"active when Redis is back"
            )
            err.subscription = subscription
            raise err from e
        return subscription

    def _sendSubscribe(self, channels):
        if self.connection is None or not channels:
            return
        for channel in channels:
            self._pendingAcks[channel] = self._pendingAcks.get(channel, 0) + 1
        self.connection.send(b"SUBSCRIBE", *[self._key(c) for c in channels])

    def _unsubscribe(self, subscription):
        subs = self._wanted.get(subscription.channel, [])
        if subscription in subs:
            subs.remove(subscription)
        if subs:
            return
        self._wanted.pop(subscription.channel, None)
        # Inactive from now on, so a new subscribe() sends its own SUBSCRIBE
        # rather than trusting a state the UNSUBSCRIBE is about to end.
        self._active.discard(subscription.channel)
        if self.connection is not None:
            self.connection.send(b"UNSUBSCRIBE", self._key(subscription.channel))

    def _connected(self, protocol):
        self.connection = protocol
        self._active.clear()
        self._pendingAcks.clear()
        if self._down:
            self._down = False
            self.log.info(
                "Redis pub/sub connection to {address} restored; "
                "resubscribing to {count} channels",
                address=self.address,
                count=len(self._wanted),
            )
        self._sendSubscribe(list(self._wanted))

    def _lost(self, protocol, reason):
        if self.connection is not protocol:
            return
        self.connection = None
        self._active.clear()
        self._pendingAcks.clear()
        if not self._closed and not self._down:
            self._down = True
            self.log.warn(
                "Redis pub/sub connection to {address} lost ({why}); reconnecting",
                address=self.address,
                why=reason.getErrorMessage(),
            )

    def _problem(self, why):
        if why != self._error:
            self._error = why
            self.log.warn(
                "Redis pub/sub connection to {address}: {why}", address=self.address, why=why
            )

    def _reply(self, protocol, reply):
        if isinstance(reply, hiredis.ReplyError):
            # AUTH refused, or worse: reconnecting (with backoff) is the only
            # way to get the subscriptions back.
            self._problem(f"Redis refused: {reply}")
            protocol.transport.loseConnection()
            return
        if not isinstance(reply, list) or not reply:
            return  # +OK to AUTH, +PONG outside subscribed mode
        kind = reply[0]
        if kind == b"message" and len(reply) == 3:
            self._deliver(reply[1], reply[2])
        elif kind == b"subscribe":
            self._error = None
            self._acknowledged(decode(reply[1])[len(self.prefix) :])

    def _acknowledged(self, channel):
        pending = self._pendingAcks.get(channel, 0) - 1
        if pending > 0:
            # A later SUBSCRIBE (sent after an UNSUBSCRIBE) is still to come.
            self._pendingAcks[channel] = pending
            return
        self._pendingAcks.pop(channel, None)
        if channel not in self._wanted:
            return
        self._active.add(channel)
        for waiter in self._waiters.pop(channel, []):
            waiter.callback(None)

    def _deliver(self, rawChannel, message):
        channel = decode(rawChannel)[len(self.prefix) :]
        for subscription in list(self._wanted.get(channel, ())):
            if subscription.active:
                callSubscriber(self.log, subscription, message)

    async def close(self):
        """End every subscription and the connection, for good."""
        self._closed = True
        for waiters in list(self._waiters.values()):
            for waiter in list(waiters):
                waiter.cancel()
        self._waiters.clear()
        self._wanted.clear()
        if self._service is not None:
            await self._service.stopService()
