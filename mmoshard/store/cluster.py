"""The volatile store on Redis Cluster: each command routed by key slot over per-node pools, MOVED/ASK followed."""

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from mmoshard.store.common import escapeGlob
from mmoshard.store.errors import CommandError, VolatileUnavailable
from mmoshard.store.redis import RedisStore
from mmoshard.store.redispubsub import decode
from mmoshard.store.slots import SLOTS, keySlot

__all__ = ["ClusterStore", "CrossSlot"]

# Redirections followed for one command before giving up: a slot moves
# once, an ASK leads to the importing node; more is a cluster in flux.
_REDIRECTS = 5
_KEYLESS = frozenset([b"PING", b"PUBLISH", b"CLUSTER"])


class CrossSlot(CommandError):
    """A command or script was given keys of several hash slots: Redis Cluster refuses them."""


class _Node:
    """One cluster node's command pool."""

    def __init__(self, address, factory, connector):
        self.address = address
        self.factory = factory
        self.connector = connector
        self.pool = factory.handler

    def asking(self, *args):
        """
        Send C{ASKING} then C{args} on one connection of the pool, as an
        C{ASK} redirection requires (the flag lasts one command).
        """
        d = self.factory.getConnection(peek=True)

        def send(connection):
            connection.execute_command(b"ASKING").addErrback(lambda failure: None)
            return connection.execute_command(*args)

        return d.addCallback(send)


class ClusterStore(RedisStore):
    """
    L{IVolatileStore} on a Redis Cluster, behaving as L{RedisStore} does
    (timeouts, errors, reconnection, pub/sub) with these differences:

      - every command goes to the master owning its key's slot, from a
        slot map read with C{CLUSTER SLOTS} from any C{nodes} entry; a
        C{MOVED} reply updates the map (re-read in the background) and
        sends the command again, an C{ASK} reply sends it once to the
        node named, after C{ASKING}; C{TRYAGAIN} and C{CLUSTERDOWN} are
        retried until the store's timeout;
      - a script's keys, and the keys of one C{delete()}, must share a slot
        (hash tags, L{mmoshard.store.slots}): a script given keys of
        several slots fails with L{CrossSlot} before anything is sent;
        C{delete()} of several slots deletes per slot (not atomically);
      - C{keys()} scans every master;
      - pub/sub and C{publish()} go through the first of C{nodes}: the
        cluster delivers a PUBLISH to every node's subscribers, and
        publishing where every process subscribes keeps C{publish()}'s
        receiver count exact.

    @param nodes: (host, port) pairs, at least one: where the slot map is
        first read, the first one also for pub/sub.
    """

    def __init__(self, reactor, nodes, password=None, prefix="", **kwargs):
        if not nodes:
            raise ValueError("a Redis Cluster store needs at least one node")
        host, port = nodes[0]
        super().__init__(reactor, host, port, 0, password, prefix, **kwargs)
        self.seeds = [(h, int(p)) for h, p in nodes]
        self.address = "redis-cluster://" + ",".join(f"{h}:{p}" for h, p in self.seeds)
        self._nodes = {}
        self._slots = None
        self._refreshing = None  # the Deferreds waiting on the slot-map read under way

    def __repr__(self):
        return f"<ClusterStore {self.address} prefix={self.prefix!r}>"

    def dedicated(self, poolsize=1):
        """A new store on this cluster, prefix and timeouts, with C{poolsize} connections per node of its own (L{IVolatileStore.dedicated})."""
        return ClusterStore(self.reactor, self.seeds, self.password, self.prefix,
                            timeout=self.timeout, poolsize=poolsize,
                            initialDelay=self.initialDelay, maxDelay=self.maxDelay,
                            keepalive=self.keepalive)

    def open(self):
        if self._closed or self._pool is not None:
            return super().open()
        super().open()
        address = f"{self.host}:{self.port}"
        self._nodes[address] = _Node(address, self._factory, self._connector)

    def _node(self, host, port):
        address = f"{host}:{port}"
        node = self._nodes.get(address)
        if node is None:
            factory, connector = self._startPool(host, port, 0)
            node = self._nodes[address] = _Node(address, factory, connector)
            self.log.info("Redis Cluster node {node} joined the store's pools", node=address)
        return node

    # -- the slot map

    async def _slotMap(self):
        if self._slots is None:
            await self._refresh()
        return self._slots

    def _refresh(self):
        """Read the slot map again (one read at a time); @return: a Deferred."""
        d = Deferred()
        if self._refreshing is None:
            self._refreshing = [d]
            Deferred.fromCoroutine(self._readSlots()).addBoth(self._refreshed)
        else:
            self._refreshing.append(d)
        return d

    def _refreshed(self, result):
        # Each waiter gets the outcome; the read's own Deferred ends here, so
        # a failed read is left to the waiters and never unhandled.
        waiting, self._refreshing = self._refreshing, None
        for d in waiting:
            d.callback(result)
        return None

    async def _readSlots(self):
        candidates = [f"{h}:{p}" for h, p in self.seeds] + list(self._nodes)
        problems = []
        for address in dict.fromkeys(candidates):
            host, _, port = address.rpartition(":")
            node = self._node(host, int(port))
            try:
                reply = await self._sendOn(node.pool.execute_command, node.connector,
                                           node.address, (b"CLUSTER", b"SLOTS"))
            except (VolatileUnavailable, CommandError) as e:
                problems.append(f"{address}: {e}")
                continue
            slots = [None] * SLOTS
            for entry in reply:
                start, end, master = int(entry[0]), int(entry[1]), entry[2]
                masterHost = decode(master[0]) or host
                owner = self._node(masterHost, int(master[1]))
                for slot in range(start, end + 1):
                    slots[slot] = owner
            self._slots = slots
            return slots
        raise VolatileUnavailable(
            f"no Redis Cluster node of {self.address} gave its slot map: " + "; ".join(problems))

    # -- routing

    def _slotOf(self, args):
        """The slot C{args} must go to, or None for any node."""
        command = args[0].upper()
        if command in (b"EVALSHA", b"EVAL"):
            keys = args[3 : 3 + int(args[2])]
        elif command in _KEYLESS:
            return None
        else:
            keys = args[1:2]
        slots = {keySlot(k) for k in keys}
        if len(slots) > 1:
            raise CrossSlot(
                "CROSSSLOT keys of several hash slots in one command: "
                + ", ".join(decode(k) for k in keys))
        return slots.pop() if slots else None

    def _send(self, *args):
        if self._closed:
            return defer.fail(VolatileUnavailable("the volatile store is closed"))
        if self._pool is None:
            return defer.fail(self._notOpen(args[0]))
        if args[0] == b"PUBLISH":
            # Where this store's (and every other process's) subscriber is.
            return self._sendOn(self._pool.execute_command, self._connector,
                                f"{self.host}:{self.port}", args)
        try:
            slot = self._slotOf(args)
        except CommandError:
            return defer.fail()
        return Deferred.fromCoroutine(self._route(slot, args))

    async def _route(self, slot, args):
        deadline = self.reactor.seconds() + self.timeout
        asking = None
        for _ in range(_REDIRECTS):
            if asking is not None:
                node, asking = asking, None
                send = node.asking
            else:
                slots = await self._slotMap()
                node = self._nodes[f"{self.host}:{self.port}"] if slot is None else slots[slot]
                if node is None:
                    await self._refresh()
                    node = self._slots[slot]
                    if node is None:
                        raise VolatileUnavailable(f"no Redis Cluster node serves slot {slot}")
                send = node.pool.execute_command
            try:
                return await self._sendOn(send, node.connector, node.address, args)
            except CommandError as e:
                word, *rest = str(e).split(" ")
                if word == "MOVED":
                    host, _, port = rest[1].rpartition(":")
                    host = host or node.address.rpartition(":")[0]
                    self._slots[int(rest[0])] = self._node(host, int(port))
                    self._refresh().addErrback(lambda failure: None)
                elif word == "ASK":
                    host, _, port = rest[1].rpartition(":")
                    asking = self._node(host or node.address.rpartition(":")[0], int(port))
                elif word in ("TRYAGAIN", "CLUSTERDOWN") and self.reactor.seconds() < deadline:
                    await deferLater(self.reactor, 0.05, lambda: None)
                else:
                    raise
            except VolatileUnavailable:
                # A node gone (failover, removed): the map may say who now serves.
                self._refresh().addErrback(lambda failure: None)
                raise
        raise VolatileUnavailable(f"Redis Cluster {self.address}: too many redirections")

    # -- commands that span nodes

    def _check(self, command):
        if self._closed:
            raise VolatileUnavailable("the volatile store is closed")
        if self._pool is None:
            raise self._notOpen(command)

    def groupBySlot(self, keys):
        """Group C{keys} by the hash slot of their prefixed names (L{IVolatileStore.groupBySlot})."""
        groups = {}
        for key in keys:
            groups.setdefault(keySlot(self._key(key)), []).append(key)
        return list(groups.values())

    def delete(self, *keys):
        return Deferred.fromCoroutine(self._delete(keys))

    async def _delete(self, keys):
        self._check(b"DEL")
        bySlot = {}
        for key in keys:
            bySlot.setdefault(keySlot(self._key(key)), []).append(self._key(key))
        deleted = 0
        for group in bySlot.values():
            deleted += await self._send(b"DEL", *group)
        return deleted

    def keys(self, pattern):
        return Deferred.fromCoroutine(self._keys(pattern))

    async def _keys(self, pattern):
        self._check(b"SCAN")
        match = (escapeGlob(self.prefix) + pattern).encode("utf-8")
        masters = {id(n): n for n in await self._slotMap() if n is not None}
        found = set()
        for node in masters.values():
            cursor = b"0"
            while True:
                cursor, batch = await self._sendOn(
                    node.pool.execute_command, node.connector, node.address,
                    (b"SCAN", cursor, b"MATCH", match, b"COUNT", b"500"))
                found.update(decode(k)[len(self.prefix):] for k in batch)
                if cursor == b"0":
                    break
        return sorted(found)

    # -- closing

    def close(self):
        return Deferred.fromCoroutine(self._close())

    async def _close(self):
        if self._closed:
            return
        # The seed node's pool and the subscriber close as a RedisStore's.
        await super().close()
        for node in self._nodes.values():
            if node.factory is not self._factory:
                await node.factory.disconnect()
        d = Deferred()
        self.reactor.callLater(0, d.callback, None)
        await d
