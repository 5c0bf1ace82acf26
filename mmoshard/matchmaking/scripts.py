"""The ticket scripts of the matchmaking store (add, read, cancel, changes, stats, liveness, lease): Lua for Redis, a Python twin for memory."""

# Each script takes KEYS[1] = the prefixed namespace (scriptlib's keys) and
# its ARGV; each twin (ops, args) does the same on the memory store, args as
# bytes.  Proposal scripts are in proposalscripts.py.  One script is one
# round trip, whatever the batch.

from mmoshard.matchmaking.scriptlib import INF, text, words

# Add tickets.  ARGV[1] the liveness deadline of their members, then six
# items per ticket: id, queue, bytes, created, member ids, roles.  Per
# ticket: 1 added, 0 its id exists, else the first member id with a claim.
# Queuing again forgets a member's stored mm.matched (x:<cid>).
ADD_LUA = """
local out = {}
for i = 2, #ARGV, 6 do
  local tid, q, c = ARGV[i], ARGV[i + 1], ARGV[i + 4]
  local res = 1
  if redis.call('EXISTS', tk(tid)) == 1 then
    res = 0
  else
    local cids = words(c)
    for _, cid in ipairs(cids) do
      if redis.call('EXISTS', ck(cid)) == 1 then res = cid break end
    end
    if res == 1 then
      for _, cid in ipairs(cids) do
        redis.call('SET', ck(cid), tid)
        redis.call('ZADD', lk(q), ARGV[1], cid)
        redis.call('DEL', xk(cid))
      end
      redis.call('HSET', tk(tid), 'q', q, 'c', c, 'r', ARGV[i + 5], 'cr', ARGV[i + 3],
                 'd', ARGV[i + 2])
      enter(tid, {q, c, ARGV[i + 5], ARGV[i + 3]})
    end
  end
  out[#out + 1] = res
end
return out
"""


def add_py(ops, args):
    deadline = float(args[0])
    out = []
    for i in range(1, len(args), 6):
        tid, q, blob, cr, c, r = (args[i], args[i + 1], args[i + 2], args[i + 3],
                                  args[i + 4], args[i + 5])
        tid, q, c, r, cr = text(tid), text(q), text(c), text(r), text(cr)
        if ops.view.exists(ops.tk(tid)):
            out.append(0)
            continue
        cids = words(c)
        taken = next((cid for cid in cids if ops.view.exists(ops.ck(cid))), None)
        if taken is not None:
            out.append(taken)
            continue
        for cid in cids:
            ops.view.set(ops.ck(cid), tid)
            ops.view.zadd(ops.lk(q), {cid: deadline})
            ops.view.delete(ops.xk(cid))
        ops.view.hset(ops.tk(tid), {"q": q, "c": c, "r": r, "cr": cr, "d": blob})
        ops.enter(tid, {"q": q, "c": c, "r": r, "cr": cr})
        out.append(1)
    return out


# The bytes of tickets by id (false for an unknown one).
GET_LUA = """
local out = {}
for i = 1, #ARGV do out[i] = redis.call('HGET', tk(ARGV[i]), 'd') end
return out
"""


def get_py(ops, args):
    return [ops.view.hget(ops.tk(text(a)), "d") or False for a in args]


# What characters hold: per id, false or {ticket bytes, match id or false}.
CLAIMS_LUA = """
local out = {}
for i = 1, #ARGV do
  local tid = redis.call('GET', ck(ARGV[i]))
  if tid then
    local t = redis.call('HMGET', tk(tid), 'd', 'm')
    out[i] = {t[1], t[2]}
  else
    out[i] = false
  end
end
return out
"""


def claims_py(ops, args):
    out = []
    for a in args:
        tid = text(ops.view.get(ops.ck(text(a))))
        if tid is None:
            out.append(False)
            continue
        h = ops.view.hgetall(ops.tk(tid))
        out.append([h.get("d", False), h.get("m", False)])
    return out


# Cancel a waiting ticket: ARGV[1] its id.  Its bytes, or false when it is
# unknown or in a proposal.
CANCEL_LUA = """
local t = load(ARGV[1])
if not t[1] or t[5] then return false end
leave(ARGV[1], t)
drop(ARGV[1], t)
return t[6]
"""


def cancel_py(ops, args):
    tid = text(args[0])
    t = ops.load(tid)
    if t["q"] is None or t["m"] is not None:
        return False
    ops.leave(tid, t)
    ops.drop(tid, t)
    return t["d"]


# The oldest waiting tickets: ARGV queue, limit.
WAITING_LUA = """
local ids = redis.call('ZRANGE', qk(ARGV[1]), 0, tonumber(ARGV[2]) - 1)
local out = {}
for i, tid in ipairs(ids) do out[i] = redis.call('HGET', tk(tid), 'd') end
return out
"""


def waiting_py(ops, args):
    ids = ops.view.zrangebyscore(ops.qk(text(args[0])), -INF, INF, 0, int(args[1]))
    return [ops.view.hget(ops.tk(tid), "d") or False for tid in ids]


# What changed in a queue's waiting tickets since a cursor: ARGV queue,
# step, since, limit.  {step reached, since, reset, more, bytes of tickets
# that entered, ids of tickets that left}.  A cursor is (step, since):
# entries are read up to its step; since is where the reader's copy was
# whole (the step of its last complete read, or of the read that began its
# current sweep), so departures after it must still be kept (g: is trimmed).
# reset 1: step 0, a copy older than the kept departures, or ahead of the
# store; the reader forgets what it had and gets the whole queue by pages.
# A page never splits one step.
CHANGES_LUA = """
local q, cursor, since, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local now = tonumber(redis.call('HGET', nk(q), 'seq') or '0')
local trim = tonumber(redis.call('HGET', nk(q), 'trim') or '0')
local reset = 0
if cursor <= 0 or cursor > now or since > now or math.max(cursor, since) < trim then
  reset, cursor, since = 1, 0, now
end
local from = '(' .. string.format('%d', cursor)
local page = redis.call('ZRANGEBYSCORE', sk(q), from, now, 'WITHSCORES', 'LIMIT', 0, limit + 1)
local upto, more = now, 0
if #page / 2 > limit then
  local first, last, after = tonumber(page[2]), tonumber(page[2 * limit]), tonumber(page[#page])
  if after > last then
    upto = last
  elseif last > first then
    upto = last - 1
  else
    page = redis.call('ZRANGEBYSCORE', sk(q), from, last, 'WITHSCORES')
    upto = last
  end
  if upto < now then more = 1 end
end
if more == 0 then since = upto end
local adds = {}
for i = 1, #page, 2 do
  if tonumber(page[i + 1]) <= upto then
    adds[#adds + 1] = redis.call('HGET', tk(page[i]), 'd')
  end
end
local gone = {}
if reset == 0 then gone = redis.call('ZRANGEBYSCORE', gk(q), from, upto) end
return {upto, since, reset, more, adds, gone}
"""


def changes_py(ops, args):
    q, cursor, since, limit = text(args[0]), int(args[1]), int(args[2]), int(args[3])
    n = ops.view.hgetall(ops.nk(q))
    now = int(n.get("seq", b"0"))
    trim = int(n.get("trim", b"0"))
    reset = 0
    if cursor <= 0 or cursor > now or since > now or max(cursor, since) < trim:
        reset, cursor, since = 1, 0, now
    frm = f"({cursor}"
    page = ops.view.zrangebyscore(ops.sk(q), frm, now, 0, limit + 1, withscores=True)
    upto, more = now, 0
    if len(page) > limit:
        first, last, after = page[0][1], page[limit - 1][1], page[-1][1]
        if after > last:
            upto = int(last)
        elif last > first:
            upto = int(last) - 1
        else:
            page = ops.view.zrangebyscore(ops.sk(q), frm, last, withscores=True)
            upto = int(last)
        if upto < now:
            more = 1
    if more == 0:
        since = upto
    adds = [ops.view.hget(ops.tk(tid), "d") or False for tid, s in page if s <= upto]
    gone = ops.view.zrangebyscore(ops.gk(q), frm, upto) if reset == 0 else []
    return [upto, since, reset, more, adds, gone]


# A queue's numbers: {waiting tickets, counters hash (flat), created of the
# oldest waiting or false, proposals in flight}.
STATS_LUA = """
local q = ARGV[1]
local oldest = redis.call('ZRANGE', qk(q), 0, 0, 'WITHSCORES')
return {redis.call('ZCARD', qk(q)), redis.call('HGETALL', nk(q)), oldest[2] or false,
        redis.call('ZCARD', psk(q))}
"""


def stats_py(ops, args):
    q = text(args[0])
    oldest = ops.view.zrangebyscore(ops.qk(q), -INF, INF, 0, 1, withscores=True)
    flat = [x for pair in ops.view.hgetall(ops.nk(q)).items() for x in pair]
    return [ops.view.zcard(ops.qk(q)), flat,
            repr(oldest[0][1]) if oldest else False, ops.view.zcard(ops.psk(q))]


# Keep members alive: ARGV[1] their new liveness deadline, then character
# ids; a deadline only moves later.  How many held a ticket.
TOUCH_LUA = """
local d = tonumber(ARGV[1])
local n = 0
for i = 2, #ARGV do
  local tid = redis.call('GET', ck(ARGV[i]))
  local q = tid and redis.call('HGET', tk(tid), 'q')
  if q then
    local cur = redis.call('ZSCORE', lk(q), ARGV[i])
    if not cur or tonumber(cur) < d then redis.call('ZADD', lk(q), ARGV[1], ARGV[i]) end
    n = n + 1
  end
end
return n
"""


def touch_py(ops, args):
    d = float(args[0])
    n = 0
    for a in args[1:]:
        cid = text(a)
        tid = text(ops.view.get(ops.ck(cid)))
        q = tid and text(ops.view.hget(ops.tk(tid), "q"))
        if q:
            cur = ops.view.zscore(ops.lk(q), cid)
            if cur is None or cur < d:
                ops.view.zadd(ops.lk(q), {cid: d})
            n += 1
    return n


# Remove the waiting tickets of a queue with a member past its liveness
# deadline: ARGV queue, now, limit (members looked at).  A member whose
# ticket is in a proposal is looked at again when the ready check is over.
# The removed tickets' bytes.
EXPIRE_LUA = """
local q, now = ARGV[1], tonumber(ARGV[2])
local due = redis.call('ZRANGEBYSCORE', lk(q), '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, cid in ipairs(due) do
  local tid = redis.call('GET', ck(cid))
  local t = tid and load(tid)
  if t and t[1] == q then
    if t[5] then
      local x = tonumber(redis.call('HGET', pk(t[5]), 'x') or '0')
      redis.call('ZADD', lk(q), num(math.max(x, now + 1)), cid)
    else
      leave(tid, t)
      drop(tid, t)
      out[#out + 1] = t[6]
    end
  elseif redis.call('ZSCORE', lk(q), cid) then
    redis.call('ZREM', lk(q), cid)
  end
end
return out
"""


def expire_py(ops, args):
    q, now = text(args[0]), float(args[1])
    due = ops.view.zrangebyscore(ops.lk(q), -INF, now, 0, int(args[2]))
    out = []
    for cid in due:
        tid = text(ops.view.get(ops.ck(cid)))
        t = ops.load(tid) if tid else None
        if t and t["q"] == q:
            if t["m"] is not None:
                x = float(ops.view.hget(ops.pk(t["m"]), "x") or b"0")
                ops.view.zadd(ops.lk(q), {cid: max(x, now + 1)})
            else:
                ops.leave(tid, t)
                ops.drop(tid, t)
                out.append(t["d"])
        elif ops.view.zscore(ops.lk(q), cid) is not None:
            ops.view.zrem(ops.lk(q), cid)
    return out


# Take or renew a queue's lease: ARGV queue, node, ttl in ms.  1 held.
LEASE_LUA = """
local k = base .. 'lease:' .. ARGV[1]
local cur = redis.call('GET', k)
if not cur then
  redis.call('SET', k, ARGV[2], 'PX', ARGV[3])
  return 1
end
if cur == ARGV[2] then
  redis.call('PEXPIRE', k, ARGV[3])
  return 1
end
return 0
"""


def lease_py(ops, args):
    key = f"{ops.base}lease:{text(args[0])}"
    cur = ops.view.get(key)
    if cur is None:
        ops.view.set(key, args[1], ttl=int(args[2]) / 1000)
        return 1
    if cur == args[1]:
        ops.view.expire(key, int(args[2]) / 1000)
        return 1
    return 0


# Give a lease up if node ARGV[2] holds it.  1 released.
RELEASE_LUA = """
local k = base .. 'lease:' .. ARGV[1]
if redis.call('GET', k) == ARGV[2] then
  redis.call('DEL', k)
  return 1
end
return 0
"""


def release_py(ops, args):
    key = f"{ops.base}lease:{text(args[0])}"
    if ops.view.get(key) == args[1]:
        ops.view.delete(key)
        return 1
    return 0


TICKET_SCRIPTS = {
    "mm_add": (ADD_LUA, add_py),
    "mm_get": (GET_LUA, get_py),
    "mm_claims": (CLAIMS_LUA, claims_py),
    "mm_cancel": (CANCEL_LUA, cancel_py),
    "mm_waiting": (WAITING_LUA, waiting_py),
    "mm_changes": (CHANGES_LUA, changes_py),
    "mm_stats": (STATS_LUA, stats_py),
    "mm_touch": (TOUCH_LUA, touch_py),
    "mm_expire": (EXPIRE_LUA, expire_py),
    "mm_lease": (LEASE_LUA, lease_py),
    "mm_release": (RELEASE_LUA, release_py),
}
