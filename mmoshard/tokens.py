"""Tokens: one HMAC-SHA256 signer for every token, the HS256 JWT access tokens and refresh tokens made and checked with it, and the verifier every process checks access tokens with."""

import binascii
import hashlib
import hmac
import json
import re
import secrets
from json.encoder import encode_basestring_ascii

import attrs
from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from zope.interface import implementer

from mmoshard.interfaces import ITokenVerifier
from mmoshard.revocations import (
    REVOCATION_CHANNEL,
    REVOCATION_SEQ,
    REVOKED_ACCOUNTS,
    REVOKED_SIDS,
    SNAPSHOT,
    readAnnouncement,
    readSnapshot,
)
from mmoshard.store.errors import VolatileUnavailable
from mmoshard.store.follow import Follower

ALGORITHM = "HS256"
MAX_TOKEN_LENGTH = 4096
# The configured secret is stretched into one fixed 32-byte HMAC key per kind
# of token: a short (16-character) config value still meets RFC 7518's key
# length for HS256, the same secret used elsewhere never signs tokens
# directly, and neither kind's signature is ever valid as the other's.
_ACCESS_LABEL = b"mmoshard access token v1"
_REFRESH_LABEL = b"mmoshard refresh token v1"


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


def _deriveKey(secret, label):
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    return hmac.new(secret, label, hashlib.sha256).digest()


def signingKey(secret):
    """@return: the 32-byte access-token (JWT) HMAC key derived from the configured secret."""
    return _deriveKey(secret, _ACCESS_LABEL)


def refreshKey(secret):
    """@return: the 32-byte refresh-token HMAC key derived from the configured secret."""
    return _deriveKey(secret, _REFRESH_LABEL)


def newLoginId():
    """@return: a fresh, unguessable login id for C{sid}."""
    return secrets.token_urlsafe(16)


# base64url through binascii directly: what base64.urlsafe_b64decode and
# urlsafe_b64encode do, without their argument checks on every token.
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")


def b64url(data):
    """@return: the unpadded base64url (bytes) of C{data}, as JWT segments spell it."""
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=")


def unb64url(segment):
    """@return: the bytes of the (unpadded) base64url str C{segment}; @raise binascii.Error: when not."""
    return binascii.a2b_base64((segment + "=" * (-len(segment) % 4)).encode("ascii").translate(_FROM_URLSAFE))


class Signer:
    """
    The one signer of every token: C{"<signed>.<base64url HMAC-SHA256 of
    signed>"}, as both JWTs (signed: header.payload) and refresh tokens
    (signed: sid.gen) end.  The standard library's C{hmac} with the key's
    padded states prepared once (L{hmac.HMAC.copy}).
    """

    def __init__(self, key):
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def sign(self, signed):
        """@return: the unpadded base64url (bytes) of the MAC of C{signed} (bytes)."""
        mac = self._keyed.copy()
        mac.update(signed)
        return b64url(mac.digest())

    def seal(self, signed):
        """@return: the token (str) C{signed} (bytes) with its signature."""
        return (signed + b"." + self.sign(signed)).decode("ascii")

    def check(self, signed, signature):
        """
        @param signature: the presented signature (ASCII str).
        @return: whether it is the signature of C{signed}, compared in
            constant time as base64url text, which also refuses every other
            spelling of the same bytes.
        """
        return hmac.compare_digest(self.sign(signed), signature.encode("ascii"))


# -- access tokens: HS256 JWTs --------------------------------------------------
#
# Written out here rather than by pyjwt (whose encode and decode cost ~30 and
# ~45 us a call: option handling, key preparation, a generic algorithm lookup):
# the header and claim set are ours, always the same shape.  The payload is
# spelled as json.dumps spells it (strings escaped by json's own ASCII escaper,
# floats as repr), so the token is byte for byte what jwt.encode makes, and
# the check takes exactly what jwt.decode takes among well-formed tokens with
# our claims (tests compare both with pyjwt).

_HEADER = b64url(json.dumps({"alg": ALGORITHM, "typ": "JWT"}, separators=(",", ":")).encode()) + b"."
_HEADER_KEYS = frozenset({"alg", "typ", "kid"})
_dumps = json.JSONEncoder(separators=(",", ":")).encode
# A str as json.dumps writes it (ASCII, escaped).
jsonString = encode_basestring_ascii


def jsonNumber(x):
    """@return: the float C{x} as json.dumps writes it."""
    # json writes the non-finite floats its own way (Infinity, NaN); x - x
    # is 0 for every finite float and NaN for the others.
    return repr(x) if x - x == 0 else _dumps(x)


class AccessTokens:
    """The access tokens (HS256 JWTs) of one configured secret: the one encoder and the one check."""

    def __init__(self, secret):
        self._signer = Signer(signingKey(secret))
        # The last (now, ttl) given, as the objects given, and their claims'
        # spellings: a float's repr costs as much as a third of the rest of
        # a token, and the refreshes of one store round trip share one now.
        self._times = (None, None, "", "")
        # Header segments already seen to say {"alg": "HS256"} and nothing we refuse.
        self._goodHeaders = {_HEADER[:-1].decode()}

    def times(self, now, ttl):
        """@return: the C{iat} and C{exp} claims (JSON text) of a token issued at C{now} for C{ttl} s."""
        last = self._times
        # Identity, not equality: 0.0 == -0.0, but they are spelled apart.
        if now is last[0] and ttl is last[1]:
            return last[2], last[3]
        at = float(now)
        iat, exp = jsonNumber(at), jsonNumber(at + float(ttl))
        self._times = (now, ttl, iat, exp)
        return iat, exp

    def issue(self, accountId, sid, ttl, now, flags=(), username=None):
        """
        Sign an access token for C{accountId}.

        @param sid: the login id; revoking it revokes the token.
        @param ttl: lifetime in seconds from C{now}.
        @param now: the current time (seconds since the epoch, from the clock).
        @return: the token (str).
        """
        iat, exp = self.times(now, ttl)
        return self.issueAt(accountId, jsonString(str(sid)), iat, exp, flags,
                            None if username is None else jsonString(username))

    def issueAt(self, accountId, sidJSON, iat, exp, flags=(), usernameJSON=None):
        """
        @return: the token (str), given its claims C{sid}, C{iat}, C{exp}
            and C{name} as JSON spells them (L{jsonString}, L{times}): a
            token answer spells sid and name too.
        """
        payload = '{"sub":"%d","sid":%s,"iat":%s,"exp":%s,"flags":[%s]%s}' % (
            int(accountId), sidJSON, iat, exp,
            ",".join([jsonString(f) for f in sorted(flags)]) if flags else "",
            "" if usernameJSON is None else ',"name":' + usernameJSON,
        )
        return self._signer.seal(_HEADER + b64url(payload.encode()))

    def decode(self, token, now):
        """
        Check the signature and expiry of C{token} (no revocation check).

        @return: the L{Claims}.
        @raise InvalidToken: when malformed, forged or expired.
        """
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
        self._checkHeader(head)
        if not self._signer.check(token[: len(head) + 1 + len(payloadSeg)].encode("ascii"), sigSeg):
            raise InvalidToken("bad signature")
        try:
            payload = json.loads(unb64url(payloadSeg))
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

    def _checkHeader(self, segment):
        if segment in self._goodHeaders:
            return
        try:
            header = json.loads(unb64url(segment))
        except (ValueError, binascii.Error):
            raise InvalidToken("malformed")
        # "crit" and "b64" change how the token must be read; we use neither.
        if (
            not isinstance(header, dict)
            or header.get("alg") != ALGORITHM
            or not _HEADER_KEYS.issuperset(header)
        ):
            raise InvalidToken("malformed")
        if len(self._goodHeaders) < 16:
            self._goodHeaders.add(segment)


def issueAccessToken(secret, accountId, sid, ttl, now, flags=(), username=None):
    """Sign one access token with the configured C{secret}; see L{AccessTokens.issue}."""
    return AccessTokens(secret).issue(accountId, sid, ttl, now, flags, username)


def decode(secret, token, now):
    """Check one access token with the configured C{secret}; see L{AccessTokens.decode}."""
    return AccessTokens(secret).decode(token, now)


# -- refresh tokens: "{sid}.{gen}.{secret}" ---------------------------------------
#
# What a presented token must look like before any HMAC is computed: a
# base64url login id of at most 32 characters, a generation in canonical
# decimal (so each (sid, gen) has exactly one spelling) of at most 15
# digits, and the 43 characters of an unpadded base64url SHA-256 MAC.
_REFRESH = re.compile(r"([A-Za-z0-9_-]{1,32})\.(0|[1-9][0-9]{0,14})\.([A-Za-z0-9_-]{43})")


class RefreshTokens:
    """The refresh tokens of one configured secret: generation C{gen} of login C{sid} is C{"{sid}.{gen}.{MAC of sid.gen}"}."""

    def __init__(self, secret):
        self._signer = Signer(refreshKey(secret))

    def issue(self, sid, gen):
        """@return: the refresh token of generation C{gen} of login C{sid}."""
        return self._signer.seal(f"{sid}.{int(gen)}".encode("ascii"))

    def parse(self, token):
        """
        Check a presented refresh token's form and secret (pure CPU, constant
        time in the secret).

        @return: (sid, gen) when the secret is the one this key makes for that
            sid and generation, else None.  Only this key's holder can make a
            token that passes, so a failure here proves nothing about the
            login and must never revoke it.
        """
        match = _REFRESH.fullmatch(token) if type(token) is str else None
        # The pattern admits one spelling of each (sid, gen), so the signed
        # "{sid}.{gen}" is the token less its "." and 43-character secret.
        if match is None or not self._signer.check(token[:-44].encode("ascii"), match[3]):
            return None
        return match[1], int(match[2])


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
        self.accessTokens = AccessTokens(key)
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
                claims = self.accessTokens.decode(token, now)
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
            seq, sids, accounts = readSnapshot(result)
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
            seq, sids, accounts, reason = readAnnouncement(message)
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
