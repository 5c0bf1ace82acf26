"""The browser tests' fixture gives up loudly without Debian's chromium or chromedriver: a skip on a developer machine, a failure under CI=true."""

import os
import sys
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
