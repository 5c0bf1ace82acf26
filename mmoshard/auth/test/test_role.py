"""The role plugin, its config, /openapi.json kept in step with the routes, and metrics."""

from twisted.plugin import IPlugin
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from mmoshard.auth.errors import ERRORS
from mmoshard.auth.test.harness import AuthHarness
from mmoshard.config import ConfigError, parseConfig
from mmoshard.interfaces import IRole
from mmoshard.plugins import discoverRoles
from mmoshard.plugins.auth import auth


class PluginTests(TestCase):
    def test_provides(self):
        """The auth plugin provides IRole and IPlugin, is discovered, and serves over HTTP."""
        self.assertTrue(verifyObject(IRole, auth))
        self.assertTrue(verifyObject(IPlugin, auth))
        self.assertIn(auth, discoverRoles())
        self.assertEqual(auth.transports, frozenset({"http"}))

    def test_config_defaults(self):
        """
        The argon2 defaults are OWASP's and hash_threads defaults to 0 (sized from
        the CPUs).
        """
        cfg = parseConfig({}, [auth], env={}).roleConfig("auth")
        self.assertEqual((cfg.argon2_time_cost, cfg.argon2_memory_kib,
                          cfg.argon2_parallelism), (2, 19456, 1))
        self.assertEqual(cfg.hash_threads, 0)

    def test_config_problems(self):
        """Every bad [auth] value is reported at once, each at its path."""
        with self.assertRaises(ConfigError) as cm:
            parseConfig({"auth": {"username_min": 30, "username_max": 10,
                                  "argon2_time_cost": 0, "classes_file": "nope.toml",
                                  "access_ttl": 100.0, "refresh_ttl": 50.0,
                                  "character_name_max": 40, "colour": "red"}},
                        [auth], env={})
        paths = {p.path for p in cm.exception.problems}
        self.assertEqual(paths, {"auth.username_min", "auth.argon2_time_cost",
                                 "auth.classes_file", "auth.access_ttl",
                                 "auth.character_name_max", "auth.colour"})


class OpenAPITests(TestCase):
    async def test_document_matches_routes(self):
        """Every route is documented, and every documented operation is served."""
        h = await AuthHarness(self, "sqlite").start()
        r = await h.request("GET", "/openapi.json")
        self.assertEqual(r.code, 200)
        doc = r.body
        documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
        routes = {(route.method, route.path) for route in h.service.api.routes}
        self.assertEqual(documented, routes | {("GET", "/openapi.json")})
        token = (await h.account())["access_token"]
        for method, path in sorted(documented):
            r = await h.request(method, path.replace("{id}", "1"), token=token,
                                body={} if method == "POST" else None)
            self.assertNotIn(r.error, ("request.not_found", "request.method_not_allowed"),
                             (method, path))
            op = doc["paths"][path][method.lower()]
            if r.code >= 400:
                # The answer is among those the document lists.
                self.assertIn(str(r.code), op["responses"], (method, path, r))
                self.assertIn(f"`{r.error}`", op["responses"][str(r.code)]["description"])
            if path != "/openapi.json":
                route = next(x for x in h.service.api.routes
                             if (x.method, x.path) == (method, path))
                self.assertEqual("security" in op, route.auth)
                if route.body is not None:
                    schema = op["requestBody"]["content"]["application/json"]["schema"]
                    self.assertEqual(set(schema["properties"]), set(route.body))
                    self.assertFalse(schema["additionalProperties"])
        self.assertEqual(set(doc["components"]["schemas"]["Error"]["properties"]["error"]
                             ["properties"]["code"]["enum"]), set(ERRORS))


class MetricsTests(TestCase):
    async def test_metrics(self):
        """
        Login outcomes, hash timings and the active-sessions gauge are exported, and
        the gauge drops once logins expire.
        """
        h = await AuthHarness(self, "sqlite").start()
        await h.account()
        await h.login(password="wrong password")
        await h.login()
        sample = h.node.metrics.get_sample_value
        self.assertEqual(sample("mmoshard_auth_logins_total", {"outcome": "ok"}), 2)
        self.assertEqual(sample("mmoshard_auth_logins_total", {"outcome": "failed"}), 1)
        self.assertEqual(sample("mmoshard_auth_password_hash_seconds_count",
                                {"op": "verify"}), 3)
        # The dummy hash at start and alice's.
        self.assertEqual(sample("mmoshard_auth_password_hash_seconds_count",
                                {"op": "hash"}), 2)
        await h.service.countSessions()
        self.assertEqual(sample("mmoshard_auth_active_sessions"), 2)
        h.clock.advance(h.config.roleConfig("auth").refresh_ttl + 1)
        await h.service.countSessions()
        self.assertEqual(sample("mmoshard_auth_active_sessions"), 0)

    async def test_purge(self):
        """The purge forgets logins revoked or expired more than a day ago."""
        h = await AuthHarness(self, "sqlite").start()
        login = await h.account()
        await h.request("DELETE", "/v1/sessions", token=login["access_token"])
        h.clock.advance(2 * 86400)
        await h.service.purge()
        rows = await h.sql.runQuery("SELECT COUNT(*) FROM auth_logins")
        self.assertEqual(rows[0][0], 0)


class DocsTests(TestCase):
    """docs/auth.md lists every route, error code, config key and metric."""

    def setUp(self):
        import os

        from mmoshard.testing import checkoutRoot

        with open(os.path.join(checkoutRoot(), "docs", "auth.md")) as f:
            self.text = f.read()

    def test_routes_and_codes(self):
        """
        docs/auth.md lists every public and admin route and every error code with
        its status.
        """
        from types import SimpleNamespace

        from mmoshard.auth.admin import AdminAPI
        from mmoshard.auth.api import AuthAPI
        from mmoshard.auth.config import makeConfig
        from mmoshard.auth.gamedata import loadGameData
        from mmoshard.web.routes import routesOf

        config = makeConfig()
        service = SimpleNamespace(config=config, gameData=loadGameData(config.classes_file))
        for route in routesOf(AuthAPI(service)) + routesOf(AdminAPI(service)):
            self.assertIn(f"| {route.method} | `{route.path}` |", self.text)
        for code, (status, _) in ERRORS.items():
            self.assertIn(f"| `{code}` | {status} |", self.text)

    def test_config_keys(self):
        """docs/auth.md documents every [auth] config key."""
        from mmoshard.auth.config import AUTH_FIELDS

        for name in AUTH_FIELDS:
            self.assertIn(f"`{name}`", self.text)


class OpenAPIResponseTests(TestCase):
    async def test_success_bodies_match_document(self):
        """Each success body has exactly the properties the document gives it."""
        h = await AuthHarness(self, "sqlite").start()
        doc = (await h.request("GET", "/openapi.json")).body

        def check(method, path, r, status=200):
            self.assertEqual(r.code, status, (method, path, r))
            schema = (doc["paths"][path][method.lower()]["responses"][str(status)]
                      ["content"]["application/json"]["schema"])
            self.assertEqual(set(r.body), set(schema["properties"]), (method, path))

        password = "correct horse battery"
        check("POST", "/v1/accounts", await h.register(), 201)
        login = await h.login()
        check("POST", "/v1/sessions", login)
        token = login.body["access_token"]
        check("GET", "/v1/accounts/me", await h.request("GET", "/v1/accounts/me", token=token))
        check("GET", "/v1/classes", await h.request("GET", "/v1/classes"))
        created = await h.request("POST", "/v1/characters", {"name": "Uther", "class": "paladin"},
                                  token=token)
        check("POST", "/v1/characters", created, 201)
        check("GET", "/v1/characters", await h.request("GET", "/v1/characters", token=token))
        check("DELETE", "/v1/characters/{id}",
              await h.request("DELETE", f"/v1/characters/{created.body['id']}", token=token))
        refreshed = await h.request("POST", "/v1/sessions/refresh",
                                    {"refresh_token": login.body["refresh_token"]})
        check("POST", "/v1/sessions/refresh", refreshed)
        token = refreshed.body["access_token"]
        check("POST", "/v1/accounts/me/password",
              await h.request("POST", "/v1/accounts/me/password",
                              {"current_password": password, "new_password": "x new password"},
                              token=token))
        check("DELETE", "/v1/sessions", await h.request("DELETE", "/v1/sessions", token=token))
