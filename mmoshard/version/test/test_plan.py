"""Tests for build ordering, patch-plan selection, staged rollout and the check's decisions."""

import random

from twisted.trial.unittest import TestCase

from mmoshard.gate import MalformedBuild, parseBuild
from mmoshard.version import plan as planning
from mmoshard.version.releases import Channel, loadReleaseDir
from mmoshard.version.test.helpers import writeReleaseDir

b = parseBuild


class BuildOrderingTests(TestCase):
    def test_numeric_not_lexical(self):
        """Builds compare number by number: 1.10.0 is above 1.9.9."""
        self.assertGreater(b("1.10.0"), b("1.9.9"))
        self.assertGreater(b("2.0"), b("1.99.99"))
        self.assertLess(b("1.9.9"), b("1.9.10"))

    def test_trailing_zeros_equal(self):
        """Trailing zero parts do not matter: 1.2 equals (and hashes as) 1.2.0, keeping its spelling."""
        self.assertEqual(b("1.2"), b("1.2.0"))
        self.assertEqual(b("1"), b("1.0.0.0"))
        self.assertEqual(hash(b("1.2")), hash(b("1.2.0")))
        self.assertEqual(b("1.2").text, "1.2")

    def test_prerelease_below_release(self):
        """A pre-release sorts below its release, its own parts by SemVer's precedence."""
        self.assertLess(b("2.0.0-rc.1"), b("2.0.0"))
        self.assertLess(b("2.0.0-rc.1"), b("2.0.0-rc.2"))
        self.assertLess(b("2.0.0-rc.2"), b("2.0.0-rc.10"))
        self.assertLess(b("2.0.0-alpha"), b("2.0.0-beta"))
        self.assertLess(b("2.0.0-1"), b("2.0.0-alpha"))
        self.assertGreater(b("2.0.0-rc.1"), b("1.99"))

    def test_build_metadata_ignored(self):
        """Build metadata after + is ignored in comparisons."""
        self.assertEqual(b("1.2.3+4512"), b("1.2.3"))

    def test_sorting(self):
        """A mixed list of builds sorts into release order."""
        texts = ["1.10.0", "1.9.9", "1.2", "1.10.0-rc.1", "0.9", "1.9.10", "10.0"]
        ordered = [x.text for x in sorted(b(t) for t in texts)]
        self.assertEqual(
            ordered, ["0.9", "1.2", "1.9.9", "1.9.10", "1.10.0-rc.1", "1.10.0", "10.0"]
        )

    def test_malformed(self):
        """Anything not a build version (empty, prefixed, too long, padded, not text) is refused."""
        for text in ["", "v1.0", "1..0", "1.0.", "1.0-", "a.b", "1.2.3.4.5.6", "1" * 70,
                     "1.0 ", " 1.0", "1.0\n", "-1.0", "1.0-rc..1", None, 10]:
            self.assertRaises(MalformedBuild, parseBuild, text)


class PlanTests(TestCase):
    def release(self, **kw):
        return loadReleaseDir(writeReleaseDir(self.mktemp(), **kw)).release

    def test_cheapest_chain(self):
        """The plan is the cheapest chain of patches, here two steps cheaper than the direct patch."""
        w = self.release().platforms["windows"]
        # 1.9.0 -> 1.9.9 -> 1.10.0 costs 250; the direct patch costs 400.
        p = planning.choosePlan(w, b("1.9.0"), b("1.10.0"))
        self.assertEqual(p.kind, "delta")
        self.assertEqual(p.size, 250)
        self.assertEqual([(s.source.text, s.target.text) for s in p.steps],
                         [("1.9.0", "1.9.9"), ("1.9.9", "1.10.0")])

    def test_longer_chain_when_cheaper(self):
        """A three-step chain is chosen when it is the cheapest."""
        w = self.release().platforms["windows"]
        p = planning.choosePlan(w, b("1.8.0"), b("1.10.0"))
        self.assertEqual((p.kind, p.size, len(p.steps)), ("delta", 550, 3))

    def test_direct_patch_when_cheaper(self):
        """The direct patch is chosen when it costs less than any chain."""
        w = self.release(patches=[
            ("1.9.0", "1.9.9", 300), ("1.9.9", "1.10.0", 300), ("1.9.0", "1.10.0", 400),
        ]).platforms["windows"]
        p = planning.choosePlan(w, b("1.9.0"), b("1.10.0"))
        self.assertEqual((p.kind, p.size, len(p.steps)), ("delta", 400, 1))

    def test_no_chain_gives_full(self):
        """From an unknown build, or one no patch leads on from, the plan is the full download."""
        w = self.release().platforms["windows"]
        # Nothing starts from a build the release data does not know.
        p = planning.choosePlan(w, b("1.7.0"), b("1.10.0"))
        self.assertEqual((p.kind, p.size, p.steps), ("full", 1000, ()))
        # A known build from which no patch leads to the target.
        w = self.release(patches=[("1.9.9", "1.10.0", 100)]).platforms["windows"]
        p = planning.choosePlan(w, b("1.8.0"), b("1.10.0"))
        self.assertEqual(p.kind, "full")

    def test_full_when_cheaper_than_chain(self):
        """The full download wins over a chain of patches that costs more."""
        w = self.release(patches=[("1.8.0", "1.9.0", 700), ("1.9.0", "1.10.0", 400)]).platforms["windows"]
        p = planning.choosePlan(w, b("1.8.0"), b("1.10.0"))
        self.assertEqual((p.kind, p.size), ("full", 1000))

    def test_equal_cost_prefers_delta(self):
        """At equal cost the patch is preferred to the full download."""
        w = self.release(patches=[("1.9.0", "1.10.0", 1000)]).platforms["windows"]
        self.assertEqual(planning.choosePlan(w, b("1.9.0"), b("1.10.0")).kind, "delta")

    def test_plan_json(self):
        """A plan's JSON names its kind, target and each step's path and SHA-256."""
        w = self.release().platforms["windows"]
        body = planning.choosePlan(w, b("1.9.9"), b("1.10.0")).toJSON()
        self.assertEqual(body["kind"], "delta")
        self.assertEqual(body["target"], "1.10.0")
        self.assertEqual(body["steps"][0]["path"], "patches/windows/1.9.9_1.10.0.bin")
        self.assertEqual(len(body["steps"][0]["sha256"]), 64)


class RolloutTests(TestCase):
    def test_deterministic(self):
        """An account's rollout bucket is stable and within 0..9999."""
        salt = "windows/live/1.10.0"
        first = [planning.rolloutBucket(salt, a) for a in range(1000)]
        self.assertEqual(first, [planning.rolloutBucket(salt, a) for a in range(1000)])
        self.assertTrue(all(0 <= x < 10000 for x in first))

    def test_monotonic(self):
        """Raising the percentage only ever adds accounts."""
        salt = "windows/live/1.10.0"
        previous = set()
        for percent in [0, 0.5, 1, 5, 10, 12.5, 25, 50, 75, 99, 100]:
            chosen = {a for a in range(5000) if planning.inRollout(salt, a, percent)}
            self.assertTrue(previous <= chosen, f"{percent}% dropped accounts")
            previous = chosen
        self.assertEqual(len(previous), 5000)
        self.assertEqual([a for a in range(5000) if planning.inRollout(salt, a, 0)], [])

    def test_proportion(self):
        """About the given percentage of accounts fall in a rollout."""
        salt = "windows/live/1.10.0"
        n = sum(planning.inRollout(salt, a, 10) for a in range(20000))
        self.assertTrue(1700 < n < 2300, n)

    def test_new_build_draws_new_cohort(self):
        """Another build's rollout draws another set of accounts."""
        one = {a for a in range(2000) if planning.inRollout("w/live/1.10.0", a, 10)}
        two = {a for a in range(2000) if planning.inRollout("w/live/1.11.0", a, 10)}
        self.assertNotEqual(one, two)


class DecideTests(TestCase):
    def setUp(self):
        self.w = loadReleaseDir(writeReleaseDir(self.mktemp())).release.platforms["windows"]

    def channel(self, **kw):
        values = dict(name="live", latest=b("1.10.0"), minimum=b("1.9.0"), previous=b("1.9.9"), rollout=100.0)
        values.update(kw)
        return Channel(**values)

    def test_outcomes(self):
        """The check's decision: ok at or above latest, update_available between, update_required below minimum."""
        c = self.channel()
        self.assertEqual(planning.decide(self.w, c, b("1.10.0"), 1).status, "ok")
        self.assertEqual(planning.decide(self.w, c, b("1.11.0"), 1).status, "ok")
        d = planning.decide(self.w, c, b("1.9.9"), 1)
        self.assertEqual((d.status, d.target.text, d.plan.size), ("update_available", "1.10.0", 150))
        d = planning.decide(self.w, c, b("1.8.0"), 1)
        self.assertEqual(d.status, "update_required")
        self.assertEqual(d.plan.target.text, "1.10.0")

    def test_partial_rollout(self):
        """Under a partial rollout an account is offered latest or previous as its bucket says, and previous is ok outside it."""
        c = self.channel(rollout=30.0)
        salt = planning.rolloutSalt("windows", "live", c.latest)
        accounts = list(range(1, 400))
        targets = {a: planning.decide(self.w, c, b("1.9.0"), a).target.text for a in accounts}
        for a in accounts:
            expected = "1.10.0" if planning.inRollout(salt, a, 30.0) else "1.9.9"
            self.assertEqual(targets[a], expected)
        self.assertIn("1.9.9", targets.values())
        self.assertIn("1.10.0", targets.values())
        # Outside the rollout, a client on previous is up to date.
        outside = next(a for a in accounts if targets[a] == "1.9.9")
        self.assertEqual(planning.decide(self.w, c, b("1.9.9"), outside).status, "ok")

    def test_forced_ignores_rollout(self):
        """A minimum above the client's build forces latest whatever the rollout."""
        c = self.channel(rollout=0.0, minimum=b("1.10.0"))
        for a in range(200):
            d = planning.decide(self.w, c, b("1.9.9"), a)
            self.assertEqual((d.status, d.target.text), ("update_required", "1.10.0"))

    def test_required_never_offered_below_minimum(self):
        """A required update never targets previous when previous is below the minimum."""
        c = self.channel(rollout=0.0, minimum=b("1.9.9"), previous=b("1.9.0"))
        d = planning.decide(self.w, c, b("1.8.0"), random.randrange(10**6))
        self.assertEqual((d.status, d.target.text), ("update_required", "1.10.0"))
