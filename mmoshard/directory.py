"""The directory: each process's node id, roles, endpoints and load, kept alive by a TTL heartbeat."""

import json

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from mmoshard.interfaces import IDirectory
from mmoshard.store.errors import VolatileUnavailable

INDEX_KEY = "dir:index"


def entryKey(nodeId):
    return f"dir:proc:{nodeId}"


@attrs.frozen
class DirectoryEntry:
    """What one live process told the others about itself."""

    node_id: str
    roles: tuple
    endpoints: dict  # "http" | "tcp" | "websocket" -> address clients use
    load: dict  # source name -> number
    started_at: float
    updated_at: float
    info: dict = attrs.field(factory=dict)  # what roles publish: name -> JSON value

    def toJSON(self):
        return {
            "node_id": self.node_id,
            "roles": list(self.roles),
            "endpoints": dict(self.endpoints),
            "load": dict(self.load),
            "info": dict(self.info),
            "started_at": self.started_at,
            "updated_at": self.updated_at,
        }

    @classmethod
    def fromJSON(cls, data):
        return cls(
            node_id=data["node_id"],
            roles=tuple(data["roles"]),
            endpoints=dict(data["endpoints"]),
            load=dict(data["load"]),
            started_at=float(data["started_at"]),
            updated_at=float(data["updated_at"]),
            info=dict(data.get("info", {})),
        )

    @property
    def totalLoad(self):
        return sum(self.load.values())


@implementer(IDirectory)
class Directory:
    """
    Registers this process in the volatile store every C{heartbeat} seconds
    with a C{ttl}; a process that dies drops out when its entry expires.
    """

    log = Logger()

    def __init__(self, volatile, clock, nodeId, roles, heartbeat, ttl):
        self.volatile = volatile
        self.clock = clock
        self.nodeId = nodeId
        self.roles = tuple(roles)
        self.heartbeat = heartbeat
        self.ttl = ttl
        self.endpoints = {}
        self.loadSources = {}
        self.info = {}
        self.infoSources = {}
        self.startedAt = clock.seconds()
        self._loop = None
        self._failing = False

    def addLoadSource(self, name, source):
        self.loadSources[name] = source

    def publish(self, name, value):
        self.info[name] = value

    def addInfoSource(self, name, source):
        self.infoSources[name] = source

    def entry(self):
        load = {}
        for name, source in self.loadSources.items():
            try:
                load[name] = source()
            except Exception:
                self.log.failure("load source {name} failed", name=name)
        info = dict(self.info)
        for name, source in self.infoSources.items():
            try:
                info[name] = source()
            except Exception:
                self.log.failure("info source {name} failed", name=name)
        return DirectoryEntry(
            node_id=self.nodeId,
            roles=self.roles,
            endpoints=dict(self.endpoints),
            load=load,
            started_at=self.startedAt,
            updated_at=self.clock.seconds(),
            info=info,
        )

    async def beat(self):
        """Write this process's entry once; volatile outages are logged, not raised."""
        entry = self.entry()
        try:
            await self.volatile.set(
                entryKey(self.nodeId), json.dumps(entry.toJSON()), ttl=self.ttl
            )
            await self.volatile.zadd(
                INDEX_KEY, {self.nodeId: entry.updated_at + self.ttl}
            )
        except VolatileUnavailable as e:
            if not self._failing:
                self.log.warn(
                    "directory heartbeat of node {node_id} failed: {why}",
                    node_id=self.nodeId,
                    why=e,
                )
            self._failing = True
            return
        if self._failing:
            self.log.info(
                "directory heartbeat of node {node_id} restored",
                node_id=self.nodeId,
            )
        self._failing = False

    def start(self):
        """
        Write the first entry, then keep beating.

        @return: a Deferred firing once the first entry is written (or its
            failure logged).
        """
        self._loop = LoopingCall(lambda: Deferred.fromCoroutine(self.beat()))
        self._loop.clock = self.clock
        # beat() never raises, so the loop only ends when stop() ends it.
        self._loop.start(self.heartbeat, now=False)
        return Deferred.fromCoroutine(self.beat())

    async def stop(self):
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        try:
            await self.volatile.delete(entryKey(self.nodeId))
            await self.volatile.zrem(INDEX_KEY, self.nodeId)
        except VolatileUnavailable:
            pass

    def list(self):
        return Deferred.fromCoroutine(self._list())

    async def _list(self):
        now = self.clock.seconds()
        ids = await self.volatile.zrangebyscore(INDEX_KEY, now, float("inf"))
        stale = await self.volatile.zrangebyscore(INDEX_KEY, float("-inf"), now)
        if stale:
            await self.volatile.zrem(INDEX_KEY, *stale)
        entries = []
        for nodeId in ids:
            raw = await self.volatile.get(entryKey(nodeId))
            if raw is None:
                # The entry's TTL ran out before the index score: it is dead.
                continue
            entries.append(DirectoryEntry.fromJSON(json.loads(raw)))
        entries.sort(key=lambda e: e.node_id)
        return entries

    def endpointsFor(self, role):
        async def find():
            entries = [e for e in await self._list() if role in e.roles]
            entries.sort(key=lambda e: (e.totalLoad, e.node_id))
            return entries

        return Deferred.fromCoroutine(find())
