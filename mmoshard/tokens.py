"""Access tokens: HS256 JWTs any process can verify, checked against revocations mirrored in memory from the volatile store."""

import binascii
import hashlib
import hmac
import json
import secrets
import time

import attrs
import jwt
from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from zope.interface import implementer

from mmoshard.interfaces import ITokenVerifier
from mmoshard.store.errors import VolatileUnavailable
from mmoshard.store.follow import Follower
from mmoshard.store.volatile import Script

ALGORITHM = "HS256"
# The configured secret is stretched into a fixed 32-byte HMAC key so a short
# (16-character) config value still meets RFC 7518's key length for HS256,
# and so the same secret used elsewhere never signs tokens directly.
_KEY_LABEL = b"mmoshard access token v1"
MAX_TOKEN_LENGTH = 4096


class InvalidToken(Exception):
    """The token is malformed, forged, expired or revoked; C{reason} says which."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


@attrs.frozen
class Claims:
    """What a verified access token says about its bearer."""

    account_id: int
    sid: str  # the login id: logout revokes every token of one login
    exp: float
    iat: float
    flags: frozenset = frozenset()
    username: str | None = None

    def has(self, flag):
        return flag in self.flags


def signingKey(key):
    """@return: the 32-byte HMAC key derived from the configured secret."""
    if isinstance(key, str):
        key = key.encode("utf-8")
    return hmac.new(key, _KEY_LABEL, hashlib.sha256).digest()


def newLoginId():
    """@return: a fresh, unguessable login id for C{sid}."""
    return secrets.token_urlsafe(16)


def issueAccessToken(key, accountId, sid, ttl, now, flags=(), username=None):
    """
    Sign an access token for C{accountId} (a standard HS256 JWT, made by pyjwt).

    @param key: the shared secret (C{config.secrets.token_key}).
    @param sid: the login id; L{revokeLogin} with it revokes the token.
    @param ttl: lifetime in seconds from C{now}.
    @param now: the current time (seconds since the epoch, from the clock).
    @return: the token (str).
    """
    payload = {
        "sub": str(int(accountId)),
        "sid": str(sid),
        "iat": float(now),
        "exp": float(now) + float(ttl),
        "flags": sorted(flags),
    }
    if username is not None:
        payload["name"] = username
    return jwt.encode(payload, signingKey(key), algorithm=ALGORITHM)


# -- verifying: a lean HS256 check ---------------------------------------------
#
# pyjwt's decode costs ~45 us a call (option merging, warnings, generic
# algorithm lookup); this check does the same for our one algorithm in a few
# microseconds and accepts exactly what pyjwt's decode with our options
# accepts among well-formed tokens (a test compares both).  The signature is
# compared in constant time as its base64url text, which also refuses every
# other spelling of the same bytes.

# base64url through binascii directly: what base64.urlsafe_b64decode and
# urlsafe_b64encode do, without their argument checks on every token.
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_a2b = binascii.a2b_base64
_b2a = binascii.b2a_base64
# Header segments already seen to say {"alg": "HS256"} and nothing we refuse.
_goodHeaders = set()
_HEADER_KEYS = frozenset({"alg", "typ", "kid"})


def _unb64(segment):
    return _a2b((segment + "=" * (-len(segment) % 4)).encode("ascii").translate(_FROM_URLSAFE))


def b64url(data):
    """@return: the unpadded base64url (bytes) of C{data}, as JWT segments spell it."""
    return _b2a(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=")


try:
    # CPython's own SHA-256 (_sha2 from 3.12): for messages of a block or
    # two its copies and digests cost less than OpenSSL's EVP contexts
    # (measured: 9.5k against 11.8k instructions for a refresh token's MAC);
    # OpenSSL's is faster per block, for longer messages.
    from _sha2 import sha256 as _shortSHA256
except ImportError:  # pragma: no cover - depends on the Python version
    try:
        from _sha256 import sha256 as _shortSHA256
    except ImportError:
        _shortSHA256 = hashlib.sha256


class HMACSHA256:
    """
    HMAC-SHA256 (RFC 2104) under one key, with the hash states of the padded
    key computed once: hmac.new redoes them, and more, for every token.
    Call it (or L{digest}) with a message for the 32-byte MAC.

    @param short: messages are short (a block or two): use the SHA-256
        implementation cheapest for those.
    """

    def __init__(self, key, short=False):
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        block = key.ljust(64, b"\0")
        sha256 = _shortSHA256 if short else hashlib.sha256
        self._inner = sha256(bytes(b ^ 0x36 for b in block))
        self._outer = sha256(bytes(b ^ 0x5C for b in block))

    def digest(self, message):
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    __call__ = digest


def _checkHeader(segment):
    if segment in _goodHeaders:
        return
    try:
        header = json.loads(_unb64(segment))
    except (ValueError, binascii.Error):
        raise InvalidToken("malformed")
    # "crit" and "b64" change how the token must be read; we use neither.
    if (
        not isinstance(header, dict)
        or header.get("alg") != ALGORITHM
        or not _HEADER_KEYS.issuperset(header)
    ):
        raise InvalidToken("malformed")
    if len(_goodHeaders) < 16:
        _goodHeaders.add(segment)


def _decode(mac, token, now):
    if type(token) is not str:
        if isinstance(token, bytes):
            try:
                token = token.decode("ascii")
            except UnicodeDecodeError:
                raise InvalidToken("malformed")
        elif not isinstance(token, str):
            raise InvalidToken("malformed")
    if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise InvalidToken("malformed")
    head, dot, rest = token.partition(".")
    payloadSeg, dot2, sigSeg = rest.partition(".")
    if not (dot and dot2 and head and payloadSeg) or "." in sigSeg:
        raise InvalidToken("malformed")
    _checkHeader(head)
    signed = token[: len(head) + 1 + len(payloadSeg)].encode("ascii")
    expected = b64url(mac.digest(signed))
    if not hmac.compare_digest(expected, sigSeg.encode("ascii")):
        raise InvalidToken("bad signature")
    try:
        payload = json.loads(_unb64(payloadSeg))
        claims = Claims(
            account_id=int(payload["sub"]),
            sid=str(payload["sid"]),
            exp=float(payload["exp"]),
            iat=float(payload["iat"]),
            flags=frozenset(str(f) for f in payload.get("flags", ())),
            username=payload.get("name"),
        )
    except (ValueError, TypeError, KeyError, AttributeError, binascii.Error):
        raise InvalidToken("malformed")
    # Expiry against our clock, so tests can use a Clock; NaN never passes.
    if not claims.exp > now:
        raise InvalidToken("expired")
    return claims


def decode(key, token, now):
    """
    Check the signature and expiry of C{token} (no revocation check).

    @return: the L{Claims}.
    @raise InvalidToken: when malformed, forged or expired.
    """
    return _decode(HMACSHA256(signingKey(key)), token, now)


# -- revocations in the volatile store ----------------------------------------
#
# Two sorted sets, both scored by the time after which an entry is useless
# (no token it could refuse is still unexpired), so they are pruned by score:
#   revocations:sids      member: login id              (logout, refresh reuse, password change)
#   revocations:accounts  member: "<account>:<before>"  (ban: tokens with iat <= before)
# and a counter bumped by every revocation.  Each revocation is published on
# the "revocations" channel as b"<counter> <json>", in the same script, so
# subscribers see the counter rise by one per message and know they missed
# something when it jumps.

REVOKED_SIDS = "revocations:sids"
REVOKED_ACCOUNTS = "revocations:accounts"
REVOCATION_SEQ = "revocations:seq"
REVOCATION_CHANNEL = "revocations"


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


def _pairs(flat):
    it = iter(flat)
    return [(_text(member), float(score)) for member, score in zip(it, it)]


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


# -- the verifier --------------------------------------------------------------


@implementer(ITokenVerifier)
class TokenVerifier:
    """
    Verifies signature and expiry, then checks revocation against an
    in-memory mirror of the store's revocations: no store round trip per
    token once started.

    The mirror is fed by the C{revocations} channel (applied as published),
    and read afresh from the store at start, whenever the channel's counter
    shows a gap (a message lost, e.g. across a pub/sub reconnect) and every
    C{interval} seconds (one small call that returns only the counter when
    nothing changed), which bounds how long a lost message can go unseen.

    B{Fails closed}: until the first read succeeded, and whenever no read
    succeeded for C{staleAfter} seconds, L{verify} fails with
    L{VolatileUnavailable}, as a store outage did when every check asked
    the store.

    Entries are only ever added (nothing un-revokes a token) and are
    dropped locally once expired.  Observers added with
    L{addRevocationObserver} hear of every new entry, from the channel or
    from a read, so live sessions can be ended.

    A verifier that was never started (a test fixture, a tool) reads the
    store on every call instead: correct, but one round trip per token.

    Tokens whose signature checked out are kept, up to C{cacheSize} of
    them, with their claims: a client presenting the same token again
    (checks, handshakes and API calls within the token's life) skips the
    decode and the HMAC.  Only the exact token string hits, so a token
    differing in any character (another signature) is decoded afresh.
    Expiry against the clock and revocation are checked on every call,
    cached or not.  The cache is emptied when full, which bounds it without
    bookkeeping on every hit; only validly signed tokens enter it.
    """

    log = Logger()

    def __init__(self, key, volatile, clock, interval=2.0, staleAfter=30.0, cacheSize=4096):
        self._mac = HMACSHA256(signingKey(key))
        self.cacheSize = cacheSize
        # token string -> Claims, for tokens whose signature checked out
        self._verified = {}
        self.volatile = volatile
        self.clock = clock
        self.interval = interval
        self.staleAfter = staleAfter
        # sid -> expiry of the mark
        self.revokedSids = {}
        # account id -> [revoked-before, expiry of the mark]
        self.revokedAccounts = {}
        self.syncedAt = None
        # Every revocation up to this counter value is in the mirror.
        self._through = None
        self._follower = Follower(
            volatile, clock, REVOCATION_CHANNEL, self._sync, interval,
            "token revocations", onMessage=self._received,
        )
        self._observers = []

    # -- ITokenVerifier ---------------------------------------------------

    def verify(self, token):
        now = self.clock.seconds()
        cache = self._verified
        claims = cache.get(token) if type(token) is str else None
        if claims is None:
            try:
                claims = _decode(self._mac, token, now)
            except InvalidToken:
                return fail()
            if type(token) is str and self.cacheSize > 0:
                if len(cache) >= self.cacheSize:
                    cache.clear()
                cache[token] = claims
        elif not claims.exp > now:
            del cache[token]
            return fail(InvalidToken("expired"))
        return self._check(claims, now, claims)

    def checkRevoked(self, claims):
        """
        @return: a Deferred firing with None when C{claims} (of a token
            verified earlier, expired or not) are not revoked, failing with
            L{InvalidToken} when they are, or with L{VolatileUnavailable}
            when revocations cannot be known now.
        """
        return self._check(claims, self.clock.seconds(), None)

    def _check(self, claims, now, result):
        if not self._follower.running:
            return Deferred.fromCoroutine(self._pullAndCheck(claims, result))
        syncedAt = self.syncedAt
        if syncedAt is None or now - syncedAt > self.staleAfter:
            return fail(
                VolatileUnavailable(
                    "token revocations not loaded yet"
                    if syncedAt is None
                    else f"token revocations not refreshed for {now - syncedAt:.0f}s"
                )
            )
        if self.isRevoked(claims):
            return fail(InvalidToken("revoked"))
        return succeed(result)

    async def _pullAndCheck(self, claims, result):
        await self.sync()
        if self.isRevoked(claims):
            raise InvalidToken("revoked")
        return result

    def isRevoked(self, claims):
        """@return: whether the mirror says C{claims} are revoked (no freshness check)."""
        if claims.sid in self.revokedSids:
            return True
        mark = self.revokedAccounts.get(claims.account_id)
        return mark is not None and claims.iat <= mark[0]

    # -- observers ----------------------------------------------------------

    def addRevocationObserver(self, observer):
        """
        Call C{observer(sids, accounts, reason)} for each batch of new
        revocations: C{sids} a set of login ids, C{accounts} a dict of
        account id -> revoked-before time, C{reason} a str or None (when
        found by a read rather than announced).
        """
        self._observers.append(observer)

    def removeRevocationObserver(self, observer):
        if observer in self._observers:
            self._observers.remove(observer)

    def _notify(self, sids, accounts, reason):
        if not (sids or accounts):
            return
        for observer in list(self._observers):
            try:
                observer(sids, accounts, reason)
            except Exception:
                self.log.failure("revocation observer {observer} failed", observer=observer)

    # -- the mirror ---------------------------------------------------------

    def _merge(self, sids, accounts, now):
        """Add entries; @return: (new sids, accounts with a later revoked-before)."""
        newSids = set()
        mirror = self.revokedSids
        for sid, expiry in sids:
            if expiry < now:
                continue
            old = mirror.get(sid)
            if old is None:
                newSids.add(sid)
                mirror[sid] = expiry
            elif old < expiry:
                mirror[sid] = expiry
        newAccounts = {}
        marks = self.revokedAccounts
        for accountId, before, expiry in accounts:
            if expiry < now:
                continue
            mark = marks.get(accountId)
            if mark is None:
                marks[accountId] = [before, expiry]
                newAccounts[accountId] = before
                continue
            if before > mark[0]:
                mark[0] = before
                newAccounts[accountId] = before
            if expiry > mark[1]:
                mark[1] = expiry
        return newSids, newAccounts

    def _prune(self, now):
        for sid in [s for s, expiry in self.revokedSids.items() if expiry < now]:
            del self.revokedSids[sid]
        for accountId in [a for a, mark in self.revokedAccounts.items() if mark[1] < now]:
            del self.revokedAccounts[accountId]

    def sync(self):
        """
        Read the store's revocations into the mirror (one store call; only
        the counter when nothing changed since the last read).

        @return: a Deferred firing when done, or failing with
            L{VolatileUnavailable}.
        """
        return Deferred.fromCoroutine(self._sync())

    async def _sync(self):
        now = self.clock.seconds()
        known = b"" if self._through is None else b"%d" % self._through
        result = await self.volatile.evalScript(
            SNAPSHOT, [REVOCATION_SEQ, REVOKED_SIDS, REVOKED_ACCOUNTS], [known, now]
        )
        try:
            seq = int(result[0])
            if len(result) > 1:
                sids = _pairs(result[1])
                accounts = []
                for member, expiry in _pairs(result[2]):
                    accountId, _, before = member.partition(":")
                    accounts.append((int(accountId), float(before), expiry))
            else:
                sids = accounts = ()
        except (ValueError, TypeError, IndexError) as e:
            raise VolatileUnavailable(f"unreadable token revocations in the store: {e}")
        newSids, newAccounts = self._merge(sids, accounts, now)
        self._prune(now)
        self._through = seq
        self.syncedAt = now
        self._notify(newSids, newAccounts, None)

    def _received(self, channel, message):
        now = self.clock.seconds()
        try:
            head, _, body = message.partition(b" ")
            seq = int(head)
            data = json.loads(body)
            sids = [(str(s), float(e)) for s, e in data.get("sids", {}).items()]
            accounts = [
                (int(a), float(mark[0]), float(mark[1]))
                for a, mark in data.get("accounts", {}).items()
            ]
            reason = data.get("reason")
            if reason is not None and not isinstance(reason, str):
                reason = None
        except (ValueError, TypeError, IndexError, AttributeError):
            self.log.warn("unreadable revocation on {channel}; reading them all", channel=channel)
            self._resyncSoon()
            return
        newSids, newAccounts = self._merge(sids, accounts, now)
        through = self._through
        if through is not None:
            if seq == through + 1:
                self._through = seq
            elif seq > through + 1:
                # Missed one (a pub/sub reconnect, say): read them all.
                self._resyncSoon()
        self._notify(newSids, newAccounts, reason)

    def _resyncSoon(self):
        if self._follower.running:
            self._follower.refresh()

    # -- lifetime -------------------------------------------------------------

    def start(self):
        """
        Subscribe to the channel, read the revocations (waiting for that one
        read, which may fail: verification fails closed until a read
        succeeds) and keep reading every C{interval} seconds.

        @return: a Deferred firing when the first read is done or failed.
        """
        return self._follower.start()

    def stop(self):
        """Stop reading and listening; @return: a Deferred."""
        return self._follower.stop()
