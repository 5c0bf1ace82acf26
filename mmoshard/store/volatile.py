"""The volatile store: IVolatileStore on Redis (txredisapi) or in process memory."""

import functools
import hashlib
import inspect
import math
import random
import re
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

import attrs
import hiredis
import txredisapi
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import defer
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from zope.interface import implementer

from mmoshard.interfaces import ISubscription, IVolatileStore
from mmoshard.store.errors import StoreError, VolatileUnavailable

__all__ = [
    "CommandError",
    "MemoryStore",
    "MemoryView",
    "RedisStore",
    "Script",
    "makeVolatileStore",
    "parseRedisURL",
]


class CommandError(StoreError):
    """
    The backend refused a command: an operation against a key holding the
    wrong kind of value, a value that is not an integer for C{incr}, or a
    script that failed.  The message is the backend's (e.g. C{WRONGTYPE ...}).
    """


@attrs.frozen
class Script:
    """
    A small atomic program for L{IVolatileStore.evalScript}, written twice:
    C{lua} runs on Redis, C{python} on the memory store.  Both must give the
    same result for the same inputs.

    B{Inputs.}  Lua sees C{KEYS} (the keys, store prefix already prepended)
    and C{ARGV}.  C{python(view, keys, args)} gets a L{MemoryView} C{view},
    C{keys} as a list of prefixed C{str} and C{args} as a list of C{bytes}
    exactly as Lua sees C{ARGV}: C{str} UTF-8 encoded, C{int} in decimal,
    C{float} as C{repr} (C{+inf}/C{-inf}); use C{int(args[i])} or
    C{float(args[i])} for numbers.  The view's methods mirror the store's
    public methods (same names, arguments and results, but synchronous, on
    prefixed keys); Lua's C{redis.call('GET', k)} is C{view.get(k)},
    C{PEXPIRE k ms} is C{view.expire(k, ms / 1000)}, C{SET k v PX ms} is
    C{view.set(k, v, ttl=ms / 1000)}, C{PTTL} is C{view.ttl}, C{EXISTS} is
    C{view.exists}.  Inside Lua a
    missing value is C{false}; in Python it is C{None}.

    B{Results}, converted the way Redis converts Lua values:
      - Lua number / Python C{int}: C{int}; a Lua non-integer number and a
        Python C{float} are truncated toward zero (return C{tostring(x)} /
        C{str(x)} to keep the fraction);
      - Lua string / Python C{bytes} or C{str}: C{bytes};
      - Lua C{nil} or C{false} / Python C{None} or C{False}: C{None};
      - Lua C{true} / Python C{True}: C{1};
      - Lua array / Python C{list} or C{tuple}: C{list} of converted items,
        cut at the first C{nil} (Python C{None}); a C{false} item (Python
        C{False}) becomes C{None};
      - C{{ok='x'}} / C{{"ok": "x"}}: C{b"x"};
      - C{redis.error_reply('msg')} / raising L{CommandError}("msg"): the
        call fails with L{CommandError}; any other exception raised by the
        Python function fails it with L{CommandError} too.
    """

    name: str
    lua: str
    python: Callable

    @property
    def sha1(self):
        """The SHA1 Redis caches the Lua source under (for EVALSHA)."""
        return hashlib.sha1(self.lua.encode("utf-8")).hexdigest()

    def __call__(self, view, keys, args):
        """Run the Python side on a L{MemoryView}, converting like Redis."""
        try:
            result = self.python(view, list(keys), list(args))
        except CommandError:
            raise
        except Exception as e:
            raise CommandError(f"script {self.name} failed: {e!r}") from e
        return _luaResult(result)


def _luaResult(value, inList=False):
    if value is None:
        return None
    if value is False:
        return None
    if value is True:
        return 1
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, (list, tuple)):
        out = []
        for item in value:
            if item is None:
                break
            out.append(_luaResult(item, True))
        return out
    if isinstance(value, dict) and not inList:
        if "err" in value:
            raise CommandError(str(value["err"]))
        if "ok" in value:
            return _encode(value["ok"])
    raise CommandError(f"script result of unsupported type {type(value).__name__}")


# Values, scores and script arguments go through the same encoder on both
# stores, so what one stores the other returns byte for byte.
def _formatFloat(value):
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return repr(float(value))


def _encode(value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bool):
        return b"1" if value else b"0"
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, float):
        return _formatFloat(value).encode("ascii")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"cannot store a {type(value).__name__} in the volatile store")


def _text(value):
    """A hash field, set or sorted-set member as str."""
    if isinstance(value, str):
        return value
    return _encode(value).decode("utf-8", "surrogateescape")


def _decode(raw):
    return raw.decode("utf-8", "surrogateescape")


def _millis(ttl):
    """A positive TTL in seconds as the whole milliseconds Redis keeps."""
    ttl = float(ttl)
    if not ttl > 0 or math.isinf(ttl):
        raise ValueError(f"ttl must be a positive number of seconds, not {ttl!r}")
    return max(1, round(ttl * 1000))


def _scoreBound(bound):
    """(score, exclusive) from a float, or a Redis bound string like C{(1.5}."""
    exclusive = False
    if isinstance(bound, bytes):
        bound = bound.decode("ascii")
    if isinstance(bound, str):
        if bound.startswith("("):
            exclusive, bound = True, bound[1:]
    value = float(bound)
    if math.isnan(value):
        raise ValueError("a score bound cannot be NaN")
    return value, exclusive


def _formatBound(bound):
    value, exclusive = _scoreBound(bound)
    return (("(" if exclusive else "") + _formatFloat(value)).encode("ascii")


def _limit(offset, count):
    """(offset, count) for LIMIT, or None; a count < 0 means "all the rest"."""
    if offset is None and count is None:
        return None
    return int(offset or 0), (-1 if count is None else int(count))


def _escapeGlob(text):
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)


def _globRegex(pattern):
    """Compile a Redis glob (C{*}, C{?}, C{[a-z]}, C{[^x]}, C{\\} escapes)."""
    out = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            j = i + 1
            negate = j < n and pattern[j] == "^"
            if negate:
                j += 1
            items = []
            while j < n and pattern[j] != "]":
                if pattern[j] == "\\" and j + 1 < n:
                    j += 1
                    items.append(re.escape(pattern[j]))
                elif j + 2 < n and pattern[j + 1] == "-" and pattern[j + 2] != "]":
                    lo, hi = sorted((pattern[j], pattern[j + 2]))
                    items.append(f"{re.escape(lo)}-{re.escape(hi)}")
                    j += 2
                else:
                    items.append(re.escape(pattern[j]))
                j += 1
            i = j
            if items:
                out.append("[" + ("^" if negate else "") + "".join(items) + "]")
            else:
                out.append("." if negate else "(?!)")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _deferred(method):
    """Make an C{async def} method return a Deferred."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        return Deferred.fromCoroutine(method(*args, **kwargs))

    return wrapper


def _immediate(method):
    """Make a synchronous method return an already-fired Deferred."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return succeed(method(*args, **kwargs))
        except Exception:
            return fail()

    return wrapper


# ---------------------------------------------------------------------------
# Memory


class _Hash(dict):
    kind = "hash"


class _Set(set):
    kind = "set"


class _ZSet(dict):
    kind = "zset"


_WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
_NOTINT = "ERR value is not an integer or out of range"
_INTEGER = re.compile(rb"-?[0-9]+")


def _parseInt(raw):
    if raw is None:
        return 0
    if not _INTEGER.fullmatch(raw):
        raise CommandError(_NOTINT)
    return int(raw)


class MemoryView:
    """
    The memory store's data: every operation of L{IVolatileStore}, run
    synchronously on full (already prefixed) keys and channels, with the same
    arguments and results.  L{MemoryStore} wraps it, and L{Script} functions
    receive it as their C{view}.

    Several L{MemoryStore}s with different prefixes may share one view, as
    processes share one Redis.  Expiry follows C{clock}: a key is gone as
    soon as C{clock.seconds()} reaches its deadline, and a sweep every
    C{sweepInterval} seconds (scheduled only while keys have deadlines)
    frees the memory of keys nobody reads again.
    """

    log = Logger()

    def __init__(self, clock, sweepInterval=10.0):
        self.clock = clock
        self.sweepInterval = sweepInterval
        self._data = {}
        self._expires = {}
        self._channels = {}
        self._sweepCall = None
        self._deliveries = set()
        self._closed = False

    def close(self):
        """Cancel the sweep and pending deliveries; the data stays readable."""
        self._closed = True
        if self._sweepCall is not None and self._sweepCall.active():
            self._sweepCall.cancel()
        self._sweepCall = None
        for call in self._deliveries:
            if call.active():
                call.cancel()
        self._deliveries.clear()

    # -- expiry

    def _remove(self, key):
        self._expires.pop(key, None)
        return self._data.pop(key, None) is not None

    def _lookup(self, key, kind=None):
        deadline = self._expires.get(key)
        if deadline is not None and deadline <= self.clock.seconds():
            self._remove(key)
        value = self._data.get(key)
        if value is not None and kind is not None and type(value) is not kind:
            raise CommandError(_WRONGTYPE)
        return value

    def _setDeadline(self, key, millis):
        self._expires[key] = self.clock.seconds() + millis / 1000.0
        if self._sweepCall is None and not self._closed:
            self._sweepCall = self.clock.callLater(self.sweepInterval, self._sweep)

    def _sweep(self):
        self._sweepCall = None
        now = self.clock.seconds()
        for key in [k for k, t in self._expires.items() if t <= now]:
            self._remove(key)
        if self._expires and not self._closed:
            self._sweepCall = self.clock.callLater(self.sweepInterval, self._sweep)

    def _dropIfEmpty(self, key, value):
        if not value:
            self._remove(key)

    # -- keys and strings

    def ping(self):
        return None

    def get(self, key):
        return self._lookup(key, bytes)

    def set(self, key, value, ttl=None, nx=False):
        millis = None if ttl is None else _millis(ttl)
        value = _encode(value)
        if nx and self._lookup(key) is not None:
            return False
        self._remove(key)
        self._data[key] = value
        if millis is not None:
            self._setDeadline(key, millis)
        return True

    def delete(self, *keys):
        removed = 0
        for key in keys:
            if self._lookup(key) is not None:
                removed += self._remove(key)
        return removed

    def exists(self, *keys):
        return sum(1 for key in keys if self._lookup(key) is not None)

    def expire(self, key, ttl):
        if self._lookup(key) is None:
            return False
        if float(ttl) <= 0:
            # Like Redis: a deadline in the past deletes the key.
            self._remove(key)
        else:
            self._setDeadline(key, _millis(ttl))
        return True

    def ttl(self, key):
        if self._lookup(key) is None:
            return -1.0
        deadline = self._expires.get(key)
        if deadline is None:
            return None
        return deadline - self.clock.seconds()

    def incr(self, key, amount=1, ttl=None):
        if not isinstance(amount, int):
            raise TypeError(f"incr amount must be an int, not {amount!r}")
        millis = None if ttl is None else _millis(ttl)
        value = _parseInt(self._lookup(key, bytes)) + amount
        self._data[key] = b"%d" % value
        if millis is not None and key not in self._expires:
            self._setDeadline(key, millis)
        return value

    def keys(self, pattern):
        regex = _globRegex(pattern)
        return sorted(
            k for k in list(self._data) if self._lookup(k) is not None and regex.fullmatch(k)
        )

    # -- hashes

    def hset(self, key, mapping):
        if not mapping:
            return 0
        h = self._lookup(key, _Hash)
        if h is None:
            h = self._data[key] = _Hash()
        new = 0
        for field, value in mapping.items():
            field = _text(field)
            new += field not in h
            h[field] = _encode(value)
        return new

    def hget(self, key, field):
        h = self._lookup(key, _Hash)
        return None if h is None else h.get(_text(field))

    def hgetall(self, key):
        h = self._lookup(key, _Hash)
        return {} if h is None else dict(h)

    def hdel(self, key, *fields):
        h = self._lookup(key, _Hash)
        if h is None:
            return 0
        removed = sum(h.pop(_text(f), None) is not None for f in fields)
        self._dropIfEmpty(key, h)
        return removed

    def hincrby(self, key, field, amount=1):
        if not isinstance(amount, int):
            raise TypeError(f"hincrby amount must be an int, not {amount!r}")
        h = self._lookup(key, _Hash)
        if h is None:
            h = self._data[key] = _Hash()
        field = _text(field)
        value = _parseInt(h.get(field)) + amount
        h[field] = b"%d" % value
        return value

    # -- sets

    def sadd(self, key, *members):
        if not members:
            return 0
        s = self._lookup(key, _Set)
        if s is None:
            s = self._data[key] = _Set()
        before = len(s)
        s.update(_text(m) for m in members)
        return len(s) - before

    def srem(self, key, *members):
        s = self._lookup(key, _Set)
        if s is None:
            return 0
        before = len(s)
        s.difference_update(_text(m) for m in members)
        removed = before - len(s)
        self._dropIfEmpty(key, s)
        return removed

    def smembers(self, key):
        s = self._lookup(key, _Set)
        return set() if s is None else set(s)

    def sismember(self, key, member):
        s = self._lookup(key, _Set)
        return s is not None and _text(member) in s

    # -- sorted sets

    def zadd(self, key, mapping):
        if not mapping:
            return 0
        scores = {}
        for member, score in mapping.items():
            score = float(score)
            if math.isnan(score):
                raise CommandError("ERR value is not a valid float")
            scores[_text(member)] = score
        z = self._lookup(key, _ZSet)
        if z is None:
            z = self._data[key] = _ZSet()
        new = sum(m not in z for m in scores)
        z.update(scores)
        return new

    def zrem(self, key, *members):
        z = self._lookup(key, _ZSet)
        if z is None:
            return 0
        removed = sum(z.pop(_text(m), None) is not None for m in members)
        self._dropIfEmpty(key, z)
        return removed

    def zscore(self, key, member):
        z = self._lookup(key, _ZSet)
        return None if z is None else z.get(_text(member))

    def zcard(self, key):
        z = self._lookup(key, _ZSet)
        return 0 if z is None else len(z)

    def zrangebyscore(self, key, min, max, offset=None, count=None, withscores=False):
        lo, loExclusive = _scoreBound(min)
        hi, hiExclusive = _scoreBound(max)
        limit = _limit(offset, count)
        z = self._lookup(key, _ZSet)
        if z is None:
            return []

        def inRange(score):
            above = score > lo if loExclusive else score >= lo
            below = score < hi if hiExclusive else score <= hi
            return above and below

        items = sorted((s, m) for m, s in z.items() if inRange(s))
        if limit is not None:
            start, n = limit
            if start < 0:
                # Redis answers an empty list to a negative offset.
                items = []
            else:
                items = items[start:] if n < 0 else items[start : start + n]
        if withscores:
            return [(m, s) for s, m in items]
        return [m for s, m in items]

    # -- pub/sub

    def publish(self, channel, message):
        subscriptions = list(self._channels.get(channel, ()))
        if subscriptions and not self._closed:
            message = _encode(message)
            # Delivered from the clock, never from inside publish, as Redis
            # would: a callback that publishes cannot recurse.
            call = self.clock.callLater(0, self._deliver, subscriptions, message)
            self._deliveries.add(call)
        return len(subscriptions)

    def _deliver(self, subscriptions, message):
        self._deliveries = {c for c in self._deliveries if c.active()}
        for subscription in subscriptions:
            if subscription.active:
                _callSubscriber(self.log, subscription, message)

    def _subscribe(self, subscription):
        self._channels.setdefault(subscription.fullChannel, []).append(subscription)

    def _unsubscribe(self, subscription):
        subs = self._channels.get(subscription.fullChannel, [])
        if subscription in subs:
            subs.remove(subscription)
        if not subs:
            self._channels.pop(subscription.fullChannel, None)


def _callSubscriber(log, subscription, message):
    """
    Run one callback (plain, returning a Deferred, or C{async def}); its
    failure is logged, never the deliverer's problem.
    """
    try:
        result = subscription.callback(subscription.channel, message)
    except Exception:
        log.failure(
            "subscriber callback for channel {channel} failed", channel=subscription.channel
        )
        return
    if inspect.iscoroutine(result):
        result = Deferred.fromCoroutine(result)
    if isinstance(result, Deferred):
        result.addErrback(
            lambda f: log.failure(
                "subscriber callback for channel {channel} failed",
                f,
                channel=subscription.channel,
            )
        )


@implementer(ISubscription)
class _Subscription:
    def __init__(self, owner, channel, fullChannel, callback):
        self.owner = owner
        self.channel = channel
        self.fullChannel = fullChannel
        self.callback = callback
        self.active = True

    def unsubscribe(self):
        if self.active:
            self.active = False
            self.owner._unsubscribe(self)
        return succeed(None)

    def __repr__(self):
        state = "active" if self.active else "ended"
        return f"<Subscription {self.channel!r} {state}>"


@implementer(IVolatileStore)
class MemoryStore:
    """
    L{IVolatileStore} in process memory, for one process (the embedded
    default and tests).  Every Deferred it returns has already fired.

    @param clock: an C{IReactorTime} (a C{task.Clock} in tests) driving
        expiry and pub/sub delivery.
    @param prefix: prepended to every key and channel.
    @param backend: a L{MemoryView} to share with other stores (as
        processes share a Redis); by default a new one, owned and closed
        by this store.
    """

    def __init__(self, clock, prefix="", backend=None, sweepInterval=10.0):
        self.clock = clock
        self.prefix = prefix
        self._ownsBackend = backend is None
        self.backend = MemoryView(clock, sweepInterval) if backend is None else backend
        self._subscriptions = set()

    def __repr__(self):
        return f"<MemoryStore prefix={self.prefix!r}>"

    def _key(self, key):
        return self.prefix + key

    @_immediate
    def ping(self):
        return None

    @_immediate
    def get(self, key):
        return self.backend.get(self._key(key))

    @_immediate
    def set(self, key, value, ttl=None, nx=False):
        return self.backend.set(self._key(key), value, ttl=ttl, nx=nx)

    @_immediate
    def delete(self, *keys):
        return self.backend.delete(*[self._key(k) for k in keys])

    @_immediate
    def expire(self, key, ttl):
        return self.backend.expire(self._key(key), ttl)

    @_immediate
    def ttl(self, key):
        return self.backend.ttl(self._key(key))

    @_immediate
    def incr(self, key, amount=1, ttl=None):
        return self.backend.incr(self._key(key), amount, ttl)

    @_immediate
    def hset(self, key, mapping):
        return self.backend.hset(self._key(key), mapping)

    @_immediate
    def hget(self, key, field):
        return self.backend.hget(self._key(key), field)

    @_immediate
    def hgetall(self, key):
        return self.backend.hgetall(self._key(key))

    @_immediate
    def hdel(self, key, *fields):
        return self.backend.hdel(self._key(key), *fields)

    @_immediate
    def hincrby(self, key, field, amount=1):
        return self.backend.hincrby(self._key(key), field, amount)

    @_immediate
    def sadd(self, key, *members):
        return self.backend.sadd(self._key(key), *members)

    @_immediate
    def srem(self, key, *members):
        return self.backend.srem(self._key(key), *members)

    @_immediate
    def smembers(self, key):
        return self.backend.smembers(self._key(key))

    @_immediate
    def sismember(self, key, member):
        return self.backend.sismember(self._key(key), member)

    @_immediate
    def zadd(self, key, mapping):
        return self.backend.zadd(self._key(key), mapping)

    @_immediate
    def zrem(self, key, *members):
        return self.backend.zrem(self._key(key), *members)

    @_immediate
    def zscore(self, key, member):
        return self.backend.zscore(self._key(key), member)

    @_immediate
    def zcard(self, key):
        return self.backend.zcard(self._key(key))

    @_immediate
    def zrangebyscore(self, key, min, max, offset=None, count=None, withscores=False):
        return self.backend.zrangebyscore(
            self._key(key), min, max, offset=offset, count=count, withscores=withscores
        )

    @_immediate
    def keys(self, pattern):
        found = self.backend.keys(_escapeGlob(self.prefix) + pattern)
        return [k[len(self.prefix) :] for k in found]

    @_immediate
    def publish(self, channel, message):
        return self.backend.publish(self._key(channel), message)

    @_immediate
    def subscribe(self, channel, callback):
        subscription = _Subscription(self, channel, self._key(channel), callback)
        self._subscriptions.add(subscription)
        self.backend._subscribe(subscription)
        return subscription

    def _unsubscribe(self, subscription):
        self._subscriptions.discard(subscription)
        self.backend._unsubscribe(subscription)

    @_immediate
    def evalScript(self, script, keys, args):
        return script(self.backend, [self._key(k) for k in keys], [_encode(a) for a in args])

    @_immediate
    def close(self):
        for subscription in list(self._subscriptions):
            subscription.unsubscribe()
        if self._ownsBackend:
            self.backend.close()


# ---------------------------------------------------------------------------
# Redis


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


class _PoolFactory(txredisapi.RedisFactory):
    """
    txredisapi's lazy pool factory with the hiredis parser, our backoff and
    our reactor for the protocols' reply timeouts.
    """

    protocol = txredisapi.HiredisProtocol

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
        if self._closed:
            raise VolatileUnavailable("the volatile store is closed")
        d = self._pool.execute_command(*args)
        d.addTimeout(self.timeout, self.reactor)
        self._inflight.add(d)
        try:
            result = await d
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
        finally:
            self._inflight.discard(d)
        self._noteUp()
        return result

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
        return await self._evalScript(_INCR_TTL, [key], [amount, _millis(ttl)])

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

    @_deferred
    async def evalScript(self, script, keys, args):
        return await self._evalScript(script, keys, args)

    async def _evalScript(self, script, keys, args):
        tail = [b"%d" % len(keys)] + [self._key(k) for k in keys] + [_encode(a) for a in args]
        try:
            return await self._call(b"EVALSHA", script.sha1.encode("ascii"), *tail)
        except CommandError as e:
            if not str(e).startswith("NOSCRIPT"):
                raise
        # EVAL also caches the script, so the next EVALSHA finds it.
        return await self._call(b"EVAL", script.lua.encode("utf-8"), *tail)

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


# ---------------------------------------------------------------------------


def parseRedisURL(url):
    """
    Split C{redis://[:password@]host[:port][/db]}.

    @return: a dict of C{host}, C{port}, C{db}, C{password}.
    @raise ValueError: with a message naming the problem.
    """
    parts = urlsplit(url)
    if parts.scheme != "redis":
        raise ValueError(f"not a redis:// URL: {url!r}")
    if not parts.hostname:
        raise ValueError(f"redis URL {url!r} has no host: use redis://[:password@]host:port/db")
    try:
        port = parts.port or 6379
    except ValueError as e:
        raise ValueError(f"redis URL {url!r} has a bad port: {e}") from None
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise ValueError(f"redis URL {url!r}: the database must be a number, not {db!r}")
    password = unquote(parts.password) if parts.password else None
    return {"host": parts.hostname, "port": port, "db": int(db or 0), "password": password}


def makeVolatileStore(url, reactor, prefix="", timeout=2.0, **kwargs):
    """
    The store a URL names: C{memory://} for a L{MemoryStore} driven by
    C{reactor}, C{redis://[:password@]host[:port][/db]} for a L{RedisStore}
    (C{kwargs} go to its constructor).

    @raise ValueError: for any other URL.
    """
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return MemoryStore(reactor, prefix=prefix)
    if scheme == "redis":
        return RedisStore(reactor, prefix=prefix, timeout=timeout, **parseRedisURL(url), **kwargs)
    raise ValueError(
        f"unsupported volatile store URL {url!r}: use memory:// or "
        f"redis://[:password@]host:port/db"
    )
