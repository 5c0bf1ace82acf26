"""The scripts of members' stored mm.matched records (read, resume unannounced matches, forget): Lua for Redis, a Python twin for memory."""

# As in scripts.py: KEYS[1] the prefixed namespace, twins get (ops, args)
# with args as bytes.  complete (proposalscripts.py) writes the records.

from mmoshard.matchmaking.scriptlib import INF, text, words

# Members' records: ARGV character ids.  Per id false or its Matched bytes.
MATCHED_LUA = """
local out = {}
for i = 1, #ARGV do
  out[i] = redis.call('HGET', xk(ARGV[i]), 'd') or false
end
return out
"""


def matched_py(ops, args):
    return [ops.view.hget(ops.xk(text(a)), "d") or False for a in args]


# A queue's completed matches not yet announced: ARGV queue, now, limit.
# Those expired are forgotten; per match {match id, its members' records
# still holding it (bytes)}.
UNANNOUNCED_LUA = """
local xa = xak(ARGV[1])
redis.call('ZREMRANGEBYSCORE', xa, '-inf', ARGV[2])
local out = {}
for _, mid in ipairs(redis.call('ZRANGE', xa, 0, tonumber(ARGV[3]) - 1)) do
  local cids = redis.call('GET', xmk(mid))
  if not cids then
    redis.call('ZREM', xa, mid)
  else
    local blobs = {}
    for _, cid in ipairs(words(cids)) do
      local x = redis.call('HMGET', xk(cid), 'm', 'd')
      if x[1] == mid then blobs[#blobs + 1] = x[2] end
    end
    out[#out + 1] = {mid, blobs}
  end
end
return out
"""


def unannounced_py(ops, args):
    xa, now, limit = ops.xak(text(args[0])), float(text(args[1])), int(args[2])
    old = ops.view.zrangebyscore(xa, -INF, now)
    if old:
        ops.view.zrem(xa, *old)
    out = []
    for mid in ops.view.zrangebyscore(xa, -INF, INF, 0, limit):
        mid = text(mid) if isinstance(mid, bytes) else mid
        cids = ops.view.get(ops.xmk(mid))
        if cids is None:
            ops.view.zrem(xa, mid)
            continue
        blobs = []
        for cid in words(cids):
            x = ops.view.hgetall(ops.xk(cid))
            if text(x.get("m")) == mid:
                blobs.append(x["d"])
        out.append([mid, blobs])
    return out


# Matches announced: ARGV queue, then match ids.  Their records stay (for
# mm.hello) until they expire; only the to-announce mark goes.
ANNOUNCED_LUA = """
for i = 2, #ARGV do redis.call('ZREM', xak(ARGV[1]), ARGV[i]) end
return #ARGV - 1
"""


def announced_py(ops, args):
    q = text(args[0])
    for a in args[1:]:
        ops.view.zrem(ops.xak(q), text(a))
    return len(args) - 1


# A member entered its match: ARGV character id, match id.  Its record goes
# if it still holds that match.  1 removed, 0 not.
DISMISS_LUA = """
if redis.call('HGET', xk(ARGV[1]), 'm') == ARGV[2] then
  redis.call('DEL', xk(ARGV[1]))
  return 1
end
return 0
"""


def dismiss_py(ops, args):
    cid, mid = text(args[0]), text(args[1])
    if text(ops.view.hget(ops.xk(cid), "m")) == mid:
        ops.view.delete(ops.xk(cid))
        return 1
    return 0


# A character's whole state in one read (mm.hello and mm.status answer it):
# ARGV character id.  {its ticket's bytes or false, the read of the proposal
# holding it or false, its Matched bytes or false (read only without a
# ticket)}.  One script, so that a match completed meanwhile cannot show as
# a ticket waiting with no proposal (the claim read before the completion,
# the proposal after): a client told that took itself for requeued.
STATE_LUA = """
local ticket, proposal, matched = false, false, false
local tid = redis.call('GET', ck(ARGV[1]))
if tid then
  local t = redis.call('HMGET', tk(tid), 'd', 'm')
  ticket = t[1]
  if ticket and t[2] then proposal = readP(t[2]) end
end
if not ticket then matched = redis.call('HGET', xk(ARGV[1]), 'd') end
return {ticket, proposal, matched}
"""


def state_py(ops, args):
    cid = text(args[0])
    ticket = proposal = matched = False
    tid = text(ops.view.get(ops.ck(cid)))
    if tid is not None:
        h = ops.view.hgetall(ops.tk(tid))
        ticket = h.get("d", False)
        if ticket and h.get("m"):
            proposal = ops.readP(text(h["m"]))
    if not ticket:
        matched = ops.view.hget(ops.xk(cid), "d") or False
    return [ticket, proposal, matched]


MATCHED_SCRIPTS = {
    "mm_state": (STATE_LUA, state_py),
    "mm_matched": (MATCHED_LUA, matched_py),
    "mm_unannounced": (UNANNOUNCED_LUA, unannounced_py),
    "mm_announced": (ANNOUNCED_LUA, announced_py),
    "mm_dismiss": (DISMISS_LUA, dismiss_py),
}
