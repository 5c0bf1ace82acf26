"""Scripts the volatile-store tests run on both stores, each written in Lua and in Python."""

from mmoshard.store.volatile import CommandError, Script

__all__ = ["CONVENTIONS", "RELEASE_LEASE", "TAKE_LEASE"]


def _release(view, keys, args):
    if view.get(keys[0]) == args[0]:
        return view.delete(keys[0])
    return 0


RELEASE_LEASE = Script(
    name="release-lease",
    lua=(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
        "  return redis.call('DEL', KEYS[1])\n"
        "end\n"
        "return 0\n"
    ),
    python=_release,
)


def _take(view, keys, args):
    current = view.get(keys[0])
    if current is None or current == args[0]:
        view.set(keys[0], args[0], ttl=int(args[1]) / 1000)
        return [1, args[0]]
    return [0, current]


TAKE_LEASE = Script(
    name="take-lease",
    lua=(
        "local current = redis.call('GET', KEYS[1])\n"
        "if current == false or current == ARGV[1] then\n"
        "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
        "  return {1, ARGV[1]}\n"
        "end\n"
        "return {0, current}\n"
    ),
    python=_take,
)


def _conventions(view, keys, args):
    mode = args[0].decode()
    if mode == "nil":
        return None
    if mode == "false":
        return False
    if mode == "true":
        return True
    if mode == "float":
        return -2.7
    if mode == "string":
        return "h\u00e9llo"
    if mode == "table":
        return [1, "two", False, 3.9, [4, "x"], None, 5]
    if mode == "status":
        return {"ok": "FINE"}
    if mode == "sum":
        return float(args[1]) + float(args[2])
    if mode == "error":
        raise CommandError("boom")
    if mode == "wrongtype":
        return view.hget(keys[0], "f")
    if mode == "crash":
        return 1 / 0


CONVENTIONS = Script(
    name="conventions",
    lua=(
        "local m = ARGV[1]\n"
        "if m == 'nil' then return nil end\n"
        "if m == 'false' then return false end\n"
        "if m == 'true' then return true end\n"
        "if m == 'float' then return -2.7 end\n"
        "if m == 'string' then return 'h\u00e9llo' end\n"
        "if m == 'table' then return {1, 'two', false, 3.9, {4, 'x'}, nil, 5} end\n"
        "if m == 'status' then return {ok='FINE'} end\n"
        "if m == 'sum' then return tonumber(ARGV[2]) + tonumber(ARGV[3]) end\n"
        "if m == 'error' then return redis.error_reply('boom') end\n"
        "if m == 'wrongtype' then return redis.call('HGET', KEYS[1], 'f') end\n"
        "if m == 'crash' then return nil + 1 end\n"
    ),
    python=_conventions,
)
