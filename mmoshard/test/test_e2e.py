"""End-to-end: real twistd processes, embedded and split over MariaDB + Redis, stopped with SIGTERM."""

import os

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from mmoshard.plugins import discoverRoles
from mmoshard.testing import (
    TwistdProcess,
    freePort,
    requireMySQL,
    requireRedis,
    sharedStores,
    writeConfig,
)

TOKEN_KEY = "e2e-test-key-0123456789abcdef"


class TwistdTests(TestCase):
    timeout = 120

    def spawn(self, sections, extraArgs=()):
        admin = freePort()
        sections.setdefault("listen", {})
        listen = sections["listen"]
        listen.setdefault("admin", f"tcp:{admin}:interface=127.0.0.1")
        listen.setdefault("http", f"tcp:{freePort()}:interface=127.0.0.1")
        listen.setdefault("tcp", f"tcp:{freePort()}:interface=127.0.0.1")
        listen.setdefault("websocket", f"tcp:{freePort()}:interface=127.0.0.1")
        path = writeConfig(self.mktemp() + ".toml", sections)
        proc = TwistdProcess(reactor, path, admin, extraArgs).start()
        self.addCleanup(proc.kill)
        return proc

    async def test_all_in_one_embedded(self):
        """No stores configured: SQLite under var/, memory store, every installed role."""
        varDir = os.path.abspath(self.mktemp())
        proc = self.spawn({"node": {"id": "solo", "var_dir": varDir}})
        ready = await proc.waitReady()
        self.assertEqual(
            ready["checks"], {"sql": "ok", "volatile": "ok", "started": "ok", "tokens": "ok"}
        )
        code, health = await proc.get("/healthz")
        self.assertEqual(health["roles"], sorted(r.name for r in discoverRoles()))
        self.assertTrue(os.path.exists(os.path.join(varDir, "mmoshard.sqlite3")))
        code, listing = await proc.get("/directory")
        self.assertEqual([p["node_id"] for p in listing["processes"]], ["solo"])
        self.assertEqual(await proc.stop("TERM"), 0, proc.output.decode())
        self.assertIn(b"node solo stopped", proc.output)

    async def test_split_processes_share_mysql_and_redis(self):
        """Two processes on one MariaDB and Redis see each other in the directory."""
        mysqlURL, redisURL, prefix = await sharedStores(self, reactor)

        installed = [r.name for r in discoverRoles()]
        half = len(installed) // 2
        split = [installed[:half], installed[half:]]

        def sections(nodeId, roles):
            return {
                "node": {"id": nodeId, "roles": roles, "var_dir": os.path.abspath(self.mktemp())},
                "sql": {"url": mysqlURL},
                "volatile": {"url": redisURL, "prefix": prefix},
                "secrets": {"token_key": TOKEN_KEY},
                "directory": {"heartbeat": 0.5, "ttl": 2.0},
            }

        one = self.spawn(sections("split-1", split[0]))
        two = self.spawn(sections("split-2", split[1]))
        await one.waitReady()
        await two.waitReady()
        for proc in (one, two):
            code, listing = await proc.get("/directory")
            byId = {p["node_id"]: p for p in listing["processes"]}
            self.assertEqual(sorted(byId), ["split-1", "split-2"])
            self.assertEqual(byId["split-1"]["roles"], split[0])
            self.assertEqual(byId["split-2"]["roles"], split[1])
            self.assertIn("admin", byId["split-2"]["endpoints"])
        self.assertEqual(await two.stop("TERM"), 0, two.output.decode())
        code, listing = await one.get("/directory")
        self.assertEqual([p["node_id"] for p in listing["processes"]], ["split-1"])
        self.assertEqual(await one.stop("INT"), 0, one.output.decode())

    async def test_mysql_schema_behind_stops_startup(self):
        """An unmigrated MySQL database stops start-up with exit 1 and says what to run."""
        mysqlURL, dropDB = requireMySQL()
        self.addCleanup(dropDB)
        redisURL, prefix, cleanRedis = requireRedis()
        self.addCleanup(cleanRedis)
        proc = self.spawn(
            {
                "node": {"id": "behind", "roles": []},
                "sql": {"url": mysqlURL},
                "volatile": {"url": redisURL, "prefix": prefix},
                "secrets": {"token_key": TOKEN_KEY},
            }
        )
        code = await proc.ended
        self.assertEqual(code, 1, proc.output.decode())
        self.assertIn(b"mmoshard migrate", proc.output)

    async def test_unknown_role_stops_before_listening(self):
        """twistd with an unknown role exits 1, naming it and the available roles."""
        proc = self.spawn({"node": {"var_dir": os.path.abspath(self.mktemp())}}, ["--roles", "nosuchrole"])
        code = await proc.ended
        self.assertEqual(code, 1)
        self.assertIn(b"nosuchrole", proc.output)
        self.assertIn(b"available:", proc.output)
