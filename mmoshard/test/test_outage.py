"""A hung MariaDB or Redis (SIGSTOP) under a real twistd node: clients are answered within the deadline, and everything works again after SIGCONT."""

import os
import time
import uuid

import treq
from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from mmoshard.testing import eventually, freePort, startNodeProcess
from mmoshard.testservers import PrivateMariaDB, PrivateRedis
from mmoshard.wire import errors
from mmoshard.wire.client import RequestError, SessionClient

TOKEN_KEY = "outage-test-key-0123456789abcdef"
PASSWORD = "outage test password 9"
# The deadline the node is configured with, and what a test allows on top
# of it (a process on a busy two-core machine, the answer's own way back).
DEADLINE = 1.0
SLACK = 2.5
# How long a thawed server's clients may take to be answered again.
RECOVERY = 15.0


class HungStoreTests(TestCase):
    """
    One twistd node with the auth and world roles on a MariaDB and a Redis of
    the test's own, one of which is frozen with SIGSTOP: a frozen server keeps
    its connections open and answers nothing, the failure that left clients
    without an answer for a minute (issue 14).
    """

    timeout = 180

    async def startNode(self):
        from mmoshard.store.sql import SQLStore, migrate

        self.mariadb = await PrivateMariaDB(self).start()
        self.redis = await PrivateRedis(self).start()
        url = await self.mariadb.createDatabase()
        store = SQLStore(reactor, url)
        store.open()
        await migrate(store)
        await store.close()
        http = freePort()
        self.proc = await startNodeProcess(self, reactor, self.mktemp() + ".toml", {
            "node": {"id": "outage", "roles": ["auth", "world"],
                     "var_dir": os.path.abspath(self.mktemp())},
            # Two connections: a few stuck requests would take them all.
            "sql": {"url": url, "pool_min": 1, "pool_max": 2, "deadline": DEADLINE},
            "volatile": {"url": self.redis.url, "prefix": "outage:", "timeout": DEADLINE},
            "secrets": {"token_key": TOKEN_KEY},
            "listen": {"http": f"tcp:{http}:interface=127.0.0.1"},
            "session": {"one_session_per_account": False},
        })
        self.http = f"http://127.0.0.1:{http}"
        self.tcp = self.proc.address
        # A one-second deadline on a loaded machine may answer 503 now and
        # then: the set-up retries as a client is told to (these are safe).
        username = "outage_" + uuid.uuid4().hex[:8]
        status, body = await self.retried("POST", "/v1/accounts", username=username,
                                          password=PASSWORD)
        self.assertEqual(status, 201, body)
        status, tokens = await self.retried("POST", "/v1/sessions", username=username,
                                            password=PASSWORD)
        self.assertEqual(status, 200, tokens)
        self.token, self.refreshToken = tokens["access_token"], tokens["refresh_token"]
        status, classes = await self.retried("GET", "/v1/classes")
        status, character = await self.retried("POST", "/v1/characters", name="Frozen",
                                               **{"class": classes["classes"][0]["id"]})
        self.assertEqual(status, 201, character)
        self.characterId = character["id"]

    async def retried(self, method, path, **body):
        """@return: L{rest}'s answer, retried after its retry_after while it is a 503."""
        for _ in range(10):
            status, answer = await self.rest(method, path, **body)
            if status != 503:
                break
            await deferLater(reactor, answer["error"]["retry_after"], lambda: None)
        return status, answer

    async def rest(self, method, path, **body):
        """@return: (status, parsed body) of one request to the auth role, within the deadline's slack."""
        headers = {"Authorization": f"Bearer {self.token}"} if getattr(self, "token", None) else {}
        response = await treq.request(method, self.http + path, json=body or None,
                                      headers=headers, persistent=False,
                                      timeout=DEADLINE + SLACK)
        return response.code, await response.json()

    async def timed(self, coroutine):
        """@return: (seconds taken, result) of awaiting C{coroutine}."""
        started = time.monotonic()
        result = await coroutine
        return time.monotonic() - started, result

    async def session(self):
        """@return: a world session client, connected (dropped at clean-up)."""
        client = SessionClient(reactor, self.tcp, self.token, clientVersion="1.0.0")
        self.addCleanup(client.drop)
        await client.connect()
        return client

    async def enter(self, client):
        """@return: world.enter's reply, or the L{RequestError} it answered."""
        try:
            return await client.request("world.enter", character_id=self.characterId)
        except RequestError as e:
            return e

    def assertUnavailable(self, status, body, took):
        """A REST answer was the shared 503 with a retry_after, within the deadline."""
        self.assertLess(took, DEADLINE + SLACK)
        self.assertEqual(status, 503, body)
        self.assertEqual(body["error"]["code"], "service.unavailable")
        self.assertGreater(body["error"]["retry_after"], 0)

    async def test_frozenMariaDB(self):
        """
        With MariaDB frozen, GET /v1/characters answers 503 with a retry_after
        and world.enter server.unavailable within the deadline, even when more
        requests arrive than the pool has connections; once MariaDB is thawed
        the same requests succeed, without restarting the node.
        """
        await self.startNode()
        status, listing = await self.retried("GET", "/v1/characters")
        self.assertEqual(status, 200, listing)
        client = await self.session()
        self.mariadb.freeze()
        # More at once than the pool's two connections.
        took, answers = await self.timed(gatherResults(
            [Deferred.fromCoroutine(self.rest("GET", "/v1/characters")) for _ in range(4)]))
        for status, body in answers:
            self.assertUnavailable(status, body, took)
        took, refused = await self.timed(self.enter(client))
        self.assertLess(took, DEADLINE + SLACK)
        self.assertIsInstance(refused, RequestError)
        self.assertEqual(refused.code, errors.UNAVAILABLE)
        self.assertGreater(refused.retry_after, 0)

        self.mariadb.thaw()

        async def listed():
            status, body = await self.rest("GET", "/v1/characters")
            self.assertEqual(status, 200, body)
            return body

        listing = await eventually(reactor, listed, RECOVERY, step=0.2)
        self.assertEqual([c["id"] for c in listing["characters"]], [self.characterId])
        async def entered():
            return await client.request("world.enter", character_id=self.characterId)

        reply = await eventually(reactor, entered, RECOVERY, step=0.2)
        self.assertEqual(reply["character_id"], self.characterId)
        self.assertEqual(await self.proc.stop("TERM"), 0, self.proc.output.decode())

    async def test_frozenRedis(self):
        """
        With Redis frozen, a new session's hello and world.enter are refused
        with server.unavailable, and the REST API answers (200 or the shared
        503 with a retry_after), each within the deadline; a refresh is a 503
        although Redis applies its rotation once thawed.  Once Redis is
        thawed, the refresh retried with the same token gets tokens (it is
        not taken for a stolen token coming back), and a new session enters
        the world.
        """
        await self.startNode()
        # One refresh first, as a node in service has done: Redis knows the
        # rotation script, so the frozen one runs it when thawed.
        status, body = await self.retried("POST", "/v1/sessions/refresh",
                                          refresh_token=self.refreshToken)
        self.assertEqual(status, 200, body)
        self.refreshToken = body["refresh_token"]
        self.redis.freeze()
        took, answer = await self.timed(
            self.rest("POST", "/v1/sessions/refresh", refresh_token=self.refreshToken))
        self.assertUnavailable(*answer, took)
        took, answer = await self.timed(self.rest("GET", "/v1/characters"))
        status, body = answer
        self.assertLess(took, DEADLINE + SLACK)
        if status != 200:
            self.assertUnavailable(status, body, took)

        started = time.monotonic()
        client = SessionClient(reactor, self.tcp, self.token, clientVersion="1.0.0")
        self.addCleanup(client.drop)
        try:
            await client.connect()
        except Exception as e:
            # The hello itself needs Redis (the session claim).
            self.assertIn(errors.UNAVAILABLE, str(e))
        else:
            refused = await self.enter(client)
            self.assertIsInstance(refused, RequestError)
            self.assertEqual(refused.code, errors.UNAVAILABLE)
        self.assertLess(time.monotonic() - started, 2 * DEADLINE + SLACK)

        self.redis.thaw()

        async def refreshed():
            status, body = await self.rest("POST", "/v1/sessions/refresh",
                                           refresh_token=self.refreshToken)
            if status == 503:
                raise AssertionError("not yet")
            return status, body

        status, body = await eventually(reactor, refreshed, RECOVERY, step=0.2)
        self.assertEqual(status, 200, body)
        self.token = body["access_token"]

        async def entered():
            client = await self.session()
            reply = await client.request("world.enter", character_id=self.characterId)
            return reply

        reply = await eventually(reactor, entered, RECOVERY, step=0.2)
        self.assertEqual(reply["character_id"], self.characterId)
        self.assertEqual(await self.proc.stop("TERM"), 0, self.proc.output.decode())
