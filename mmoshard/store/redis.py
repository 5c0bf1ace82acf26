"""The volatile store on Redis: RedisStore, a txredisapi pool plus its own pub/sub connection."""

import functools
import math
import random

import hiredis
import txredisapi
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import defer
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from mmoshard.interfaces import IVolatileStore
from mmoshard.store.errors import CommandError, VolatileUnavailable
from mmoshard.store.common import (
    Script,
    _callSubscriber,
    _encode,
    _escapeGlob,
    _formatFloat,
    _limit,
    _millis,
    _scoreBound,
    _Subscription,
    _text,
)

__all__ = ["RedisStore"]


def _decode(raw):
    return raw.decode("utf-8", "surrogateescape")


def _formatBound(bound):
    value, exclusive = _scoreBound(bound)
    return (("(" if exclusive else "") + _formatFloat(value)).encode("ascii")


def _deferred(method):
    """Make an C{async def} method return a Deferred."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        return Deferred.fromCoroutine(method(*args, **kwargs))

    return wrapper


# incr() with a TTL: the increment and the first expiry must be one step, or a
# counter whose PEXPIRE never arrived would live forever.
_INCR_TTL = Script(
    name="incr-ttl",
    lua=(
        "local v = redis.call('INCRBY', KEYS[1], ARGV[1])\n"
        "if redis.call('PTTL', KEYS[1]) == -1 then\n"
        "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
        "end\n"
        "return v\n"
    ),
    python=lambda view, keys, args: view.incr(keys[0], int(args[0]), int(args[1]) / 1000),
)


def _resp(*parts):
    """One command in RESP, the way redis-cli sends it."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        part = _encode(part)
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


class _Protocol(txredisapi.HiredisProtocol):
    """
    txredisapi's hiredis protocol, less the per-argument and per-reply steps
    that do nothing for us: they cost more than a batched script call's
    other work (measured under callgrind).
    """

    def _build_command(self, *args, **kwargs):
        # The store encodes every argument to bytes itself (see _encode); the
        # encoding is RESP as txredisapi writes it.  Anything else (the
        # protocol's own SELECT or AUTH) goes through txredisapi's encoder.
        # Exactly bytes: len() of another buffer (a memoryview of wider
        # items) need not count bytes, and a wrong length would misframe the
        # stream of a shared connection.
        for arg in args:
            if type(arg) is not bytes:
                return super()._build_command(*args, **kwargs)
        return b"*%d\r\n" % len(args) + b"".join(
            [b"$%d\r\n%s\r\n" % (len(arg), arg) for arg in args])

    def tryConvertData(self, data):
        # Without a charset or number conversion (how the store sets the
        # pool up) txredisapi returns hiredis's reply as it is, copying lists.
        if self.charset is None and not self.convertNumbers:
            return data
        return super().tryConvertData(data)


class _PoolFactory(txredisapi.RedisFactory):
    """
    txredisapi's lazy pool factory with the hiredis parser, our backoff and
    our reactor for the protocols' reply timeouts.
    """

    protocol = _Protocol

    def __init__(self, reactor, *args, initialDelay, maxDelay, **kwargs):
        super().__init__(*args, **kwargs)
        self._reactor = reactor
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay

    def buildProtocol(self, addr):
        protocol = super().buildProtocol(addr)
        protocol.callLater = self._reactor.callLater
        return protocol


class _SubscriberProtocol(Protocol):
    """
    The pub/sub connection: a minimal RESP client that only authenticates,
    (un)subscribes and pings, handing every reply to the store.
    """

    def __init__(self, store):
        self.store = store
        self.reader = hiredis.Reader()
        self._pingCall = None
        self._pongDeadline = None

    def connectionMade(self):
        try:
            self.transport.setTcpKeepAlive(1)
        except AttributeError:
            pass
        if self.store.password is not None:
            self.send(b"AUTH", self.store.password)
        self.store._subscriberConnected(self)
        self._schedulePing()

    def send(self, *parts):
        self.transport.write(_resp(*parts))

    def dataReceived(self, data):
        self.reader.feed(data)
        try:
            while (reply := self.reader.gets()) is not False:
                self._pongReceived()
                self.store._subscriberReply(self, reply)
        except hiredis.ProtocolError as e:
            self.store._subscriberProblem(f"protocol error: {e}")
            self.transport.abortConnection()

    # A peer that vanished without a FIN would keep the subscriptions
    # silently dead; a periodic PING notices.
    def _schedulePing(self):
        keepalive = self.store.keepalive
        if keepalive:
            self._pingCall = self.store.reactor.callLater(keepalive, self._ping)

    def _ping(self):
        self._pingCall = None
        self.send(b"PING")
        self._pongDeadline = self.store.reactor.callLater(
            self.store.timeout, self._pingTimedOut
        )

    def _pingTimedOut(self):
        self._pongDeadline = None
        self.store._subscriberProblem("no answer to PING")
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
        self.store._subscriberLost(self, reason)


class _SubscriberFactory(Factory):
    noisy = False

    def __init__(self, store):
        self.store = store

    def buildProtocol(self, addr):
        protocol = _SubscriberProtocol(self.store)
        protocol.factory = self
        return protocol


def _endpoint(reactor, host, port, timeout):
    # IP literals skip the resolver, which would run getaddrinfo in a thread.
    if isIPAddress(host):
        return TCP4ClientEndpoint(reactor, host, port, timeout=timeout)
    if isIPv6Address(host):
        return TCP6ClientEndpoint(reactor, host, port, timeout=timeout)
    return HostnameEndpoint(reactor, host, port, timeout=timeout)


@implementer(IVolatileStore)
class RedisStore:
    """
    L{IVolatileStore} on Redis: a lazy txredisapi pool (hiredis parser,
    C{poolsize} connections) for commands and a separate connection for
    pub/sub.

    Every call fails with L{VolatileUnavailable} after C{timeout} seconds
    at most when Redis does not answer, including while the pool waits for
    a connection that does not come.  Both connections reconnect on their
    own, waiting C{initialDelay} seconds at first and growing to
    C{maxDelay}; the pub/sub connection subscribes again to every channel
    that has a live subscription each time it connects.

    C{subscribe()} fires once Redis acknowledges the SUBSCRIBE.  When Redis
    cannot be reached within C{timeout} it fails with L{VolatileUnavailable}
    but the subscription is kept and becomes active as soon as Redis is
    back; the error's C{subscription} attribute holds it so the caller can
    either keep it or C{unsubscribe()} it.

    A command Redis rejects (wrong type, failing script) fails with
    L{CommandError}.

    @param reactor: the reactor (connections, timeouts, retries).
    @param db: the database number; pub/sub channels are shared by all
        databases, which is one more reason for distinct prefixes.
    @param prefix: prepended to every key and channel.
    @param timeout: seconds any call may take, also the connect timeout.
    @param poolsize: connections in the command pool.
    @param initialDelay: seconds before the first reconnection attempt.
    @param maxDelay: the longest wait between reconnection attempts.
    @param keepalive: seconds between PINGs on the pub/sub connection, whose
        answer must come within C{timeout} or the connection is dropped and
        made again; None or 0 to disable.
    """

    log = Logger()

    def __init__(
        self,
        reactor,
        host,
        port,
        db=0,
        password=None,
        prefix="",
        timeout=2.0,
        poolsize=5,
        initialDelay=0.1,
        maxDelay=2.0,
        keepalive=15.0,
    ):
        self.reactor = reactor
        self.host = host
        self.port = port
        self.db = db
        self.password = password
        self.prefix = prefix
        self.timeout = timeout
        self.keepalive = keepalive
        self.address = f"{host}:{port}/{db}"

        self._closed = False
        self._inflight = set()
        self._unavailable = False

        self._factory = _PoolFactory(
            reactor,
            f"{host}:{port}",
            db or None,
            poolsize,
            isLazy=True,
            charset=None,
            password=password,
            replyTimeout=timeout,
            convertNumbers=False,
            initialDelay=initialDelay,
            maxDelay=maxDelay,
        )
        # Only fails when the pool gives up for good (bad password or db);
        # the calls report that to their callers, this keeps it out of the
        # unhandled-error log.
        self._factory.deferred.addErrback(self._poolFailed)
        self._pool = self._factory.handler
        self._factory.startConnecting(_endpoint(reactor, host, port, timeout))

        # channel (without prefix) -> live subscriptions
        self._wanted = {}
        self._active = set()
        self._pendingAcks = {}
        self._waiters = {}
        self._subscriber = None
        self._subscriberDown = False
        self._subscriberError = None
        self._subscriberService = ClientService(
            _endpoint(reactor, host, port, timeout),
            _SubscriberFactory(self),
            retryPolicy=backoffPolicy(
                initialDelay, maxDelay, factor=2.0, jitter=lambda: random.random() * initialDelay
            ),
            clock=reactor,
        )
        self._subscriberService.startService()

    def __repr__(self):
        return f"<RedisStore {self.address} prefix={self.prefix!r}>"

    def _poolFailed(self, failure):
        self.log.warn(
            "Redis pool for {address} gave up: {why}",
            address=self.address,
            why=failure.getErrorMessage(),
        )

    def _key(self, key):
        return (self.prefix + key).encode("utf-8")

    # -- the one way commands go out

    def _noteDown(self, why):
        if not self._unavailable and not self._closed:
            self._unavailable = True
            self.log.warn(
                "Redis at {address} unavailable: {why}", address=self.address, why=why
            )

    def _noteUp(self):
        if self._unavailable:
            self._unavailable = False
            self.log.info("Redis at {address} answering again", address=self.address)

    async def _call(self, *args):
        return await self._send(*args)

    def _send(self, *args):
        """
        Send one command.  @return: a Deferred firing with the reply, or
        failing with L{VolatileUnavailable} or L{CommandError}.
        """
        # Not a coroutine: the auth role's batched refreshes go through here
        # straight from evalScript, and a coroutine's hops cost more than
        # sending (measured under callgrind).
        if self._closed:
            return defer.fail(VolatileUnavailable("the volatile store is closed"))
        d = self._pool.execute_command(*args)
        d.addTimeout(self.timeout, self.reactor)
        self._inflight.add(d)
        return d.addBoth(self._replied, d)

    def _replied(self, result, d):
        self._inflight.discard(d)
        if not isinstance(result, Failure):
            self._noteUp()
            return result
        try:
            result.raiseException()
        except defer.TimeoutError as e:
            why = f"no answer from Redis at {self.address} within {self.timeout}s"
            self._noteDown(why)
            raise VolatileUnavailable(why) from e
        except defer.CancelledError as e:
            if not self._closed:
                raise  # our caller cancelled
            raise VolatileUnavailable("the volatile store was closed") from e
        except txredisapi.ConnectionError as e:
            why = f"Redis at {self.address}: {e}"
            self._noteDown(why)
            raise VolatileUnavailable(why) from e
        except txredisapi.ResponseError as e:
            self._noteUp()
            raise CommandError(str(e)) from e

    # -- IVolatileStore

    @_deferred
    async def ping(self):
        await self._call(b"PING")

    @_deferred
    async def get(self, key):
        return await self._call(b"GET", self._key(key))

    @_deferred
    async def set(self, key, value, ttl=None, nx=False):
        args = [b"SET", self._key(key), _encode(value)]
        if ttl is not None:
            args += [b"PX", b"%d" % _millis(ttl)]
        if nx:
            args.append(b"NX")
        return await self._call(*args) is not None

    @_deferred
    async def delete(self, *keys):
        if not keys:
            return 0
        return await self._call(b"DEL", *[self._key(k) for k in keys])

    @_deferred
    async def expire(self, key, ttl):
        millis = _millis(ttl) if float(ttl) > 0 else 0
        return bool(await self._call(b"PEXPIRE", self._key(key), b"%d" % millis))

    @_deferred
    async def ttl(self, key):
        millis = await self._call(b"PTTL", self._key(key))
        if millis == -2:
            return -1.0
        if millis == -1:
            return None
        return millis / 1000.0

    @_deferred
    async def incr(self, key, amount=1, ttl=None):
        if not isinstance(amount, int):
            raise TypeError(f"incr amount must be an int, not {amount!r}")
        if ttl is None:
            return await self._call(b"INCRBY", self._key(key), b"%d" % amount)
        return await self.evalScript(_INCR_TTL, [key], [amount, _millis(ttl)])

    @_deferred
    async def hset(self, key, mapping):
        if not mapping:
            return 0
        args = []
        for field, value in mapping.items():
            args += [_text(field).encode("utf-8", "surrogateescape"), _encode(value)]
        return await self._call(b"HSET", self._key(key), *args)

    @_deferred
    async def hget(self, key, field):
        return await self._call(b"HGET", self._key(key), _encode(_text(field)))

    @_deferred
    async def hgetall(self, key):
        flat = await self._call(b"HGETALL", self._key(key))
        return {_decode(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}

    @_deferred
    async def hdel(self, key, *fields):
        if not fields:
            return 0
        return await self._call(b"HDEL", self._key(key), *[_encode(f) for f in fields])

    @_deferred
    async def hincrby(self, key, field, amount=1):
        if not isinstance(amount, int):
            raise TypeError(f"hincrby amount must be an int, not {amount!r}")
        return await self._call(b"HINCRBY", self._key(key), _encode(field), b"%d" % amount)

    @_deferred
    async def sadd(self, key, *members):
        if not members:
            return 0
        return await self._call(b"SADD", self._key(key), *[_encode(m) for m in members])

    @_deferred
    async def srem(self, key, *members):
        if not members:
            return 0
        return await self._call(b"SREM", self._key(key), *[_encode(m) for m in members])

    @_deferred
    async def smembers(self, key):
        return {_decode(m) for m in await self._call(b"SMEMBERS", self._key(key))}

    @_deferred
    async def sismember(self, key, member):
        return bool(await self._call(b"SISMEMBER", self._key(key), _encode(member)))

    @_deferred
    async def zadd(self, key, mapping):
        if not mapping:
            return 0
        args = []
        for member, score in mapping.items():
            score = float(score)
            if math.isnan(score):
                raise CommandError("ERR value is not a valid float")
            args += [_formatFloat(score).encode("ascii"), _encode(member)]
        return await self._call(b"ZADD", self._key(key), *args)

    @_deferred
    async def zrem(self, key, *members):
        if not members:
            return 0
        return await self._call(b"ZREM", self._key(key), *[_encode(m) for m in members])

    @_deferred
    async def zscore(self, key, member):
        score = await self._call(b"ZSCORE", self._key(key), _encode(member))
        return None if score is None else float(score)

    @_deferred
    async def zcard(self, key):
        return await self._call(b"ZCARD", self._key(key))

    @_deferred
    async def zrangebyscore(self, key, min, max, offset=None, count=None, withscores=False):
        args = [b"ZRANGEBYSCORE", self._key(key), _formatBound(min), _formatBound(max)]
        if withscores:
            args.append(b"WITHSCORES")
        limit = _limit(offset, count)
        if limit is not None:
            args += [b"LIMIT", b"%d" % limit[0], b"%d" % limit[1]]
        reply = await self._call(*args)
        if withscores:
            return [(_decode(reply[i]), float(reply[i + 1])) for i in range(0, len(reply), 2)]
        return [_decode(m) for m in reply]

    @_deferred
    async def keys(self, pattern):
        match = (_escapeGlob(self.prefix) + pattern).encode("utf-8")
        found = set()
        cursor = b"0"
        while True:
            cursor, batch = await self._call(b"SCAN", cursor, b"MATCH", match, b"COUNT", b"500")
            found.update(_decode(k)[len(self.prefix) :] for k in batch)
            if cursor == b"0":
                return sorted(found)

    @_deferred
    async def publish(self, channel, message):
        return await self._call(b"PUBLISH", self._key(channel), _encode(message))

    def evalScript(self, script, keys, args):
        # Not a coroutine: this carries the auth role's batched refreshes.
        try:
            tail = [b"%d" % len(keys), *[self._key(k) for k in keys],
                    *[_encode(a) for a in args]]
        except Exception:
            # IVolatileStore promises a Deferred, as the memory store gives.
            return defer.fail()
        return self._send(b"EVALSHA", script.sha1.encode("ascii"), *tail).addErrback(
            self._noScript, script, tail)

    def _noScript(self, failure, script, tail):
        failure.trap(CommandError)
        if not str(failure.value).startswith("NOSCRIPT"):
            return failure
        # EVAL also caches the script, so the next EVALSHA finds it.
        return self._send(b"EVAL", script.lua.encode("utf-8"), *tail)

    # -- pub/sub

    @_deferred
    async def subscribe(self, channel, callback):
        if self._closed:
            raise VolatileUnavailable("the volatile store is closed")
        subscription = _Subscription(self, channel, self.prefix + channel, callback)
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
        if self._subscriber is None or not channels:
            return
        for channel in channels:
            self._pendingAcks[channel] = self._pendingAcks.get(channel, 0) + 1
        self._subscriber.send(b"SUBSCRIBE", *[self._key(c) for c in channels])

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
        if self._subscriber is not None:
            self._subscriber.send(b"UNSUBSCRIBE", self._key(subscription.channel))

    def _subscriberConnected(self, protocol):
        self._subscriber = protocol
        self._active.clear()
        self._pendingAcks.clear()
        if self._subscriberDown:
            self._subscriberDown = False
            self.log.info(
                "Redis pub/sub connection to {address} restored; "
                "resubscribing to {count} channels",
                address=self.address,
                count=len(self._wanted),
            )
        self._sendSubscribe(list(self._wanted))

    def _subscriberLost(self, protocol, reason):
        if self._subscriber is not protocol:
            return
        self._subscriber = None
        self._active.clear()
        self._pendingAcks.clear()
        if not self._closed and not self._subscriberDown:
            self._subscriberDown = True
            self.log.warn(
                "Redis pub/sub connection to {address} lost ({why}); reconnecting",
                address=self.address,
                why=reason.getErrorMessage(),
            )

    def _subscriberProblem(self, why):
        if why != self._subscriberError:
            self._subscriberError = why
            self.log.warn(
                "Redis pub/sub connection to {address}: {why}", address=self.address, why=why
            )

    def _subscriberReply(self, protocol, reply):
        if isinstance(reply, hiredis.ReplyError):
            # AUTH refused, or worse: reconnecting (with backoff) is the only
            # way to get the subscriptions back.
            self._subscriberProblem(f"Redis refused: {reply}")
            protocol.transport.loseConnection()
            return
        if not isinstance(reply, list) or not reply:
            return  # +OK to AUTH, +PONG outside subscribed mode
        kind = reply[0]
        if kind == b"message" and len(reply) == 3:
            self._deliver(reply[1], reply[2])
        elif kind == b"subscribe":
            self._subscriberError = None
            self._acknowledged(_decode(reply[1])[len(self.prefix) :])

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
        channel = _decode(rawChannel)[len(self.prefix) :]
        for subscription in list(self._wanted.get(channel, ())):
            if subscription.active:
                _callSubscriber(self.log, subscription, message)

    # -- closing

    def open(self):
        """Start connecting (the store helper's branch does the real work)."""

    @_deferred
    async def close(self):
        if self._closed:
            return
        self._closed = True
        for d in list(self._inflight):
            d.cancel()
        for waiters in list(self._waiters.values()):
            for waiter in list(waiters):
                waiter.cancel()
        self._waiters.clear()
        self._wanted.clear()
        await self._subscriberService.stopService()
        await self._factory.disconnect()
        # txredisapi hands new connections to the pool one reactor turn
        # late; let that turn pass so nothing is left scheduled.
        d = Deferred()
        self.reactor.callLater(0, d.callback, None)
        await d
