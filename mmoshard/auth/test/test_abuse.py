"""Failed-login lockout with growing backoff and per-IP rate limits, driven by a Clock."""

from twisted.trial.unittest import TestCase

from mmoshard.auth.test.harness import AuthHarness

PASSWORD = "correct horse battery"


class LockoutTestsMixin:
    """Runs on both backends; time travel only where the store follows the Clock."""

    backend = None

    async def failTimes(self, h, n, username="alice"):
        for _ in range(n):
            r = await h.login(username, "wrong password")
            self.assertEqual(r.code, 401, r)

    async def test_lockout(self):
        """
        After lockout_threshold failed logins the username is locked, even with the
        right password: 429 auth.locked with Retry-After, a login_locked event, and
        the locked and failed outcomes counted.
        """
        h = await AuthHarness(self, self.backend, lockout_threshold=3,
                              lockout_base=30.0).start()
        accountId = (await h.register()).body["account_id"]
        await self.failTimes(h, 3)
        # Locked, even with the right password; the answer says for how long.
        r = await h.login()
        self.assertEqual((r.code, r.error), (429, "auth.locked"))
        self.assertIn(r.header("retry-after"), ("29", "30"))
        kinds = await h.events(accountId)
        self.assertEqual(kinds[:4], ["login_locked", "login_failed", "login_failed",
                                     "login_failed"])
        metric = h.node.metrics.get_sample_value
        self.assertEqual(metric("mmoshard_auth_logins_total", {"outcome": "locked"}), 1)
        self.assertEqual(metric("mmoshard_auth_logins_total", {"outcome": "failed"}), 3)

    async def test_password_change_counts_toward_lockout(self):
        """A stolen access token cannot be used to guess the password."""
        h = await AuthHarness(self, self.backend, lockout_threshold=2).start()
        login = await h.account()
        for _ in range(2):
            r = await h.request("POST", "/v1/accounts/me/password",
                                {"current_password": "guess guess", "new_password": "x y z w v u"},
                                token=login["access_token"])
            self.assertEqual(r.error, "auth.wrong_password")
        r = await h.request("POST", "/v1/accounts/me/password",
                            {"current_password": PASSWORD, "new_password": "a new long secret"},
                            token=login["access_token"])
        self.assertEqual((r.code, r.error), (429, "auth.locked"))
        self.assertEqual((await h.login()).error, "auth.locked")
        kinds = await h.events(login["account_id"])
        self.assertEqual(kinds[:4], ["login_locked", "password_locked", "password_failed",
                                     "password_failed"])

    async def test_unknown_username_locks_too(self):
        """Lockout is by username, so it does not reveal which names exist."""
        h = await AuthHarness(self, self.backend, lockout_threshold=2).start()
        await self.failTimes(h, 2, "nobody")
        r = await h.login("nobody", "whatever")
        self.assertEqual((r.code, r.error), (429, "auth.locked"))

    async def test_ip_rate_limit(self):
        """
        Registrations and logins past their per-IP rate get 429 auth.rate_limited
        with a Retry-After within the window; an untrusted X-Forwarded-For changes
        nothing.
        """
        h = await AuthHarness(self, self.backend, login_rate=3, login_window=60.0,
                              register_rate=2, register_window=600.0).start()
        await h.register("alice")
        await h.register("bob")
        r = await h.register("carol")
        self.assertEqual((r.code, r.error), (429, "auth.rate_limited"))
        self.assertTrue(0 < int(r.header("retry-after")) <= 600)
        for _ in range(3):
            self.assertEqual((await h.login()).code, 200)
        r = await h.login()
        self.assertEqual((r.code, r.error), (429, "auth.rate_limited"))
        self.assertTrue(0 < int(r.header("retry-after")) <= 60)
        # Another address is not affected.
        r = await h.login(headers={"X-Forwarded-For": "203.0.113.9"})
        self.assertEqual(r.code, 429)  # not trusted unless configured


class SQLiteMemoryLockoutTests(LockoutTestsMixin, TestCase):
    backend = "sqlite"

    async def test_backoff_grows_and_expires(self):
        """
        Each lockout after the first lasts twice as long up to lockout_max, ends on
        the Clock, and a good login clears the failure count.
        """
        h = await AuthHarness(self, self.backend, lockout_threshold=3, lockout_base=30.0,
                              lockout_max=100.0).start()
        await h.register()
        await self.failTimes(h, 3)
        self.assertEqual((await h.login()).header("retry-after"), "30")
        h.clock.advance(30)
        # The lock is over; one more failure locks again, twice as long.
        await self.failTimes(h, 1)
        self.assertEqual((await h.login()).header("retry-after"), "60")
        h.clock.advance(60)
        await self.failTimes(h, 1)
        self.assertEqual((await h.login()).header("retry-after"), "100")  # capped
        h.clock.advance(100)
        # The right password gets in and clears the count.
        self.assertEqual((await h.login()).code, 200)
        await self.failTimes(h, 2)
        self.assertEqual((await h.login()).code, 200)

    async def test_rate_window_passes(self):
        """
        Once the Retry-After of a rate-limited login has passed, the address may log
        in again.
        """
        h = await AuthHarness(self, self.backend, login_rate=2, login_window=60.0).start()
        await h.register()
        for _ in range(2):
            await h.login()
        r = await h.login()
        self.assertEqual(r.code, 429)
        h.clock.advance(int(r.header("retry-after")))
        self.assertEqual((await h.login()).code, 200)

    async def test_forwarded_for_when_trusted(self):
        """
        With trust_forwarded the last X-Forwarded-For address is the client's: rate
        limits and login events use it.
        """
        h = await AuthHarness(self, self.backend, login_rate=1, trust_forwarded=True).start()
        await h.register()
        self.assertEqual((await h.login(headers={"X-Forwarded-For": "1.2.3.4"})).code, 200)
        self.assertEqual((await h.login(headers={"X-Forwarded-For": "1.2.3.4"})).code, 429)
        r = await h.login(headers={"X-Forwarded-For": "9.9.9.9, 5.6.7.8"})
        self.assertEqual(r.code, 200)
        rows = await h.sql.runQuery(
            "SELECT ip FROM account_events WHERE kind = 'login_ok' ORDER BY id")
        self.assertEqual([r[0] for r in rows], ["1.2.3.4", "5.6.7.8"])


class MariaDBRedisLockoutTests(LockoutTestsMixin, TestCase):
    backend = "mysql"


class OutageTests(TestCase):
    """A store that does not answer gets a typed 503, never a traceback."""

    async def test_volatile_down(self):
        """
        With the volatile store down, logins, token checks and refreshes answer 503
        service.unavailable with Retry-After 1, and the refresh token is not spent.
        """
        from twisted.internet.defer import fail

        from mmoshard.store.errors import VolatileUnavailable

        h = await AuthHarness(self, "sqlite").start()
        login = await h.account()
        volatile = h.volatile
        working = {name: getattr(volatile, name) for name in ("incr", "get", "ttl", "evalScript")}
        for name in working:
            self.patch(volatile, name,
                       lambda *a, **k: fail(VolatileUnavailable("redis is gone")))
        r = await h.login()
        self.assertEqual((r.code, r.error), (503, "service.unavailable"))
        self.assertEqual(r.header("retry-after"), "1")
        # Token checks fail closed.
        r = await h.request("GET", "/v1/accounts/me", token=login["access_token"])
        self.assertEqual((r.code, r.error), (503, "service.unavailable"))
        # The refresh's own path (no coroutine) maps the outage the same way,
        # and the token is not spent: it refreshes once the store is back.
        r = await h.request("POST", "/v1/sessions/refresh",
                            body={"refresh_token": login["refresh_token"]})
        self.assertEqual((r.code, r.error), (503, "service.unavailable"))
        self.assertEqual(r.header("retry-after"), "1")
        for name, method in working.items():
            setattr(volatile, name, method)
        r = await h.request("POST", "/v1/sessions/refresh",
                            body={"refresh_token": login["refresh_token"]})
        self.assertEqual(r.code, 200, r)
        self.assertEqual(len(self.flushLoggedErrors()), 0)

    async def test_sql_down(self):
        """
        With SQL down a login answers 503 service.unavailable, and routes that need
        no SQL (the class list) still answer.
        """
        h = await AuthHarness(self, "sqlite").start()
        await h.sql.close()
        r = await h.login()
        self.assertEqual((r.code, r.error), (503, "service.unavailable"))
        r = await h.request("GET", "/v1/classes")
        self.assertEqual(r.code, 200)
