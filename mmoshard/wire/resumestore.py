"""Sessions kept in the volatile store so any node of the role can resume them: the record, the bounded replay buffer, node liveness."""

import hashlib

import attrs
import msgpack
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from mmoshard.store.errors import CommandError, StoreError
from mmoshard.store.slots import slotBatches
from mmoshard.store.volatile import Script
from mmoshard.tokens import Claims

# Every node stamps its last-alive time here this often; a crashed node's
# sessions may be resumed elsewhere for [session] resume_grace after its
# last stamp (plus one interval).
ALIVE_INTERVAL = 5.0
NODES_KEY = "session:nodes"
# A live session's record only goes when the session ends; this bounds the
# garbage a crashed node leaves (as the owners hash does).
RECORD_TTL = 86400.0
# Most sessions one replay-buffer write carries.
APPEND_BATCH = 200


def recordKey(sessionId):
    """The hash of a session's record: node, digest, seq, claims, client."""
    return f"session:{{{sessionId}}}:rec"


def bufferKey(sessionId):
    """The hash of a session's replay buffer: seq -> encoded event."""
    return f"session:{{{sessionId}}}:buf"


def digest(secret):
    """The store keeps a resume secret's SHA-256, never the secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _appendOne(view, rec, buf, ttl, node, seq, drops, pairs):
    if view.hget(rec, "node") != node:
        return 0
    if drops:
        view.hdel(buf, *drops)
    if pairs:
        view.hset(buf, dict(zip(pairs[0::2], pairs[1::2])))
    view.hset(rec, {"seq": seq})
    view.expire(rec, int(ttl) / 1000)
    view.expire(buf, int(ttl) / 1000)
    return 1


def _append(view, keys, args):
    ttl, node = args[0], args[1]
    out = []
    at = 2
    for i in range(0, len(keys), 2):
        seq, n = args[at], int(args[at + 1])
        drops = args[at + 2:at + 2 + n]
        at += 2 + n
        m = int(args[at])
        pairs = args[at + 1:at + 1 + 2 * m]
        at += 1 + 2 * m
        out.append(_appendOne(view, keys[i], keys[i + 1], ttl, node, seq, drops, pairs))
    return out


# KEYS: record and buffer of each session, pairwise (a session's two keys
# share its slot: the session id is the hash tag; the caller splits a batch
# per slot).  ARGV: ttl ms, node, then per session: new seq, n, n buffer
# fields to drop, m, m seq/payload pairs.  Writes a session only while its
# record is still this node's (not moved); returns 1 or 0 per session.
# One call carries every session that sent events in a reactor turn.
APPEND = Script(
    name="session_resume_append",
    lua="local ttl, node, at, out = ARGV[1], ARGV[2], 3, {} "
    "for k = 1, #KEYS, 2 do "
    "local seq, n = ARGV[at], tonumber(ARGV[at + 1]) "
    "local ds = at + 2 "
    "at = ds + n "
    "local m = tonumber(ARGV[at]) "
    "local ps = at + 1 "
    "at = ps + 2 * m "
    "if redis.call('HGET', KEYS[k], 'node') == node then "
    "if n > 0 then redis.call('HDEL', KEYS[k + 1], unpack(ARGV, ds, ds + n - 1)) end "
    "if m > 0 then redis.call('HSET', KEYS[k + 1], unpack(ARGV, ps, ps + 2 * m - 1)) end "
    "redis.call('HSET', KEYS[k], 'seq', seq) "
    "redis.call('PEXPIRE', KEYS[k], ttl) "
    "redis.call('PEXPIRE', KEYS[k + 1], ttl) "
    "out[#out + 1] = 1 "
    "else out[#out + 1] = 0 end "
    "end "
    "return out",
    python=_append,
)


def _take(view, keys, args):
    rec, buf = keys
    wanted, node, newDigest, *live = args
    record = view.hgetall(rec)
    if not record or record.get("digest") != wanted:
        return None
    old = record["node"]
    if old != node and old not in live:
        return None
    view.hset(rec, {"node": node, "digest": newDigest})
    out = [old, record.get("seq", b"0"), record["info"]]
    for field, value in view.hgetall(buf).items():
        out.extend((field, value))
    return out


# KEYS: record, buffer (one slot).  ARGV: the digest of the presented
# secret, the taking node, the new digest, then the nodes alive lately (read
# from the nodes' last-alive zset just before, which lies in another slot on
# a Redis Cluster: a crashed node's sessions lapse with their grace).
# Returns nil, or {old node, seq, info, buffer pairs...}.
TAKE = Script(
    name="session_resume_take",
    lua="local r = redis.call('HGETALL', KEYS[1]) "
    "local rec = {} "
    "for i = 1, #r, 2 do rec[r[i]] = r[i + 1] end "
    "if rec['digest'] ~= ARGV[1] then return false end "
    "local old = rec['node'] "
    "if old ~= ARGV[2] then "
    "local alive = false "
    "for i = 4, #ARGV do if ARGV[i] == old then alive = true end end "
    "if not alive then return false end "
    "end "
    "redis.call('HSET', KEYS[1], 'node', ARGV[2], 'digest', ARGV[3]) "
    "local out = {old, rec['seq'] or '0', rec['info']} "
    "local b = redis.call('HGETALL', KEYS[2]) "
    "for i = 1, #b do out[#out + 1] = b[i] end "
    "return out",
    python=_take,
)


def _release(view, keys, args):
    rec, buf = keys
    if view.hget(rec, "node") != args[0]:
        return 0
    view.delete(rec, buf)
    return 1


# KEYS: record, buffer.  ARGV: node.  An ended session's keys go, unless
# another node took the session meanwhile.
RELEASE = Script(
    name="session_resume_release",
    lua="if redis.call('HGET', KEYS[1], 'node') ~= ARGV[1] then return 0 end "
    "redis.call('DEL', KEYS[1], KEYS[2]) return 1",
    python=_release,
)


@attrs.frozen
class Taken:
    """A session another node held, taken over by this one (L{ResumeStore.take})."""

    fromNode: str
    seq: int
    claims: Claims
    clientVersion: str
    platform: str
    # (seq, payload) of the buffered events, oldest first
    buffered: tuple


def encodeInfo(session):
    c = session.claims
    return msgpack.packb([c.account_id, c.sid, c.exp, c.iat, sorted(c.flags), c.username,
                          session.clientVersion, session.platform])


def decodeInfo(raw):
    accountId, sid, exp, iat, flags, username, version, platform = msgpack.unpackb(raw)
    return Claims(accountId, sid, exp, iat, frozenset(flags), username), version, platform


class ResumeStore:
    """
    Keeps every replayable event of this node's sessions in the volatile
    store, written once per reactor turn for the sessions that sent some (one
    C{APPEND} script call per hash slot, up to C{APPEND_BATCH} sessions
    each), so a session survives its node: another node of
    the role verifies the resume token against the stored digest and
    replays from the stored buffer.
    """

    log = Logger()

    def __init__(self, volatile, clock, nodeId, bufferSize, grace):
        self.volatile = volatile
        self.clock = clock
        self.nodeId = nodeId
        self.bufferSize = bufferSize
        self.grace = grace
        self.pending = set()
        self._flushCall = None
        self._writes = set()
        self._alive = None
        self.writesSent = 0

    # -- liveness -------------------------------------------------------

    def start(self):
        self._alive = LoopingCall(self._stamp)
        self._alive.clock = self.clock
        self._alive.start(ALIVE_INTERVAL, now=True)

    def stop(self):
        """Stop stamping, with a last stamp: this node's sessions stay resumable for the grace from now."""
        if self._alive is not None and self._alive.running:
            self._alive.stop()
            self._stamp()
        self._alive = None

    def _stamp(self):
        self._track(self.volatile.zadd(NODES_KEY, {self.nodeId: self.clock.seconds()}),
                    "stamp node liveness")

    def _track(self, d, what, sessionId=None):
        self._writes.add(d)

        def done(result):
            self._writes.discard(d)
            if hasattr(result, "check"):
                if not result.check(StoreError):
                    return result
                self.log.warn("cannot {what} of node {node_id} (session {session_id}): {why}",
                              what=what, node_id=self.nodeId, session_id=sessionId,
                              why=result.getErrorMessage())
            return None

        d.addBoth(done)
        return d

    async def settle(self):
        """Wait for the writes in flight (shutdown, tests)."""
        self.flush()
        while self._writes:
            d = Deferred()
            next(iter(self._writes)).addBoth(lambda r: d.callback(None) or r)
            await d

    # -- a session's record ---------------------------------------------

    def opened(self, session):
        """Record a new (or adopted) session as this node's."""
        sid = session.sessionId
        d = self.volatile.hset(recordKey(sid), {
            "node": self.nodeId, "digest": digest(session.resumeSecret),
            "seq": str(session.seq), "info": encodeInfo(session)})
        d.addCallback(lambda _: self.volatile.expire(recordKey(sid), RECORD_TTL))
        self._track(d, "record session", sid)

    def rotated(self, session):
        """The session's resume secret changed."""
        sid = session.sessionId
        self._track(self.volatile.hset(recordKey(sid), {"digest": digest(session.resumeSecret)}),
                    "rotate resume token", sid)

    def released(self, session):
        """The session ended here: its keys go (unless another node took it)."""
        self.pending.discard(session)
        self.forget(session.sessionId)

    def forget(self, sid):
        """Delete session C{sid}'s keys, unless another node holds it."""
        self._track(self.volatile.evalScript(RELEASE, [recordKey(sid), bufferKey(sid)],
                                             [self.nodeId]), "release session", sid)

    async def owns(self, sessionId):
        """@return: whether the session's record is still this node's."""
        node = await self.volatile.hget(recordKey(sessionId), "node")
        return node is None or node.decode("utf-8", "replace") == self.nodeId

    # -- events ---------------------------------------------------------

    def mark(self, session):
        """C{session} sent a replayable event: write it at the end of this turn."""
        self.pending.add(session)
        if self._flushCall is None:
            self._flushCall = self.clock.callLater(0, self.flush)

    def flush(self):
        """One C{APPEND} per hash slot (one in all on a single Redis) for the sessions with unwritten events."""
        call, self._flushCall = self._flushCall, None
        if call is not None and call.active():
            call.cancel()
        pending, self.pending = self.pending, set()
        writes = {}
        size = self.bufferSize
        for session in pending:
            prev, seq = session.flushedSeq, session.seq
            if seq <= prev or session.ended:
                continue
            session.flushedSeq = seq
            drop = [str(s) for s in range(max(1, prev - size + 1), min(prev, seq - size) + 1)]
            args = [seq, len(drop), *drop]
            events = session.unflushed(prev)
            args.append(len(events))
            for s, payload in events:
                args.append(s)
                args.append(payload)
            writes[session.sessionId] = args
        if not writes:
            return
        ttl = int(RECORD_TTL * 1000)
        for batch in slotBatches(self.volatile, list(writes), recordKey, APPEND_BATCH):
            keys = [k for sid in batch for k in (recordKey(sid), bufferKey(sid))]
            args = [ttl, self.nodeId]
            for sid in batch:
                args.extend(writes[sid])
            self.writesSent += 1
            self._track(self.volatile.evalScript(APPEND, keys, args), "store replay buffers",
                        batch[0] if len(batch) == 1 else f"{batch[0]} and {len(batch) - 1} more")

    # -- taking a session over ------------------------------------------

    async def take(self, sessionId, secret, newSecret):
        """
        @return: a L{Taken} when C{secret} is the session's current resume
            secret and its node is this one, alive, or dead for less than
            the grace; else None.
        """
        oldest = self.clock.seconds() - self.grace - ALIVE_INTERVAL
        try:
            live = await self.volatile.zrangebyscore(NODES_KEY, oldest, float("inf"))
            out = await self.volatile.evalScript(
                TAKE, [recordKey(sessionId), bufferKey(sessionId)],
                [digest(secret), self.nodeId, digest(newSecret), *live])
        except CommandError:
            return None
        if not out:
            return None
        fromNode, seq, info = out[0].decode("utf-8"), int(out[1]), out[2]
        claims, version, platform = decodeInfo(info)
        pairs = sorted((int(out[i]), out[i + 1]) for i in range(3, len(out), 2))
        return Taken(fromNode, seq, claims, version, platform, tuple(pairs))
