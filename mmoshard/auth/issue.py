"""Issuing tokens cheaply: refresh tokens as an HMAC of "sid.gen", access tokens byte for byte as pyjwt signs them."""

import base64
import hashlib
import hmac
import json

from mmoshard.tokens import signingKey

# A label distinct from the access-token key's, so neither key can stand in
# for the other (a refresh secret is never a valid access-token signature).
_REFRESH_LABEL = b"mmoshard refresh token v1"
# Bounds on what a presented token may hold before any HMAC is computed.
_MAX_SID = 32
_MAX_GEN_DIGITS = 15
_SID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

_b64 = base64.urlsafe_b64encode
_new = hmac.new
_sha256 = hashlib.sha256


def refreshKey(key):
    """@return: the 32-byte refresh-token HMAC key derived from the configured secret."""
    if isinstance(key, str):
        key = key.encode("utf-8")
    return hmac.new(key, _REFRESH_LABEL, hashlib.sha256).digest()


def _secret(rkey, sid, gen):
    return _b64(_new(rkey, b"%s.%d" % (sid.encode("ascii"), gen), _sha256).digest()).rstrip(b"=")


def issueRefreshToken(rkey, sid, gen):
    """@return: the refresh token C{"{sid}.{gen}.{secret}"} of generation C{gen} of login C{sid}."""
    return f"{sid}.{gen}.{_secret(rkey, sid, gen).decode('ascii')}"


def parseRefreshToken(rkey, token):
    """
    Check a presented refresh token's form and secret (pure CPU, constant
    time in the secret).

    @return: (sid, gen) when the secret is the one this key makes for that
        sid and generation, else None.  Only this key's holder can make a
        token that passes, so a failure here proves nothing about the
        login and must never revoke it.
    """
    if type(token) is not str or not token.isascii():
        return None
    sid, dot, rest = token.partition(".")
    genText, dot2, secret = rest.partition(".")
    if not (dot and dot2 and sid and secret) or len(sid) > _MAX_SID:
        return None
    # Canonical decimal only, so each (sid, gen) has exactly one spelling.
    if not (genText.isdigit() and len(genText) <= _MAX_GEN_DIGITS) or (
        genText[0] == "0" and len(genText) > 1
    ):
        return None
    if not _SID_CHARS.issuperset(sid):
        return None
    gen = int(genText)
    if not hmac.compare_digest(_secret(rkey, sid, gen), secret.encode("ascii")):
        return None
    return sid, gen


# -- access tokens --------------------------------------------------------------
#
# pyjwt's encode costs ~30 us (option handling, key preparation, a generic
# algorithm lookup); this makes the same bytes for our one algorithm and
# header in a few microseconds.  A test compares it with jwt.encode.

_HEADER = _b64(
    json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":"), sort_keys=True).encode()
).rstrip(b"=") + b"."
_dumps = json.JSONEncoder(separators=(",", ":")).encode


class AccessTokenIssuer:
    """
    Signs access tokens as L{mmoshard.tokens.issueAccessToken} does, with
    the signing key derived once.
    """

    def __init__(self, key):
        self._signing = signingKey(key)

    def issue(self, accountId, sid, ttl, now, flags=(), username=None):
        """@return: the HS256 JWT (str); arguments as for C{issueAccessToken}."""
        payload = {
            "sub": str(int(accountId)),
            "sid": str(sid),
            "iat": float(now),
            "exp": float(now) + float(ttl),
            "flags": sorted(flags),
        }
        if username is not None:
            payload["name"] = username
        signed = _HEADER + _b64(_dumps(payload).encode()).rstrip(b"=")
        signature = _b64(_new(self._signing, signed, _sha256).digest()).rstrip(b"=")
        return (signed + b"." + signature).decode("ascii")
