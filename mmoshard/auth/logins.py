"""Live logins in the volatile store: refresh-token rotation in one atomic script, revocation marks, refresh activity flushed to SQL in batches."""

import attrs
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from mmoshard.auth.store import RefreshResult
from mmoshard.store.slots import splitBySlot
from mmoshard.store.volatile import Script

# A revocation mark on a login whose record is absent (expired, lost, or
# not yet written by a login still finishing) keeps it from being written
# or recovered afterwards; it need only outlive those few moments.
TOMBSTONE_TTL = 86400.0
# Rotations per script call, so one call never holds Redis long.
MAX_BATCH = 256
# A second script call goes out while the first is answered once this many
# rotations wait, so the reactor is not idle for a round trip under load;
# fewer wait for the first call's answer and go out together.
MAX_IN_FLIGHT = 2
OVERLAP_BATCH = 10
# How far back each flush reads revocations from SQL: one flush interval
# would do, the rest allows for the revoker's clock and late commits.
REVOKED_LOOKBACK = 60.0


def loginKey(sid):
    return f"auth:login:{sid}"


def _millis(seconds):
    return max(1, round(float(seconds) * 1000))


# -- scripts --------------------------------------------------------------------
#
# One hash per login, auth:login:<sid>:
#   a  account id       u  username         o  "1" for an operator account
#   g  the generation of the login's current refresh token
#   e  when the login expires (epoch seconds, by the role's clock; the key's
#      own TTL only frees the memory)
#   r  why it was revoked; present on a revoked login (a "tombstone"), which
#      no script ever brings back


def _createPython(view, keys, args):
    if view.exists(keys[0]):
        return 0
    view.hset(keys[0], {"a": args[0], "u": args[1], "o": args[2], "g": args[3], "e": args[4]})
    view.expire(keys[0], int(args[5]) / 1000)
    return 1


# Write a login's record unless the key exists (a live record, or the
# revocation mark of a login ended before its record was written).
CREATE = Script(
    name="auth_login_create",
    lua="""
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'a', ARGV[1], 'u', ARGV[2], 'o', ARGV[3], 'g', ARGV[4], 'e', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1
""",
    python=_createPython,
)


def _rotatePython(view, keys, args):
    now, expires, millis = float(args[0]), args[1], int(args[2]) / 1000
    gens, grace = args[3].split(), float(args[4])
    out = []
    for key, gen in zip(keys, gens):
        record = view.hgetall(key)
        if "r" in record:
            out.append(b"revoked")
        elif "g" not in record:
            out.append(b"missing")
        elif float(record["e"]) <= now:
            out.append(b"expired")
        elif record["g"] == gen:
            view.hset(key, {"g": int(gen) + 1, "e": expires, "p": b"%.3f" % now})
            view.expire(key, millis)
            out.append(b"ok " + record["a"] + b" " + record["o"] + b" " + record["u"])
        elif (grace > 0 and "p" in record and int(gen) + 1 == int(record["g"])
              and now - float(record["p"]) <= grace):
            out.append(b"ok " + record["a"] + b" " + record["o"] + b" " + record["u"])
        else:
            view.hset(key, {"r": "refresh_reuse"})
            out.append(b"reused " + record["a"])
    return out


# Seconds after a rotation during which the refresh token it used up may come
# back as that rotation's retry (see ROTATE): a client retrying after a 503.
REFRESH_RETRY_GRACE = 10.0

# Rotate the refresh tokens of several logins, each independently:
# KEYS[i] is a login's key and the i-th number of ARGV[4] (decimal, space
# separated: one argument for the whole batch) the generation presented for
# it, compared as text; ARGV[1..3] are now, the new expiry and the key TTL
# in ms.  Generations stay far below 2^53, so Lua's numbers add one exactly.
# The generation just before the current one within ARGV[5] seconds of the
# rotation that ended it, by Redis's clock ('p': when it was applied), is
# that rotation retried (its answer lost, or a 503 while a hung Redis held
# it): answered "ok" again, nothing changed, so the caller issues the same
# refresh token again.  Any other generation is a copied token coming back
# (an older one, or, after the record was rebuilt from a copy, a newer
# one): the login is marked revoked at once.  Each login's answer is one
# string (fewer reply objects to build): "ok <account> <operator> <username>",
# "reused <account>", "revoked", "missing" or "expired".
ROTATE = Script(
    name="auth_login_rotate",
    lua="""
local now = tonumber(ARGV[1])
local time = redis.call('TIME')
local applied = tonumber(time[1]) + tonumber(time[2]) / 1000000
local grace = tonumber(ARGV[5])
local out = {}
local i = 0
for gen in string.gmatch(ARGV[4], '%d+') do
  i = i + 1
  local k = KEYS[i]
  local rec = redis.call('HMGET', k, 'g', 'a', 'u', 'o', 'e', 'r', 'p')
  if rec[6] then
    out[i] = 'revoked'
  elseif not rec[1] then
    out[i] = 'missing'
  elseif tonumber(rec[5]) <= now then
    out[i] = 'expired'
  elseif rec[1] == gen then
    redis.call('HSET', k, 'g', string.format('%d', tonumber(gen) + 1), 'e', ARGV[2],
               'p', string.format('%.3f', applied))
    redis.call('PEXPIRE', k, ARGV[3])
    out[i] = 'ok ' .. rec[2] .. ' ' .. rec[4] .. ' ' .. rec[3]
  elseif grace > 0 and rec[7] and tonumber(gen) + 1 == tonumber(rec[1])
      and applied - tonumber(rec[7]) <= grace then
    out[i] = 'ok ' .. rec[2] .. ' ' .. rec[4] .. ' ' .. rec[3]
  else
    redis.call('HSET', k, 'r', 'refresh_reuse')
    out[i] = 'reused ' .. rec[2]
  end
end
return out
""",
    python=_rotatePython,
)


def _endPython(view, keys, args):
    for key in keys:
        view.hset(key, {"r": args[0]})
        if view.ttl(key) is None:
            view.expire(key, int(args[1]) / 1000)
    return len(keys)


# Mark logins revoked (ARGV[1] the reason); a mark made where no record is
# gets ARGV[2] ms to live, a record keeps its own expiry.
END = Script(
    name="auth_login_end",
    lua="""
for _, k in ipairs(KEYS) do
  redis.call('HSET', k, 'r', ARGV[1])
  if redis.call('PTTL', k) < 0 then redis.call('PEXPIRE', k, ARGV[2]) end
end
return #KEYS
""",
    python=_endPython,
)


async def endLoginRecords(volatile, sids, reason):
    """
    Mark the logins C{sids} revoked in the volatile store, so no refresh
    token of theirs is accepted again.  Called after SQL has revoked them:
    a refresh falling back to SQL then finds them revoked there, and one
    that read SQL just before finds this mark.
    """
    sids = list(sids)
    for start in range(0, len(sids), MAX_BATCH):
        # One call per hash slot on a Redis Cluster, one call elsewhere.
        for chunk in splitBySlot(volatile, sids[start:start + MAX_BATCH], loginKey):
            await volatile.evalScript(END, [loginKey(s) for s in chunk],
                                      [reason, _millis(TOMBSTONE_TTL)])


@attrs.define(eq=False)
class LoginRecords:
    """
    The volatile record of every live login this role serves, and what its
    refreshes must later tell SQL.

    Rotations arriving while a script call is out are sent together in the
    next one (at most L{MAX_BATCH}; a second call overlaps the first once
    L{OVERLAP_BATCH} wait): one store round trip per batch, not per refresh,
    and no added wait when idle.

    Each successful rotation is remembered (latest generation and time per
    login) and written to C{auth_logins} by L{flush} in one transaction,
    every C{flushEvery} seconds once L{start}ed and at L{stop}: SQL's
    C{last_used_at}, C{expires_at} and C{refresh_gen} lag the store by up to
    that much.  The same transaction reads the logins revoked lately, and
    those not marked yet are marked in the store: a revocation written to
    SQL alone (C{mmoshard account ban} when no server answered it, a
    hand-made UPDATE) stops refreshes within C{flushEvery} seconds.
    """

    log = Logger()

    volatile: object
    sqlLogins: object  # the LoginStore the refreshes are written to
    clock: object
    ttl: float
    flushEvery: float
    # Seconds after a rotation during which the token it used up rotates again
    # to the same answer (a retry), not a reuse; 0: never.
    retryGrace: float = REFRESH_RETRY_GRACE
    _ttlMillis: int = attrs.field(
        init=False, default=attrs.Factory(lambda self: _millis(self.ttl), takes_self=True)
    )
    _queue: list = attrs.field(init=False, factory=list)
    # Script calls out now.
    _senders: int = attrs.field(init=False, default=0)
    # sid -> (generation of its current token, time of the refresh)
    _pending: dict = attrs.field(init=False, factory=dict)
    _flushing: object = attrs.field(init=False, default=None)
    _loop: object = attrs.field(init=False, default=None)
    # Revocations read back from SQL: from when, and those already marked.
    _revokedSince: float | None = attrs.field(init=False, default=None)
    _marked: dict = attrs.field(init=False, factory=dict)

    # -- records ----------------------------------------------------------

    async def create(self, sid, accountId, username, isOperator, gen=0):
        """
        Write login C{sid}'s record with C{gen} as its current generation.

        @return: False when the key was there already (a live record, or a
            revocation mark: the login was ended meanwhile).
        """
        now = self.clock.seconds()
        created = await self.volatile.evalScript(
            CREATE, [loginKey(sid)],
            [int(accountId), username, 1 if isOperator else 0, int(gen), now + self.ttl,
             _millis(self.ttl)],
        )
        return bool(created)

    def rotate(self, sid, gen):
        """
        Trade generation C{gen} of login C{sid} for the next.

        @return: a Deferred firing with a L{RefreshResult} whose outcome is
            ok (with the account), missing (no record: see the SQL
            fallback), invalid (revoked or expired) or reused (another
            generation came: the record is now marked revoked).
        """
        d = Deferred()
        queue = self._queue
        queue.append((sid, gen, d))
        senders = self._senders
        if not senders or (senders < MAX_IN_FLIGHT and len(queue) >= OVERLAP_BATCH):
            self._senders = senders + 1
            Deferred.fromCoroutine(self._drain())
        return d

    async def _drain(self):
        try:
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                now = self.clock.seconds()
                # One script call per hash slot on a Redis Cluster (sent together), one elsewhere.
                groups = splitBySlot(self.volatile, batch, lambda item: loginKey(item[0]))
                await gatherResults([Deferred.fromCoroutine(self._rotateGroup(group, now))
                                     for group in groups])
        finally:
            self._senders -= 1

    async def _rotateGroup(self, batch, now):
        gens = b" ".join([b"%d" % gen for _, gen, _ in batch])
        try:
            results = await self.volatile.evalScript(
                ROTATE, [loginKey(sid) for sid, _, _ in batch],
                [now, now + self.ttl, self._ttlMillis, gens, self.retryGrace],
            )
        except Exception as e:
            for _, _, d in batch:
                d.errback(e)
            return
        for (sid, gen, d), result in zip(batch, results):
            d.callback(self._result(sid, gen, now, result))

    def _result(self, sid, gen, now, result):
        if result[:3] == b"ok ":
            self._pending[sid] = (gen + 1, now)
            _, account, operator, username = result.split(b" ", 3)
            return RefreshResult("ok", sid, int(account), username.decode("utf-8"),
                                 operator == b"1", at=now)
        if result[:7] == b"reused ":
            return RefreshResult("reused", sid, int(result[7:]))
        if result == b"missing":
            return RefreshResult("missing", sid)
        return RefreshResult("invalid", sid)

    def pendingGeneration(self, sid):
        """@return: the generation of C{sid} refreshed here but not yet in SQL, or None."""
        entry = self._pending.get(sid)
        return None if entry is None else entry[0]

    # -- the SQL side -------------------------------------------------------

    def flush(self):
        """
        Write the refreshes remembered so far to SQL in one transaction (a
        failed write keeps them for the next).

        @return: a Deferred firing when done.
        """
        return Deferred.fromCoroutine(self._flush())

    async def _flush(self):
        while self._flushing is not None:
            # One write at a time; what arrived meanwhile goes in the next.
            await self._flushing
        pending, self._pending = self._pending, {}
        rows = [(at, at + self.ttl, gen, sid) for sid, (gen, at) in pending.items()]
        now = self.clock.seconds()
        since = self._revokedSince
        if since is None:
            since = now - REVOKED_LOOKBACK
        self._flushing = Deferred()
        try:
            revoked = await self.sqlLogins.flushRefreshes(rows, since)
            await self._markRevoked(revoked, now)
        except Exception as e:
            for sid, entry in pending.items():
                newer = self._pending.get(sid)
                if newer is None or newer[0] < entry[0]:
                    self._pending[sid] = entry
            self.log.warn("cannot write {count} login refresh(es) to SQL, kept for the "
                          "next try: {why}", count=len(rows), why=e)
        else:
            self._revokedSince = now - REVOKED_LOOKBACK
            if rows:
                self.log.debug("wrote {count} login refresh(es) to SQL", count=len(rows))
        finally:
            done, self._flushing = self._flushing, None
            done.callback(None)

    async def _markRevoked(self, revoked, now):
        """Mark in the volatile store the logins SQL says were revoked lately."""
        byReason = {}
        for sid, reason, at in revoked:
            if sid not in self._marked:
                byReason.setdefault(reason or "revoked", []).append(sid)
        for reason, sids in byReason.items():
            await endLoginRecords(self.volatile, sids, reason)
            self.log.info("marked {count} login(s) revoked in SQL ({reason}) in the "
                          "volatile store", count=len(sids), reason=reason)
        self._marked.update((sid, at) for sid, _, at in revoked)
        horizon = now - 2 * REVOKED_LOOKBACK
        for sid in [s for s, at in self._marked.items() if at < horizon]:
            del self._marked[sid]

    def start(self):
        """Flush every C{flushEvery} seconds."""
        self._loop = LoopingCall(self.flush)
        self._loop.clock = self.clock
        self._loop.start(self.flushEvery, now=False)

    def stop(self):
        """Stop the periodic flush and write what is left; @return: a Deferred."""
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        return self.flush()
