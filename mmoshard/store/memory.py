"""The volatile store in process memory: MemoryStore and the MemoryView scripts run on."""

import functools
import math
import re

from twisted.internet.defer import fail, succeed
from twisted.logger import Logger
from zope.interface import implementer

from mmoshard.interfaces import IVolatileStore
from mmoshard.store.errors import CommandError, StoreNotOpen
from mmoshard.store.common import (
    Subscription,
    asText,
    callSubscriber,
    encodeValue,
    escapeGlob,
    limitArgs,
    scoreBound,
    ttlMillis,
)

__all__ = ["MemoryStore", "MemoryView"]


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


def _immediate(method):
    """
    Make a synchronous L{MemoryStore} method return an already-fired
    Deferred, failing with L{StoreNotOpen} before the store's C{open()}.
    """
    name = method.__name__

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if not self._opened:
            return fail(StoreNotOpen(f"{self!r}: call open() before {name}()"))
        try:
            return succeed(method(self, *args, **kwargs))
        except Exception:
            return fail()

    return wrapper


# One type per kind of value, so a lookup can refuse the wrong kind with
# Redis's WRONGTYPE error.
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
        millis = None if ttl is None else ttlMillis(ttl)
        value = encodeValue(value)
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
            self._setDeadline(key, ttlMillis(ttl))
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
        millis = None if ttl is None else ttlMillis(ttl)
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
            field = asText(field)
            new += field not in h
            h[field] = encodeValue(value)
        return new

    def hget(self, key, field):
        h = self._lookup(key, _Hash)
        return None if h is None else h.get(asText(field))

    def hgetall(self, key):
        h = self._lookup(key, _Hash)
        return {} if h is None else dict(h)

    def hdel(self, key, *fields):
        h = self._lookup(key, _Hash)
        if h is None:
            return 0
        removed = sum(h.pop(asText(f), None) is not None for f in fields)
        self._dropIfEmpty(key, h)
        return removed

    def hincrby(self, key, field, amount=1):
        if not isinstance(amount, int):
            raise TypeError(f"hincrby amount must be an int, not {amount!r}")
        h = self._lookup(key, _Hash)
        if h is None:
            h = self._data[key] = _Hash()
        field = asText(field)
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
        s.update(asText(m) for m in members)
        return len(s) - before

    def srem(self, key, *members):
        s = self._lookup(key, _Set)
        if s is None:
            return 0
        before = len(s)
        s.difference_update(asText(m) for m in members)
        removed = before - len(s)
        self._dropIfEmpty(key, s)
        return removed

    def smembers(self, key):
        s = self._lookup(key, _Set)
        return set() if s is None else set(s)

    def sismember(self, key, member):
        s = self._lookup(key, _Set)
        return s is not None and asText(member) in s

    # -- sorted sets

    def zadd(self, key, mapping):
        if not mapping:
            return 0
        scores = {}
        for member, score in mapping.items():
            score = float(score)
            if math.isnan(score):
                raise CommandError("ERR value is not a valid float")
            scores[asText(member)] = score
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
        removed = sum(z.pop(asText(m), None) is not None for m in members)
        self._dropIfEmpty(key, z)
        return removed

    def zscore(self, key, member):
        z = self._lookup(key, _ZSet)
        return None if z is None else z.get(asText(member))

    def zcard(self, key):
        z = self._lookup(key, _ZSet)
        return 0 if z is None else len(z)

    def zrangebyscore(self, key, min, max, offset=None, count=None, withscores=False):
        lo, loExclusive = scoreBound(min)
        hi, hiExclusive = scoreBound(max)
        limit = limitArgs(offset, count)
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
            message = encodeValue(message)
            # Delivered from the clock, never from inside publish, as Redis
            # would: a callback that publishes cannot recurse.
            call = self.clock.callLater(0, self._deliver, subscriptions, message)
            self._deliveries.add(call)
        return len(subscriptions)

    def _deliver(self, subscriptions, message):
        self._deliveries = {c for c in self._deliveries if c.active()}
        for subscription in subscriptions:
            if subscription.active:
                callSubscriber(self.log, subscription, message)

    def _subscribe(self, subscription):
        self._channels.setdefault(subscription.fullChannel, []).append(subscription)

    def _unsubscribe(self, subscription):
        subs = self._channels.get(subscription.fullChannel, [])
        if subscription in subs:
            subs.remove(subscription)
        if not subs:
            self._channels.pop(subscription.fullChannel, None)


@implementer(IVolatileStore)
class MemoryStore:
    """
    L{IVolatileStore} in process memory, for one process (the embedded
    default and tests).  Every Deferred it returns has already fired.
    Nothing may be called before L{open}: every call fails with
    L{StoreNotOpen} until then, as on the other stores.

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
        self._opened = False
        self._closed = False

    def __repr__(self):
        return f"<MemoryStore prefix={self.prefix!r}>"

    def open(self):
        """
        Make the store usable; there is nothing to connect to.

        @raise RuntimeError: when the store was already closed.
        """
        if self._closed:
            raise RuntimeError(f"{self!r} is closed; make a new store")
        self._opened = True

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
        found = self.backend.keys(escapeGlob(self.prefix) + pattern)
        return [k[len(self.prefix) :] for k in found]

    @_immediate
    def publish(self, channel, message):
        return self.backend.publish(self._key(channel), message)

    @_immediate
    def subscribe(self, channel, callback):
        subscription = Subscription(channel, self._key(channel), callback, self._unsubscribe)
        self._subscriptions.add(subscription)
        self.backend._subscribe(subscription)
        return subscription

    def _unsubscribe(self, subscription):
        self._subscriptions.discard(subscription)
        self.backend._unsubscribe(subscription)

    def groupBySlot(self, keys):
        keys = list(keys)
        return [keys] if keys else []

    @_immediate
    def evalScript(self, script, keys, args):
        return script(self.backend, [self._key(k) for k in keys], [encodeValue(a) for a in args])

    def dedicated(self, poolsize=1):
        """This store itself: nothing here waits behind other requests (L{IVolatileStore.dedicated}); not to be closed by the caller."""
        return self

    def close(self):
        # Allowed before open(), as on the other stores: a node that failed
        # to start still closes what it made.
        self._closed = True
        for subscription in list(self._subscriptions):
            subscription.unsubscribe()
        if self._ownsBackend:
            self.backend.close()
        return succeed(None)
