"""`mmoshard account ban|unban|show|restore-character` against SQLite and MariaDB + Redis."""

import io

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from mmoshard.auth.cli import parseDuration, parseWhen, run
from mmoshard.auth.test.harness import TOKEN_KEY, AuthHarness
from mmoshard.cli import makeParser
from mmoshard.command import CommandError
from mmoshard.testing import writeConfig
from mmoshard.tokens import InvalidToken


class ParseTests(TestCase):
    def test_duration(self):
        """
        Durations are seconds or a number with s, m, h, d or w; empty, zero,
        negative and unknown units are refused.
        """
        self.assertEqual([parseDuration(t) for t in ("90", "90m", "12h", "7d", "2w")],
                         [90, 5400, 43200, 604800, 1209600])
        for bad in ("", "0", "-5", "5y", "h"):
            self.assertRaises(ValueError, parseDuration, bad)

    def test_when(self):
        """Times are ISO 8601 (UTC unless they say) or epoch seconds; other text is refused."""
        self.assertEqual(parseWhen("2030-01-01T00:00:00"), 1893456000.0)
        self.assertEqual(parseWhen("2030-01-01T01:00:00+01:00"), 1893456000.0)
        self.assertEqual(parseWhen("1893456000"), 1893456000.0)
        self.assertRaises(ValueError, parseWhen, "tomorrow")


class AccountCommandTestsMixin:
    backend = None

    async def command(self, h, *argv, admin=""):
        raw = {"sql": {"url": h.config.sql.url},
               "volatile": {"url": h.config.volatile.url, "prefix": h.config.volatile.prefix},
               "secrets": {"token_key": TOKEN_KEY}, "listen": {"admin": admin}}
        path = writeConfig(self.mktemp() + ".toml", raw)
        args = makeParser().parse_args(["account", *argv, "--config", path])
        out = io.StringIO()
        status = await run(reactor, args, out, clock=h.clock)
        return status, out.getvalue()

    async def test_ban_unban_show(self):
        """
        `account ban` refuses the account's logins and ends its refreshes, `show`
        prints the ban and the audit trail, and `unban` (any case) lets it log in.
        """
        h = await AuthHarness(self, self.backend).start()
        login = await h.account()
        status, out = await self.command(h, "ban", "alice", "--reason", "gold selling",
                                         "--for", "7d")
        self.assertEqual(status, 0)
        self.assertIn("banned until", out)
        r = await h.login()
        self.assertEqual((r.code, r.error), (403, "account.banned"))
        self.assertEqual(r.body["error"]["fields"]["reason"], "gold selling")
        if self.backend == "mysql":
            # The shared store carries the revocation to the server at once.
            with self.assertRaises(InvalidToken):
                await h.verifier.verify(login["access_token"])
        if self.backend == "sqlite":
            # No server was asked, so the ban is in SQL alone: the running
            # server marks the revoked login at its next flush.
            await h.service.loginRecords.flush()
        r = await h.request("POST", "/v1/sessions/refresh",
                            {"refresh_token": login["refresh_token"]})
        self.assertEqual(r.code, 401)
        status, out = await self.command(h, "show", str(login["account_id"]))
        self.assertIn("gold selling", out)
        self.assertIn("ban", out)
        status, out = await self.command(h, "unban", "ALICE")
        self.assertEqual((status, out.strip()), (0, f"account {login['account_id']} unbanned"))
        self.assertEqual((await h.login()).code, 200)

    async def test_errors(self):
        """
        Banning an unknown account, a bad duration and restoring an unknown
        character are command errors.
        """
        h = await AuthHarness(self, self.backend).start()
        with self.assertRaises(CommandError):
            await self.command(h, "ban", "nobody", "--reason", "x")
        await h.account()
        with self.assertRaises(CommandError):
            await self.command(h, "ban", "alice", "--reason", "x", "--for", "soon")
        with self.assertRaises(CommandError):
            await self.command(h, "restore-character", "42")

    async def test_restore_character(self):
        """
        `account restore-character` brings a deleted character back to its account's
        list.
        """
        h = await AuthHarness(self, self.backend).start()
        token = (await h.account())["access_token"]
        cid = (await h.request("POST", "/v1/characters", {"name": "Kael", "class": "mage"},
                               token=token)).body["id"]
        await h.request("DELETE", f"/v1/characters/{cid}", token=token)
        status, out = await self.command(h, "restore-character", str(cid))
        self.assertEqual(status, 0)
        r = await h.request("GET", "/v1/characters", token=token)
        self.assertEqual([c["name"] for c in r.body["characters"]], ["Kael"])


class SQLiteAccountCommandTests(AccountCommandTestsMixin, TestCase):
    backend = "sqlite"

    async def test_ban_through_admin_site(self):
        """On a memory store the running server is asked, so its tokens die at once."""
        h = await AuthHarness(self, self.backend).start()
        login = await h.account()
        port = await h.listenAdmin()
        status, out = await self.command(h, "ban", "alice", "--reason", "spam",
                                         admin=f"tcp:{port}:interface=127.0.0.1")
        self.assertEqual(status, 0)
        self.assertIn("by the running server; 1 login(s) ended", out)
        with self.assertRaises(InvalidToken):
            await h.verifier.verify(login["access_token"])


class MariaDBRedisAccountCommandTests(AccountCommandTestsMixin, TestCase):
    backend = "mysql"
