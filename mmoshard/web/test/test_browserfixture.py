"""The browser tests' fixture: it gives up loudly without Debian's chromium or chromedriver (a skip on a developer machine, a failure under CI=true), and a failing browser test leaves its screenshots in a temp folder and prints where."""

import io
import os
import shutil
import sys
import tempfile
import types

from twisted.trial.unittest import SkipTest, TestCase

from mmoshard.web.test import browser


class RequireBrowserTests(TestCase):
    def setUp(self):
        # Selenium is there (a stand-in where it is not installed): only the
        # binaries are in question.
        if "selenium" not in sys.modules:
            try:
                import selenium  # noqa: F401
            except ImportError:
                sys.modules["selenium"] = types.ModuleType("selenium")
                self.addCleanup(sys.modules.pop, "selenium", None)
        old = os.environ.get("CI")
        self.addCleanup(self.restoreCI, old)

    def restoreCI(self, old):
        if old is None:
            os.environ.pop("CI", None)
        else:
            os.environ["CI"] = old

    def only(self, missing):
        """Make L{browser.CHROMIUM} and L{browser.CHROMEDRIVER} executables, but C{missing}; @return: its path."""
        for name in ("CHROMIUM", "CHROMEDRIVER"):
            self.patch(browser, name, sys.executable)
        path = os.path.abspath(self.mktemp())
        self.patch(browser, missing, path)
        return path

    def test_missing_browser_fails_under_ci(self):
        """Under CI=true a browser test without chromium, or without chromedriver, fails naming the missing binary and the packages; it never skips."""
        os.environ["CI"] = "true"
        for missing in ("CHROMIUM", "CHROMEDRIVER"):
            path = self.only(missing)
            with self.assertRaises(AssertionError) as failed:
                browser.requireBrowser()
            message = str(failed.exception)
            self.assertIn(path, message)
            self.assertIn("apt-get install -y chromium chromium-driver", message)
            self.assertIn("CI=true forbids skipping", message)

    def test_missing_browser_skips_elsewhere(self):
        """Outside CI a browser test without chromium skips, saying what to install."""
        os.environ.pop("CI", None)
        path = self.only("CHROMIUM")
        with self.assertRaises(SkipTest) as skipped:
            browser.requireBrowser()
        self.assertIn(path, str(skipped.exception))
        self.assertIn("apt-get install -y chromium chromium-driver", str(skipped.exception))

    def test_present_browser_runs(self):
        """With both binaries there (and selenium), the fixture lets the test run."""
        for name in ("CHROMIUM", "CHROMEDRIVER"):
            self.patch(browser, name, sys.executable)
        os.environ["CI"] = "true"
        self.assertIsNone(browser.requireBrowser())


class _FakeDriver:
    """What captureScreens asks of a selenium driver."""

    page_source = "<!doctype html><title>play</title>"

    def save_screenshot(self, path):
        with open(path, "wb") as f:
            f.write(b"\x89PNG fake")
        return True

    def execute_script(self, script):
        return '{"screen": "game"}'

    def get_log(self, kind):
        return [{"level": "SEVERE", "message": "boom"}]


class ScreenshotsOnFailureTests(TestCase):
    async def test_failure_saves_and_prints_screenshots(self):
        """A browser test that fails saves each browser's screenshot, page, page state and console log in a new temp folder, prints their paths, and still fails."""
        out = io.StringIO()
        self.patch(sys, "stdout", out)
        self.browserDrivers = [_FakeDriver()]

        @browser.screenshotsOnFailure
        async def failing(testCase):
            raise AssertionError("the page did not show it")

        with self.assertRaises(AssertionError):
            await failing(self)
        printed = out.getvalue()
        self.assertIn(f"browser screenshots of {self.id()}:", printed)
        [png] = [line.strip() for line in printed.splitlines() if line.strip().endswith(".png")]
        self.assertTrue(png.startswith(tempfile.gettempdir()), png)
        self.addCleanup(shutil.rmtree, os.path.dirname(png))
        with open(png, "rb") as f:
            self.assertEqual(f.read(), b"\x89PNG fake")
        base = png[:-len(".png")]
        with open(base + ".state.json") as f:
            self.assertEqual(f.read(), '{"screen": "game"}')
        with open(base + ".console.txt") as f:
            self.assertIn("boom", f.read())
        with open(base + ".html") as f:
            self.assertIn("<title>play</title>", f.read())

    async def test_passing_test_saves_nothing(self):
        """A browser test that passes prints and saves no screenshots."""
        out = io.StringIO()
        self.patch(sys, "stdout", out)
        self.browserDrivers = [_FakeDriver()]

        @browser.screenshotsOnFailure
        async def passing(testCase):
            return "done"

        self.assertEqual(await passing(self), "done")
        self.assertEqual(out.getvalue(), "")
