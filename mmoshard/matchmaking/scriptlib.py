"""The helpers every matchmaking script shares: key names, queue order and counters, freeing claims — in Lua and in Python."""

# Keys, all under KEYS[1], the store prefix + the TicketStore's namespace
# ("{mm}:"), from which each script derives the rest; the namespace's hash
# tag puts every derived key in KEYS[1]'s slot, so they run on Redis Cluster
# too (the whole matchmaking state on one cluster node; docs/matchmaking.md "State in the volatile store"):
#   t:<ticket>   hash: d (the ticket's bytes), q (queue), c (member ids,
#                space-separated), r (each member's roles, space-separated,
#                for the counters), cr (created, the waiting score), m (the
#                match whose proposal holds it; absent while waiting)
#   c:<cid>      the character's claim: the id of its ticket (waiting or
#                proposed) — one claim per character, across all queues
#   q:<queue>    zset of waiting tickets by created (the queue's order)
#   s:<queue>    zset of waiting tickets by the step they (re)entered at
#   g:<queue>    zset of tickets that left waiting, by the step they left
#                at; trimmed to the last KEEP steps
#   n:<queue>    hash: seq (the queue's step counter), trim (steps up to
#                this one are no longer in g:), members, r:<role> counters
#   l:<queue>    zset of the queue's members by liveness deadline
#   p:<match>    hash: d (the proposal's bytes), q, t (ticket ids), x
#                (expires_at), a<cid> "0"/"1" (accepted)
#   ps:<queue>   zset of the queue's proposals in flight by expires_at
#   lease:<queue> the id of the node matching the queue, with a TTL
#   x:<cid>      hash: m (match id), d (the member's Matched bytes): its
#                mm.matched, written by complete, with the admission
#                ticket's TTL; gone when it queues again or entered
#   xm:<match>   the member ids of a completed match (same TTL)
#   xa:<queue>   zset of completed matches whose mm.matched may not have
#                gone out yet, by expiry (matchedscripts.py)

LUA_LIB = """
local base = KEYS[1]
local function tk(tid) return base .. 't:' .. tid end
local function ck(cid) return base .. 'c:' .. cid end
local function qk(q) return base .. 'q:' .. q end
local function sk(q) return base .. 's:' .. q end
local function gk(q) return base .. 'g:' .. q end
local function nk(q) return base .. 'n:' .. q end
local function lk(q) return base .. 'l:' .. q end
local function pk(m) return base .. 'p:' .. m end
local function psk(q) return base .. 'ps:' .. q end
local function xk(cid) return base .. 'x:' .. cid end
local function xmk(m) return base .. 'xm:' .. m end
local function xak(q) return base .. 'xa:' .. q end
local function num(x) return string.format('%.17g', x) end
local function words(s)
  local out = {}
  if s then for w in string.gmatch(s, '%S+') do out[#out + 1] = w end end
  return out
end
local seqs = {}
local function seq(q)
  local s = seqs[q]
  if s then return s end
  s = redis.call('HINCRBY', nk(q), 'seq', 1)
  seqs[q] = s
  if s % @EVERY@ == 0 and s > @KEEP@ then
    redis.call('ZREMRANGEBYSCORE', gk(q), '-inf', s - @KEEP@)
    redis.call('HSET', nk(q), 'trim', s - @KEEP@)
  end
  return s
end
local function load(tid)
  return redis.call('HMGET', tk(tid), 'q', 'c', 'r', 'cr', 'm', 'd')
end
local function count(t, sign)
  local n = nk(t[1])
  redis.call('HINCRBY', n, 'members', sign * #words(t[2]))
  for _, r in ipairs(words(t[3])) do redis.call('HINCRBY', n, 'r:' .. r, sign) end
end
local function enter(tid, t)
  redis.call('ZADD', qk(t[1]), t[4], tid)
  redis.call('ZADD', sk(t[1]), seq(t[1]), tid)
  redis.call('ZREM', gk(t[1]), tid)
  count(t, 1)
end
local function leave(tid, t)
  redis.call('ZREM', qk(t[1]), tid)
  redis.call('ZREM', sk(t[1]), tid)
  redis.call('ZADD', gk(t[1]), seq(t[1]), tid)
  count(t, -1)
end
local function drop(tid, t)
  for _, cid in ipairs(words(t[2])) do
    if redis.call('GET', ck(cid)) == tid then redis.call('DEL', ck(cid)) end
    redis.call('ZREM', lk(t[1]), cid)
  end
  redis.call('DEL', tk(tid))
end
local function readP(mid)
  local p = redis.call('HGETALL', pk(mid))
  if #p == 0 then return false end
  local d, tids, acc = false, '', {}
  for i = 1, #p, 2 do
    local f = p[i]
    if f == 'd' then d = p[i + 1]
    elseif f == 't' then tids = p[i + 1]
    elseif string.sub(f, 1, 1) == 'a' and p[i + 1] == '1' then acc[#acc + 1] = string.sub(f, 2)
    end
  end
  local blobs = {}
  for _, tid in ipairs(words(tids)) do blobs[#blobs + 1] = redis.call('HGET', tk(tid), 'd') end
  return {d, acc, blobs}
end
"""

INF = float("inf")


def luaSource(body, keep, every):
    """The full Lua of a script: the shared helpers, with the trim constants, then C{body}."""
    return LUA_LIB.replace("@KEEP@", str(int(keep))).replace("@EVERY@", str(int(every))) + body


def text(value):
    """A script argument or stored field (bytes) as str; None stays None."""
    return None if value is None else value.decode("utf-8")


def words(value):
    """What Lua's C{words} gives: the space-separated words of bytes or str (none for None)."""
    if value is None:
        return []
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    return value.split()


class Ops:
    """
    The Python twin of L{LUA_LIB}: the same helpers over a memory store's
    view, on the same keys.  A ticket loaded here is a dict of the hash's
    fields, as str except C{d} (its stored bytes).
    """

    def __init__(self, view, keys, keep, every):
        self.view = view
        self.base = keys[0]
        self.keep = keep
        self.every = every
        self.seqs = {}

    def tk(self, tid):
        return f"{self.base}t:{tid}"

    def ck(self, cid):
        return f"{self.base}c:{cid}"

    def qk(self, q):
        return f"{self.base}q:{q}"

    def sk(self, q):
        return f"{self.base}s:{q}"

    def gk(self, q):
        return f"{self.base}g:{q}"

    def nk(self, q):
        return f"{self.base}n:{q}"

    def lk(self, q):
        return f"{self.base}l:{q}"

    def pk(self, mid):
        return f"{self.base}p:{mid}"

    def psk(self, q):
        return f"{self.base}ps:{q}"

    def xk(self, cid):
        return f"{self.base}x:{cid}"

    def xmk(self, mid):
        return f"{self.base}xm:{mid}"

    def xak(self, q):
        return f"{self.base}xa:{q}"

    def seq(self, q):
        s = self.seqs.get(q)
        if s is not None:
            return s
        s = self.seqs[q] = self.view.hincrby(self.nk(q), "seq", 1)
        if s % self.every == 0 and s > self.keep:
            old = self.view.zrangebyscore(self.gk(q), -INF, s - self.keep)
            if old:
                self.view.zrem(self.gk(q), *old)
            self.view.hset(self.nk(q), {"trim": s - self.keep})
        return s

    def load(self, tid):
        """The ticket's hash (C{q} None when there is no such ticket)."""
        h = self.view.hgetall(self.tk(tid))
        t = {f: text(h.get(f)) for f in ("q", "c", "r", "cr", "m")}
        t["d"] = h.get("d")
        return t

    def count(self, t, sign):
        n = self.nk(t["q"])
        self.view.hincrby(n, "members", sign * len(words(t["c"])))
        for r in words(t["r"]):
            self.view.hincrby(n, "r:" + r, sign)

    def enter(self, tid, t):
        q = t["q"]
        self.view.zadd(self.qk(q), {tid: float(t["cr"])})
        self.view.zadd(self.sk(q), {tid: self.seq(q)})
        self.view.zrem(self.gk(q), tid)
        self.count(t, 1)

    def leave(self, tid, t):
        q = t["q"]
        self.view.zrem(self.qk(q), tid)
        self.view.zrem(self.sk(q), tid)
        self.view.zadd(self.gk(q), {tid: self.seq(q)})
        self.count(t, -1)

    def drop(self, tid, t):
        for cid in words(t["c"]):
            if text(self.view.get(self.ck(cid))) == tid:
                self.view.delete(self.ck(cid))
            self.view.zrem(self.lk(t["q"]), cid)
        self.view.delete(self.tk(tid))

    def readP(self, mid):
        p = self.view.hgetall(self.pk(mid))
        if not p:
            return False
        acc = [f[1:] for f, v in p.items() if f.startswith("a") and v == b"1"]
        blobs = [self.view.hget(self.tk(tid), "d") or False for tid in words(p.get("t"))]
        return [p.get("d", False), acc, blobs]


def twin(function, keep, every):
    """
    A Script's Python side: C{function(ops, args)} with an L{Ops} on the
    view and the arguments as bytes.
    """

    def run(view, keys, args):
        return function(Ops(view, keys, keep, every), args)

    run.__name__ = function.__name__
    return run
