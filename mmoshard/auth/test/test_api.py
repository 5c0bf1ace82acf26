"""The auth REST API end to end over real HTTP, on SQLite + memory and on MariaDB + Redis."""

from twisted.trial.unittest import TestCase

from mmoshard.auth.api import REGISTER_RETRY_WINDOW
from mmoshard.auth.test.harness import AuthHarness
from mmoshard.tokens import InvalidToken

PASSWORD = "correct horse battery"


class APITestsMixin:
    """Every endpoint's success and error paths; C{backend} picks the stores."""

    backend = None
    authConfig = {}

    async def harness(self, **overrides):
        return await AuthHarness(self, self.backend, **dict(self.authConfig, **overrides)).start()

    # --- register ---------------------------------------------------------------

    async def test_register(self):
        """
        Registering answers 201 with the account id and the username as given, and
        records a register event.
        """
        h = await self.harness()
        r = await h.register("Alice", PASSWORD, email="alice@example.com")
        self.assertEqual(r.code, 201, r)
        self.assertEqual(r.body["username"], "Alice")
        self.assertIsInstance(r.body["account_id"], int)
        self.assertEqual(await h.events(r.body["account_id"]), ["register"])

    async def test_register_taken_ignoring_case(self):
        """A username taken in another case is refused with 409 account.username_taken."""
        h = await self.harness()
        await h.register("Alice")
        r = await h.register("aLICE", "another fine password")
        self.assertEqual((r.code, r.error), (409, "account.username_taken"))

    async def test_register_retried(self):
        """
        Registering again with the same username, email and password within
        REGISTER_RETRY_WINDOW (a client retrying after a lost answer or a 503)
        answers the account made the first time, making no other; another email
        or password, or a retry after the window, is 409 account.username_taken.
        """
        h = await self.harness()
        first = await h.register("Alice", PASSWORD, email="alice@example.com")
        self.assertEqual(first.code, 201, first)
        again = await h.register("Alice", PASSWORD, email="alice@example.com")
        self.assertEqual((again.code, again.body), (201, first.body))
        self.assertEqual(await h.events(first.body["account_id"]), ["register"])
        r = await h.register("Alice", PASSWORD, email="mallory@example.com")
        self.assertEqual((r.code, r.error), (409, "account.username_taken"))
        r = await h.register("Alice", "another fine password", email="alice@example.com")
        self.assertEqual((r.code, r.error), (409, "account.username_taken"))
        h.clock.advance(REGISTER_RETRY_WINDOW + 1)
        r = await h.register("Alice", PASSWORD, email="alice@example.com")
        self.assertEqual((r.code, r.error), (409, "account.username_taken"))

    async def test_register_bad_fields(self):
        """
        A bad username, a too-short password and a malformed email are each named in
        one 400 request.invalid.
        """
        h = await self.harness()
        r = await h.request("POST", "/v1/accounts",
                            {"username": "no spaces!", "password": "short", "email": "x"})
        self.assertEqual((r.code, r.error), (400, "request.invalid"))
        self.assertEqual(set(r.body["error"]["fields"]), {"username", "password", "email"})

    async def test_register_password_policy(self):
        """
        Passwords containing the username, common ones and ones of too few different
        characters are refused with the reason.
        """
        h = await self.harness()
        for password, why in [("bob_the_builder_1", "username"),
                              ("password123", "common"),
                              ("aaaaaaaaaaaa", "different")]:
            r = await h.register("bob_the_builder", password)
            self.assertEqual((r.code, r.error), (400, "request.invalid"), password)
            self.assertIn(why, r.body["error"]["fields"]["password"])

    async def test_bad_bodies(self):
        """Malformed JSON, non-objects, wrong types, unknown fields, oversized: 400."""
        h = await self.harness(max_body=1024)
        cases = [
            (b"{not json", "request.malformed_json"),
            (b"[1, 2]", "request.malformed_json"),
            (b"\xff\xfe", "request.malformed_json"),
            (b'{"username": 5, "password": ["x"]}', "request.invalid"),
            (b'{"username": "carol", "password": "' + PASSWORD.encode() + b'", "admin": true}',
             "request.invalid"),
            (b'{"username": "' + b"x" * 2000 + b'"}', "request.too_large"),
        ]
        for raw, code in cases:
            r = await h.request("POST", "/v1/accounts", raw=raw)
            self.assertEqual((r.code, r.error), (400, code), raw[:40])
            self.assertIn("message", r.body["error"])
        r = await h.request("POST", "/v1/accounts",
                            raw=b'{"username": "carol", "password": "x", "admin": true}')
        self.assertEqual(r.body["error"]["fields"]["admin"], "unknown field")
        r = await h.request("POST", "/v1/sessions", raw=b'{"username": null, "password": 1.5}')
        self.assertEqual(set(r.body["error"]["fields"]), {"username", "password"})

    async def test_unknown_path_and_method(self):
        """
        An unknown path is 404 request.not_found; a known path with another method
        is 405 with an Allow header; a non-integer id is 404.
        """
        h = await self.harness()
        r = await h.request("GET", "/v1/accounts/nobody")
        self.assertEqual((r.code, r.error), (404, "request.not_found"))
        r = await h.request("PUT", "/v1/accounts")
        self.assertEqual((r.code, r.error), (405, "request.method_not_allowed"))
        self.assertEqual(r.header("allow"), "POST")
        r = await h.request("DELETE", "/v1/characters/abc")
        self.assertEqual((r.code, r.error), (404, "request.not_found"))

    # --- login ------------------------------------------------------------------

    async def test_login(self):
        """
        A login (username in any case) answers tokens for the account, the server
        time, the access lifetime and the directory of other nodes, and records
        login_ok.
        """
        h = await self.harness()
        accountId = (await h.register()).body["account_id"]
        r = await h.login("ALICE", PASSWORD)
        self.assertEqual(r.code, 200, r)
        body = r.body
        self.assertEqual(body["account_id"], accountId)
        self.assertEqual(body["token_type"], "Bearer")
        self.assertEqual(body["server_time"], h.clock.seconds())
        self.assertEqual(body["expires_in"], h.config.roleConfig("auth").access_ttl)
        self.assertEqual(body["directory"]["chat"],
                         [{"node_id": "auth-test", "tcp": "127.0.0.1:7000"}])
        self.assertEqual(body["directory"]["world"], [])
        # Every role a game client talks to is listed, hosted here or not.
        self.assertEqual(sorted(body["directory"]), ["chat", "matchmaking", "version", "world"])
        claims = await h.verifier.verify(body["access_token"])
        self.assertEqual((claims.account_id, claims.sid, claims.username),
                         (accountId, body["session_id"], "alice"))
        self.assertEqual(await h.events(accountId), ["login_ok", "register"])

    async def test_login_wrong_password_or_user(self):
        """
        A wrong password and an unknown username get the same 401
        auth.invalid_credentials; the known account records login_failed.
        """
        h = await self.harness()
        accountId = (await h.register()).body["account_id"]
        wrong = await h.login("alice", "not the password")
        nobody = await h.login("mallory", PASSWORD)
        self.assertEqual((wrong.code, wrong.error), (401, "auth.invalid_credentials"))
        # Same answer either way: nothing tells an attacker the name exists.
        self.assertEqual(wrong.body, nobody.body)
        self.assertEqual(await h.events(accountId), ["login_failed", "register"])

    async def test_me(self):
        """GET /v1/accounts/me answers the account and login of the access token."""
        h = await self.harness()
        login = await h.account()
        r = await h.request("GET", "/v1/accounts/me", token=login["access_token"])
        self.assertEqual(r.code, 200, r)
        self.assertEqual((r.body["account_id"], r.body["username"], r.body["session_id"]),
                         (login["account_id"], "alice", login["session_id"]))

    async def test_token_required(self):
        """
        A missing, malformed or expired access token is 401 auth.invalid_token with
        a WWW-Authenticate: Bearer challenge.
        """
        h = await self.harness()
        for token in (None, "garbage", "a.b.c"):
            r = await h.request("GET", "/v1/accounts/me", token=token)
            self.assertEqual((r.code, r.error), (401, "auth.invalid_token"), token)
            self.assertTrue(r.header("www-authenticate").startswith("Bearer"))
        h.clock.advance(1)
        login = await h.account()
        h.clock.advance(h.config.roleConfig("auth").access_ttl + 1)
        r = await h.request("GET", "/v1/accounts/me", token=login["access_token"])
        self.assertEqual((r.code, r.error), (401, "auth.invalid_token"))
        self.assertIn("expired", r.body["error"]["message"])

    # --- refresh and logout -----------------------------------------------------

    async def test_refresh_rotates(self):
        """
        A refresh answers a new refresh token for the same login and an access token
        issued now; the new refresh token refreshes again.
        """
        h = await self.harness()
        login = await h.account()
        h.clock.advance(60)
        r = await h.request("POST", "/v1/sessions/refresh",
                            {"refresh_token": login["refresh_token"]})
        self.assertEqual(r.code, 200, r)
        self.assertNotEqual(r.body["refresh_token"], login["refresh_token"])
        self.assertEqual(r.body["session_id"], login["session_id"])
        claims = await h.verifier.verify(r.body["access_token"])
        self.assertEqual(claims.iat, h.clock.seconds())
        again = await h.request("POST", "/v1/sessions/refresh",
                                {"refresh_token": r.body["refresh_token"]})
        self.assertEqual(again.code, 200, again)

    async def test_refresh_reuse_revokes_login(self):
        """
        Presenting a spent refresh token revokes the whole login: its newer refresh
        token and every access token die, and refresh_reuse is recorded.
        """
        h = await self.harness()
        login = await h.account()
        first = await h.request("POST", "/v1/sessions/refresh",
                                {"refresh_token": login["refresh_token"]})
        self.assertEqual(first.code, 200)
        reused = await h.request("POST", "/v1/sessions/refresh",
                                 {"refresh_token": login["refresh_token"]})
        self.assertEqual((reused.code, reused.error), (401, "auth.refresh_token_reused"))
        # The whole login is gone: the rotated token and every access token.
        r = await h.request("POST", "/v1/sessions/refresh",
                            {"refresh_token": first.body["refresh_token"]})
        self.assertEqual((r.code, r.error), (401, "auth.invalid_refresh_token"))
        for token in (login["access_token"], first.body["access_token"]):
            with self.assertRaises(InvalidToken):
                await h.verifier.verify(token)
        self.assertIn("refresh_reuse", await h.events(login["account_id"]))

    async def test_refresh_invalid(self):
        """
        Malformed, forged and expired refresh tokens are 401
        auth.invalid_refresh_token, and a forged one leaves the real token working.
        """
        h = await self.harness()
        login = await h.account()
        tokenId = login["refresh_token"].split(".")[0]
        for token in ("nonsense", "a.b", tokenId + ".forged", "x" * 100):
            r = await h.request("POST", "/v1/sessions/refresh", {"refresh_token": token})
            self.assertEqual((r.code, r.error), (401, "auth.invalid_refresh_token"), token)
        # A forged secret is not a reuse: the real token still works.
        r = await h.request("POST", "/v1/sessions/refresh",
                            {"refresh_token": login["refresh_token"]})
        self.assertEqual(r.code, 200)
        h.clock.advance(h.config.roleConfig("auth").refresh_ttl + 1)
        r = await h.request("POST", "/v1/sessions/refresh",
                            {"refresh_token": r.body["refresh_token"]})
        self.assertEqual((r.code, r.error), (401, "auth.invalid_refresh_token"))

    async def test_logout(self):
        """
        Logout ends this login's access and refresh tokens, records logout, and
        leaves the account's other logins alive.
        """
        h = await self.harness()
        login = await h.account()
        other = (await h.login()).body
        r = await h.request("DELETE", "/v1/sessions", token=login["access_token"])
        self.assertEqual((r.code, r.body), (200, {"ended": login["session_id"]}))
        r = await h.request("GET", "/v1/accounts/me", token=login["access_token"])
        self.assertEqual((r.code, r.error), (401, "auth.invalid_token"))
        r = await h.request("POST", "/v1/sessions/refresh",
                            {"refresh_token": login["refresh_token"]})
        self.assertEqual((r.code, r.error), (401, "auth.invalid_refresh_token"))
        # Another login of the same account lives on.
        r = await h.request("GET", "/v1/accounts/me", token=other["access_token"])
        self.assertEqual(r.code, 200)
        self.assertIn("logout", await h.events(login["account_id"]))

    # --- password ---------------------------------------------------------------

    async def test_change_password(self):
        """
        Changing the password ends every other login, keeps this one, and only the
        new password logs in afterwards.
        """
        h = await self.harness()
        login = await h.account()
        other = (await h.login()).body
        r = await h.request("POST", "/v1/accounts/me/password",
                            {"current_password": PASSWORD, "new_password": "a new long secret"},
                            token=login["access_token"])
        self.assertEqual((r.code, r.body), (200, {"ended_sessions": 1}))
        # This login stays; the other one is ended, refresh token included.
        self.assertEqual((await h.request("GET", "/v1/accounts/me",
                                          token=login["access_token"])).code, 200)
        r = await h.request("GET", "/v1/accounts/me", token=other["access_token"])
        self.assertEqual(r.code, 401)
        r = await h.request("POST", "/v1/sessions/refresh",
                            {"refresh_token": other["refresh_token"]})
        self.assertEqual(r.code, 401)
        self.assertEqual((await h.login()).code, 401)
        self.assertEqual((await h.login(password="a new long secret")).code, 200)
        self.assertIn("password_change", await h.events(login["account_id"]))

    async def test_change_password_errors(self):
        """
        A wrong current password is 403 auth.wrong_password, a refused new one 400
        request.invalid, and no token 401.
        """
        h = await self.harness()
        login = await h.account()
        r = await h.request("POST", "/v1/accounts/me/password",
                            {"current_password": "wrong one", "new_password": "a new long secret"},
                            token=login["access_token"])
        self.assertEqual((r.code, r.error), (403, "auth.wrong_password"))
        r = await h.request("POST", "/v1/accounts/me/password",
                            {"current_password": PASSWORD, "new_password": "alice_is_me_ok"},
                            token=login["access_token"])
        self.assertEqual((r.code, r.error), (400, "request.invalid"))
        self.assertIn("new_password", r.body["error"]["fields"])
        r = await h.request("POST", "/v1/accounts/me/password",
                            {"current_password": PASSWORD, "new_password": "a new long secret"})
        self.assertEqual((r.code, r.error), (401, "auth.invalid_token"))

    # --- ban --------------------------------------------------------------------

    async def test_ban_and_unban(self):
        """
        An admin-site ban ends the account's tokens and refuses logins with its
        reason; an unban lets it log in again; each step is in the audit trail.
        """
        h = await self.harness()
        login = await h.account()
        accountId = login["account_id"]
        r = await h.request("POST", f"/accounts/{accountId}/ban",
                            {"reason": "botting", "duration": 3600}, admin=True)
        self.assertEqual(r.code, 200, r)
        self.assertEqual(r.body["ended_sessions"], 1)
        self.assertEqual(r.body["banned_until"], h.clock.seconds() + 3600)
        with self.assertRaises(InvalidToken):
            await h.verifier.verify(login["access_token"])
        r = await h.request("POST", "/v1/sessions/refresh",
                            {"refresh_token": login["refresh_token"]})
        self.assertEqual(r.code, 401)
        r = await h.login()
        self.assertEqual((r.code, r.error), (403, "account.banned"))
        self.assertEqual(r.body["error"]["fields"]["reason"], "botting")
        r = await h.request("POST", f"/accounts/{accountId}/unban", admin=True)
        self.assertEqual(r.code, 200, r)
        h.clock.advance(1)
        login = (await h.login()).body
        await h.verifier.verify(login["access_token"])
        kinds = await h.events(accountId)
        self.assertEqual(kinds[:4], ["login_ok", "unban", "login_banned", "ban"])

    async def test_ban_expires(self):
        """A ban with an until time refuses logins until then, and not after."""
        h = await self.harness()
        accountId = (await h.account())["account_id"]
        r = await h.request("POST", f"/accounts/{accountId}/ban",
                            {"reason": "cooling off", "until": h.clock.seconds() + 10},
                            admin=True)
        self.assertEqual(r.code, 200)
        self.assertEqual((await h.login()).code, 403)
        h.clock.advance(11)
        self.assertEqual((await h.login()).code, 200)

    async def test_ban_errors(self):
        """
        Banning or unbanning an unknown account is 404; until with duration, a
        missing reason and a non-finite until are 400.
        """
        h = await self.harness()
        r = await h.request("POST", "/accounts/999/ban", {"reason": "x"}, admin=True)
        self.assertEqual((r.code, r.error), (404, "account.not_found"))
        r = await h.request("POST", "/accounts/999/unban", admin=True)
        self.assertEqual((r.code, r.error), (404, "account.not_found"))
        r = await h.request("POST", "/accounts/999/unban", admin=True,
                            headers={"content-type": "text/plain"})
        self.assertEqual((r.code, r.error), (415, "request.unsupported_media_type"))
        r = await h.request("POST", "/accounts/1/ban", {"reason": "x", "until": 5,
                                                        "duration": 5}, admin=True)
        self.assertEqual((r.code, r.error), (400, "request.invalid"))
        r = await h.request("POST", "/accounts/1/ban", {}, admin=True)
        self.assertEqual(r.body["error"]["fields"], {"reason": "is required"})
        r = await h.request("POST", "/accounts/1/ban", raw=b'{"reason": "x", "until": NaN}',
                            admin=True)
        self.assertEqual(r.body["error"]["fields"], {"until": "must be a finite number"})


class SQLiteMemoryAPITests(APITestsMixin, TestCase):
    backend = "sqlite"


class MariaDBRedisAPITests(APITestsMixin, TestCase):
    backend = "mysql"
