"""Tests for release data files, manifest signing and the gate's rules."""

import base64
import json
import os
import subprocess

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from mmoshard.gate import RULES_KEY, GateRefusal, GateRules, Maintenance, StoreGate, parseBuild
from mmoshard.store.volatile import MemoryStore
from mmoshard.testing import cannotRun
from mmoshard.tokens import Claims
from mmoshard.version.releases import Release, ReleaseDataError, loadReleaseDir
from mmoshard.version.signing import (
    BadManifest,
    SigningKeyError,
    generateKeyFile,
    loadPublicKey,
    loadSigningKey,
    publicKeyBytes,
    publicKeyPEM,
    signManifest,
    verifyManifest,
)
from mmoshard.version.store import ReleaseStore, signRelease
from mmoshard.version.test.fixture import coro
from mmoshard.version.test.helpers import maintenanceTOML, writeReleaseDir


def claims(accountId=7, flags=()):
    return Claims(account_id=accountId, sid="s", exp=2e9, iat=1e9, flags=frozenset(flags))


class ReleaseDataTests(TestCase):
    def test_load(self):
        """A release directory loads into its platforms, channels, builds, patches, CDNs and manifests."""
        loaded = loadReleaseDir(writeReleaseDir(self.mktemp()))
        r = loaded.release
        self.assertEqual(sorted(r.platforms), ["linux", "windows"])
        w = r.platforms["windows"]
        self.assertEqual(w.channels["live"].latest, parseBuild("1.10.0"))
        self.assertEqual(w.builds[parseBuild("1.9.9")].size, 1000)
        self.assertEqual(len(w.patches), 4)
        self.assertEqual([c.url for c in r.cdn][:2], ["https://eu-1.example.com", "https://na-1.example.com"])
        manifest = loaded.manifests[("windows", "1.9.9")]
        self.assertEqual((manifest["platform"], manifest["build"], manifest["size"]), ("windows", "1.9.9", 1000))

    def test_round_trip(self):
        """A release encodes and decodes to an equal release, maintenance windows included."""
        r = loadReleaseDir(writeReleaseDir(self.mktemp(), maintenance=maintenanceTOML(
            "2026-12-01T06:00:00Z", "2026-12-01T08:00:00Z"))).release
        again = Release.decode(r.encode())
        self.assertEqual(again, r)
        self.assertEqual(again.maintenance[0].start, 1796104800.0)

    def test_every_problem_reported(self):
        """Every problem in bad release data is reported at once, each with where it is."""
        d = writeReleaseDir(
            self.mktemp(),
            live='latest = "1.12.0"\nminimum = "1.x"\nrollout = 150\nsurprise = 1',
            patches=[("1.9.0", "1.9.0", 10), ("1.0.0", "2.0.0", -1)],
        )
        with open(os.path.join(d, "solaris.toml"), "w") as f:
            f.write("")
        with open(os.path.join(d, "manifests", "windows", "1.8.0.json"), "w") as f:
            f.write('{"files": [{"path": "../etc/passwd", "size": 1, "sha256": "x"}]}')
        e = self.assertRaises(ReleaseDataError, loadReleaseDir, d)
        text = str(e)
        for expected in [
            "solaris.toml: unknown file",
            "channels.live.surprise: unknown key",
            "channels.live.minimum: not a build version",
            "channels.live.rollout: expected a percentage",
            "channels.live.latest: build 1.12.0 has no manifests/windows/1.12.0.json",
            "patches[0]: from and to are the same build",
            "patches[1].to: build 2.0.0 has no",
            "patches[1].size: expected a size",
            "manifests/windows/1.8.0.json: files[0]: needs a relative path",
        ]:
            self.assertIn(expected, text)

    def test_rollout_needs_previous(self):
        """A rollout under 100 % without a previous build is refused."""
        d = writeReleaseDir(self.mktemp(), live='latest = "1.10.0"\nminimum = "1.9.0"\nrollout = 10')
        self.assertIn("needed when rollout is under 100", str(self.assertRaises(ReleaseDataError, loadReleaseDir, d)))

    def test_shipped_release_data(self):
        """The release data shipped in etc/releases loads, with every platform."""
        from mmoshard.testing import checkoutRoot

        shipped = os.path.join(checkoutRoot(), "etc", "releases")
        release = loadReleaseDir(shipped).release
        self.assertEqual(
            sorted(release.platforms), ["android", "ios", "linux", "mac", "web", "windows"]
        )


class SigningTests(TestCase):
    def setUp(self):
        self.keyPath = os.path.join(self.mktemp() + "-key.pem")
        self.key = generateKeyFile(self.keyPath)
        self.manifest = {"platform": "windows", "build": "1.10.0", "size": 3, "files": [
            {"path": "a", "size": 3, "sha256": "0" * 64}]}

    def test_verified_with_public_key(self):
        """A signed manifest verifies with the public key, PEM or raw base64."""
        envelope = signManifest(self.key, self.manifest)
        public = loadPublicKey(publicKeyPEM(self.key))
        self.assertEqual(verifyManifest(public, envelope, "windows", "1.10.0"), self.manifest)
        raw = loadPublicKey(base64.b64encode(publicKeyBytes(self.key)))
        self.assertEqual(verifyManifest(raw, envelope), self.manifest)

    def test_verified_by_openssl(self):
        """The documented procedure works with stock tools, not just our code."""
        envelope = json.loads(signManifest(self.key, self.manifest))
        base = self.mktemp()
        os.makedirs(base)
        paths = {name: os.path.join(base, name) for name in ("pub.pem", "payload", "sig")}
        with open(paths["pub.pem"], "w") as f:
            f.write(publicKeyPEM(self.key))
        with open(paths["payload"], "wb") as f:
            f.write(base64.b64decode(envelope["payload"]))
        with open(paths["sig"], "wb") as f:
            f.write(base64.b64decode(envelope["signature"]))
        try:
            result = subprocess.run(
                ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", paths["pub.pem"],
                 "-rawin", "-in", paths["payload"], "-sigfile", paths["sig"]],
                capture_output=True, timeout=10,
            )
        except FileNotFoundError:
            cannotRun("openssl is not installed: the signature cannot be checked independently")
        self.assertEqual(result.returncode, 0, result.stderr + result.stdout)

    def test_tampered_rejected(self):
        """A changed payload, another key, a broken envelope or another build are refused."""
        envelope = json.loads(signManifest(self.key, self.manifest))
        forged = dict(self.manifest, size=4)
        envelope["payload"] = base64.b64encode(json.dumps(forged).encode()).decode()
        public = self.key.public_key()
        self.assertRaises(BadManifest, verifyManifest, public, json.dumps(envelope))
        other = generateKeyFile(self.keyPath + "2")
        self.assertRaises(BadManifest, verifyManifest, other.public_key(), signManifest(self.key, self.manifest))
        self.assertRaises(BadManifest, verifyManifest, public, b"{not json")
        self.assertRaises(
            BadManifest, verifyManifest, public, signManifest(self.key, self.manifest), "windows", "1.9.0"
        )

    def test_deterministic(self):
        """Signing the same manifest twice gives the same envelope (Ed25519)."""
        self.assertEqual(signManifest(self.key, self.manifest), signManifest(self.key, self.manifest))

    def test_key_sources(self):
        """The signing key comes from a file, the environment or a dev key made once with mode 0600, else an error."""
        self.assertEqual(publicKeyBytes(loadSigningKey(self.keyPath)), publicKeyBytes(self.key))
        seed = base64.b64encode(os.urandom(32)).decode()
        fromEnv = loadSigningKey(env={"MMOSHARD_RELEASE_SIGNING_KEY": seed})
        self.assertEqual(len(publicKeyBytes(fromEnv)), 32)
        self.assertRaises(SigningKeyError, loadSigningKey, env={})
        self.assertRaises(SigningKeyError, loadSigningKey, self.keyPath + ".missing")
        dev = os.path.join(self.mktemp(), "dev.pem")
        first = loadSigningKey(env={}, devPath=dev)
        self.assertEqual(os.stat(dev).st_mode & 0o777, 0o600)
        self.assertEqual(publicKeyBytes(loadSigningKey(env={}, devPath=dev)), publicKeyBytes(first))

    def test_signed_release_etags(self):
        """Signing a release gives each build an ETag naming its signed envelope."""
        loaded = loadReleaseDir(writeReleaseDir(self.mktemp()))
        release, envelopes = signRelease(loaded, self.key, 3, 100.0)
        self.assertEqual(release.revision, 3)
        info = release.platforms["windows"].builds[parseBuild("1.9.9")]
        self.assertIn(info.etag, envelopes)
        manifest = verifyManifest(self.key.public_key(), envelopes[info.etag], "windows", "1.9.9")
        self.assertEqual(manifest["size"], 1000)
        self.assertEqual(len(set(envelopes)), 5)


class GateRulesTests(TestCase):
    def rules(self):
        return GateRules(
            revision=4,
            minimum={"windows/live": parseBuild("1.9.0"), "windows/ptr": parseBuild("1.11.0")},
            maintenance=(Maintenance(1000.0, 2000.0, "Patching"),),
        )

    def test_allows_with_no_rules(self):
        """With no gate rules every client is let in."""
        self.assertIsNone(GateRules().decide(claims(), "0.0.1", "windows", 1500.0))

    def test_update_required(self):
        """The gate refuses builds below their channel's minimum (and unreadable ones), and allows platforms without a rule."""
        r = self.rules()
        self.assertIsNone(r.decide(claims(), "1.9.0", "windows", 10.0))
        self.assertIsNone(r.decide(claims(), "1.10.0", "windows", 10.0))
        refusal = r.decide(claims(), "1.8.9", "windows", 10.0)
        self.assertEqual(refusal.code, "version.update_required")
        self.assertIn("1.9.0", refusal.message)
        self.assertEqual(r.decide(claims(), "ptr/1.10.0", "windows", 10.0).code, "version.update_required")
        self.assertIsNone(r.decide(claims(), "ptr/1.11.0", "windows", 10.0))
        self.assertEqual(r.decide(claims(), "garbage", "windows", 10.0).code, "version.update_required")
        # No rule for the platform: allowed.
        self.assertIsNone(r.decide(claims(), "0.1", "ios", 10.0))

    def test_maintenance(self):
        """During maintenance the gate refuses with the time left, except operators; after it, it allows."""
        r = self.rules()
        refusal = r.decide(claims(), "1.10.0", "windows", 1500.0)
        self.assertEqual(refusal, GateRefusal("server.maintenance", "Patching", 500))
        self.assertEqual(refusal.toBody(), {"code": "server.maintenance", "message": "Patching", "retry_after": 500})
        self.assertIsNone(r.decide(claims(flags={"operator"}), "1.10.0", "windows", 1500.0))
        self.assertIsNone(r.decide(claims(), "1.10.0", "windows", 2000.0))
        self.assertEqual(r.decide(claims(), "1.10.0", "ios", 1999.5).retry_after, 1)

    def test_encoding(self):
        """Gate rules encode and decode to equal rules."""
        self.assertEqual(GateRules.decode(self.rules().encode()), self.rules())


class StoreGateTests(TestCase):
    def claims(self, flags=()):
        return Claims(account_id=1, sid="s", exp=2e9, iat=0, flags=frozenset(flags))

    @coro
    async def test_follows_published_rules(self):
        """The gate follows what is published: minimum builds, then the maintenance window, operators let through."""
        clock = Clock()
        clock.advance(1000)
        store = MemoryStore(clock, prefix="g:")
        store.open()
        gate = StoreGate(store, clock, refresh=5.0)
        await gate.start()
        self.assertIsNone(await gate.check(self.claims(), "0.1", "windows"))
        loaded = loadReleaseDir(writeReleaseDir(self.mktemp(), maintenance=maintenanceTOML(1100, 1200, "Soon back")))
        key = loadSigningKey(env={}, devPath=os.path.join(self.mktemp(), "k.pem"))
        await ReleaseStore(store).publish(loaded, key, clock.seconds())
        clock.advance(0)  # the change announcement is delivered
        refusal = await gate.check(self.claims(), "1.8.0", "windows")
        self.assertEqual(refusal.code, "version.update_required")
        self.assertIsNone(await gate.check(self.claims(), "1.9.0", "windows"))
        clock.advance(150)
        refusal = await gate.check(self.claims(), "1.9.0", "windows")
        self.assertEqual((refusal.code, refusal.message, refusal.retry_after), ("server.maintenance", "Soon back", 50))
        self.assertIsNone(await gate.check(self.claims({"operator"}), "1.9.0", "windows"))
        await gate.stop()
        store.close()

    @coro
    async def test_periodic_refresh_and_store_failure(self):
        """Rules written without an announcement are read at the next refresh; a store failure keeps the rules in force."""
        clock = Clock()
        store = MemoryStore(clock, prefix="g:")
        store.open()
        gate = StoreGate(store, clock, refresh=5.0)
        await gate.start()
        # Rules written without an announcement are picked up by the refresh.
        await store.set(RULES_KEY, GateRules(3, {"ios/live": parseBuild("2.0")}).encode())
        clock.advance(5)
        self.assertEqual((await gate.check(self.claims(), "1.0", "ios")).code, "version.update_required")
        # A store failure keeps the rules in force.
        gate.volatile = _Broken()
        clock.advance(5)
        self.assertEqual(gate.rules.revision, 3)
        self.flushLoggedErrors()
        await gate.stop()
        store.close()


class _Broken:
    def get(self, key):
        from twisted.internet.defer import fail

        from mmoshard.store.errors import VolatileUnavailable

        return fail(VolatileUnavailable("down"))
