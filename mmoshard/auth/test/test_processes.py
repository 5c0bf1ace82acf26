"""Across processes: tokens from an auth twistd are accepted by a session twistd, and revocations reach it — refusing new handshakes and ending live sessions within a second."""

import json
import os

import treq
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from mmoshard.testing import TwistdProcess, freePort, sharedStores, writeConfig
from mmoshard.wire.client import RequestError, SessionClient

TOKEN_KEY = "auth-e2e-key-0123456789abcdef"
PASSWORD = "correct horse battery"


class CrossProcessRevocationTests(TestCase):
    timeout = 120

    async def spawn(self, nodeId, roles, mysqlURL, redisURL, prefix):
        admin, http = freePort(), freePort()
        sections = {
            "node": {"id": nodeId, "roles": roles, "var_dir": os.path.abspath(self.mktemp())},
            "sql": {"url": mysqlURL},
            "volatile": {"url": redisURL, "prefix": prefix},
            "secrets": {"token_key": TOKEN_KEY},
            "directory": {"heartbeat": 0.5, "ttl": 2.0},
            "listen": {"admin": f"tcp:{admin}:interface=127.0.0.1",
                       "http": f"tcp:{http}:interface=127.0.0.1",
                       "tcp": f"tcp:{freePort()}:interface=127.0.0.1",
                       "websocket": f"tcp:{freePort()}:interface=127.0.0.1"},
        }
        if "auth" in roles:
            sections["auth"] = {"argon2_time_cost": 1, "argon2_memory_kib": 64}
        path = writeConfig(self.mktemp() + ".toml", sections)
        proc = TwistdProcess(reactor, path, admin).start()
        self.addCleanup(proc.kill)
        await proc.waitReady()
        proc.http = f"http://127.0.0.1:{http}"
        proc.admin = f"http://127.0.0.1:{admin}"
        return proc

    async def call(self, method, url, body=None, token=None):
        headers = {b"content-type": [b"application/json"]}
        if token:
            headers[b"authorization"] = [b"Bearer " + token.encode()]
        response = await treq.request(method, url, headers=headers, persistent=False,
                                      data=None if body is None else json.dumps(body).encode(),
                                      timeout=10)
        return response.code, json.loads(await response.content())

    async def hello(self, address, token):
        """@return: None when the session opens, else the error code."""
        client = SessionClient(reactor, address, token, autoResume=False)
        try:
            await client.connect()
        except RequestError as e:
            return e.code
        await client.close()
        return None

    async def session(self, address, token):
        """@return: a connected L{SessionClient} (closed at cleanup)."""
        client = SessionClient(reactor, address, token, autoResume=False)
        await client.connect()
        self.addCleanup(lambda: None if client.ended.called else client.close())
        return client

    async def endedWithin(self, client, since, seconds=1.0):
        """The session process ends C{client}'s session with auth.revoked within C{seconds} of C{since}."""
        left = since + seconds - reactor.seconds()
        ended = client.ended
        if not ended.called:
            ended.addTimeout(max(left, 0.01), reactor)
        try:
            reason = await ended
        except Exception:
            self.fail(f"live session not ended within {seconds}s of the revocation")
        self.assertEqual(reason, "auth.revoked")
        self.assertLessEqual(reactor.seconds() - since, seconds)

    async def ban(self, username, mysqlURL, redisURL, prefix):
        """Run `mmoshard account ban` in this process; @return: its exit status."""
        import io

        from mmoshard.auth.cli import run
        from mmoshard.cli import makeParser

        path = writeConfig(self.mktemp() + ".toml", {
            "sql": {"url": mysqlURL}, "volatile": {"url": redisURL, "prefix": prefix},
            "secrets": {"token_key": TOKEN_KEY}, "listen": {"admin": ""}})
        args = makeParser().parse_args(
            ["account", "ban", username, "--reason", "testing", "--config", path])
        return await run(reactor, args, io.StringIO())

    async def refusedWithin(self, address, token, seconds=1.0):
        """The session process refuses C{token} within C{seconds}."""
        deadline = reactor.seconds() + seconds
        while True:
            code = await self.hello(address, token)
            if code is not None:
                self.assertEqual(code, "auth.invalid_token")
                return
            self.assertLess(reactor.seconds(), deadline, "revocation not seen in time")
            await deferLater(reactor, 0.05, lambda: None)

    async def test_tokens_and_revocations_cross_processes(self):
        """
        Between real auth and session processes on MariaDB and Redis, logout,
        password change, an admin-site ban and `account ban` each end the live
        sessions and refuse the tokens elsewhere within the allowed time.
        """
        mysqlURL, redisURL, prefix = await sharedStores(self, reactor)
        session = await self.spawn("sessions-1", ["chat"], mysqlURL, redisURL, prefix)
        auth = await self.spawn("auth-1", ["auth"], mysqlURL, redisURL, prefix)

        code, body = await self.call("POST", auth.http + "/v1/accounts",
                                     {"username": "alice", "password": PASSWORD})
        self.assertEqual(code, 201, body)

        async def login():
            code, body = await self.call("POST", auth.http + "/v1/sessions",
                                         {"username": "alice", "password": PASSWORD})
            self.assertEqual(code, 200, body)
            return body

        # The login's directory says where the session listener is.
        first = await login()
        chat = first["directory"]["chat"]
        self.assertEqual([e["node_id"] for e in chat], ["sessions-1"])
        address = chat[0]["tcp"]
        self.assertIsNone(await self.hello(address, first["access_token"]))

        # Logout ends the live session in the other process, and the token
        # opens no new one.
        live = await self.session(address, first["access_token"])
        since = reactor.seconds()
        code, _ = await self.call("DELETE", auth.http + "/v1/sessions",
                                  token=first["access_token"])
        self.assertEqual(code, 200)
        await self.endedWithin(live, since)
        await self.refusedWithin(address, first["access_token"])

        # Password change ends the other logins, live sessions included, and
        # keeps the one it was made from.
        second, third = await login(), await login()
        self.assertIsNone(await self.hello(address, second["access_token"]))
        other = await self.session(address, second["access_token"])
        since = reactor.seconds()
        code, body = await self.call("POST", auth.http + "/v1/accounts/me/password",
                                     {"current_password": PASSWORD,
                                      "new_password": "another long secret"},
                                     token=third["access_token"])
        self.assertEqual(code, 200, body)
        await self.endedWithin(other, since)
        await self.refusedWithin(address, second["access_token"])
        self.assertIsNone(await self.hello(address, third["access_token"]))

        # A ban ends every login, and the live session of the account.
        live = await self.session(address, third["access_token"])
        since = reactor.seconds()
        code, body = await self.call("POST", f"{auth.admin}/accounts/{third['account_id']}/ban",
                                     {"reason": "testing"})
        self.assertEqual(code, 200, body)
        await self.endedWithin(live, since)
        await self.refusedWithin(address, third["access_token"])

        # So does `mmoshard account ban`, writing SQL and Redis itself.
        code, body = await self.call("POST", auth.http + "/v1/accounts",
                                     {"username": "bob", "password": PASSWORD})
        self.assertEqual(code, 201, body)
        code, bob = await self.call("POST", auth.http + "/v1/sessions",
                                    {"username": "bob", "password": PASSWORD})
        self.assertEqual(code, 200, bob)
        live = await self.session(address, bob["access_token"])
        since = reactor.seconds()
        self.assertEqual(await self.ban("bob", mysqlURL, redisURL, prefix), 0)
        await self.endedWithin(live, since)
        await self.refusedWithin(address, bob["access_token"])

        self.assertEqual(await auth.stop("TERM"), 0, auth.output.decode())
        self.assertEqual(await session.stop("TERM"), 0, session.output.decode())
