"""Start-up failures of a real twistd node: prompt, exit 1, naming what failed (docs/operations.md, "When start-up fails")."""

import os
import socket

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from mmoshard.plugins import discoverRoles
from mmoshard.testing import TwistdProcess, freePort, listening, writeConfig
from mmoshard.testservers import PrivateMariaDB, PrivateRedis

TOKEN_KEY = "startup-test-key-0123456789abcdef"

# What "prompt" means here: the Redis timeout (1 s below) plus the shutdown,
# with room for a loaded CI machine, far below the 17-20 s of serial timeouts
# the start-up used to add up to.
PROMPT = 8.0


def whyFailed(output):
    """@return: the text after "failed to start:" in a node's output ("" when absent)."""
    for line in output.splitlines():
        if "failed to start:" in line:
            return line.split("failed to start:", 1)[1].strip()
    return ""


class StartupFailureTests(TestCase):
    """A node whose start-up cannot complete exits 1, promptly, saying why."""

    timeout = 120

    def spawn(self, sections):
        admin = freePort()
        listen = sections.setdefault("listen", {})
        listen.setdefault("admin", f"tcp:{admin}:interface=127.0.0.1")
        listen.setdefault("http", f"tcp:{freePort()}:interface=127.0.0.1")
        listen.setdefault("tcp", f"tcp:{freePort()}:interface=127.0.0.1")
        listen.setdefault("websocket", f"tcp:{freePort()}:interface=127.0.0.1")
        sections.setdefault("secrets", {"token_key": TOKEN_KEY})
        sections["node"].setdefault("var_dir", os.path.abspath(self.mktemp()))
        path = writeConfig(self.mktemp() + ".toml", sections)
        proc = TwistdProcess(reactor, path, admin).start()
        self.addCleanup(proc.kill)
        return proc, admin

    async def ended(self, proc):
        """@return: (exit code, seconds until the exit, output)."""
        t0 = reactor.seconds()
        await proc.ended
        return proc.exitCode, reactor.seconds() - t0, proc.output.decode(errors="replace")

    async def assertRedisDownStops(self, redis, roles):
        proc, admin = self.spawn(
            {
                "node": {"id": "nored", "roles": roles},
                "volatile": {"url": redis.url, "prefix": "t:", "timeout": 1.0},
            }
        )
        code, elapsed, output = await self.ended(proc)
        self.assertEqual(code, 1, output)
        self.assertLess(elapsed, PROMPT, output)
        self.assertIn(f"volatile store {redis.url} not answering", whyFailed(output), output)
        # One line per outage, not one per connection attempt.
        self.assertNotIn("Scheduling retry", output)
        self.assertLessEqual(output.count("\n"), 30, output)
        self.assertFalse(listening(admin))
        return output

    async def test_redis_stopped_every_role(self):
        """Redis stopped at start: a node with every role exits 1 within seconds, naming the URL, with no retry lines."""
        redis = await PrivateRedis(self).start()
        redis.kill()
        await self.assertRedisDownStops(redis, sorted(r.name for r in discoverRoles()))

    async def test_redis_stopped_no_role(self):
        """Redis stopped at start: a node with no role behaves the same (one behaviour for every role), saying the connection was refused."""
        redis = await PrivateRedis(self).start()
        redis.kill()
        output = await self.assertRedisDownStops(redis, [])
        self.assertIn("(connecting: Connection was refused", whyFailed(output))

    async def test_redis_frozen_chat(self):
        """Redis frozen (accepts, never answers) at start: a chat node exits 1 within seconds, naming the URL."""
        redis = await PrivateRedis(self).start()
        redis.freeze()
        self.addCleanup(redis.thaw)
        await self.assertRedisDownStops(redis, ["chat"])

    async def test_bad_sqlite_path(self):
        """A SQLite path that cannot be a database file: exit 1 naming the URL, nothing left listening."""
        proc, admin = self.spawn(
            {"node": {"id": "badsql", "roles": []}, "sql": {"url": "sqlite:////dev/null/x.sqlite3"}}
        )
        code, elapsed, output = await self.ended(proc)
        self.assertEqual(code, 1, output)
        self.assertLess(elapsed, PROMPT, output)
        self.assertIn("SQL store sqlite:////dev/null/x.sqlite3", whyFailed(output), output)
        self.assertNotIn("Traceback", output)
        self.assertFalse(listening(admin))

    async def test_sqlite_path_is_a_directory(self):
        """A SQLite URL naming a directory: exit 1 naming the URL."""
        where = os.path.abspath(self.mktemp())
        os.makedirs(where)
        proc, admin = self.spawn({"node": {"id": "dirsql", "roles": []}, "sql": {"url": "sqlite:///" + where}})
        code, elapsed, output = await self.ended(proc)
        self.assertEqual(code, 1, output)
        self.assertIn(f"SQL store sqlite:///{where}", whyFailed(output), output)
        self.assertFalse(listening(admin))

    async def test_mysql_down_names_url_and_port(self):
        """MySQL not running: exit 1, the message naming the redacted URL with its port (never the password)."""
        db = await PrivateMariaDB(self).start()
        db.kill()
        url = f"mysql://root:s3cret@127.0.0.1:{db.port}/mmoshard"
        proc, admin = self.spawn({"node": {"id": "nomysql", "roles": []}, "sql": {"url": url}})
        code, elapsed, output = await self.ended(proc)
        self.assertEqual(code, 1, output)
        self.assertLess(elapsed, PROMPT, output)
        self.assertIn(f"SQL store mysql://root:***@127.0.0.1:{db.port}/mmoshard", whyFailed(output), output)
        self.assertNotIn("s3cret", output)

    async def test_address_in_use_names_listen_key(self):
        """A [listen] port already taken: exit 1, the message naming the [listen] key and its endpoint."""
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        self.addCleanup(taken.close)
        endpoint = f"tcp:{taken.getsockname()[1]}:interface=127.0.0.1"
        proc, admin = self.spawn(
            {"node": {"id": "inuse", "roles": ["chat"]}, "listen": {"websocket": endpoint}}
        )
        code, elapsed, output = await self.ended(proc)
        self.assertEqual(code, 1, output)
        self.assertIn(f'[listen] websocket = "{endpoint}"', whyFailed(output), output)
        self.assertIn("Address already in use", whyFailed(output))


class MigrateCreatesDatabaseTests(TestCase):
    """C{mmoshard migrate} on a MySQL server that has no database yet."""

    timeout = 120

    async def runCLI(self, *args):
        import sys

        from twisted.internet.utils import getProcessOutputAndValue

        from mmoshard.testing import repoRoot

        out, err, code = await getProcessOutputAndValue(
            sys.executable, ["-m", "mmoshard.cli", *args],
            env=dict(os.environ, PYTHONPATH=repoRoot()), path=repoRoot(),
        )
        return out.decode(), err.decode(), code

    async def test_migrate_creates_the_database(self):
        """--status says the database is missing and who makes it; migrate creates it and applies every migration."""
        from mmoshard.store.migrations import latestVersion

        db = await PrivateMariaDB(self).start()
        url = db.url("game")
        latest = latestVersion("mysql")
        out, err, code = await self.runCLI("migrate", "--status", "--sql-url", url)
        self.assertEqual(code, 0, err)
        self.assertIn("no database 'game' yet", out)
        self.assertIn("mmoshard migrate creates it", out)
        out, err, code = await self.runCLI("migrate", "--sql-url", url)
        self.assertEqual(code, 0, err)
        self.assertIn(f"created database 'game' on mysql://root@127.0.0.1:{db.port}/game", out)
        self.assertIn("applied 0001_accounts_characters (version 1)", out)
        out, err, code = await self.runCLI("migrate", "--status", "--sql-url", url)
        self.assertEqual(code, 0, err)
        self.assertIn(f"schema version {latest}, up to date", out)

    async def test_migrate_server_down_names_url(self):
        """migrate against a stopped server fails in one line naming the redacted URL and its port."""
        db = await PrivateMariaDB(self).start()
        db.kill()
        out, err, code = await self.runCLI(
            "migrate", "--sql-url", f"mysql://root:pw@127.0.0.1:{db.port}/game")
        self.assertEqual(code, 1, err)
        self.assertIn(f"mysql://root:***@127.0.0.1:{db.port}/game", err)
        self.assertNotIn(":pw@", err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
