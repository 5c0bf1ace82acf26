"""Token revocations in the volatile store: the marks, the atomic script that adds and announces them, and reading them back."""

import json
import time

from mmoshard.store.volatile import Script

# -- revocations in the volatile store ----------------------------------------
#
# Two sorted sets, both scored by the time after which an entry is useless
# (no token it could refuse is still unexpired), so they are pruned by score:
#   revocations:sids      member: login id              (logout, refresh reuse, password change)
#   revocations:accounts  member: "<account>:<before>"  (ban: tokens with iat <= before)
# and a counter bumped by every revocation.  Each revocation is published on
# the revocations channel as b"<counter> <json>", in the same script, so
# subscribers see the counter rise by one per message and know they missed
# something when it jumps.

# One hash tag, so the scripts may take them all on Redis Cluster.
REVOKED_SIDS = "revocations:{rev}:sids"
REVOKED_ACCOUNTS = "revocations:{rev}:accounts"
REVOCATION_SEQ = "revocations:{rev}:seq"
REVOCATION_CHANNEL = "revocations:{rev}"


def _revokePython(view, keys, args):
    sidsKey, accountsKey, seqKey, channel = keys
    now = float(args[0])
    i = 2
    for key in (sidsKey, accountsKey):
        count = int(args[i])
        i += 1
        for _ in range(count):
            member, score = args[i].decode("utf-8"), float(args[i + 1])
            i += 2
            old = view.zscore(key, member)
            if old is None or old < score:
                view.zadd(key, {member: score})
        gone = view.zrangebyscore(key, float("-inf"), "(" + repr(now))
        if gone:
            view.zrem(key, *gone)
    seq = view.incr(seqKey)
    view.publish(channel, b"%d " % seq + args[1])
    return seq


REVOKE = Script(
    name="tokens_revoke",
    lua="""
local i = 3
for k = 1, 2 do
  local n = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, n do
    local old = redis.call('ZSCORE', KEYS[k], ARGV[i])
    if (not old) or tonumber(old) < tonumber(ARGV[i + 1]) then
      redis.call('ZADD', KEYS[k], ARGV[i + 1], ARGV[i])
    end
    i = i + 2
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', '(' .. ARGV[1])
end
local seq = redis.call('INCR', KEYS[3])
redis.call('PUBLISH', KEYS[4], seq .. ' ' .. ARGV[2])
return seq
""",
    python=_revokePython,
)


def _snapshotPython(view, keys, args):
    seqKey, sidsKey, accountsKey = keys
    seq = view.get(seqKey) or b"0"
    if seq == args[0]:
        return [seq]
    since = float(args[1])
    out = [seq]
    for key in (sidsKey, accountsKey):
        flat = []
        for member, score in view.zrangebyscore(key, since, float("inf"), withscores=True):
            flat += [member, repr(score)]
        out.append(flat)
    return out


# Read-only: the counter, and the unexpired entries unless the counter says
# the caller has them all already.
SNAPSHOT = Script(
    name="tokens_snapshot",
    lua="""
local seq = redis.call('GET', KEYS[1])
if not seq then seq = '0' end
if seq == ARGV[1] then return {seq} end
return {seq,
  redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[2], '+inf', 'WITHSCORES'),
  redis.call('ZRANGEBYSCORE', KEYS[3], ARGV[2], '+inf', 'WITHSCORES')}
""",
    python=_snapshotPython,
)


def _revoke(volatile, now, sids, accounts, info):
    args = [float(now), json.dumps(info, separators=(",", ":"), sort_keys=True)]
    args.append(len(sids))
    for sid, expiry in sids.items():
        args += [sid, float(expiry)]
    args.append(len(accounts))
    for accountId, (before, expiry) in accounts.items():
        args += [f"{accountId}:{before!r}", float(expiry)]
    return volatile.evalScript(
        REVOKE, [REVOKED_SIDS, REVOKED_ACCOUNTS, REVOCATION_SEQ, REVOCATION_CHANNEL], args
    )


def revokeLogins(volatile, sids, ttl, now=None, accountId=None, reason=None):
    """
    Revoke every token of the logins C{sids} in one atomic store call, and
    announce it to every process.

    @param ttl: the remaining life of the logins' longest-lived token; the
        marks are useless after that.
    @param now: the current time (default: the wall clock).
    @param accountId: the logins' account, for the announcement and logs.
    @param reason: why (C{"logout"}, C{"refresh_reuse"}, C{"password_change"}).
    @return: a Deferred firing with the revocation counter.
    """
    now = time.time() if now is None else float(now)
    expiry = now + max(float(ttl), 1.0)
    marks = {str(sid): expiry for sid in sids}
    info = {"sids": marks, "accounts": {}, "reason": reason}
    if accountId is not None:
        info["account_id"] = int(accountId)
    return _revoke(volatile, now, marks, {}, info)


def revokeLogin(volatile, sid, ttl, now=None, accountId=None, reason=None):
    """Revoke every token of login C{sid} (logout); see L{revokeLogins}."""
    return revokeLogins(volatile, [sid], ttl, now, accountId, reason)


def revokeAccount(volatile, accountId, now, ttl, reason=None):
    """
    Revoke every token of C{accountId} issued at or before C{now} (ban), and
    announce it to every process.

    @param ttl: the longest access token lifetime.
    @return: a Deferred firing with the revocation counter.
    """
    now = float(now)
    expiry = now + max(float(ttl), 1.0)
    accounts = {int(accountId): (now, expiry)}
    info = {
        "sids": {},
        "accounts": {str(int(accountId)): [now, expiry]},
        "reason": reason,
        "account_id": int(accountId),
    }
    return _revoke(volatile, now, {}, accounts, info)


def readSnapshot(result):
    """
    @param result: what L{SNAPSHOT} returned.
    @return: (counter, sids, accounts): C{sids} a list of (login id, mark
        expiry), C{accounts} of (account id, revoked-before, mark expiry);
        both empty when the counter says the caller has them all.
    @raise ValueError: when unreadable (also TypeError, IndexError).
    """
    seq = int(result[0])
    if len(result) == 1:
        return seq, (), ()
    sids = _pairs(result[1])
    accounts = []
    for member, expiry in _pairs(result[2]):
        accountId, _, before = member.partition(":")
        accounts.append((int(accountId), float(before), expiry))
    return seq, sids, accounts


def readAnnouncement(message):
    """
    @param message: one message of L{REVOCATION_CHANNEL}.
    @return: (counter, sids, accounts, reason) as for L{readSnapshot};
        C{reason} a str or None.
    @raise ValueError: when unreadable (also TypeError, IndexError,
        AttributeError).
    """
    head, _, body = message.partition(b" ")
    seq = int(head)
    data = json.loads(body)
    sids = [(str(s), float(e)) for s, e in data.get("sids", {}).items()]
    accounts = [
        (int(a), float(mark[0]), float(mark[1])) for a, mark in data.get("accounts", {}).items()
    ]
    reason = data.get("reason")
    return seq, sids, accounts, reason if isinstance(reason, str) else None


def _pairs(flat):
    it = iter(flat)
    return [(_text(member), float(score)) for member, score in zip(it, it)]


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
