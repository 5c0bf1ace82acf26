"""Tests for the TOML config loader: defaults, every error path, secrets from the environment."""

import os

from twisted.trial.unittest import TestCase

from mmoshard.config import ConfigError, Field, loadConfig, parseConfig
from mmoshard.endpoints import isLoopbackEndpoint
from mmoshard.role import Role


def fakeRole(name, **kw):
    return Role(
        name=name,
        factory=lambda node: None,
        fields={"limit": Field("int", 5), "greeting": Field("str", "hi")},
        **kw,
    )


PLUGINS = [fakeRole("alpha"), fakeRole("beta")]


class ConfigTests(TestCase):
    def problems(self, raw, **kw):
        with self.assertRaises(ConfigError) as cm:
            parseConfig(raw, PLUGINS, env={}, **kw)
        return {p.path: p.message for p in cm.exception.problems}

    def test_defaults_embedded(self):
        """No file: every installed role, SQLite under var/, memory store."""
        c = parseConfig({}, PLUGINS, env={})
        self.assertEqual(c.node.roles, ("alpha", "beta"))
        self.assertEqual(c.sql.url, "sqlite:///" + os.path.join("var", "mmoshard.sqlite3"))
        self.assertEqual(c.volatile.url, "memory://")
        self.assertFalse(c.volatile.shared)
        self.assertEqual(c.listen.admin, "tcp:9100:interface=127.0.0.1")
        self.assertEqual(c.roleConfig("alpha"), {"limit": 5, "greeting": "hi"})
        self.assertEqual(c.session.max_frame, 65536)

    def test_role_and_node_overrides(self):
        """The --roles and --node-id flags override the config file's [node] roles and id."""
        c = parseConfig(
            {"node": {"roles": ["alpha", "beta"], "id": "file-id"}},
            PLUGINS,
            roles=["beta"],
            nodeId="flag-id",
            env={},
        )
        self.assertEqual(c.node.roles, ("beta",))
        self.assertEqual(c.node.id, "flag-id")
        self.assertEqual(list(c.roles), ["beta"])

    def test_all_problems_reported_together(self):
        """Unknown keys, wrong types and bad endpoints come out in one error."""
        problems = self.problems(
            {
                "node": {"roles": "alpha", "colour": "red"},
                "sql": {"pool_max": "ten"},
                "listen": {"tcp": "bogus:1", "http": 8080},
                "directory": {"ttl": -1.0},
                "alpha": {"limit": "x", "nope": 1},
                "nonsense": {},
            }
        )
        self.assertIn("expected a list of strings", problems["node.roles"])
        self.assertIn("unknown key", problems["node.colour"])
        self.assertIn("expected an integer", problems["sql.pool_max"])
        self.assertIn("Unknown endpoint type", problems["listen.tcp"])
        self.assertIn("got integer", problems["listen.http"])
        self.assertIn("greater than 0", problems["directory.ttl"])
        self.assertIn("expected an integer", problems["alpha.limit"])
        self.assertIn("unknown key", problems["alpha.nope"])
        self.assertIn("unknown section", problems["nonsense"])

    def test_gc_threshold(self):
        """[node] gc_threshold defaults to (50000, 20, 20) and must be three integers."""
        self.assertEqual(parseConfig({}, PLUGINS, env={}).node.gc_threshold, (50000, 20, 20))
        problems = self.problems({"node": {"gc_threshold": [700, 10]}})
        self.assertIn("three integers", problems["node.gc_threshold"])
        problems = self.problems({"node": {"gc_threshold": ["a", 1, 2]}})
        self.assertIn("a list of integers", problems["node.gc_threshold"])

    def test_unknown_role_names_available(self):
        """An unknown role name is reported with the roles that are available."""
        problems = self.problems({}, roles=["alpha", "gamma"])
        self.assertIn("gamma", problems["node.roles"])
        self.assertIn("available: alpha, beta", problems["node.roles"])

    def test_bad_urls(self):
        """An unsupported SQL URL and a Redis URL without a host are each reported at their key."""
        problems = self.problems(
            {"sql": {"url": "postgres://x/y"}, "volatile": {"url": "redis://"}}
        )
        self.assertIn("unsupported SQL URL", problems["sql.url"])
        self.assertIn("redis URL must be", problems["volatile.url"])

    def test_admin_off_loopback(self):
        """
        An admin listener off loopback is accepted; it is told apart from a
        loopback one (which needs no operator login) by its endpoint string.
        """
        c = parseConfig({"listen": {"admin": "tcp:9100"}}, PLUGINS, env={})
        self.assertEqual(c.listen.admin, "tcp:9100")
        loopback = ["tcp:9100:interface=127.0.0.1", "tcp6:port=9100:interface=\\:\\:1",
                    "unix:/run/mmoshard/admin.sock", "ssl:9100:interface=localhost"]
        elsewhere = ["tcp:9100", "tcp:9100:interface=0.0.0.0", "tcp6:9100:interface=\\:\\:",
                     "tcp:9100:interface=10.0.0.5", "tcp:9100:interface=127.0.0.1x"]
        self.assertEqual([isLoopbackEndpoint(e) for e in loopback], [True] * 4)
        self.assertEqual([isLoopbackEndpoint(e) for e in elsewhere], [False] * 5)

    def test_cors_origins(self):
        """[web] cors_origins takes origins and "*", and names each value that is not an origin."""
        c = parseConfig({"web": {"cors_origins": ["https://game.example", "http://localhost:3000",
                                                  "*"]}}, PLUGINS, env={})
        self.assertEqual(c.web.cors_origins,
                         ("https://game.example", "http://localhost:3000", "*"))
        self.assertEqual(parseConfig({}, PLUGINS, env={}).web.cors_origins, ())
        for bad in ("game.example", "https://game.example/", "https://game.example/play",
                    "ftp://game.example"):
            problems = self.problems({"web": {"cors_origins": [bad]}})
            self.assertIn("not an origin", problems["web.cors_origins"])

    def test_shared_store_needs_token_key(self):
        """A shared (Redis) volatile store without a token key is refused, naming MMOSHARD_TOKEN_KEY."""
        problems = self.problems({"volatile": {"url": "redis://127.0.0.1:6379/0"}})
        self.assertIn("MMOSHARD_TOKEN_KEY", problems["secrets.token_key"])

    def test_secrets_from_environment(self):
        """The token key and the SQL and Redis passwords come from the environment, quoted into the URLs."""
        c = parseConfig(
            {
                "volatile": {"url": "redis://127.0.0.1:6379/0"},
                "sql": {"url": "mysql://game@db.example:3306/mmo"},
            },
            PLUGINS,
            env={
                "MMOSHARD_TOKEN_KEY": "k" * 32,
                "MMOSHARD_SQL_PASSWORD": "p@ss:word",
                "MMOSHARD_REDIS_PASSWORD": "r3dis",
            },
        )
        self.assertEqual(c.secrets.token_key, "k" * 32)
        self.assertEqual(c.sql.url, "mysql://game:p%40ss%3Aword@db.example:3306/mmo")
        self.assertEqual(c.volatile.url, "redis://:r3dis@127.0.0.1:6379/0")
        self.assertNotIn("k" * 32, repr(c))

    def test_file_errors(self):
        """A missing config file and invalid TOML are reported as configuration errors."""
        path = self.mktemp()
        with self.assertRaises(ConfigError) as cm:
            loadConfig(path, plugins=PLUGINS, env={})
        self.assertIn("cannot read", str(cm.exception))
        with open(path, "w") as f:
            f.write("[node\nid=")
        with self.assertRaises(ConfigError) as cm:
            loadConfig(path, plugins=PLUGINS, env={})
        self.assertIn("not valid TOML", str(cm.exception))

    def test_shipped_configs_parse(self):
        """etc/mmoshard.toml and every etc/split/*.toml load with the installed roles."""
        from mmoshard.plugins import discoverRoles

        from mmoshard.testing import checkoutRoot

        etc = os.path.join(checkoutRoot(), "etc")
        files = [os.path.join(etc, "mmoshard.toml")] + [
            os.path.join(etc, "split", f)
            for f in sorted(os.listdir(os.path.join(etc, "split")))
            if f.endswith(".toml")
        ]
        self.assertGreater(len(files), 1)
        installed = {r.name for r in discoverRoles()}
        for path in files:
            c = loadConfig(path, env={})
            self.assertTrue(set(c.node.roles) <= installed, path)
            self.assertEqual(c.sql.url[:8], "mysql://", path)
            self.assertTrue(c.volatile.shared, path)


class DataPathTests(TestCase):
    def test_shipped_data_found_from_any_directory(self):
        """A relative data path that is not under the working directory falls back to the shipped copy."""
        role = Role(
            name="gamedata",
            factory=lambda node: None,
            fields={"file": Field("datapath", "etc/mmoshard.toml")},
        )
        elsewhere = os.path.abspath(self.mktemp())
        os.makedirs(elsewhere)
        here = os.getcwd()
        os.chdir(elsewhere)
        self.addCleanup(os.chdir, here)
        c = parseConfig({}, [role], env={})
        self.assertTrue(os.path.isabs(c.roleConfig("gamedata")["file"]))
        self.assertTrue(os.path.exists(c.roleConfig("gamedata")["file"]))
        # A file present in the working directory wins over the shipped one.
        os.makedirs("etc")
        with open("etc/mmoshard.toml", "w") as f:
            f.write("")
        c = parseConfig({}, [role], env={})
        self.assertEqual(c.roleConfig("gamedata")["file"], "etc/mmoshard.toml")
