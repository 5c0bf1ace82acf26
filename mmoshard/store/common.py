"""What both volatile stores share: Script and its result conventions, value encoding, subscriptions."""

import hashlib
import inspect
import math
import re
from collections.abc import Callable

import attrs
from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from mmoshard.interfaces import ISubscription
from mmoshard.store.errors import CommandError

__all__ = [
    "Script",
    "Subscription",
    "asText",
    "callSubscriber",
    "encodeValue",
    "escapeGlob",
    "formatFloat",
    "limitArgs",
    "scoreBound",
    "ttlMillis",
]


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
    # The SHA1 Redis caches the Lua source under (for EVALSHA), computed
    # once: scripts run on hot paths.
    sha1: str = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self):
        object.__setattr__(self, "sha1", hashlib.sha1(self.lua.encode("utf-8")).hexdigest())

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
            return encodeValue(value["ok"])
    raise CommandError(f"script result of unsupported type {type(value).__name__}")


# Values, scores and script arguments go through the same encoder on both
# stores, so what one stores the other returns byte for byte.
def formatFloat(value):
    """A score or float value as Redis writes it (C{repr}, C{+inf}/C{-inf})."""
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return repr(float(value))


def encodeValue(value):
    """A value, member or script argument as the bytes both stores keep."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bool):
        return b"1" if value else b"0"
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, float):
        return formatFloat(value).encode("ascii")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"cannot store a {type(value).__name__} in the volatile store")


def asText(value):
    """A hash field, set or sorted-set member as str."""
    if isinstance(value, str):
        return value
    return encodeValue(value).decode("utf-8", "surrogateescape")


def ttlMillis(ttl):
    """A positive TTL in seconds as the whole milliseconds Redis keeps."""
    ttl = float(ttl)
    if not ttl > 0 or math.isinf(ttl):
        raise ValueError(f"ttl must be a positive number of seconds, not {ttl!r}")
    return max(1, round(ttl * 1000))


def scoreBound(bound):
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


def limitArgs(offset, count):
    """(offset, count) for LIMIT, or None; a count < 0 means "all the rest"."""
    if offset is None and count is None:
        return None
    return int(offset or 0), (-1 if count is None else int(count))


def escapeGlob(text):
    """C{text} with Redis glob characters escaped, to match it literally."""
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)


# One subscription type and one way of calling callbacks, so a subscriber
# cannot tell which store it is on.
def callSubscriber(log, subscription, message):
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
class Subscription:
    """
    One live subscription, the same on both stores.

    @ivar channel: the channel as the subscriber named it (no prefix).
    @ivar fullChannel: the channel with the store's prefix.
    @ivar callback: C{callback(channel, message)}, run by L{callSubscriber}.
    @ivar active: False once unsubscribed.
    """

    def __init__(self, channel, fullChannel, callback, onEnd):
        """
        @param onEnd: called with this subscription, once, when it is
            unsubscribed: the store forgets it there.
        """
        self.channel = channel
        self.fullChannel = fullChannel
        self.callback = callback
        self.active = True
        self._onEnd = onEnd

    def unsubscribe(self):
        if self.active:
            self.active = False
            self._onEnd(self)
        return succeed(None)

    def __repr__(self):
        state = "active" if self.active else "ended"
        return f"<Subscription {self.channel!r} {state}>"
