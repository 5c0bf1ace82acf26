"""Tests for mmoshard.tokens: signing, expiry and revocation."""

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from mmoshard.tokens import (
    Claims,
    InvalidToken,
    TokenVerifier,
    decode,
    issueAccessToken,
    revokeAccount,
    revokeLogin,
)
from mmoshard.wire.test.helpers import KEY, makeVolatile


class DecodeTests(TestCase):
    def test_roundTrip(self):
        token = issueAccessToken(KEY, 42, "s1", 60, 1000.0, flags=("operator",), username="ann")
        claims = decode(KEY, token, 1001.0)
        self.assertEqual(
            claims,
            Claims(account_id=42, sid="s1", exp=1060.0, iat=1000.0,
                   flags=frozenset({"operator"}), username="ann"),
        )
        self.assertTrue(claims.has("operator"))

    def test_expired(self):
        token = issueAccessToken(KEY, 42, "s1", 60, 1000.0)
        e = self.assertRaises(InvalidToken, decode, KEY, token, 1060.0)
        self.assertEqual(e.reason, "expired")

    def test_forged(self):
        token = issueAccessToken("another-key-0123456789", 42, "s1", 60, 1000.0)
        e = self.assertRaises(InvalidToken, decode, KEY, token, 1001.0)
        self.assertEqual(e.reason, "bad signature")

    def test_tampered(self):
        token = issueAccessToken(KEY, 42, "s1", 60, 1000.0)
        head, body, sig = token.split(".")
        other = issueAccessToken(KEY, 43, "s1", 60, 1000.0).split(".")[1]
        self.assertRaises(InvalidToken, decode, KEY, f"{head}.{other}.{sig}", 1001.0)

    def test_malformed(self):
        for bad in ["", "x", "a.b.c", None, 12, b"\xff", "a" * 5000]:
            e = self.assertRaises(InvalidToken, decode, KEY, bad, 0.0)
            self.assertEqual(e.reason, "malformed")


class VerifierTests(TestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1000)
        self.volatile = makeVolatile(self.clock)
        self.verifier = TokenVerifier(KEY, self.volatile, self.clock)

    def test_valid(self):
        token = issueAccessToken(KEY, 7, "s7", 60, self.clock.seconds())
        claims = self.successResultOf(self.verifier.verify(token))
        self.assertEqual(claims.account_id, 7)

    def test_expiredByClock(self):
        token = issueAccessToken(KEY, 7, "s7", 60, self.clock.seconds())
        self.clock.advance(61)
        f = self.failureResultOf(self.verifier.verify(token), InvalidToken)
        self.assertEqual(f.value.reason, "expired")

    def test_loginRevoked(self):
        token = issueAccessToken(KEY, 7, "s7", 60, self.clock.seconds())
        other = issueAccessToken(KEY, 7, "s8", 60, self.clock.seconds())
        self.successResultOf(revokeLogin(self.volatile, "s7", 60))
        f = self.failureResultOf(self.verifier.verify(token), InvalidToken)
        self.assertEqual(f.value.reason, "revoked")
        self.successResultOf(self.verifier.verify(other))

    def test_accountRevoked(self):
        old = issueAccessToken(KEY, 7, "s7", 600, self.clock.seconds())
        self.clock.advance(1)
        self.successResultOf(revokeAccount(self.volatile, 7, self.clock.seconds(), 600))
        self.failureResultOf(self.verifier.verify(old), InvalidToken)
        self.clock.advance(1)
        fresh = issueAccessToken(KEY, 7, "s9", 600, self.clock.seconds())
        self.successResultOf(self.verifier.verify(fresh))
        otherAccount = issueAccessToken(KEY, 8, "s1", 600, self.clock.seconds() - 5)
        self.successResultOf(self.verifier.verify(otherAccount))
