"""The chat role's atomic volatile-store scripts: Lua for Redis, a Python twin for memory."""

# Each twin takes (ops, keys, args): ops is the memory store's MemoryView
# (synchronous methods named like the store's, on prefixed keys), args are
# str (mmoshard.chat.store.scriptTwin decodes them); the twins return what
# the Lua returns, False standing for a missing value inside a list.

# Multi-key compare-and-set.  For key i, ARGV[2i-1] is what it must hold
# ("*": anything, "": absent) and ARGV[2i] what it gets ("=": unchanged,
# "": deleted).  ARGV[2n+1] is a TTL in seconds for every written key.
CAS_LUA = """
local n = #KEYS
for i = 1, n do
  local want = ARGV[2 * i - 1]
  if want ~= '*' then
    local cur = redis.call('GET', KEYS[i])
    if want == '' then
      if cur then return 0 end
    elseif cur ~= want then
      return 0
    end
  end
end
local ttl = tonumber(ARGV[2 * n + 1])
for i = 1, n do
  local new = ARGV[2 * i]
  if new == '' then
    redis.call('DEL', KEYS[i])
  elseif new ~= '=' then
    redis.call('SET', KEYS[i], new, 'PX', math.floor(ttl * 1000))
  end
end
return 1
"""


def cas_py(ops, keys, args):
    for i, key in enumerate(keys):
        want = args[2 * i]
        if want == "*":
            continue
        cur = ops.get(key)
        if want == "":
            if cur is not None:
                return 0
        elif cur is None or cur.decode() != want:
            return 0
    ttl = float(args[2 * len(keys)])
    for i, key in enumerate(keys):
        new = args[2 * i + 1]
        if new == "":
            ops.delete(key)
        elif new != "=":
            ops.set(key, new, ttl)
    return 1


# Refresh the TTL of many keys: ARGV[1] seconds; a digit per key, 1 where it existed.
EXPIRE_LUA = """
local ms = math.floor(tonumber(ARGV[1]) * 1000)
local out = {}
for i = 1, #KEYS do
  out[i] = tostring(redis.call('PEXPIRE', KEYS[i], ms))
end
return table.concat(out)
"""


def expire_py(ops, keys, args):
    ttl = float(args[0])
    return "".join("1" if ops.expire(key, ttl) else "0" for key in keys)


# The presence of many characters: for each presence hash, [proc, state,
# status, text, name] (missing fields nil).
PRESENCE_LUA = """
local out = {}
for i = 1, #KEYS do
  out[i] = redis.call('HMGET', KEYS[i], 'proc', 'state', 'status', 'text', 'name')
end
return out
"""

PRESENCE_FIELDS = ("proc", "state", "status", "text", "name")


def presence_py(ops, keys, args):
    out = []
    for key in keys:
        h = ops.hgetall(key)
        out.append([h.get(f, False) for f in PRESENCE_FIELDS])
    return out


# Write a presence entry: KEYS[1] the hash, KEYS[2] the name key (absent on
# a Redis Cluster, where the caller writes it apart); ARGV[1] ttl, ARGV[2]
# the name key's value, then field/value pairs.
PRESENCE_SET_LUA = """
local ms = math.floor(tonumber(ARGV[1]) * 1000)
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('PEXPIRE', KEYS[1], ms)
if KEYS[2] then redis.call('SET', KEYS[2], ARGV[2], 'PX', ms) end
return 1
"""


def presence_set_py(ops, keys, args):
    ttl = float(args[0])
    pairs = args[2:]
    ops.hset(keys[0], dict(zip(pairs[0::2], pairs[1::2])))
    ops.expire(keys[0], ttl)
    if len(keys) > 1:
        ops.set(keys[1], args[1], ttl)
    return 1


# Remove a presence entry if it still belongs to session ARGV[1], and the
# name key KEYS[2] (when given) if it still holds ARGV[2].
PRESENCE_DROP_LUA = """
if redis.call('HGET', KEYS[1], 'sid') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  if KEYS[2] and redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
  return 1
end
return 0
"""


def presence_drop_py(ops, keys, args):
    sid = ops.hget(keys[0], "sid")
    if sid is None or sid.decode() != args[0]:
        return 0
    ops.delete(keys[0])
    cur = ops.get(keys[1]) if len(keys) > 1 else None
    if cur is not None and cur.decode() == args[1]:
        ops.delete(keys[1])
    return 1


# Append history: ARGV[1] entries kept, ARGV[2] ttl, then a (score, entry)
# pair per key (keys may repeat).
HISTORY_LUA = """
local keep = tonumber(ARGV[1])
local ms = math.floor(tonumber(ARGV[2]) * 1000)
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], ARGV[2 * i + 1], ARGV[2 * i + 2])
  redis.call('ZREMRANGEBYRANK', KEYS[i], 0, -(keep + 1))
  redis.call('PEXPIRE', KEYS[i], ms)
end
return #KEYS
"""


def history_py(ops, keys, args):
    keep = int(args[0])
    ttl = float(args[1])
    for i, key in enumerate(keys):
        ops.zadd(key, {args[2 * i + 3]: float(args[2 * i + 2])})
        members = ops.zrangebyscore(key, float("-inf"), float("inf"))
        if len(members) > keep:
            ops.zrem(key, *members[: len(members) - keep])
        ops.expire(key, ttl)
    return len(keys)


# Join a channel: KEYS[1] members hash (cid -> proc), KEYS[2] per-process
# member counts; ARGV cid, proc, limit (0: none).  1 joined, 0 full.
CHAN_JOIN_LUA = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old == ARGV[2] then return 1 end
if old then
  if redis.call('HINCRBY', KEYS[2], old, -1) <= 0 then redis.call('HDEL', KEYS[2], old) end
else
  local limit = tonumber(ARGV[3])
  if limit > 0 and redis.call('HLEN', KEYS[1]) >= limit then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
return 1
"""


def chan_join_py(ops, keys, args):
    cid, proc, limit = args[0], args[1], int(args[2])
    old = ops.hget(keys[0], cid)
    old = old.decode() if old is not None else None
    if old == proc:
        return 1
    if old is not None:
        if ops.hincrby(keys[1], old, -1) <= 0:
            ops.hdel(keys[1], old)
    elif limit > 0 and len(ops.hgetall(keys[0])) >= limit:
        return 0
    ops.hset(keys[0], {cid: proc})
    ops.hincrby(keys[1], proc, 1)
    return 1


# Leave a channel: ARGV cid, and the process it must be on ("" any).
CHAN_LEAVE_LUA = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return 0 end
if ARGV[2] ~= '' and old ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HINCRBY', KEYS[2], old, -1) <= 0 then redis.call('HDEL', KEYS[2], old) end
return 1
"""


def chan_leave_py(ops, keys, args):
    old = ops.hget(keys[0], args[0])
    if old is None:
        return 0
    old = old.decode()
    if args[1] and old != args[1]:
        return 0
    ops.hdel(keys[0], args[0])
    if ops.hincrby(keys[1], old, -1) <= 0:
        ops.hdel(keys[1], old)
    return 1


# Drop every member a dead process ARGV[1] left in a channel.
CHAN_PURGE_LUA = """
local all = redis.call('HGETALL', KEYS[1])
local n = 0
for i = 1, #all, 2 do
  if all[i + 1] == ARGV[1] then
    redis.call('HDEL', KEYS[1], all[i])
    n = n + 1
  end
end
redis.call('HDEL', KEYS[2], ARGV[1])
return n
"""


def chan_purge_py(ops, keys, args):
    n = 0
    for cid, proc in list(ops.hgetall(keys[0]).items()):
        if proc.decode() == args[0]:
            ops.hdel(keys[0], cid)
            n += 1
    ops.hdel(keys[1], args[0])
    return n


SCRIPTS = {
    "chat_cas": (CAS_LUA, cas_py),
    "chat_expire": (EXPIRE_LUA, expire_py),
    "chat_presence": (PRESENCE_LUA, presence_py),
    "chat_presence_set": (PRESENCE_SET_LUA, presence_set_py),
    "chat_presence_drop": (PRESENCE_DROP_LUA, presence_drop_py),
    "chat_history": (HISTORY_LUA, history_py),
    "chat_chan_join": (CHAN_JOIN_LUA, chan_join_py),
    "chat_chan_leave": (CHAN_LEAVE_LUA, chan_leave_py),
    "chat_chan_purge": (CHAN_PURGE_LUA, chan_purge_py),
}
