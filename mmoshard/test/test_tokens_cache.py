"""Tests for the token verifier's cache of verified tokens: expiry, revocation and staleness still hold for cached tokens, and the cache stays bounded."""

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from mmoshard import tokens
from mmoshard.store.errors import VolatileUnavailable
from mmoshard.store.volatile import MemoryStore
from mmoshard.tokens import InvalidToken, TokenVerifier, issueAccessToken, revokeAccount, revokeLogin

KEY = "cache-test-key-0123456789abcdef"


class VerifiedTokenCacheTests(TestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1_000_000)
        self.store = MemoryStore(self.clock, "test:")
        self.store.open()
        self.addCleanup(self.store.close)
        self.decoded = []
        realDecode = tokens._decode

        def countingDecode(signing, token, now):
            self.decoded.append(token)
            return realDecode(signing, token, now)

        self.patch(tokens, "_decode", countingDecode)

    def started(self, **kw):
        verifier = TokenVerifier(KEY, self.store, self.clock, **kw)
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
        verifier = self.started()
        token = self.token()
        first = self.successResultOf(verifier.verify(token))
        second = self.successResultOf(verifier.verify(token))
        self.assertEqual(first, second)
        self.assertEqual((second.account_id, second.sid), (7, "s7"))
        self.assertEqual(self.decoded, [token])

    def test_expired_refused_when_cached(self):
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
        verifier = self.started()
        token = self.token(accountId=9, sid="a")
        self.successResultOf(verifier.verify(token))
        self.clock.advance(1)
        self.successResultOf(revokeAccount(self.store, 9, self.clock.seconds(), 600))
        self.clock.advance(0)
        self.assertEqual(self.refusal(verifier, token).reason, "revoked")

    def test_fails_closed_when_stale_even_when_cached(self):
        verifier = self.started(interval=3600.0, staleAfter=30.0)
        token = self.token(ttl=600.0)
        self.successResultOf(verifier.verify(token))
        self.clock.advance(31)
        self.assertIsInstance(self.refusal(verifier, token), VolatileUnavailable)

    def test_only_the_exact_token_hits(self):
        verifier = self.started()
        token = self.token()
        self.successResultOf(verifier.verify(token))
        head, payload, signature = token.split(".")
        forged = f"{head}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
        self.assertEqual(self.refusal(verifier, forged).reason, "bad signature")
        self.assertEqual(self.decoded, [token, forged])

    def test_refused_tokens_not_cached(self):
        verifier = self.started()
        forged = issueAccessToken("another-key-0123456789", 7, "s7", 60, self.clock.seconds())
        for _ in range(2):
            self.assertEqual(self.refusal(verifier, forged).reason, "bad signature")
        self.assertEqual(self.decoded, [forged, forged])
        self.assertEqual(verifier._verified, {})

    def test_bounded(self):
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
        verifier = self.started(cacheSize=0)
        token = self.token()
        self.successResultOf(verifier.verify(token))
        self.successResultOf(verifier.verify(token))
        self.assertEqual(self.decoded, [token, token])
        self.assertEqual(verifier._verified, {})

    def test_bytes_and_odd_tokens(self):
        verifier = self.started()
        token = self.token()
        self.assertEqual(self.successResultOf(verifier.verify(token.encode())).sid, "s7")
        for bad in (None, 12, ["a"]):
            self.assertEqual(self.refusal(verifier, bad).reason, "malformed")


class LeanPrimitivesTests(TestCase):
    """The verifier's own HMAC and base64url give what the standard library gives."""

    def test_hmac_sha256(self):
        import hashlib
        import hmac
        import os

        for size in (0, 1, 31, 32, 63, 64, 65, 200):
            key = os.urandom(size)
            mac = tokens.HMACSHA256(key)
            for message in (b"", b"a", os.urandom(63), os.urandom(64), os.urandom(1000)):
                self.assertEqual(mac.digest(message), hmac.new(key, message, hashlib.sha256).digest())
            # The precomputed states are not consumed by a digest.
            self.assertEqual(mac.digest(b"again"), hmac.new(key, b"again", hashlib.sha256).digest())

    def test_base64url(self):
        import base64
        import binascii

        for segment in ("", "e30", "eyJhbGciOiJIUzI1NiJ9", "-_-_", "ab", "a", "a$b=c", "YQ=", "YWJj"):
            padded = segment + "=" * (-len(segment) % 4)
            try:
                expected = base64.urlsafe_b64decode(padded)
            except binascii.Error as e:
                self.assertRaises(type(e), tokens._unb64, segment)
            else:
                self.assertEqual(tokens._unb64(segment), expected, segment)
