"""Access tokens: HS256 JWTs any process can verify, with revocation kept in the volatile store."""

import hashlib
import hmac
import secrets

import attrs
import jwt
from twisted.internet.defer import Deferred
from zope.interface import implementer

from mmoshard.interfaces import ITokenVerifier

ALGORITHM = "HS256"
# The configured secret is stretched into a fixed 32-byte HMAC key so a short
# (16-character) config value still meets RFC 7518's key length for HS256,
# and so the same secret used elsewhere never signs tokens directly.
_KEY_LABEL = b"mmoshard access token v1"


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
    Sign an access token for C{accountId}.

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


def decode(key, token, now):
    """
    Check the signature and expiry of C{token} (no revocation check).

    @return: the L{Claims}.
    @raise InvalidToken: when malformed, forged or expired.
    """
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidToken("malformed")
    if not isinstance(token, str) or not token or len(token) > 4096:
        raise InvalidToken("malformed")
    try:
        # pyjwt compares the signature in constant time; expiry is checked
        # below against our clock so tests can use a Clock.
        payload = jwt.decode(
            token,
            signingKey(key),
            algorithms=[ALGORITHM],
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_sub": False,
                "require": ["sub", "sid", "exp", "iat"],
            },
        )
    except jwt.InvalidSignatureError:
        raise InvalidToken("bad signature")
    except jwt.PyJWTError:
        raise InvalidToken("malformed")
    try:
        claims = Claims(
            account_id=int(payload["sub"]),
            sid=str(payload["sid"]),
            exp=float(payload["exp"]),
            iat=float(payload["iat"]),
            flags=frozenset(str(f) for f in payload.get("flags", ())),
            username=payload.get("name"),
        )
    except (TypeError, ValueError):
        raise InvalidToken("malformed")
    if claims.exp <= now:
        raise InvalidToken("expired")
    return claims


def loginRevocationKey(sid):
    return f"revoked:sid:{sid}"


def accountRevocationKey(accountId):
    return f"revoked:acct:{int(accountId)}"


def revokeLogin(volatile, sid, ttl):
    """
    Revoke every token of login C{sid} (logout).

    @param ttl: the remaining life of the login's longest-lived token; the
        mark is useless after that.
    @return: a Deferred firing when stored.
    """
    return volatile.set(loginRevocationKey(sid), b"1", ttl=max(float(ttl), 1.0))


def revokeAccount(volatile, accountId, now, ttl):
    """
    Revoke every token of C{accountId} issued at or before C{now} (password
    change, ban).

    @param ttl: the longest access token lifetime.
    @return: a Deferred firing when stored.
    """
    return volatile.set(
        accountRevocationKey(accountId), repr(float(now)), ttl=max(float(ttl), 1.0)
    )


@implementer(ITokenVerifier)
class TokenVerifier:
    """Verifies signature and expiry, then asks the volatile store about revocation."""

    def __init__(self, key, volatile, clock):
        self._key = key
        self.volatile = volatile
        self.clock = clock

    def verify(self, token):
        return Deferred.fromCoroutine(self._verify(token))

    async def _verify(self, token):
        claims = decode(self._key, token, self.clock.seconds())
        await self.checkRevoked(claims)
        return claims

    async def checkRevoked(self, claims):
        """
        @raise InvalidToken: when the login or the account was revoked.
        @raise mmoshard.store.errors.VolatileUnavailable: when the store does
            not answer; callers fail closed.
        """
        if await self.volatile.get(loginRevocationKey(claims.sid)) is not None:
            raise InvalidToken("revoked")
        since = await self.volatile.get(accountRevocationKey(claims.account_id))
        if since is not None:
            try:
                revokedAt = float(since)
            except ValueError:
                # A mark we cannot read still means someone revoked the account.
                raise InvalidToken("revoked")
            if claims.iat <= revokedAt:
                raise InvalidToken("revoked")
