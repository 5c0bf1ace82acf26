"""Tests for release data files, manifest signing and the gate's rules."""

import base64
import json
import os
import subprocess

from twisted.trial.unittest import TestCase

from mmoshard.gate import GateRefusal, GateRules, Maintenance, parseBuild
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
from mmoshard.version.store import signRelease
from mmoshard.version.test.helpers import maintenanceTOML, writeReleaseDir


def claims(accountId=7, flags=()):
    return Claims(account_id=accountId, sid="s", exp=2e9, iat=1e9, flags=frozenset(flags))


class ReleaseDataTests(TestCase):
    def test_load(self):
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
        r = loadReleaseDir(writeReleaseDir(self.mktemp(), maintenance=maintenanceTOML(
            "2026-12-01T06:00:00Z", "2026-12-01T08:00:00Z"))).release
        again = Release.decode(r.encode())
        self.assertEqual(again, r)
        self.assertEqual(again.maintenance[0].start, 1796104800.0)

    def test_every_problem_reported(self):
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
        d = writeReleaseDir(self.mktemp(), live='latest = "1.10.0"\nminimum = "1.9.0"\nrollout = 10')
        self.assertIn("needed when rollout is under 100", str(self.assertRaises(ReleaseDataError, loadReleaseDir, d)))

    def test_shipped_release_data(self):
        here = os.path.dirname(os.path.abspath(__file__))
        shipped = os.path.join(here, "..", "..", "..", "etc", "releases")
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
            self.skipTest("openssl is not installed")
        self.assertEqual(result.returncode, 0, result.stderr + result.stdout)

    def test_tampered_rejected(self):
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
        self.assertEqual(signManifest(self.key, self.manifest), signManifest(self.key, self.manifest))

    def test_key_sources(self):
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
        self.assertIsNone(GateRules().decide(claims(), "0.0.1", "windows", 1500.0))

    def test_update_required(self):
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
        r = self.rules()
        refusal = r.decide(claims(), "1.10.0", "windows", 1500.0)
        self.assertEqual(refusal, GateRefusal("server.maintenance", "Patching", 500))
        self.assertEqual(refusal.toBody(), {"code": "server.maintenance", "message": "Patching", "retry_after": 500})
        self.assertIsNone(r.decide(claims(flags={"operator"}), "1.10.0", "windows", 1500.0))
        self.assertIsNone(r.decide(claims(), "1.10.0", "windows", 2000.0))
        self.assertEqual(r.decide(claims(), "1.10.0", "ios", 1999.5).retry_after, 1)

    def test_encoding(self):
        self.assertEqual(GateRules.decode(self.rules().encode()), self.rules())
