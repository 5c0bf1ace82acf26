"""Refresh tokens: the HMAC format, rotation, reuse, revocation, data loss and the batched SQL flush (the login-record scripts: test_logins)."""

import base64
import hmac
import json

import jwt
from twisted.internet.defer import Deferred, gatherResults
from twisted.trial.unittest import TestCase

from mmoshard.auth.api import TOKENS
from mmoshard.auth.logins import loginKey
from mmoshard.auth.test.harness import START, TOKEN_KEY, AuthHarness
from mmoshard.tokens import (
    AccessTokens,
    InvalidToken,
    RefreshTokens,
    Signer,
    decode,
    issueAccessToken,
    refreshKey,
    signingKey,
)

PASSWORD = "correct horse battery"


class IssueTests(TestCase):
    """Token formats: pure CPU, no store."""

    def setUp(self):
        self.refreshTokens = RefreshTokens(TOKEN_KEY)

    def test_round_trip(self):
        """A refresh token is "sid.gen.secret" and parses back to its sid and generation."""
        token = self.refreshTokens.issue("abc_DEF-123", 7)
        sid, gen, secret = token.split(".")
        self.assertEqual((sid, gen), ("abc_DEF-123", "7"))
        self.assertEqual(len(secret), 43)
        self.assertEqual(self.refreshTokens.parse(token), ("abc_DEF-123", 7))

    def test_refused(self):
        """Forged, re-used, non-canonical or mis-shaped refresh tokens, and another key's, are refused."""
        good = self.refreshTokens.issue("sid1", 3)
        sid, gen, secret = good.split(".")
        forgedSecret = secret[:-1] + ("A" if secret[-1] != "A" else "B")
        for token in [
            f"{sid}.{gen}.{forgedSecret}",
            f"{sid}.4.{secret}",  # another generation, same secret
            f"sid2.{gen}.{secret}",  # another login
            f"{sid}.03.{secret}",  # not canonical
            f"{sid}.-3.{secret}",
            f"{sid}.{gen}",
            f"{sid}..{secret}",
            f".{gen}.{secret}",
            f"{sid}.{gen}.{secret}.x",
            f"{sid}.{gen}.{secret}é",
            f"s*d.{gen}.{secret}",
            "x" * 40 + f".{gen}.{secret}",
            f"{sid}.{'9' * 16}.{secret}",
            "",
            None,
            b"bytes",
        ]:
            self.assertIsNone(self.refreshTokens.parse(token), token)
        # Another key (a rotated token_key) refuses every token of the old one.
        self.assertIsNone(RefreshTokens("another key 0123456789").parse(good))

    def test_domain_separation(self):
        """The refresh key is neither the access-token key nor the configured secret."""
        key = refreshKey(TOKEN_KEY)
        self.assertNotEqual(key, signingKey(TOKEN_KEY))
        self.assertNotEqual(key, TOKEN_KEY.encode())
        self.assertEqual(len(key), 32)
        secret = self.refreshTokens.issue("sid1", 0).split(".")[2]
        self.assertEqual(secret, base64.urlsafe_b64encode(
            hmac.digest(key, b"sid1.0", "sha256")).rstrip(b"=").decode())

    def test_signer_is_hmac_sha256(self):
        """The signer's signature is the base64url HMAC-SHA256 for keys of every length, and it checks only that."""
        for key in (b"", b"k", b"k" * 32, b"k" * 64, b"k" * 65, bytes(range(200))):
            signer = Signer(key)
            for message in (b"", b"sid.1", b"x" * 1000):
                expected = base64.urlsafe_b64encode(hmac.digest(key, message, "sha256")).rstrip(b"=")
                self.assertEqual(signer.sign(message), expected, (key, message))
                # The prepared key state is not consumed by a signature.
                self.assertEqual(signer.sign(message), expected, (key, message))
                self.assertEqual(signer.seal(message), (message + b"." + expected).decode())
                self.assertTrue(signer.check(message, expected.decode()))
                self.assertFalse(signer.check(message + b"x", expected.decode()))
                self.assertFalse(signer.check(message, expected.decode() + "="))

    def test_access_token_same_as_pyjwt(self):
        """Access tokens are byte for byte what pyjwt's encode makes, and pyjwt's decode takes them."""
        issuer = AccessTokens(TOKEN_KEY)
        for args, kwargs in [
            ((7, "sid-a", 900.0, START), {}),
            ((7, "sid-a", 900.0, START + 0.125), {"username": "Alice"}),
            ((123456789, "s", 60, 1), {"flags": ("operator", "beta"), "username": "b_b"}),
            ((1, 'q"\\', 1e-3, 1234567.25), {"flags": ["x"], "username": "Zoë ☃ \n"}),
            ((2, "s", float("inf"), 5), {}),
        ]:
            token = issuer.issue(*args, **kwargs)
            accountId, sid, ttl, now = args
            payload = {"sub": str(accountId), "sid": sid, "iat": float(now),
                       "exp": float(now) + float(ttl), "flags": sorted(kwargs.get("flags", ()))}
            if "username" in kwargs:
                payload["name"] = kwargs["username"]
            self.assertEqual(token, jwt.encode(payload, signingKey(TOKEN_KEY), algorithm="HS256"))
            self.assertEqual(token, issueAccessToken(TOKEN_KEY, *args, **kwargs))
            claims = decode(TOKEN_KEY, token, now - 1)
            self.assertEqual((claims.account_id, claims.sid), (accountId, sid))
            jwt.decode(token, signingKey(TOKEN_KEY), algorithms=["HS256"],
                       options={"verify_exp": False, "verify_iat": False})


class AnswerTests(TestCase):
    async def test_tokens_answer_is_json_dumps(self):
        """The hand-written token answer is what json.dumps makes of its fields."""
        h = await AuthHarness(self, "sqlite").start()
        api, cfg = h.service.api, h.service.config
        for username, flags in (("alice", ()), ('we"ird\\ Zoë', ("operator",))):
            raw = api._tokens(7, username, "sid-1", 3, START + 0.5, flags)
            fields = json.loads(raw)
            self.assertEqual(raw, json.dumps(fields, separators=(",", ":")).encode())
            self.assertEqual(list(fields), list(TOKENS))
            self.assertEqual(
                {k: v for k, v in fields.items() if k not in ("access_token", "refresh_token")},
                {"account_id": 7, "username": username, "session_id": "sid-1",
                 "token_type": "Bearer", "expires_in": cfg.access_ttl,
                 "refresh_expires_in": cfg.refresh_ttl, "server_time": START + 0.5})
            self.assertEqual(fields["refresh_token"],
                             h.service.refreshTokens.issue("sid-1", 3))
            claims = decode(TOKEN_KEY, fields["access_token"], START)
            self.assertEqual((claims.username, claims.flags), (username, frozenset(flags)))


class RefreshTestsMixin:
    """Refresh end to end over HTTP; C{backend} picks the stores."""

    backend = None

    async def harness(self, **overrides):
        return await AuthHarness(self, self.backend, **overrides).start()

    async def refresh(self, h, token):
        return await h.request("POST", "/v1/sessions/refresh", {"refresh_token": token})

    async def loginRow(self, h, sid):
        rows = await h.sql.runQuery(
            "SELECT last_used_at, expires_at, refresh_gen, revoked_at, revoke_reason "
            "FROM auth_logins WHERE id = ?", (sid,))
        return rows[0]

    def outcomes(self, h):
        sample = h.node.metrics.get_sample_value
        return {o: sample("mmoshard_auth_refreshes_total", {"outcome": o})
                for o in ("ok", "invalid", "reused", "banned")}

    async def loseVolatile(self, h, sid):
        """What a Redis flush or restart does to this login."""
        await h.volatile.delete(loginKey(sid))

    async def test_rotation(self):
        """Each refresh issues the next generation and an access token of the login, with no SQL write per refresh."""
        h = await self.harness(refresh_flush=3600.0)
        login = await h.account()
        sid = login["session_id"]
        self.assertEqual(login["refresh_token"].split(".")[:2], [sid, "0"])
        token = login["refresh_token"]
        for gen in (1, 2, 3):
            h.clock.advance(10)
            r = await self.refresh(h, token)
            self.assertEqual(r.code, 200, r)
            token = r.body["refresh_token"]
            self.assertEqual(token.split(".")[:2], [sid, str(gen)])
            self.assertEqual(r.body["session_id"], sid)
            self.assertEqual(r.body["username"], "alice")
            claims = await h.verifier.verify(r.body["access_token"])
            self.assertEqual((claims.sid, claims.iat), (sid, h.clock.seconds()))
        self.assertEqual(self.outcomes(h)["ok"], 3)
        # No SQL write per refresh: SQL still has the login as it was made.
        self.assertEqual((await self.loginRow(h, sid))[:3],
                         (START, START + h.service.config.refresh_ttl, 0))

    async def test_operator_flag_survives(self):
        """The operator flag read at login stays in the access tokens of later refreshes."""
        h = await self.harness()
        login = await h.account()
        await h.sql.runQuery("UPDATE accounts SET is_operator = 1 WHERE id = ?",
                                   (login["account_id"],))
        # The flag is read at login and kept in the record.
        login = (await h.login()).body
        r = await self.refresh(h, login["refresh_token"])
        claims = await h.verifier.verify(r.body["access_token"])
        self.assertTrue(claims.has("operator"))

    async def test_issued_tokens_remembered(self):
        """
        A token a refresh here issued is found without its MAC being checked;
        one that is not (another key's, or forgotten) is checked as before.
        """
        h = await self.harness()
        login = await h.account()
        first = await self.refresh(h, login["refresh_token"])
        issued = h.service.api._issued
        token = first.body["refresh_token"]
        sid, gen, _ = token.split(".")
        self.assertEqual(issued.get(token), (sid, int(gen)))
        forged = RefreshTokens("not the server's key 0123456789").issue(sid, int(gen))
        r = await self.refresh(h, forged)
        self.assertEqual((r.code, r.error), (401, "auth.invalid_refresh_token"))
        issued.clear()
        second = await self.refresh(h, token)
        self.assertEqual(second.code, 200, second)
        self.assertNotIn(token, issued)
        third = await self.refresh(h, second.body["refresh_token"])
        self.assertEqual(third.code, 200, third)
        r = await self.refresh(h, second.body["refresh_token"])
        self.assertEqual((r.code, r.error), (401, "auth.refresh_token_reused"))

    async def test_new_key_forgets_issued_tokens(self):
        """After a restart with a new token key, no token of the old key passes."""
        h = await self.harness()
        login = await h.account()
        first = await self.refresh(h, login["refresh_token"])
        self.assertEqual(first.code, 200, first)
        await h.service.stopService()
        h.service.tokenKeySource = lambda: "a new key 0123456789abcdefghij"
        await h.service.startService()
        r = await self.refresh(h, first.body["refresh_token"])
        self.assertEqual((r.code, r.error), (401, "auth.invalid_refresh_token"))

    async def test_reuse_of_older_generation(self):
        """Reusing an older refresh token revokes the whole login (all its access tokens and its current refresh token) but not the account's other logins."""
        h = await self.harness()
        login = await h.account()
        other = (await h.login()).body
        first = await self.refresh(h, login["refresh_token"])
        second = await self.refresh(h, first.body["refresh_token"])
        self.assertEqual(second.code, 200)
        r = await self.refresh(h, first.body["refresh_token"])
        self.assertEqual((r.code, r.error), (401, "auth.refresh_token_reused"))
        for token in (login["access_token"], first.body["access_token"],
                      second.body["access_token"]):
            with self.assertRaises(InvalidToken):
                await h.verifier.verify(token)
        r = await self.refresh(h, second.body["refresh_token"])
        self.assertEqual((r.code, r.error), (401, "auth.invalid_refresh_token"))
        row = await self.loginRow(h, login["session_id"])
        self.assertEqual(row[3:], (h.clock.seconds(), "refresh_reuse"))
        self.assertIn("refresh_reuse", await h.events(login["account_id"]))
        self.assertEqual(self.outcomes(h)["reused"], 1)
        # The account's other login is untouched.
        await h.verifier.verify(other["access_token"])
        self.assertEqual((await self.refresh(h, other["refresh_token"])).code, 200)

    async def test_concurrent_use_of_one_token(self):
        """Two refreshes with the same token at once: one wins, the other is a reuse."""
        h = await self.harness()
        login = await h.account()
        results = await gatherResults([
            Deferred.fromCoroutine(self.refresh(h, login["refresh_token"])),
            Deferred.fromCoroutine(self.refresh(h, login["refresh_token"])),
        ])
        self.assertEqual(sorted((r.code, r.error) for r in results),
                         [(200, None), (401, "auth.refresh_token_reused")])

    async def test_forged_secret(self):
        """Refresh tokens with a wrong secret are refused as invalid and revoke nothing."""
        h = await self.harness()
        login = await h.account()
        sid, gen, secret = login["refresh_token"].split(".")
        forged = RefreshTokens("not the server's key 0123456789")
        for token in (f"{sid}.{gen}.{'A' * 43}",
                      forged.issue(sid, 0),
                      forged.issue(sid, 1),
                      f"{sid}.1.{secret}"):
            r = await self.refresh(h, token)
            self.assertEqual((r.code, r.error), (401, "auth.invalid_refresh_token"), token)
        self.assertEqual(self.outcomes(h), {"ok": 0, "invalid": 4, "reused": 0, "banned": 0})
        # Nothing was revoked: the tokens of the login still work.
        await h.verifier.verify(login["access_token"])
        self.assertIsNone((await self.loginRow(h, sid))[3])
        self.assertEqual((await self.refresh(h, login["refresh_token"])).code, 200)

    async def test_revocations_end_refresh(self):
        """Logout, a password change (the other logins) and a ban: refresh refused, even after data loss."""
        h = await self.harness()
        first = await h.account()
        second = (await h.login()).body
        third = (await h.login()).body
        fourth = (await h.login()).body
        r = await h.request("DELETE", "/v1/sessions", token=first["access_token"])
        self.assertEqual(r.code, 200)
        r = await h.request("POST", "/v1/accounts/me/password",
                            {"current_password": PASSWORD, "new_password": "a new long secret"},
                            token=second["access_token"])
        self.assertEqual(r.body, {"ended_sessions": 2})
        for login in (first, third, fourth):
            r = await self.refresh(h, login["refresh_token"])
            self.assertEqual((r.code, r.error), (401, "auth.invalid_refresh_token"))
        r = await self.refresh(h, second["refresh_token"])
        self.assertEqual(r.code, 200)
        ban = await h.request("POST", f"/accounts/{first['account_id']}/ban",
                              {"reason": "botting"}, admin=True)
        self.assertEqual(ban.body["ended_sessions"], 1)
        r = await self.refresh(h, r.body["refresh_token"])
        self.assertEqual((r.code, r.error), (401, "auth.invalid_refresh_token"))
        # With the volatile records gone SQL still refuses them all.
        for login in (first, second, third, fourth):
            await self.loseVolatile(h, login["session_id"])
            r = await self.refresh(h, login["refresh_token"])
            self.assertEqual((r.code, r.error), (401, "auth.invalid_refresh_token"))
        self.assertEqual(self.outcomes(h)["invalid"], 8)

    async def test_revoked_in_sql_alone(self):
        """A revocation written to SQL by something else is marked at the next flush."""
        h = await self.harness()
        login = await h.account()
        await h.sql.runQuery(
            "UPDATE auth_logins SET revoked_at = ?, revoke_reason = 'by hand' WHERE id = ?",
            (h.clock.seconds(), login["session_id"]))
        await h.service.loginRecords.flush()
        r = await self.refresh(h, login["refresh_token"])
        self.assertEqual((r.code, r.error), (401, "auth.invalid_refresh_token"))
        self.assertEqual(await h.volatile.hget(loginKey(login["session_id"]), "r"),
                         b"by hand")

    async def test_banned_in_sql_alone(self):
        """A live login of a banned account (the ban set without revoking) answers account.banned."""
        h = await self.harness()
        login = await h.account()
        await h.sql.runQuery(
            "UPDATE accounts SET banned_until = ?, ban_reason = 'chargeback' WHERE id = ?",
            (h.clock.seconds() + 3600, login["account_id"]))
        await self.loseVolatile(h, login["session_id"])
        r = await self.refresh(h, login["refresh_token"])
        self.assertEqual((r.code, r.error), (403, "account.banned"))
        self.assertEqual(r.body["error"]["fields"]["reason"], "chargeback")
        self.assertEqual(self.outcomes(h)["banned"], 1)

    async def test_login_refused_when_banned_in_its_transaction(self):
        """A ban committed between a login's account read and its insert wins."""
        h = await self.harness()
        accountId = (await h.register()).body["account_id"]
        until = h.clock.seconds() + 60
        await h.sql.runQuery(
            "UPDATE accounts SET banned_until = ?, ban_reason = 'late' WHERE id = ?",
            (until, accountId))
        result = await h.service.sqlLogins.loginOk(
            accountId, "racing", h.clock.seconds(), h.clock.seconds() + 100, "127.0.0.1", None)
        self.assertEqual(result, (until, "late"))
        rows = await h.sql.runQuery("SELECT COUNT(*) FROM auth_logins")
        self.assertEqual(rows[0][0], 0)
        self.assertEqual(await h.events(accountId), ["login_banned", "register"])

    async def test_data_loss_falls_back_to_sql(self):
        """After the volatile record is lost, the current refresh token rebuilds it from SQL and rotation goes on."""
        h = await self.harness()
        login = await h.account()
        sid = login["session_id"]
        r = await self.refresh(h, login["refresh_token"])
        await h.service.loginRecords.flush()
        self.assertEqual((await self.loginRow(h, sid))[2], 1)
        await self.loseVolatile(h, sid)
        # The current token: the record is rebuilt and the rotation goes on.
        r = await self.refresh(h, r.body["refresh_token"])
        self.assertEqual(r.code, 200, r)
        self.assertEqual(r.body["refresh_token"].split(".")[1], "2")
        self.assertEqual(await h.volatile.hget(loginKey(sid), "g"), b"2")
        r = await self.refresh(h, r.body["refresh_token"])
        self.assertEqual(r.code, 200, r)
        self.assertEqual(self.outcomes(h), {"ok": 3, "invalid": 0, "reused": 0, "banned": 0})

    async def test_data_loss_then_older_token(self):
        """After data loss a generation below SQL's is a reuse."""
        h = await self.harness()
        login = await h.account()
        sid = login["session_id"]
        r = await self.refresh(h, login["refresh_token"])
        await h.service.loginRecords.flush()
        await self.loseVolatile(h, sid)
        bad = await self.refresh(h, login["refresh_token"])
        self.assertEqual((bad.code, bad.error), (401, "auth.refresh_token_reused"))
        self.assertEqual((await self.loginRow(h, sid))[4], "refresh_reuse")
        r = await self.refresh(h, r.body["refresh_token"])
        self.assertEqual((r.code, r.error), (401, "auth.invalid_refresh_token"))
        with self.assertRaises(InvalidToken):
            await h.verifier.verify(login["access_token"])

    async def test_data_loss_before_flush(self):
        """SQL lags; this process's unflushed refreshes still count, newer tokens are taken."""
        h = await self.harness()
        login = await h.account()
        sid = login["session_id"]
        first = await self.refresh(h, login["refresh_token"])
        second = await self.refresh(h, first.body["refresh_token"])
        self.assertEqual((await self.loginRow(h, sid))[2], 0)
        await self.loseVolatile(h, sid)
        r = await self.refresh(h, first.body["refresh_token"])
        self.assertEqual((r.code, r.error), (401, "auth.refresh_token_reused"))
        # Another login, whose SQL row is behind and whose process restarted
        # (nothing pending): the newest token is taken as current.
        other = (await h.login()).body
        o1 = await self.refresh(h, other["refresh_token"])
        h.service.loginRecords._pending.clear()
        await self.loseVolatile(h, other["session_id"])
        r = await self.refresh(h, o1.body["refresh_token"])
        self.assertEqual(r.code, 200, r)
        self.assertEqual(r.body["refresh_token"].split(".")[1], "2")

    async def test_data_loss_expired_login(self):
        """After the volatile record is lost, an expired login's refresh token is refused."""
        h = await self.harness()
        login = await h.account()
        h.clock.advance(h.service.config.refresh_ttl + 1)
        await self.loseVolatile(h, login["session_id"])
        r = await self.refresh(h, login["refresh_token"])
        self.assertEqual((r.code, r.error), (401, "auth.invalid_refresh_token"))

    async def test_batched_flush(self):
        """Refreshes reach SQL together every refresh_flush seconds, and at stop."""
        h = await self.harness(refresh_flush=5.0)
        login = await h.account()
        other = (await h.login()).body
        ttl = h.service.config.refresh_ttl
        h.clock.advance(1)
        r = await self.refresh(h, login["refresh_token"])
        h.clock.advance(1)
        r = await self.refresh(h, r.body["refresh_token"])
        o = await self.refresh(h, other["refresh_token"])
        refreshedAt = h.clock.seconds()
        self.assertEqual((await self.loginRow(h, login["session_id"]))[:3],
                         (START, START + ttl, 0))
        h.clock.advance(3)  # the loop's first flush, 5 s after start
        await h.service.loginRecords.flush()  # waits for the one under way
        self.assertEqual((await self.loginRow(h, login["session_id"]))[:3],
                         (refreshedAt, refreshedAt + ttl, 2))
        self.assertEqual((await self.loginRow(h, other["session_id"]))[:3],
                         (refreshedAt, refreshedAt + ttl, 1))
        # The active-sessions gauge reads what was flushed.
        await h.service.countSessions()
        self.assertEqual(h.node.metrics.get_sample_value("mmoshard_auth_active_sessions"), 2)
        h.clock.advance(1)
        await self.refresh(h, o.body["refresh_token"])
        await h.service.stopService()
        self.assertEqual((await self.loginRow(h, other["session_id"]))[:3],
                         (h.clock.seconds(), h.clock.seconds() + ttl, 2))

    async def test_flush_never_goes_back(self):
        """An older generation written late (another process) leaves a newer one alone."""
        h = await self.harness()
        login = await h.account()
        sid = login["session_id"]
        await h.service.sqlLogins.flushRefreshes([(START + 9, START + 99, 4, sid)], START)
        await h.service.sqlLogins.flushRefreshes([(START + 5, START + 95, 3, sid)], START)
        self.assertEqual((await self.loginRow(h, sid))[:3], (START + 9, START + 99, 4))


class SQLiteMemoryRefreshTests(RefreshTestsMixin, TestCase):
    backend = "sqlite"


class MariaDBRedisRefreshTests(RefreshTestsMixin, TestCase):
    backend = "mysql"
