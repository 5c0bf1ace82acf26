"""Tests for mmoshard.tokens' access tokens: signing, expiry, forgery, revocation, and agreement with pyjwt."""

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from mmoshard.revocations import revokeAccount, revokeLogin
from mmoshard.tokens import (
    Claims,
    InvalidToken,
    TokenVerifier,
    decode,
    issueAccessToken,
)
from mmoshard.wire.test.helpers import KEY, makeVolatile


class DecodeTests(TestCase):
    def test_roundTrip(self):
        """A token decodes to the claims it was issued with."""
        token = issueAccessToken(KEY, 42, "s1", 60, 1000.0, flags=("operator",), username="ann")
        claims = decode(KEY, token, 1001.0)
        self.assertEqual(
            claims,
            Claims(account_id=42, sid="s1", exp=1060.0, iat=1000.0,
                   flags=frozenset({"operator"}), username="ann"),
        )
        self.assertTrue(claims.has("operator"))

    def test_expired(self):
        """A token is refused as expired from its expiry time on."""
        token = issueAccessToken(KEY, 42, "s1", 60, 1000.0)
        e = self.assertRaises(InvalidToken, decode, KEY, token, 1060.0)
        self.assertEqual(e.reason, "expired")

    def test_forged(self):
        """A token signed with another key is refused as a bad signature."""
        token = issueAccessToken("another-key-0123456789", 42, "s1", 60, 1000.0)
        e = self.assertRaises(InvalidToken, decode, KEY, token, 1001.0)
        self.assertEqual(e.reason, "bad signature")

    def test_tampered(self):
        """A token whose payload was swapped for another token's is refused."""
        token = issueAccessToken(KEY, 42, "s1", 60, 1000.0)
        head, body, sig = token.split(".")
        other = issueAccessToken(KEY, 43, "s1", 60, 1000.0).split(".")[1]
        self.assertRaises(InvalidToken, decode, KEY, f"{head}.{other}.{sig}", 1001.0)

    def test_malformed(self):
        """Empty, non-JWT, non-text, non-ASCII and oversized tokens are refused as malformed."""
        for bad in ["", "x", "a.b.c", None, 12, b"\xff", "a" * 5000]:
            e = self.assertRaises(InvalidToken, decode, KEY, bad, 0.0)
            self.assertEqual(e.reason, "malformed")


class VerifierTests(TestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1000)
        self.volatile = makeVolatile(self.clock)
        self.verifier = TokenVerifier(KEY, self.volatile, self.clock)

    def test_provides_interface(self):
        """The verifier and the tests' fake verifier provide ITokenVerifier."""
        from zope.interface.verify import verifyObject

        from mmoshard.interfaces import ITokenVerifier
        from mmoshard.wire.test.helpers import FakeVerifier

        verifyObject(ITokenVerifier, self.verifier)
        verifyObject(ITokenVerifier, FakeVerifier(None))

    def test_valid(self):
        """An unstarted verifier accepts a valid token, giving its claims."""
        token = issueAccessToken(KEY, 7, "s7", 60, self.clock.seconds())
        claims = self.successResultOf(self.verifier.verify(token))
        self.assertEqual(claims.account_id, 7)

    def test_expiredByClock(self):
        """The verifier refuses a token once its clock passes the expiry."""
        token = issueAccessToken(KEY, 7, "s7", 60, self.clock.seconds())
        self.clock.advance(61)
        f = self.failureResultOf(self.verifier.verify(token), InvalidToken)
        self.assertEqual(f.value.reason, "expired")

    def test_loginRevoked(self):
        """A revoked login's token is refused as revoked; another login's still passes."""
        token = issueAccessToken(KEY, 7, "s7", 60, self.clock.seconds())
        other = issueAccessToken(KEY, 7, "s8", 60, self.clock.seconds())
        self.successResultOf(revokeLogin(self.volatile, "s7", 60))
        f = self.failureResultOf(self.verifier.verify(token), InvalidToken)
        self.assertEqual(f.value.reason, "revoked")
        self.successResultOf(self.verifier.verify(other))

    def test_accountRevoked(self):
        """An account revocation refuses the account's earlier tokens, not later ones nor other accounts'."""
        old = issueAccessToken(KEY, 7, "s7", 600, self.clock.seconds())
        self.clock.advance(1)
        self.successResultOf(revokeAccount(self.volatile, 7, self.clock.seconds(), 600))
        self.failureResultOf(self.verifier.verify(old), InvalidToken)
        self.clock.advance(1)
        fresh = issueAccessToken(KEY, 7, "s9", 600, self.clock.seconds())
        self.successResultOf(self.verifier.verify(fresh))
        otherAccount = issueAccessToken(KEY, 8, "s1", 600, self.clock.seconds() - 5)
        self.successResultOf(self.verifier.verify(otherAccount))


class LeanDecodeTests(TestCase):
    """The HS256 check accepts what pyjwt accepts, and nothing else."""

    def pyjwtAccepts(self, token):
        import jwt

        from mmoshard.tokens import signingKey

        try:
            jwt.decode(token, signingKey(KEY), algorithms=["HS256"],
                       options={"verify_exp": False, "verify_iat": False,
                                "verify_nbf": False, "verify_sub": False,
                                "require": ["sub", "sid", "exp", "iat"]})
        except jwt.PyJWTError:
            return False
        return True

    def leanAccepts(self, token):
        try:
            decode(KEY, token, 0.0)
        except InvalidToken:
            return False
        return True

    def test_pyjwt_headers(self):
        """pyjwt's HS256 tokens with a kid pass; other algorithms, unsigned and crit tokens are refused."""
        import jwt

        from mmoshard.tokens import signingKey

        payload = {"sub": "1", "sid": "s", "iat": 1.0, "exp": 2.0}
        token = jwt.encode(payload, signingKey(KEY), algorithm="HS256", headers={"kid": "k1"})
        self.assertEqual(decode(KEY, token, 1.5).sid, "s")
        for alg in ("HS384", "HS512"):
            other = jwt.encode(payload, signingKey(KEY), algorithm=alg)
            self.assertFalse(self.leanAccepts(other))
        unsigned = jwt.encode(payload, None, algorithm="none")
        self.assertFalse(self.leanAccepts(unsigned))
        crit = jwt.encode(payload, signingKey(KEY), algorithm="HS256",
                          headers={"crit": ["exp"]})
        self.assertFalse(self.leanAccepts(crit))

    def test_every_one_character_change(self):
        """Any one-character change is refused unless pyjwt takes it too and it decodes to the same claims."""
        token = issueAccessToken(KEY, 42, "s1", 60, 1000.0, username="ann")
        self.assertTrue(self.leanAccepts(token))
        for i in range(len(token)):
            for c in "Aa0_-.=+/ ":
                if token[i] == c:
                    continue
                changed = token[:i] + c + token[i + 1:]
                if self.leanAccepts(changed):
                    # Only a spelling pyjwt also takes for the same signed bytes.
                    self.assertTrue(self.pyjwtAccepts(changed), changed)
                    self.assertEqual(decode(KEY, changed, 0.0), decode(KEY, token, 0.0))

    def test_padded_or_trailing_signature_refused(self):
        """A signature padded, extended or followed or preceded by anything is refused."""
        token = issueAccessToken(KEY, 42, "s1", 60, 1000.0)
        for bad in (token + "=", token + "A", token + ".", "." + token, token + "\n"):
            self.assertFalse(self.leanAccepts(bad), bad)
