"""The volatile store on Redis: RedisStore, a txredisapi pool plus its own pub/sub connection."""

import functools
import math

import txredisapi
from twisted.internet import defer
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
)
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from mmoshard.interfaces import IVolatileStore
from mmoshard.store.common import (
    Script,
    asText,
    encodeValue,
    escapeGlob,
    formatFloat,
    limitArgs,
    scoreBound,
    ttlMillis,
)
from mmoshard.store.errors import CommandError, StoreNotOpen, VolatileUnavailable
from mmoshard.store.patient import PatientEndpoint
from mmoshard.store.redispubsub import RedisSubscriber, decode

__all__ = ["RedisStore"]


def _formatBound(bound):
    value, exclusive = scoreBound(bound)
    return (("(" if exclusive else "") + formatFloat(value)).encode("ascii")


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


class PoolProtocol(txredisapi.HiredisProtocol):
    """
    The command pool's protocol: txredisapi's hiredis protocol, less the
    per-argument and per-reply steps
    that do nothing for us: they cost more than a batched script call's
    other work (measured under callgrind).
    """

    def _build_command(self, *args, **kwargs):
        # The store encodes every argument to bytes itself (see encodeValue); the
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

    protocol = PoolProtocol

    def __init__(self, reactor, *args, initialDelay, maxDelay, **kwargs):
        super().__init__(*args, **kwargs)
        self._reactor = reactor
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay

    def buildProtocol(self, addr):
        protocol = super().buildProtocol(addr)
        protocol.callLater = self._reactor.callLater
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
    pub/sub (a L{RedisSubscriber}, the C{subscriber} attribute).

    Constructing it connects to nothing: L{open} starts both connections,
    and every call before it fails with L{StoreNotOpen}.

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
        self.poolsize = poolsize
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
        self.keepalive = keepalive
        self.address = f"{host}:{port}/{db}"
        self.subscriber = RedisSubscriber(
            reactor, self.address, prefix, password, timeout, keepalive, initialDelay, maxDelay
        )

        # Public counts for metrics (mmoshard/store/requestmetrics.py): the
        # commands sent (each one round trip) and the script calls by name.
        self.requests = 0
        self.scriptCalls = {}
        self._closed = False
        self._inflight = set()
        self._unavailable = False
        # Made by open(); None before.
        self._factory = None
        self._pool = None
        self._connector = None

    def open(self):
        """
        Start the command pool (lazy: its connections are made in the
        background, calls wait for them up to C{timeout}) and the pub/sub
        connection.  A second call does nothing.

        @raise RuntimeError: when the store was already closed.
        """
        if self._closed:
            raise RuntimeError(f"{self!r} is closed; make a new store")
        if self._pool is not None:
            return
        self._factory, self._connector = self._startPool(self.host, self.port, self.db)
        self._pool = self._factory.handler
        self.subscriber.open(self._connector)
        self.log.info("Redis store for {address} opened (prefix {prefix!r})",
                      address=self.address, prefix=self.prefix)

    def _startPool(self, host, port, db):
        """
        Start a lazy command pool to C{host:port}.

        @return: (its factory, the L{PatientEndpoint} it connects through).
        """
        factory = _PoolFactory(
            self.reactor,
            f"{host}:{port}",
            db or None,
            self.poolsize,
            isLazy=True,
            charset=None,
            password=self.password,
            replyTimeout=self.timeout,
            convertNumbers=False,
            initialDelay=self.initialDelay,
            maxDelay=self.maxDelay,
        )
        # Only fails when the pool gives up for good (bad password or db);
        # the calls report that to their callers, this keeps it out of the
        # unhandled-error log.
        factory.deferred.addErrback(self._poolFailed)
        # Every connection retries under this endpoint: ClientService would
        # log each failed attempt of each of them (see PatientEndpoint).
        connector = PatientEndpoint(
            self.reactor, _endpoint(self.reactor, host, port, self.timeout),
            self.initialDelay, self.maxDelay)
        factory.startConnecting(connector)
        return factory, connector

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
        if self._pool is None:
            return defer.fail(self._notOpen(args[0]))
        self.requests += 1
        return self._sendOn(self._pool.execute_command, self._connector, self.address, args)

    def _sendOn(self, execute, connector, address, args):
        """
        Send C{args} with C{execute} (a pool's C{execute_command}) to the
        server at C{address} reached through C{connector}, under the
        store's timeout and error mapping.
        """
        d = execute(*args)
        d.addTimeout(self.timeout, self.reactor)
        self._inflight.add(d)
        return d.addBoth(self._replied, d, connector, address)

    def _notOpen(self, command):
        return StoreNotOpen(f"{self!r}: call open() before sending {command.decode()}")

    def _replied(self, result, d, connector, address):
        self._inflight.discard(d)
        if not isinstance(result, Failure):
            self._noteUp()
            return result
        try:
            result.raiseException()
        except defer.TimeoutError as e:
            why = f"no answer from Redis at {address} within {self.timeout}s"
            lastError = connector.lastError if connector else None
            if lastError:
                # Not connected at all: say why the last attempt failed.
                why += f" (connecting: {lastError})"
            self._noteDown(why)
            raise VolatileUnavailable(why) from e
        except defer.CancelledError as e:
            if not self._closed:
                raise  # our caller cancelled
            raise VolatileUnavailable("the volatile store was closed") from e
        except txredisapi.ConnectionError as e:
            why = f"Redis at {address}: {e}"
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
        args = [b"SET", self._key(key), encodeValue(value)]
        if ttl is not None:
            args += [b"PX", b"%d" % ttlMillis(ttl)]
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
        millis = ttlMillis(ttl) if float(ttl) > 0 else 0
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
        return await self.evalScript(_INCR_TTL, [key], [amount, ttlMillis(ttl)])

    @_deferred
    async def hset(self, key, mapping):
        if not mapping:
            return 0
        args = []
        for field, value in mapping.items():
            args += [asText(field).encode("utf-8", "surrogateescape"), encodeValue(value)]
        return await self._call(b"HSET", self._key(key), *args)

    @_deferred
    async def hget(self, key, field):
        return await self._call(b"HGET", self._key(key), encodeValue(asText(field)))

    @_deferred
    async def hgetall(self, key):
        flat = await self._call(b"HGETALL", self._key(key))
        return {decode(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}

    @_deferred
    async def hdel(self, key, *fields):
        if not fields:
            return 0
        return await self._call(b"HDEL", self._key(key), *[encodeValue(f) for f in fields])

    @_deferred
    async def hincrby(self, key, field, amount=1):
        if not isinstance(amount, int):
            raise TypeError(f"hincrby amount must be an int, not {amount!r}")
        return await self._call(b"HINCRBY", self._key(key), encodeValue(field), b"%d" % amount)

    @_deferred
    async def sadd(self, key, *members):
        if not members:
            return 0
        return await self._call(b"SADD", self._key(key), *[encodeValue(m) for m in members])

    @_deferred
    async def srem(self, key, *members):
        if not members:
            return 0
        return await self._call(b"SREM", self._key(key), *[encodeValue(m) for m in members])

    @_deferred
    async def smembers(self, key):
        return {decode(m) for m in await self._call(b"SMEMBERS", self._key(key))}

    @_deferred
    async def sismember(self, key, member):
        return bool(await self._call(b"SISMEMBER", self._key(key), encodeValue(member)))

    @_deferred
    async def zadd(self, key, mapping):
        if not mapping:
            return 0
        args = []
        for member, score in mapping.items():
            score = float(score)
            if math.isnan(score):
                raise CommandError("ERR value is not a valid float")
            args += [formatFloat(score).encode("ascii"), encodeValue(member)]
        return await self._call(b"ZADD", self._key(key), *args)

    @_deferred
    async def zrem(self, key, *members):
        if not members:
            return 0
        return await self._call(b"ZREM", self._key(key), *[encodeValue(m) for m in members])

    @_deferred
    async def zscore(self, key, member):
        score = await self._call(b"ZSCORE", self._key(key), encodeValue(member))
        return None if score is None else float(score)

    @_deferred
    async def zcard(self, key):
        return await self._call(b"ZCARD", self._key(key))

    @_deferred
    async def zrangebyscore(self, key, min, max, offset=None, count=None, withscores=False):
        args = [b"ZRANGEBYSCORE", self._key(key), _formatBound(min), _formatBound(max)]
        if withscores:
            args.append(b"WITHSCORES")
        limit = limitArgs(offset, count)
        if limit is not None:
            args += [b"LIMIT", b"%d" % limit[0], b"%d" % limit[1]]
        reply = await self._call(*args)
        if withscores:
            return [(decode(reply[i]), float(reply[i + 1])) for i in range(0, len(reply), 2)]
        return [decode(m) for m in reply]

    @_deferred
    async def keys(self, pattern):
        match = (escapeGlob(self.prefix) + pattern).encode("utf-8")
        found = set()
        cursor = b"0"
        while True:
            cursor, batch = await self._call(b"SCAN", cursor, b"MATCH", match, b"COUNT", b"500")
            found.update(decode(k)[len(self.prefix) :] for k in batch)
            if cursor == b"0":
                return sorted(found)

    @_deferred
    async def publish(self, channel, message):
        return await self._call(b"PUBLISH", self._key(channel), encodeValue(message))

    def groupBySlot(self, keys):
        # One Redis: any keys go together.
        keys = list(keys)
        return [keys] if keys else []

    def evalScript(self, script, keys, args):
        # Not a coroutine: this carries the auth role's batched refreshes.
        self.scriptCalls[script.name] = self.scriptCalls.get(script.name, 0) + 1
        try:
            tail = [b"%d" % len(keys), *[self._key(k) for k in keys],
                    *[encodeValue(a) for a in args]]
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
        if self._pool is None:
            raise self._notOpen(b"SUBSCRIBE")
        return await self.subscriber.subscribe(channel, callback)

    def dedicated(self, poolsize=1):
        """A new store on this one's Redis, prefix and timeouts, with C{poolsize} connections of its own (L{IVolatileStore.dedicated})."""
        return RedisStore(self.reactor, self.host, self.port, self.db, self.password, self.prefix,
                          timeout=self.timeout, poolsize=poolsize,
                          initialDelay=self.initialDelay, maxDelay=self.maxDelay,
                          keepalive=self.keepalive)

    # -- closing

    @_deferred
    async def close(self):
        if self._closed:
            return
        self._closed = True
        for d in list(self._inflight):
            d.cancel()
        await self.subscriber.close()
        if self._factory is None:
            return  # never opened
        await self._factory.disconnect()
        # txredisapi hands new connections to the pool one reactor turn
        # late; let that turn pass so nothing is left scheduled.
        d = Deferred()
        self.reactor.callLater(0, d.callback, None)
        await d
