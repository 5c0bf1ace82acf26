"""The play client's pure modules (world.js, movement.js) under Node's test runner: terrain, interpolation, 5 Hz moves, corrections."""

import os
import shutil
import subprocess
import tempfile

from twisted.trial.unittest import TestCase

from mmoshard.testing import cannotRun
from mmoshard.web.static import STATIC_ROOT

TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "play")


class PlayModuleTests(TestCase):
    def test_nodeTests(self):
        """world.js and movement.js pass their Node tests (mmoshard/web/test/play/*.test.mjs)."""
        node = shutil.which("node")
        if node is None:
            cannotRun("node is not installed (apt-get install nodejs); the play client's module tests cannot run")
        # The page's modules are plain .js: beside a package.json saying they
        # are ES modules, any Node (18 too) imports them.
        folder = tempfile.mkdtemp(prefix="mmoshard-play-modules-")
        self.addCleanup(shutil.rmtree, folder)
        shutil.copytree(os.path.join(STATIC_ROOT, "play"), os.path.join(folder, "play"))
        shutil.copytree(TESTS, os.path.join(folder, "test"))
        with open(os.path.join(folder, "package.json"), "w") as f:
            f.write('{"type": "module", "private": true}\n')
        files = sorted(os.path.join(folder, "test", n) for n in os.listdir(TESTS) if n.endswith(".test.mjs"))
        self.assertEqual(len(files), 2, files)
        run = subprocess.run([node, "--test", *files], cwd=folder, capture_output=True, text=True, timeout=120)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertIn("# fail 0", run.stdout)
