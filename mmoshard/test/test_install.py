"""The newcomer's install: `pip install -e .` in a fresh virtualenv, then `twistd mmoshard` finds the plugin."""

import os
import site
import sys

from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from mmoshard.testing import cannotRun, checkoutRoot


# What an installed mmoshard puts in site-packages (a regular install, as tox
# makes, or an editable one); twisted/ is linked entry by entry for the plugin.
_MMOSHARD = ("mmoshard", "mmoshard-", "__editable__", "__editable___mmoshard")


def linkWithoutMmoshard(source, target):
    """
    Fill C{target} with symbolic links to what C{source} (a site-packages)
    holds, leaving out mmoshard and its twistd plugin.  Its .pth files are
    left out too: an added path's .pth files never run.
    """
    os.makedirs(target, exist_ok=True)
    for name in os.listdir(source):
        path = os.path.join(source, name)
        if name.startswith(_MMOSHARD) or name.endswith(".pth"):
            continue
        if os.path.exists(os.path.join(target, name)):
            continue  # an earlier site-packages had it: it wins, as on sys.path
        if name in ("twisted", "plugins") and os.path.isdir(path):
            linkWithoutMmoshard(path, os.path.join(target, name))
        elif name not in ("mmoshard_plugin.py", "dropin.cache"):
            os.symlink(path, os.path.join(target, name))


class EditableInstallTests(TestCase):
    """A plain editable install, as the README says, in a virtualenv of its own."""

    # Making the venv and building mmoshard (its C engine too) takes a while.
    timeout = 300

    async def runIn(self, executable, *args, cwd):
        out, err, code = await getProcessOutputAndValue(
            executable, list(args), env=self.env, path=cwd)
        return (out + err).decode(errors="replace"), code

    async def test_twistd_finds_plugin_after_plain_editable_install(self):
        """`pip install -e .` (no extra flag) into a fresh venv, then `twistd mmoshard --help` run from elsewhere shows mmoshard's options."""
        checkout = checkoutRoot()
        if not os.path.exists(os.path.join(checkout, "setup.py")):
            cannotRun(f"no checkout at {checkout} to install (set MMOSHARD_CHECKOUT)")
        venv = os.path.abspath(self.mktemp())
        elsewhere = os.path.abspath(self.mktemp())
        os.makedirs(elsewhere)
        # No PYTHONPATH and no user site: nothing but the venv says where
        # mmoshard is.
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
        self.env["PYTHONNOUSERSITE"] = "1"
        output, code = await self.runIn(sys.executable, "-m", "venv", "--without-pip", venv,
                                      cwd=elsewhere)
        self.assertEqual(code, 0, output)
        python = os.path.join(venv, "bin", "python")
        # The dependencies (and pip) come from this interpreter's
        # site-packages, seen through a copy made of links that leaves out
        # mmoshard, as on a newcomer's machine.
        deps = os.path.abspath(self.mktemp())
        for sitePackages in site.getsitepackages():
            linkWithoutMmoshard(sitePackages, deps)
        output, code = await self.runIn(
            python, "-c", "import site, sys; print(site.getsitepackages()[0])", cwd=elsewhere)
        with open(os.path.join(output.strip(), "dependencies.pth"), "w") as f:
            f.write(deps + "\n")
        output, code = await self.runIn(python, "-c", "import mmoshard", cwd=elsewhere)
        self.assertNotEqual(code, 0, "mmoshard importable before the install: " + output)

        output, code = await self.runIn(
            python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-deps", "-e", checkout, cwd=elsewhere)
        self.assertEqual(code, 0, output)
        output, code = await self.runIn(
            python, "-c", "from twisted.scripts.twistd import run; run()",
            "-n", "mmoshard", "--help", cwd=elsewhere)
        self.assertNotIn("Unknown command", output)
        self.assertEqual(code, 0, output)
        self.assertIn("--node-id", output)
        output, code = await self.runIn(
            python, "-c", "import mmoshard; print(mmoshard.__file__)", cwd=elsewhere)
        self.assertEqual(output.strip(), os.path.join(checkout, "mmoshard", "__init__.py"))
