"""Operators on the auth role: kicking accounts and characters from the admin site, the admin site's operator login, `mmoshard account operator`; on SQLite + memory and MariaDB + Redis."""

import io

from twisted.internet import reactor
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from mmoshard.auth.cli import run
from mmoshard.auth.test.harness import TOKEN_KEY, AuthHarness
from mmoshard.cli import makeParser
from mmoshard.interfaces import IOperatorLogin
from mmoshard.testing import writeConfig
from mmoshard.tokens import InvalidToken
from mmoshard.web.json import HTTPError

PASSWORD = "correct horse battery"


class OperatorTestsMixin:
    backend = None

    async def operator(self, h, name="opal"):
        """Register C{name} and make it an operator with the command; @return: its id."""
        r = await h.register(name, PASSWORD)
        assert r.code == 201, r
        raw = {"sql": {"url": h.config.sql.url},
               "volatile": {"url": h.config.volatile.url, "prefix": h.config.volatile.prefix},
               "secrets": {"token_key": TOKEN_KEY}, "listen": {"admin": ""}}
        path = writeConfig(self.mktemp() + ".toml", raw)
        args = makeParser().parse_args(["account", "operator", name, "--config", path])
        out = io.StringIO()
        self.assertEqual(await run(reactor, args, out, clock=h.clock), 0)
        self.assertIn("is an operator", out.getvalue())
        return r.body["account_id"]

    async def test_kick_account_and_character(self):
        """
        Kicking an account or one of its characters revokes every token it
        holds (its sessions end everywhere) but not its login: a refresh
        still works and the new token is good.  Each kick is audited with
        its reason; unknown ids are typed 404s.
        """
        h = await AuthHarness(self, self.backend).start()
        login = await h.account()
        accountId = login["account_id"]
        r = await h.request("POST", f"/accounts/{accountId}/kick", {"reason": "afk farming"},
                            admin=True)
        self.assertEqual((r.code, r.body), (200, {"account_id": accountId, "username": "alice"}))
        with self.assertRaises(InvalidToken):
            await h.verifier.verify(login["access_token"])
        h.clock.advance(2)
        r = await h.request("POST", "/v1/sessions/refresh",
                            {"refresh_token": login["refresh_token"]})
        self.assertEqual(r.code, 200, r)
        fresh = r.body
        self.assertEqual((await h.verifier.verify(fresh["access_token"])).account_id, accountId)
        r = await h.request("POST", "/v1/characters", {"name": "Kael", "class": "mage"},
                            token=fresh["access_token"])
        cid = r.body["id"]
        h.clock.advance(2)
        r = await h.request("POST", f"/characters/{cid}/kick", {"reason": "stuck"}, admin=True)
        self.assertEqual((r.code, r.body["account_id"], r.body["name"]), (200, accountId, "Kael"))
        with self.assertRaises(InvalidToken):
            await h.verifier.verify(fresh["access_token"])
        r = await h.request("GET", f"/accounts/{accountId}/events", admin=True)
        kicks = [e["detail"] for e in r.body["events"] if e["kind"] == "kick"]
        self.assertEqual(kicks, ["by admin-site: character Kael: stuck",
                                 "by admin-site: afk farming"])
        for path, code in (("/accounts/999/kick", "account.not_found"),
                           ("/characters/999/kick", "character.not_found")):
            r = await h.request("POST", path, {"reason": "x"}, admin=True)
            self.assertEqual((r.code, r.error), (404, code))
        r = await h.request("POST", f"/accounts/{accountId}/kick", {"reason": ""}, admin=True)
        self.assertEqual((r.code, r.error), (400, "request.invalid"))

    async def test_operator_login(self):
        """
        The admin site's operator login (IOperatorLogin) gives an operator a
        token with the operator flag, audited; a player's right password is
        refused (auth.operator_required, audited), a wrong one is a failed
        login as any; logging out revokes that login's tokens.
        """
        h = await AuthHarness(self, self.backend).start()
        logins = h.service.operatorLogins
        self.assertTrue(verifyObject(IOperatorLogin, logins))
        operatorId = await self.operator(h)
        await h.register("bob", PASSWORD)
        token = await logins.login("OPAL", PASSWORD, "10.0.0.9", "test")
        self.assertEqual((token.account_id, token.username), (operatorId, "opal"))
        self.assertNotIn(token.access_token, repr(token))
        claims = await h.verifier.verify(token.access_token)
        self.assertTrue(claims.has("operator"))
        for name, password, code in (("bob", PASSWORD, "auth.operator_required"),
                                     ("opal", "wrong password!", "auth.invalid_credentials")):
            with self.assertRaises(HTTPError) as refused:
                await logins.login(name, password, "10.0.0.9", "test")
            self.assertEqual(refused.exception.code, code)
        self.assertIn("admin_login", await h.events(operatorId))
        bobId = (await h.login("bob")).body["account_id"]
        self.assertIn("admin_login_refused", await h.events(bobId))
        await logins.logout(claims, "10.0.0.9")
        with self.assertRaises(InvalidToken):
            await h.verifier.verify(token.access_token)

    async def test_revoking_the_operator_flag(self):
        """
        `account operator --revoke` takes the flag back and ends the
        account's logins (on a shared store at once); its next login has no
        operator flag and cannot log in to the admin site.  Both are audited.
        """
        h = await AuthHarness(self, self.backend).start()
        operatorId = await self.operator(h)
        login = (await h.login("opal")).body
        raw = {"sql": {"url": h.config.sql.url},
               "volatile": {"url": h.config.volatile.url, "prefix": h.config.volatile.prefix},
               "secrets": {"token_key": TOKEN_KEY}, "listen": {"admin": ""}}
        path = writeConfig(self.mktemp() + ".toml", raw)
        args = makeParser().parse_args(["account", "operator", "opal", "--revoke",
                                        "--config", path])
        out = io.StringIO()
        self.assertEqual(await run(reactor, args, out, clock=h.clock), 0)
        self.assertIn("no longer an operator", out.getvalue())
        if self.backend == "mysql":
            with self.assertRaises(InvalidToken):
                await h.verifier.verify(login["access_token"])
        h.clock.advance(2)
        fresh = (await h.login("opal")).body
        self.assertFalse((await h.verifier.verify(fresh["access_token"])).has("operator"))
        with self.assertRaises(HTTPError) as refused:
            await h.service.operatorLogins.login("opal", PASSWORD, "10.0.0.9", "test")
        self.assertEqual(refused.exception.code, "auth.operator_required")
        kinds = await h.events(operatorId)
        self.assertIn("operator_grant", kinds)
        self.assertIn("operator_revoke", kinds)


class SQLiteOperatorTests(OperatorTestsMixin, TestCase):
    backend = "sqlite"


class MariaDBRedisOperatorTests(OperatorTestsMixin, TestCase):
    backend = "mysql"
