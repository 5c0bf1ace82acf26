"""The volatile keys naming a party's copy of a template and a copy's owner, and the one script that points a party at its copy."""

from mmoshard.store.volatile import Script


def partyKey(partyId, template):
    """The volatile key naming the copy of C{template} of party C{partyId}."""
    return f"instance:party:{partyId}:{template}"


def soloKey(characterId, template):
    """The volatile key naming the copy of C{template} of a character with no party."""
    return f"instance:solo:{int(characterId)}:{template}"


def copyKey(partyId, characterId, template):
    """The key naming the copy of C{template} of party C{partyId}, or of character C{characterId} when it has none."""
    return partyKey(partyId, template) if partyId is not None else soloKey(characterId, template)


def ownerKey(instanceId):
    """The volatile key naming the party whose copy instance C{instanceId} is ("": nobody's)."""
    return f"instance:owner:{int(instanceId)}"


def _mapCopy(view, keys, args):
    held = view.get(keys[0])
    if held is None or held == args[0]:
        view.set(keys[0], args[1], ttl=int(args[2]) / 1000)
        return args[1]
    return held


# Point a copy key at ARGV[2] (TTL ARGV[3] ms) when it names nothing or
# still names ARGV[1] (the copy the caller saw gone); answer what it names
# after.  A get, a delete and a set would let two requests of one party
# both think they made its copy.
MAP_COPY = Script(
    name="instance_map_copy",
    lua=(
        "local v = redis.call('GET', KEYS[1]) "
        "if (not v) or v == ARGV[1] then "
        "redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return ARGV[2] end "
        "return v"
    ),
    python=_mapCopy,
)


async def mapCopy(volatile, key, seen, instanceId, ttl):
    """
    Make copy key C{key} name instance C{instanceId} for C{ttl} seconds,
    unless another request changed it since the caller read C{seen} (its
    bytes; None: it named nothing).

    @return: the instance id the key names now: C{instanceId} when it
        won, else the other request's.
    """
    held = await volatile.evalScript(
        MAP_COPY, [key], [seen if seen is not None else b"", str(int(instanceId)),
                          int(ttl * 1000)])
    return int(held)
