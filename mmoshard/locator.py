"""Who is where: ILocator over the volatile store, one TTL'd entry per character and node, refreshed in batches."""

import attrs
import msgpack
from twisted.internet.defer import Deferred, DeferredList, DeferredLock, succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from mmoshard.interfaces import ILocator
from mmoshard.logthrottle import LogThrottle
from mmoshard.store.errors import StoreError
from mmoshard.store.slots import everyBatch, slotBatches
from mmoshard.store.volatile import Script

# Characters per script call of a refresh or a withdrawal: one call stays
# short for Redis (a few hundred microseconds) however many characters a
# node holds.
BATCH = 500

# The hash field of a binding of role kind K is SESSION + K; PLACE holds the
# place.  Values are msgpack: [stamp, session id] and [stamp, zone, instance id].
SESSION = "s:"
PLACE = "place"


def indexKey(cid):
    """
    @return: the volatile set of the nodes holding an entry for character
        C{cid}; the character id is the key's hash tag, which its entries
        share (one slot on Redis Cluster).
    """
    return f"loc:{{{int(cid)}}}"


def entryKey(cid, nodeId):
    """@return: the volatile hash of what node C{nodeId} knows of character C{cid}."""
    return f"{indexKey(cid)}|{nodeId}"


@attrs.frozen
class Location:
    """
    Where a character is (docs/matchmaking.md "Who is where"): the
    C{sessions} it speaks through, one (kind, node, session id) per kind of
    role ("chat", "world", "matchmaking"), the newest where several nodes
    know one; and the C{node}, C{zone} and C{instance_id} it plays in (all
    None when it is in no world).  An instance's C{zone} is its template.
    """

    character_id: int
    sessions: tuple = ()
    node: str | None = None
    zone: str | None = None
    instance_id: int | None = None

    def session(self, kind):
        """@return: (node, session id) of the C{kind} session, or None."""
        for k, node, sid in self.sessions:
            if k == kind:
                return node, sid
        return None

    def toJSON(self):
        return {
            "character_id": self.character_id,
            "node": self.node,
            "zone": self.zone,
            "instance_id": self.instance_id,
            "sessions": [{"kind": k, "node": n, "session_id": s} for k, n, s in self.sessions],
        }


# --- scripts ---------------------------------------------------------------------------

# Replace this node's entry of one character: KEYS[1] the index, KEYS[2] the
# entry; ARGV[1] the node, ARGV[2] the TTL (ms), then field/value pairs
# (none: the entry goes, and the node leaves the index).
PUT_LUA = """
redis.call('DEL', KEYS[2])
local ms = tonumber(ARGV[2])
if #ARGV > 2 then
  local kv = {}
  for i = 3, #ARGV do kv[#kv + 1] = ARGV[i] end
  redis.call('HSET', KEYS[2], unpack(kv))
  redis.call('PEXPIRE', KEYS[2], ms)
  redis.call('SADD', KEYS[1], ARGV[1])
  if redis.call('PTTL', KEYS[1]) < ms then redis.call('PEXPIRE', KEYS[1], ms) end
  return 1
end
redis.call('SREM', KEYS[1], ARGV[1])
return 0
"""


def _put(view, keys, args):
    view.delete(keys[1])
    ttl = int(args[1]) / 1000
    if len(args) > 2:
        pairs = args[2:]
        view.hset(keys[1], {pairs[i].decode(): pairs[i + 1] for i in range(0, len(pairs), 2)})
        view.expire(keys[1], ttl)
        view.sadd(keys[0], args[0].decode())
        left = view.ttl(keys[0])
        if left is not None and left < ttl:
            view.expire(keys[0], ttl)
        return 1
    view.srem(keys[0], args[0].decode())
    return 0


PUT = Script(name="locator_put", lua=PUT_LUA, python=_put)

# Keep this node's entries alive: KEYS are (index, entry) pairs, ARGV[1] the
# node, ARGV[2] the TTL (ms).  @return: the 1-based pair numbers whose entry
# is gone (the store lost it, or it ran out while this node stalled).
REFRESH_LUA = """
local ms = tonumber(ARGV[2])
local gone = {}
for i = 1, #KEYS, 2 do
  if redis.call('PEXPIRE', KEYS[i + 1], ms) == 1 then
    redis.call('SADD', KEYS[i], ARGV[1])
    if redis.call('PTTL', KEYS[i]) < ms then redis.call('PEXPIRE', KEYS[i], ms) end
  else
    gone[#gone + 1] = (i + 1) / 2
  end
end
return gone
"""


def _refresh(view, keys, args):
    ttl = int(args[1]) / 1000
    node = args[0].decode()
    gone = []
    for i in range(0, len(keys), 2):
        if view.expire(keys[i + 1], ttl):
            view.sadd(keys[i], node)
            left = view.ttl(keys[i])
            if left is not None and left < ttl:
                view.expire(keys[i], ttl)
        else:
            gone.append(i // 2 + 1)
    return gone


REFRESH = Script(name="locator_refresh", lua=REFRESH_LUA, python=_refresh)

# Remove this node's entries (a stopping node): KEYS (index, entry) pairs, ARGV[1] the node.
WITHDRAW_LUA = """
for i = 1, #KEYS, 2 do
  redis.call('DEL', KEYS[i + 1])
  redis.call('SREM', KEYS[i], ARGV[1])
end
return #KEYS / 2
"""


def _withdraw(view, keys, args):
    node = args[0].decode()
    for i in range(0, len(keys), 2):
        view.delete(keys[i + 1])
        view.srem(keys[i], node)
    return len(keys) // 2


WITHDRAW = Script(name="locator_withdraw", lua=WITHDRAW_LUA, python=_withdraw)

# Every live entry of one character: KEYS[1] its index.  @return: node,
# [field, value, ...] for each node whose entry lives; a node whose entry
# ran out (it died) leaves the index here.
WHERE_LUA = """
local out = {}
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local h = redis.call('HGETALL', KEYS[1] .. '|' .. node)
  if #h == 0 then
    redis.call('SREM', KEYS[1], node)
  else
    out[#out + 1] = node
    out[#out + 1] = h
  end
end
return out
"""


def _where(view, keys, args):
    out = []
    for node in sorted(view.smembers(keys[0])):
        h = view.hgetall(f"{keys[0]}|{node}")
        if not h:
            view.srem(keys[0], node)
            continue
        flat = []
        for field, value in h.items():
            flat += [field, value]
        out += [node, flat]
    return out


WHERE = Script(name="locator_where", lua=WHERE_LUA, python=_where)


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else value


def locationOf(characterId, reply):
    """
    @param reply: what L{WHERE} answered.
    @return: the L{Location} the live entries of C{reply} make, or None when there are none.
    """
    sessions = {}  # kind -> (stamp, node, session id)
    place = None  # (stamp, node, zone, instance id)
    for i in range(0, len(reply or ()), 2):
        node = _text(reply[i])
        flat = reply[i + 1]
        for j in range(0, len(flat), 2):
            field = _text(flat[j])
            try:
                value = msgpack.unpackb(flat[j + 1], raw=False)
            except Exception:
                continue
            if field == PLACE and len(value) == 3:
                candidate = (value[0], node, value[1], value[2])
                if place is None or candidate[:2] > place[:2]:
                    place = candidate
            elif field.startswith(SESSION) and len(value) == 2:
                kind = field[len(SESSION):]
                candidate = (value[0], node, value[1])
                if kind not in sessions or candidate[:2] > sessions[kind][:2]:
                    sessions[kind] = candidate
    if not sessions and place is None:
        return None
    return Location(
        character_id=int(characterId),
        sessions=tuple((k, n, s) for k, (_, n, s) in sorted(sessions.items())),
        node=place[1] if place else None,
        zone=place[2] if place else None,
        instance_id=place[3] if place else None,
    )


# --- the provider ----------------------------------------------------------------------


@attrs.define(eq=False)
class _Known:
    """What this node knows of one character: kind -> (session id, stamp), and its place."""

    sessions: dict = attrs.field(factory=dict)
    place: tuple | None = None  # (zone, instance id, stamp)

    def fields(self):
        """@return: the entry's field/value pairs, flat, as L{PUT} takes them."""
        out = []
        for kind, (sid, stamp) in sorted(self.sessions.items()):
            out += [SESSION + kind, msgpack.packb([stamp, sid], use_bin_type=True)]
        if self.place is not None:
            zone, instanceId, stamp = self.place
            out += [PLACE, msgpack.packb([stamp, zone, instanceId], use_bin_type=True)]
        return out


@implementer(ILocator)
class StoreLocator:
    """
    L{ILocator} in the volatile store, provided by the core of every node.

    Each node writes only its own entry of a character (L{entryKey}: a hash
    of its bindings and place, with a TTL) and adds itself to the
    character's index (L{indexKey}); L{where} reads every live node's entry
    in one script and keeps the newest binding of each kind and the newest
    place.  This node keeps what it knows in memory and writes it whole (one
    L{PUT} per change, one change of a character at a time, so they land in
    order); every C{refresh} seconds one L{REFRESH} script per L{BATCH}
    characters extends the TTLs, and an entry the store lost, or a write
    that failed, is written again.  A node that dies stops refreshing: its
    entries are gone within C{ttl} seconds.

    A write that fails (the store is down) is logged and retried by the
    next refresh: L{bind} and friends never fail for it.
    """

    log = Logger()

    def __init__(self, volatile, clock, nodeId, ttl, refresh=None):
        """
        @param ttl: seconds an entry outlives this node's last refresh.
        @param refresh: seconds between refreshes (default a third of C{ttl}).
        """
        self.volatile = volatile
        self.clock = clock
        self.nodeId = nodeId
        self.ttl = float(ttl)
        self.refreshEvery = float(refresh) if refresh else self.ttl / 3.0
        self.known = {}  # character id -> _Known
        self._locks = {}  # character id -> DeferredLock of its writes
        self._versions = {}  # character id -> changes made (written in order)
        self._written = {}  # character id -> the version last written
        self._dirty = set()  # characters whose last write failed
        self._writes = set()  # writes in flight (stop waits for them)
        self._loop = None
        self._lastStamp = 0.0
        self._throttle = LogThrottle(clock.seconds)

    # --- ILocator --------------------------------------------------------------------

    def bind(self, characterId, kind, sessionId):
        known = self.known.setdefault(int(characterId), _Known())
        known.sessions[kind] = (sessionId, self._stamp())
        return self._changed(int(characterId))

    def unbind(self, characterId, kind, sessionId):
        cid = int(characterId)
        known = self.known.get(cid)
        if known is None or known.sessions.get(kind, (None,))[0] != sessionId:
            return succeed(None)
        del known.sessions[kind]
        return self._changed(cid)

    def place(self, characterId, zone, instanceId=None):
        known = self.known.setdefault(int(characterId), _Known())
        known.place = (zone, None if instanceId is None else int(instanceId), self._stamp())
        return self._changed(int(characterId))

    def unplace(self, characterId):
        cid = int(characterId)
        known = self.known.get(cid)
        if known is None or known.place is None:
            return succeed(None)
        known.place = None
        return self._changed(cid)

    def where(self, characterId):
        return Deferred.fromCoroutine(self._where(int(characterId)))

    async def _where(self, cid):
        reply = await self.volatile.evalScript(WHERE, [indexKey(cid)], [])
        return locationOf(cid, reply)

    # --- writing -----------------------------------------------------------------------

    def _stamp(self):
        # Strictly increasing on this node, so its own changes order even
        # when the clock stands still or steps back.
        stamp = max(self.clock.seconds(), self._lastStamp + 1e-6)
        self._lastStamp = stamp
        return round(stamp, 6)

    def _changed(self, cid):
        self._versions[cid] = self._versions.get(cid, 0) + 1
        d = Deferred.fromCoroutine(self._write(cid))
        self._writes.add(d)
        d.addBoth(self._done, d)
        return d

    def _done(self, result, d):
        self._writes.discard(d)
        return result

    async def _write(self, cid):
        """Write what this node knows of C{cid} now, after its writes in flight; failures are logged."""
        lock = self._locks.get(cid)
        if lock is None:
            lock = self._locks[cid] = DeferredLock()
        await lock.acquire()
        try:
            version = self._versions.get(cid, 0)
            if self._written.get(cid, -1) >= version:
                return None  # a later call wrote this change already
            known = self.known.get(cid)
            fields = known.fields() if known is not None else []
            try:
                await self.volatile.evalScript(
                    PUT, [indexKey(cid), entryKey(cid, self.nodeId)],
                    [self.nodeId, int(self.ttl * 1000), *fields])
            except StoreError as e:
                self._dirty.add(cid)
                if self._throttle.allow("locator write", self.nodeId):
                    self.log.warn("locator entry of character {character_id} on node {node_id} "
                                  "not written (retried at the next refresh): {why}",
                                  character_id=cid, node_id=self.nodeId, why=e)
                return None
            self._dirty.discard(cid)
            self._written[cid] = version
            if (known is not None and self.known.get(cid) is known and not known.sessions
                    and known.place is None):
                # Nothing left here (and nothing new meanwhile): forget the character.
                del self.known[cid]
        finally:
            lock.release()
            if not lock.locked and not lock.waiting:
                self._locks.pop(cid, None)
                if cid not in self.known:
                    self._versions.pop(cid, None)
                    self._written.pop(cid, None)
        return None

    # --- refreshing --------------------------------------------------------------------

    def start(self):
        """Refresh every C{refreshEvery} seconds from now on."""
        self._loop = LoopingCall(self._tick)
        self._loop.clock = self.clock
        self._loop.start(self.refreshEvery, now=False)

    def _tick(self):
        d = Deferred.fromCoroutine(self.refresh())
        # A bug must not end the loop: the entries would run out everywhere.
        d.addErrback(lambda f: self.log.failure("locator refresh of node {node_id} failed", f,
                                                node_id=self.nodeId))
        return d

    async def refresh(self):
        """
        Extend the TTL of every entry of this node, one script per L{BATCH}
        characters; write again those the store lost and those whose last
        write failed.  Store failures are logged, never raised.
        """
        cids = [cid for cid, known in self.known.items() if known.sessions or known.place]
        gone = set()
        # One batch per hash slot on a Redis Cluster (index and entry share the
        # character's tag), all sent at once.
        batches = slotBatches(self.volatile, cids, indexKey, BATCH)
        try:
            replies = await everyBatch(batches, lambda batch: self.volatile.evalScript(
                REFRESH, self._keys(batch), [self.nodeId, int(self.ttl * 1000)]))
        except StoreError as e:
            if self._throttle.allow("locator refresh", self.nodeId):
                self.log.warn("locator entries of node {node_id} not refreshed: {why}",
                              node_id=self.nodeId, why=e)
            return
        for batch, missing in zip(batches, replies):
            gone.update(batch[int(i) - 1] for i in missing or ())
        again = (gone | self._dirty) & set(self.known)
        if gone:
            self.log.info("locator entries of {count} characters on node {node_id} were lost "
                          "by the store: written again", count=len(gone), node_id=self.nodeId)
        for cid in sorted(again):
            # Through the versioned write path: in order with new changes.
            self._changed(cid)

    def _keys(self, batch):
        """@return: the index and this node's entry of each character of C{batch}."""
        keys = []
        for cid in batch:
            keys += [indexKey(cid), entryKey(cid, self.nodeId)]
        return keys

    async def stop(self):
        """Stop refreshing and remove this node's entries (the writes in flight land first)."""
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._writes:
            await DeferredList(list(self._writes), consumeErrors=True)
        cids = list(self.known)
        try:
            await everyBatch(slotBatches(self.volatile, cids, indexKey, BATCH),
                             lambda batch: self.volatile.evalScript(
                                 WITHDRAW, self._keys(batch), [self.nodeId]))
        except StoreError as e:
            self.log.warn("locator entries of node {node_id} not removed (they run out in "
                          "{ttl:g}s): {why}", node_id=self.nodeId, ttl=self.ttl, why=e)
        self.known.clear()


__all__ = ["Location", "StoreLocator", "indexKey", "entryKey", "locationOf", "BATCH"]
