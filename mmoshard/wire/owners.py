"""The one-session rule across nodes: the owners hash of an account and its atomic claim script."""

from mmoshard.store.volatile import Script

# The owners hash only has to outlive the sessions it guards; a crashed
# process's stale entry is harmless (its kick goes unheard), so a day bounds
# the garbage without a refresh loop.
OWNER_TTL = 86400.0


def _conflicts(kind, sid, node, newKind, newSid, newNode):
    """
    The rule of C{CLAIM_OWNER}, in Python: does a new session of (C{newKind},
    C{newSid}, C{newNode}) end the session of (C{kind}, C{sid}, C{node})?
    """
    if sid != newSid or node == newNode or kind == newKind:
        return True
    return not set(kind.split(",")).isdisjoint(newKind.split(","))


def _claimOwner(view, keys, args):
    key = keys[0]
    field, sid, kind, ttl = (a.decode("utf-8") for a in args)
    node = field.partition("@")[2]
    ended = []
    for other, value in view.hgetall(key).items():
        otherKind, newline, otherSid = value.decode("utf-8", "replace").partition("\n")
        if not newline or _conflicts(
            otherKind, otherSid, other.partition("@")[2], kind, sid, node
        ):
            ended.append(other)
    if ended:
        view.hdel(key, *ended)
    view.hset(key, {field: kind + "\n" + sid})
    view.expire(key, int(ttl) / 1000)
    return ended


# Atomic, so two processes taking the same account at once cannot both miss
# each other.  KEYS[1] is the account's owners hash: field
# "<session id>@<node id>" (a session id is hex, so the first @ splits it),
# value "<kind>\n<login id>" where the kind is the node's message namespaces,
# sorted and joined with commas.  A new session (ARGV: its field, login id,
# kind, TTL in ms) removes and returns every entry it ends: another login's,
# one on the same node, or one of the same login whose kind is the same or
# shares a namespace with its own.  Same-login sessions on nodes of other
# kinds (world and chat in the split topology) stay.
CLAIM_OWNER = Script(
    name="session_claim_owner",
    lua="local all = redis.call('HGETALL', KEYS[1]) "
    "local at = string.find(ARGV[1], '@', 1, true) "
    "local node = at and string.sub(ARGV[1], at + 1) or '' "
    "local mine = ',' .. ARGV[3] .. ',' "
    "local ended = {} "
    "for i = 1, #all, 2 do "
    "local field, value = all[i], all[i + 1] "
    "local nl = string.find(value, '\\n', 1, true) "
    "local hit = nl == nil "
    "if not hit then "
    "local kind, sid = string.sub(value, 1, nl - 1), string.sub(value, nl + 1) "
    "local fat = string.find(field, '@', 1, true) "
    "local fnode = fat and string.sub(field, fat + 1) or '' "
    "hit = sid ~= ARGV[2] or fnode == node or kind == ARGV[3] "
    "if not hit then "
    "for ns in string.gmatch(kind, '[^,]+') do "
    "if string.find(mine, ',' .. ns .. ',', 1, true) then hit = true break end "
    "end end end "
    "if hit then ended[#ended + 1] = field end "
    "end "
    "if #ended > 0 then redis.call('HDEL', KEYS[1], unpack(ended)) end "
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[3] .. '\\n' .. ARGV[2]) "
    "redis.call('PEXPIRE', KEYS[1], ARGV[4]) "
    "return ended",
    python=_claimOwner,
)


def supplanted(owners, sessionId, loginId, kind, nodeId):
    """
    Whether the owners hash C{owners} (field -> value, as read) shows that
    session C{sessionId} (of login C{loginId}, kind C{kind}, last held by
    C{nodeId}) was ended by a newer session while its node could not hear
    the kick (stopped, crashed): its entry is gone and an entry that ends
    it by L{CLAIM_OWNER}'s rule is there.
    """
    prefix = sessionId + "@"
    if any(field.startswith(prefix) for field in owners):
        return False
    for field, value in owners.items():
        otherKind, newline, otherSid = value.decode("utf-8", "replace").partition("\n")
        if newline and _conflicts(kind, loginId, nodeId, otherKind, otherSid,
                                  field.partition("@")[2]):
            return True
    return False


def ownersKey(accountId):
    """The volatile-store hash of C{accountId}'s live sessions, across nodes."""
    return f"session:owners:{accountId}"


def ownerField(nodeId, sessionId):
    """A session's field in its account's owners hash."""
    return f"{sessionId}@{nodeId}"


def kickChannel(nodeId):
    return f"session:kick:{nodeId}"
