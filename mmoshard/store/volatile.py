"""The volatile store's entry point: the URL factory and the public names of both stores."""

from urllib.parse import unquote, urlsplit

from mmoshard.store.common import Script
from mmoshard.store.errors import CommandError, StoreNotOpen
from mmoshard.store.memory import MemoryStore, MemoryView
from mmoshard.store.redis import RedisStore

__all__ = [
    "CommandError",
    "MemoryStore",
    "MemoryView",
    "RedisStore",
    "Script",
    "StoreNotOpen",
    "makeVolatileStore",
    "parseRedisURL",
]


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
    (C{kwargs} go to its constructor).  The store is not opened: nothing
    connects until its C{open()}.

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
