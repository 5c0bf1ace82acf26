"""Multi-process tests: real twistd processes sharing Redis see `mmoshard release` changes; the gate refuses real handshakes."""

import base64
import json
import os
import sys
import textwrap
import time

import treq
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.task import deferLater
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from mmoshard.testing import TwistdProcess, freePort, repoRoot, requireRedis, writeConfig
from mmoshard.tokens import issueAccessToken
from mmoshard.version.signing import loadPublicKey, publicKeyBytes, verifyManifest
from mmoshard.version.test.helpers import maintenanceTOML, writeReleaseDir
from mmoshard.wire.codec import decode, encode
from mmoshard.wire.framing import FrameDecoder, frame

TOKEN_KEY = "version-processes-key-0123456789"

# A role hosting only the session protocol: the gate (core's StoreGate) is
# asked in a process that does not run the version role.
PROBE_PLUGIN = '''
"""Test-only role: opens the session listeners so handshakes meet the client gate."""
from twisted.application.service import Service
from mmoshard.role import Role

sessionprobe = Role(
    name="sessionprobe", factory=lambda node: Service(), transports=frozenset({"session"})
)
'''


class HandshakeClient(protocol.Protocol):
    """Sends one hello and collects the server's replies until it closes."""

    def __init__(self, hello):
        self.hello = hello
        self.decoder = FrameDecoder(1 << 20)
        self.messages = []
        self.closed = defer.Deferred()
        self.first = defer.Deferred()

    def connectionMade(self):
        self.transport.write(frame(encode(self.hello)))

    def dataReceived(self, data):
        for payload in self.decoder.feed(data):
            message = decode(payload)
            self.messages.append(message)
            if not self.first.called:
                self.first.callback(message)

    def connectionLost(self, reason):
        if not self.first.called:
            self.first.errback(reason)
        self.closed.callback(None)


class ProcessTests(TestCase):
    timeout = 90

    def setUp(self):
        self.redisURL, self.prefix, cleaner = requireRedis()
        self.addCleanup(cleaner)
        self.base = os.path.abspath(self.mktemp())
        os.makedirs(self.base)
        self.signingKey = Ed25519PrivateKey.generate()
        seed = self.signingKey.private_bytes_raw()
        self.env = {"MMOSHARD_RELEASE_SIGNING_KEY": base64.b64encode(seed).decode()}

    def config(self, name, roles, **version):
        admin, http = freePort(), freePort()
        sections = {
            "node": {"id": name, "roles": roles, "var_dir": os.path.join(self.base, name)},
            "volatile": {"url": self.redisURL, "prefix": self.prefix},
            "secrets": {"token_key": TOKEN_KEY},
            "listen": {
                "admin": f"tcp:{admin}:interface=127.0.0.1",
                "http": f"tcp:{http}:interface=127.0.0.1",
                "tcp": f"tcp:{freePort()}:interface=127.0.0.1",
                "websocket": "",
            },
            "version": dict({"publish_at_start": False, "refresh": 30.0}, **version),
        }
        path = writeConfig(os.path.join(self.base, name + ".toml"), sections)
        return path, admin, http, sections

    def spawn(self, name, roles, env=None, **version):
        path, admin, http, sections = self.config(name, roles, **version)
        proc = TwistdProcess(reactor, path, admin, env=dict(self.env, **(env or {}))).start()
        self.addCleanup(self.stopProcess, proc)
        proc.http = http
        proc.sections = sections
        proc.configPath = path
        return proc

    async def stopProcess(self, proc):
        if not proc.ended.called:
            await proc.stop("TERM")

    async def release(self, configPath, *args):
        """Run `mmoshard release ...` as an operator would; @return: its output."""
        env = dict(os.environ, **self.env)
        env["PYTHONPATH"] = repoRoot() + os.pathsep + env.get("PYTHONPATH", "")
        out, err, code = await getProcessOutputAndValue(
            sys.executable,
            ["-m", "mmoshard.cli", "release", *args, "--config", configPath],
            env=env,
            path=repoRoot(),
        )
        self.assertEqual(code, 0, (out + err).decode())
        return out.decode()

    def token(self, accountId=5, flags=()):
        return issueAccessToken(TOKEN_KEY, accountId, f"sid-{accountId}", 600, time.time(), flags=flags)

    async def check(self, proc, build="1.9.9"):
        response = await treq.get(
            f"http://127.0.0.1:{proc.http}/v1/version?platform=windows&build={build}",
            headers={"Authorization": "Bearer " + self.token()},
            persistent=False,
            timeout=5,
        )
        return response.code, json.loads(await response.content())

    async def waitFor(self, predicate, timeout, what):
        """Poll C{predicate} (async) every 20 ms; @return: seconds it took."""
        start = time.monotonic()
        while True:
            if await predicate():
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                self.fail(f"{what} not seen within {timeout}s")
            await deferLater(reactor, 0.02, lambda: None)

    async def test_publish_reaches_other_process(self):
        """`mmoshard release publish` run for one process is served by the other within a second."""
        one = self.spawn("ver-1", ["version"])
        two = self.spawn("ver-2", ["version"])
        await defer.gatherResults([Deferred(one.waitReady()), Deferred(two.waitReady())])
        code, body = await self.check(two)
        self.assertEqual((code, body["error"]["code"]), (404, "version.no_release"))

        first = writeReleaseDir(os.path.join(self.base, "r1"))
        await self.release(one.configPath, "publish", "--dir", first)

        async def serves(proc, status, revision):
            code, body = await self.check(proc)
            return code == 200 and body["status"] == status and body["revision"] == revision

        await self.waitFor(lambda: serves(two, "update_available", 1), 5, "first publication")
        await self.waitFor(lambda: serves(one, "update_available", 1), 5, "first publication")

        second = writeReleaseDir(
            os.path.join(self.base, "r2"), live='latest = "1.10.0"\nminimum = "1.10.0"'
        )
        await self.release(one.configPath, "publish", "--dir", second)
        took = await self.waitFor(lambda: serves(two, "update_required", 2), 1.0, "revision 2 on ver-2")
        self.assertLess(took, 1.0)

        out = await self.release(one.configPath, "rollback")
        self.assertIn("revision 1", out)
        await self.waitFor(lambda: serves(two, "update_available", 1), 1.0, "rollback on ver-2")

        # ver-2 serves manifests signed with the operator's key, not its own.
        response = await treq.get(
            f"http://127.0.0.1:{two.http}/v1/manifests/windows/1.10.0", persistent=False, timeout=5
        )
        envelope = await response.content()
        public = loadPublicKey(base64.b64encode(publicKeyBytes(self.signingKey)))
        self.assertEqual(verifyManifest(public, envelope, "windows", "1.10.0")["size"], 1000)
        status = await self.release(two.configPath, "status")
        self.assertIn("revision 1 in force", status)

    async def test_maintenance_refuses_handshakes_elsewhere(self):
        """A process without the version role refuses session handshakes during maintenance, except operators."""
        pluginBase = os.path.join(self.base, "plugins")
        os.makedirs(os.path.join(pluginBase, "mmoshard", "plugins"))
        with open(os.path.join(pluginBase, "mmoshard", "plugins", "version_sessionprobe.py"), "w") as f:
            f.write(textwrap.dedent(PROBE_PLUGIN))
        pythonPath = pluginBase + os.pathsep + repoRoot()
        gated = self.spawn("gated", ["sessionprobe"], env={"PYTHONPATH": pythonPath})
        await gated.waitReady()
        tcpPort = int(gated.sections["listen"]["tcp"].split(":")[1])

        async def hello(version="1.10.0", flags=(), accountId=9):
            client = HandshakeClient(
                {"t": "hello", "id": 1, "token": self.token(accountId, flags),
                 "client_version": version, "platform": "windows"}
            )
            endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", tcpPort, timeout=5)
            await connectProtocol(endpoint, client)
            reply = await client.first
            client.transport.loseConnection()
            await client.closed
            return reply

        self.assertEqual((await hello())["t"], "welcome")

        now = time.time()
        releases = writeReleaseDir(
            os.path.join(self.base, "maint"), maintenance=maintenanceTOML(now - 5, now + 600, "Patch day")
        )
        path, *_ = self.config("operator", ["version"])
        await self.release(path, "publish", "--dir", releases)

        async def refused():
            return (await hello())["t"] == "error"

        await self.waitFor(refused, 6.0, "maintenance at the handshake")
        reply = await hello()
        self.assertEqual((reply["code"], reply["message"]), ("server.maintenance", "Patch day"))
        self.assertTrue(500 < reply["retry_after"] <= 600, reply)
        self.assertEqual((await hello(flags={"operator"}, accountId=10))["t"], "welcome")

        # Out of maintenance, an old build is told to update.
        calm = writeReleaseDir(os.path.join(self.base, "calm"))
        await self.release(path, "publish", "--dir", calm)
        await self.waitFor(lambda: _welcomed(hello()), 6.0, "end of maintenance")
        reply = await hello(version="1.8.0")
        self.assertEqual(reply["code"], "version.update_required")


async def _welcomed(reply):
    return (await reply)["t"] == "welcome"


def Deferred(coroutine):
    return defer.Deferred.fromCoroutine(coroutine)
