"""The volatile store's entry point: the URL factory and the public names of both stores."""

from urllib.parse import unquote, urlsplit

from mmoshard.store.cluster import ClusterStore, CrossSlot
from mmoshard.store.common import Script
from mmoshard.store.errors import CommandError, StoreNotOpen
from mmoshard.store.memory import MemoryStore, MemoryView
from mmoshard.store.redis import RedisStore

__all__ = [
    "ClusterStore",
    "CommandError",
    "CrossSlot",
    "MemoryStore",
    "MemoryView",
    "RedisStore",
    "Script",
    "StoreNotOpen",
    "makeVolatileStore",
    "parseClusterURL",
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


def parseClusterURL(url):
    """
    Split C{redis-cluster://[:password@]host:port[,host:port...]}: the
    nodes the slot map is first read from (any of the cluster's masters or
    replicas; the first also carries pub/sub).  There is no database
    number: a cluster has only database 0.

    @return: a dict of C{nodes} (a list of (host, port)) and C{password}.
    @raise ValueError: with a message naming the problem.
    """
    scheme, sep, rest = url.partition("://")
    if scheme != "redis-cluster" or not sep:
        raise ValueError(f"not a redis-cluster:// URL: {url!r}")
    credentials, _, rest = rest.rpartition("@")
    password = unquote(credentials.partition(":")[2]) if credentials else None
    hosts, _, path = rest.partition("/")
    if path.strip("/") not in ("", "0"):
        raise ValueError(f"redis-cluster URL {url!r}: a cluster has only database 0")
    nodes = []
    for spec in hosts.split(","):
        host, colon, port = spec.strip().rpartition(":")
        if not colon:
            host, port = port, "6379"
        host = host.strip("[]")
        if not host:
            raise ValueError(f"redis-cluster URL {url!r}: {spec!r} has no host")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"redis-cluster URL {url!r}: {spec!r} has a bad port")
        nodes.append((host, int(port)))
    return {"nodes": nodes, "password": password}


def makeVolatileStore(url, reactor, prefix="", timeout=2.0, **kwargs):
    """
    The store a URL names: C{memory://} for a L{MemoryStore} driven by
    C{reactor}, C{redis://[:password@]host[:port][/db]} for a L{RedisStore}
    (C{kwargs} go to its constructor), C{redis-cluster://[:password@]host:port
    [,host:port...]} for a L{ClusterStore} (same C{kwargs}).  The store is not opened: nothing
    connects until its C{open()}.

    @raise ValueError: for any other URL.
    """
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return MemoryStore(reactor, prefix=prefix)
    if scheme == "redis":
        return RedisStore(reactor, prefix=prefix, timeout=timeout, **parseRedisURL(url), **kwargs)
    if scheme == "redis-cluster":
        return ClusterStore(reactor, prefix=prefix, timeout=timeout, **parseClusterURL(url),
                            **kwargs)
    raise ValueError(
        f"unsupported volatile store URL {url!r}: use memory://, "
        f"redis://[:password@]host:port/db or redis-cluster://host:port[,host:port...]"
    )
