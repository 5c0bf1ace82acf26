"""The proposal scripts of the matchmaking store (propose, accept, read, requeue, complete): Lua for Redis, a Python twin for memory."""

# As in scripts.py: KEYS[1] the prefixed namespace, twins get (ops, args)
# with args as bytes.  A proposal read is {proposal bytes, ids that
# accepted, its tickets' bytes}.

from mmoshard.matchmaking.scriptlib import INF, text, words

# Propose matches.  Per proposal in ARGV: match id, queue, bytes,
# expires_at, n, then n ticket ids.  Per proposal, 1: every ticket was
# waiting in that queue, and all moved into it; 0: nothing changed.
PROPOSE_LUA = """
local out = {}
local i = 1
while i <= #ARGV do
  local mid, q, d, x, n = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4])
  local tids = {}
  for j = 1, n do tids[j] = ARGV[i + 4 + j] end
  i = i + 5 + n
  local ok = n > 0 and redis.call('EXISTS', pk(mid)) == 0
  local loaded, seen = {}, {}
  if ok then
    for j, tid in ipairs(tids) do
      local t = load(tid)
      if seen[tid] or t[1] ~= q or t[5] then ok = false break end
      seen[tid] = true
      loaded[j] = t
    end
  end
  if ok then
    local fields = {'d', d, 'q', q, 't', table.concat(tids, ' '), 'x', x}
    for j, tid in ipairs(tids) do
      local t = loaded[j]
      leave(tid, t)
      redis.call('HSET', tk(tid), 'm', mid)
      for _, cid in ipairs(words(t[2])) do
        fields[#fields + 1] = 'a' .. cid
        fields[#fields + 1] = '0'
      end
    end
    redis.call('HSET', pk(mid), unpack(fields))
    redis.call('ZADD', psk(q), x, mid)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"""


def propose_py(ops, args):
    out = []
    i = 0
    while i < len(args):
        mid, q, blob, x, n = (text(args[i]), text(args[i + 1]), args[i + 2], text(args[i + 3]),
                              int(args[i + 4]))
        tids = [text(a) for a in args[i + 5 : i + 5 + n]]
        i += 5 + n
        ok = n > 0 and not ops.view.exists(ops.pk(mid))
        loaded = []
        if ok:
            for tid in tids:
                t = ops.load(tid)
                if tid in tids[: len(loaded)] or t["q"] != q or t["m"] is not None:
                    ok = False
                    break
                loaded.append(t)
        if not ok:
            out.append(0)
            continue
        fields = {"d": blob, "q": q, "t": " ".join(tids), "x": x}
        for tid, t in zip(tids, loaded):
            ops.leave(tid, t)
            ops.view.hset(ops.tk(tid), {"m": mid})
            for cid in words(t["c"]):
                fields["a" + cid] = "0"
        ops.view.hset(ops.pk(mid), fields)
        ops.view.zadd(ops.psk(q), {mid: float(x)})
        out.append(1)
    return out


# Members accept: ARGV pairs of match id, character id, taken in order.  Per
# pair the proposal read after it, or false when there is no such proposal
# or the character is not in it.
ACCEPT_LUA = """
local out = {}
for i = 1, #ARGV, 2 do
  local f = 'a' .. ARGV[i + 1]
  if redis.call('HGET', pk(ARGV[i]), f) then
    redis.call('HSET', pk(ARGV[i]), f, '1')
    out[#out + 1] = readP(ARGV[i])
  else
    out[#out + 1] = false
  end
end
return out
"""


def accept_py(ops, args):
    out = []
    for i in range(0, len(args), 2):
        mid, f = text(args[i]), "a" + text(args[i + 1])
        if ops.view.hget(ops.pk(mid), f) is None:
            out.append(False)
        else:
            ops.view.hset(ops.pk(mid), {f: "1"})
            out.append(ops.readP(mid))
    return out


# Read proposals: ARGV match ids.  Per id a read, or false.
PROPOSAL_LUA = """
local out = {}
for i = 1, #ARGV do out[i] = readP(ARGV[i]) end
return out
"""


def proposal_py(ops, args):
    return [ops.readP(text(a)) for a in args]


# A queue's proposals in flight, soonest to expire first: ARGV queue, limit.
PROPOSALS_LUA = """
local ids = redis.call('ZRANGE', psk(ARGV[1]), 0, tonumber(ARGV[2]) - 1)
local out = {}
for _, mid in ipairs(ids) do
  local p = readP(mid)
  if p then out[#out + 1] = p else redis.call('ZREM', psk(ARGV[1]), mid) end
end
return out
"""


# The ids of a queue's proposals in flight, soonest to expire first: ARGV
# queue, limit.  (A holder's look for untimed ones reads only these.)
PROPOSAL_IDS_LUA = """
return redis.call('ZRANGE', psk(ARGV[1]), 0, tonumber(ARGV[2]) - 1)
"""


def proposal_ids_py(ops, args):
    return list(ops.view.zrangebyscore(ops.psk(text(args[0])), -INF, INF, 0, int(args[1])))


def proposals_py(ops, args):
    q = text(args[0])
    out = []
    for mid in ops.view.zrangebyscore(ops.psk(q), -INF, INF, 0, int(args[1])):
        p = ops.readP(mid)
        if p:
            out.append(p)
        else:
            ops.view.zrem(ops.psk(q), mid)
    return out


# End a proposal and requeue: ARGV[1] the match id, then the ids of tickets
# to remove.  The others wait again with their created (their place).
# {the read, requeued tickets' bytes, removed tickets' bytes}, or false.
REQUEUE_LUA = """
local mid = ARGV[1]
local p = readP(mid)
if not p then return false end
local dropping = {}
for i = 2, #ARGV do dropping[ARGV[i]] = true end
local h = redis.call('HMGET', pk(mid), 'q', 't')
local back, gone = {}, {}
for _, tid in ipairs(words(h[2])) do
  local t = load(tid)
  if t[1] and t[5] == mid then
    if dropping[tid] then
      drop(tid, t)
      gone[#gone + 1] = t[6]
    else
      redis.call('HDEL', tk(tid), 'm')
      enter(tid, t)
      back[#back + 1] = t[6]
    end
  end
end
redis.call('DEL', pk(mid))
redis.call('ZREM', psk(h[1]), mid)
return {p, back, gone}
"""


def requeue_py(ops, args):
    mid = text(args[0])
    p = ops.readP(mid)
    if not p:
        return False
    dropping = {text(a) for a in args[1:]}
    h = ops.view.hgetall(ops.pk(mid))
    back, gone = [], []
    for tid in words(h.get("t")):
        t = ops.load(tid)
        if t["q"] is not None and t["m"] == mid:
            if tid in dropping:
                ops.drop(tid, t)
                gone.append(t["d"])
            else:
                ops.view.hdel(ops.tk(tid), "m")
                ops.enter(tid, t)
                back.append(t["d"])
    ops.view.delete(ops.pk(mid))
    ops.view.zrem(ops.psk(text(h.get("q"))), mid)
    return [p, back, gone]


# Complete a proposal, once: ARGV[1] the match id, ARGV[2] the TTL of the
# members' mm.matched records (ms), ARGV[3] their expiry (the xa: score),
# then pairs of member id, Matched bytes.  Its tickets end, their claims are
# freed, and in the same step each member's record is written and the match
# marked not yet announced.  The read, or false when it had already ended.
COMPLETE_LUA = """
local mid = ARGV[1]
local p = readP(mid)
if not p then return false end
local h = redis.call('HMGET', pk(mid), 'q', 't')
for _, tid in ipairs(words(h[2])) do
  local t = load(tid)
  if t[1] and t[5] == mid then drop(tid, t) end
end
redis.call('DEL', pk(mid))
redis.call('ZREM', psk(h[1]), mid)
if #ARGV > 3 then
  local ttl, cids = tonumber(ARGV[2]), {}
  for i = 4, #ARGV, 2 do
    local x = xk(ARGV[i])
    redis.call('DEL', x)
    redis.call('HSET', x, 'm', mid, 'd', ARGV[i + 1])
    redis.call('PEXPIRE', x, ttl)
    cids[#cids + 1] = ARGV[i]
  end
  redis.call('SET', xmk(mid), table.concat(cids, ' '), 'PX', ttl)
  redis.call('ZADD', xak(h[1]), ARGV[3], mid)
end
return p
"""


def complete_py(ops, args):
    mid = text(args[0])
    p = ops.readP(mid)
    if not p:
        return False
    h = ops.view.hgetall(ops.pk(mid))
    for tid in words(h.get("t")):
        t = ops.load(tid)
        if t["q"] is not None and t["m"] == mid:
            ops.drop(tid, t)
    ops.view.delete(ops.pk(mid))
    q = text(h.get("q"))
    ops.view.zrem(ops.psk(q), mid)
    if len(args) > 3:
        ttl, cids = int(args[1]) / 1000.0, []
        for i in range(3, len(args), 2):
            cid = text(args[i])
            ops.view.delete(ops.xk(cid))
            ops.view.hset(ops.xk(cid), {"m": mid, "d": args[i + 1]})
            ops.view.expire(ops.xk(cid), ttl)
            cids.append(cid)
        ops.view.set(ops.xmk(mid), " ".join(cids), ttl=ttl)
        ops.view.zadd(ops.xak(q), {mid: float(text(args[2]))})
    return p


# Give a proposal in flight a later end: ARGV[1] the match id, ARGV[2] its
# bytes with the new expires_at, ARGV[3] that expires_at.  The read after
# it, or false when it had ended.
EXTEND_LUA = """
local mid = ARGV[1]
local q = redis.call('HGET', pk(mid), 'q')
if not q then return false end
redis.call('HSET', pk(mid), 'd', ARGV[2], 'x', ARGV[3])
redis.call('ZADD', psk(q), ARGV[3], mid)
return readP(mid)
"""


def extend_py(ops, args):
    mid = text(args[0])
    q = text(ops.view.hget(ops.pk(mid), "q"))
    if q is None:
        return False
    ops.view.hset(ops.pk(mid), {"d": args[1], "x": text(args[2])})
    ops.view.zadd(ops.psk(q), {mid: float(text(args[2]))})
    return ops.readP(mid)


PROPOSAL_SCRIPTS = {
    "mm_extend": (EXTEND_LUA, extend_py),
    "mm_propose": (PROPOSE_LUA, propose_py),
    "mm_accept": (ACCEPT_LUA, accept_py),
    "mm_proposal": (PROPOSAL_LUA, proposal_py),
    "mm_proposals": (PROPOSALS_LUA, proposals_py),
    "mm_proposal_ids": (PROPOSAL_IDS_LUA, proposal_ids_py),
    "mm_requeue": (REQUEUE_LUA, requeue_py),
    "mm_complete": (COMPLETE_LUA, complete_py),
}
