"""Tests for the token verifier's cache of verified tokens: expiry, revocation and staleness still hold for cached tokens, and the cache stays bounded."""

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from mmoshard.revocations import revokeAccount, revokeLogin
from mmoshard.store.errors import VolatileUnavailable
from mmoshard.testing import openMemoryStore
from mmoshard.tokens import InvalidToken, TokenVerifier, b64url, issueAccessToken, unb64url

KEY = "cache-test-key-0123456789abcdef"


class VerifiedTokenCacheTests(TestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1_000_000)
        self.store = openMemoryStore(self, self.clock, "test:")
        self.decoded = []

    def started(self, **kw):
        """@return: a started verifier whose decodes (signature checks) are listed in C{self.decoded}."""
        verifier = TokenVerifier(KEY, self.store, self.clock, **kw)
        realDecode = verifier.accessTokens.decode

        def countingDecode(token, now):
            self.decoded.append(token)
            return realDecode(token, now)

        self.patch(verifier.accessTokens, "decode", countingDecode)
        self.successResultOf(verifier.start())
        self.addCleanup(verifier.stop)
        return verifier

    def token(self, accountId=7, sid="s7", ttl=60.0, iat=None):
        iat = self.clock.seconds() if iat is None else iat
        return issueAccessToken(KEY, accountId, sid, ttl, iat)

    def refusal(self, verifier, token):
        """@return: the exception a verification failed with (it must fail)."""
        return self.failureResultOf(verifier.verify(token)).value

    def test_second_verification_skips_decoding(self):
        """Verifying the same token again gives the same claims without decoding it again."""
        verifier = self.started()
        token = self.token()
        first = self.successResultOf(verifier.verify(token))
        second = self.successResultOf(verifier.verify(token))
        self.assertEqual(first, second)
        self.assertEqual((second.account_id, second.sid), (7, "s7"))
        self.assertEqual(self.decoded, [token])

    def test_expired_refused_when_cached(self):
        """A cached token is refused as expired once the clock reaches its expiry."""
        verifier = self.started()
        token = self.token(ttl=60.0)
        self.successResultOf(verifier.verify(token))
        self.clock.advance(59.5)
        self.successResultOf(verifier.verify(token))
        self.clock.advance(0.5)
        e = self.refusal(verifier, token)
        self.assertIsInstance(e, InvalidToken)
        self.assertEqual(e.reason, "expired")
        # Still refused afterwards, whether or not it is still cached.
        self.assertEqual(self.refusal(verifier, token).reason, "expired")

    def test_revoked_login_refused_when_cached(self):
        """A cached token of a login revoked since is refused; another login's cached token still passes."""
        verifier = self.started()
        token, other = self.token(sid="s7"), self.token(sid="s8")
        self.successResultOf(verifier.verify(token))
        self.successResultOf(verifier.verify(other))
        self.successResultOf(revokeLogin(self.store, "s7", 600, now=self.clock.seconds()))
        self.clock.advance(0)
        self.assertEqual(self.refusal(verifier, token).reason, "revoked")
        self.assertEqual(self.successResultOf(verifier.verify(other)).sid, "s8")
        self.assertEqual(sorted(self.decoded), sorted([token, other]))

    def test_revoked_account_refused_when_cached(self):
        """A cached token of an account revoked since is refused."""
        verifier = self.started()
        token = self.token(accountId=9, sid="a")
        self.successResultOf(verifier.verify(token))
        self.clock.advance(1)
        self.successResultOf(revokeAccount(self.store, 9, self.clock.seconds(), 600))
        self.clock.advance(0)
        self.assertEqual(self.refusal(verifier, token).reason, "revoked")

    def test_fails_closed_when_stale_even_when_cached(self):
        """A cached token is refused with VolatileUnavailable once revocations are stale."""
        verifier = self.started(interval=3600.0, staleAfter=30.0)
        token = self.token(ttl=600.0)
        self.successResultOf(verifier.verify(token))
        self.clock.advance(31)
        self.assertIsInstance(self.refusal(verifier, token), VolatileUnavailable)

    def test_only_the_exact_token_hits(self):
        """A token differing from a cached one in its signature is decoded afresh and refused."""
        verifier = self.started()
        token = self.token()
        self.successResultOf(verifier.verify(token))
        head, payload, signature = token.split(".")
        forged = f"{head}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
        self.assertEqual(self.refusal(verifier, forged).reason, "bad signature")
        self.assertEqual(self.decoded, [token, forged])

    def test_refused_tokens_not_cached(self):
        """A forged token is decoded (and refused) every time, never cached."""
        verifier = self.started()
        forged = issueAccessToken("another-key-0123456789", 7, "s7", 60, self.clock.seconds())
        for _ in range(2):
            self.assertEqual(self.refusal(verifier, forged).reason, "bad signature")
        self.assertEqual(self.decoded, [forged, forged])
        self.assertEqual(verifier._verified, {})

    def test_bounded(self):
        """The cache never holds more than cacheSize tokens, and tokens dropped from it still verify."""
        verifier = self.started(cacheSize=3)
        issued = [self.token(sid=f"s{i}") for i in range(10)]
        for token in issued:
            self.successResultOf(verifier.verify(token))
            self.assertLessEqual(len(verifier._verified), 3)
        # Whatever was dropped is verified again, not refused.
        for token in issued:
            self.successResultOf(verifier.verify(token))
            self.assertLessEqual(len(verifier._verified), 3)
        self.assertGreater(len(self.decoded), 10)

    def test_disabled(self):
        """With cacheSize 0 every verification decodes and nothing is cached."""
        verifier = self.started(cacheSize=0)
        token = self.token()
        self.successResultOf(verifier.verify(token))
        self.successResultOf(verifier.verify(token))
        self.assertEqual(self.decoded, [token, token])
        self.assertEqual(verifier._verified, {})

    def test_bytes_and_odd_tokens(self):
        """A token given as bytes verifies; None, numbers and lists are refused as malformed."""
        verifier = self.started()
        token = self.token()
        self.assertEqual(self.successResultOf(verifier.verify(token.encode())).sid, "s7")
        for bad in (None, 12, ["a"]):
            self.assertEqual(self.refusal(verifier, bad).reason, "malformed")


class Base64URLTests(TestCase):
    """The tokens' base64url helpers give what the standard library gives."""

    def test_decode(self):
        """unb64url decodes (or refuses) unpadded segments as base64.urlsafe_b64decode does padded ones."""
        import base64
        import binascii

        for segment in ("", "e30", "eyJhbGciOiJIUzI1NiJ9", "-_-_", "ab", "a", "a$b=c", "YQ=", "YWJj"):
            padded = segment + "=" * (-len(segment) % 4)
            try:
                expected = base64.urlsafe_b64decode(padded)
            except binascii.Error as e:
                self.assertRaises(type(e), unb64url, segment)
            else:
                self.assertEqual(unb64url(segment), expected, segment)

    def test_encode(self):
        """b64url is base64.urlsafe_b64encode without its padding, and unb64url reads it back."""
        import base64
        import os

        for size in range(0, 70):
            data = os.urandom(size)
            self.assertEqual(b64url(data), base64.urlsafe_b64encode(data).rstrip(b"="))
            self.assertEqual(unb64url(b64url(data).decode()), data)
