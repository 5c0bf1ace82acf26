"""Issuing tokens cheaply: refresh tokens as an HMAC of "sid.gen", access tokens byte for byte as pyjwt signs them."""

import hashlib
import hmac
import json
import re
from json.encoder import encode_basestring_ascii

from mmoshard.tokens import HMACSHA256, b64url, signingKey

# A label distinct from the access-token key's, so neither key can stand in
# for the other (a refresh secret is never a valid access-token signature).
_REFRESH_LABEL = b"mmoshard refresh token v1"
# What a presented token must look like before any HMAC is computed: a
# base64url login id of at most 32 characters, a generation in canonical
# decimal (so each (sid, gen) has exactly one spelling) of at most 15
# digits, and the 43 characters of an unpadded base64url SHA-256 MAC.
_TOKEN = re.compile(r"([A-Za-z0-9_-]{1,32})\.(0|[1-9][0-9]{0,14})\.([A-Za-z0-9_-]{43})")



def refreshKey(key):
    """@return: the 32-byte refresh-token HMAC key derived from the configured secret."""
    if isinstance(key, str):
        key = key.encode("utf-8")
    return hmac.new(key, _REFRESH_LABEL, hashlib.sha256).digest()


def refreshMAC(key):
    """@return: the L{HMACSHA256} refresh tokens are made and checked with, for the configured secret."""
    # A refresh token's MAC'd "sid.gen" is under a block.
    return HMACSHA256(refreshKey(key), short=True)


def _macText(mac, message):
    """@return: the unpadded base64url (str) of C{message}'s 32-byte MAC."""
    return b64url(mac(message)).decode("ascii")


def issueRefreshToken(mac, sid, gen):
    """
    @param mac: the L{HMACSHA256} of the refresh key (L{refreshMAC}).
    @return: the refresh token C{"{sid}.{gen}.{secret}"} of generation
        C{gen} of login C{sid}: the secret is the MAC of C{"{sid}.{gen}"}.
    """
    signed = f"{sid}.{int(gen)}"
    return f"{signed}.{_macText(mac, signed.encode('ascii'))}"


def parseRefreshToken(mac, token):
    """
    Check a presented refresh token's form and secret (pure CPU, constant
    time in the secret).

    @return: (sid, gen) when the secret is the one this key makes for that
        sid and generation, else None.  Only this key's holder can make a
        token that passes, so a failure here proves nothing about the
        login and must never revoke it.
    """
    match = _TOKEN.fullmatch(token) if type(token) is str else None
    if match is None:
        return None
    # The pattern admits one spelling of each (sid, gen), so the MAC'd
    # "{sid}.{gen}" is the token less its "." and 43-character secret; both
    # are ASCII, which compare_digest takes as str.
    if not hmac.compare_digest(_macText(mac, token[:-44].encode("ascii")), token[-43:]):
        return None
    return match[1], int(match[2])


# -- access tokens --------------------------------------------------------------
#
# pyjwt's encode costs ~30 us (option handling, key preparation, a generic
# algorithm lookup, a JSONEncoder per call); this makes the same bytes for
# our one algorithm, header and claim set in a few microseconds: the payload
# is written out in json.dumps's order and spelling (strings escaped by
# json's own ASCII escaper, floats as repr).  A test compares it with
# jwt.encode.

_HEADER = b64url(
    json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":"), sort_keys=True).encode()
) + b"."
_dumps = json.JSONEncoder(separators=(",", ":")).encode
# A str as json.dumps writes it (ASCII, escaped).
jsonString = encode_basestring_ascii


def jsonNumber(x):
    """@return: the float C{x} as json.dumps writes it."""
    # json writes the non-finite floats its own way (Infinity, NaN); x - x
    # is 0 for every finite float and NaN for the others.
    return repr(x) if x - x == 0 else _dumps(x)


class AccessTokenIssuer:
    """
    Signs access tokens as L{mmoshard.tokens.issueAccessToken} does, with
    the signing key derived once.
    """

    def __init__(self, key):
        self._mac = HMACSHA256(signingKey(key))
        # The last (now, ttl) given, as the objects given, and their claims'
        # spellings: a float's repr costs as much as a third of the rest of
        # a token, and the refreshes of one store round trip share one now.
        self._times = (None, None, "", "")

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
        """@return: the HS256 JWT (str); arguments as for C{issueAccessToken}."""
        iat, exp = self.times(now, ttl)
        return self.issueAt(accountId, jsonString(str(sid)), iat, exp, flags,
                            None if username is None else jsonString(username))

    def issueAt(self, accountId, sidJSON, iat, exp, flags=(), usernameJSON=None):
        """
        @return: the HS256 JWT (str), given its claims C{sid}, C{iat},
            C{exp} and C{name} as JSON spells them (L{jsonString},
            L{times}): a token answer spells sid and name too.
        """
        payload = '{"sub":"%d","sid":%s,"iat":%s,"exp":%s,"flags":[%s]%s}' % (
            int(accountId), sidJSON, iat, exp,
            ",".join([jsonString(f) for f in sorted(flags)]) if flags else "",
            "" if usernameJSON is None else ',"name":' + usernameJSON,
        )
        signed = _HEADER + b64url(payload.encode())
        signature = b64url(self._mac(signed))
        return (signed + b"." + signature).decode("ascii")
