"""The version role while it runs: releases published or rolled back are seen without a restart, through the store or the admin site."""

import json

import treq
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from mmoshard.gate import RULES_KEY
from mmoshard.version.releases import loadReleaseDir
from mmoshard.version.store import ReleaseStore
from mmoshard.version.test.fixture import VersionRoleFixture, coro
from mmoshard.version.test.helpers import writeReleaseDir


class ReloadTests(VersionRoleFixture, TestCase):
    async def publish(self, **kw):
        loaded = loadReleaseDir(writeReleaseDir(self.mktemp(), **kw))
        return await ReleaseStore(self.volatile).publish(loaded, self.key, reactor.seconds())

    async def waitRevision(self, revision):
        for _ in range(100):
            if self.service.catalog is not None and self.service.catalog.revision == revision:
                return
            await deferLater(reactor, 0.01, lambda: None)
        self.fail(f"revision {revision} not in force")

    @coro
    async def test_publish_seen_without_restart(self):
        """A revision published to the store is in force in the running role without a restart."""
        await self.startRole()
        _, body, _ = await self.check("platform=windows&build=1.10.0")
        self.assertEqual((body["status"], body["revision"]), ("ok", 1))
        release = await self.publish(live='latest = "1.10.0"\nminimum = "1.10.0"')
        await self.waitRevision(release.revision)
        _, body, _ = await self.check("platform=windows&build=1.9.9")
        self.assertEqual((body["status"], body["minimum"], body["revision"]), ("update_required", "1.10.0", 2))

    @coro
    async def test_rollback(self):
        """A rollback puts the earlier revision back in force, in the history and in the gate's rules."""
        await self.startRole()
        await self.publish(live='latest = "1.10.0"\nminimum = "1.10.0"')
        await self.waitRevision(2)
        store = ReleaseStore(self.volatile)
        release = await store.rollback()
        self.assertEqual(release.revision, 1)
        await self.waitRevision(1)
        _, body, _ = await self.check("platform=windows&build=1.9.9")
        self.assertEqual(body["status"], "update_available")
        history = await store.history()
        self.assertEqual([(h.revision, h.current) for h in history], [(2, False), (1, True)])
        rules = json.loads(await self.volatile.get(RULES_KEY))
        self.assertEqual((rules["revision"], rules["minimum"]["windows/live"]), (1, "1.9.0"))

    @coro
    async def test_old_revisions_pruned(self):
        """Only the last kept revisions and the manifests they use stay in the store."""
        await self.startRole()
        store = ReleaseStore(self.volatile, keep=2)
        loaded = loadReleaseDir(writeReleaseDir(self.mktemp(), builds={"1.9.0": [1], "1.10.0": [2]},
                                                patches=[]))
        for _ in range(3):
            await store.publish(loaded, self.key, reactor.seconds())
        self.assertEqual([h.revision for h in await store.history()], [4, 3])
        keys = await self.volatile.keys("release:manifest:*")
        self.assertEqual(len(keys), 3)  # windows 1.9.0, 1.10.0, linux 1.10.0

    @coro
    async def test_nothing_published(self):
        """With nothing published the check and the manifests answer 404 version.no_release."""
        await self.startRole(publish_at_start=False)
        self.assertIsNone(self.service.catalog)
        code, body, _ = await self.check("platform=windows&build=1.0")
        self.assertEqual((code, body["error"]["code"]), (404, "version.no_release"))
        response, _ = await self.get("/v1/manifests/windows/1.10.0")
        self.assertEqual(response.code, 404)


class AdminTests(VersionRoleFixture, TestCase):
    """`mmoshard release` on the embedded default goes through the admin site."""

    async def post(self, path, body, contentType="application/json"):
        response = await treq.post(
            self.admin + path, json.dumps(body).encode(),
            headers={"Content-Type": contentType}, persistent=False, timeout=5,
        )
        return response.code, json.loads(await response.content())

    @coro
    async def test_publish_rollback_status(self):
        """The admin site publishes, rolls back and lists revisions, with typed 400, 409 and 415 errors."""
        await self.startRole()
        other = writeReleaseDir(self.mktemp(), live='latest = "1.10.0"\nminimum = "1.10.0"')
        code, body = await self.post("/version/publish", {"dir": other})
        self.assertEqual((code, body["release"]["revision"]), (200, 2))
        self.assertEqual(self.service.catalog.revision, 2)
        code, body = await self.post("/version/rollback", {})
        self.assertEqual((code, body["release"]["revision"]), (200, 1))
        self.assertEqual(self.service.catalog.revision, 1)
        code, body = await self.post("/version/rollback", {})
        self.assertEqual((code, body["error"]["code"]), (409, "version.no_earlier_revision"))
        response = await treq.get(self.admin + "/version/status", persistent=False)
        body = json.loads(await response.content())
        self.assertEqual([h["revision"] for h in body["history"]], [2, 1])
        code, body = await self.post("/version/publish", {"dir": self.mktemp()})
        self.assertEqual((code, body["error"]["code"]), (400, "version.invalid_release"))
        code, body = await self.post("/version/publish", {}, contentType="text/plain")
        self.assertEqual(code, 415)

    @coro
    async def test_cli_through_admin(self):
        """`mmoshard release publish` and `status` on the embedded default go through the admin site."""
        import argparse
        import io

        from mmoshard.testing import writeConfig
        from mmoshard.version import cli

        await self.startRole()
        port = self.adminPort.getHost().port
        path = writeConfig(self.mktemp() + ".toml", {
            "node": {"var_dir": self.node.config.node.var_dir},
            "listen": {"admin": f"tcp:{port}:interface=127.0.0.1"},
            "version": {"releases_dir": self.releases},
        })
        parser = argparse.ArgumentParser()
        cli.arguments(parser)
        out = io.StringIO()
        status = await cli.run(reactor, parser.parse_args(["publish", "--config", path]), out)
        self.assertEqual(status, 0)
        self.assertIn("published revision 2 through the server's admin site", out.getvalue())
        self.assertIn("windows/live: latest 1.10.0, minimum 1.9.0", out.getvalue())
        out = io.StringIO()
        await cli.run(reactor, parser.parse_args(["status", "--config", path]), out)
        self.assertIn("revision 2 in force", out.getvalue())
