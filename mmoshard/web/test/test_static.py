"""The static files of the public site (/play/, /lib/): types, index, redirect, caching headers, no way out of the folder, typed errors; the shipped play client loads nothing from elsewhere."""

import json
import os
import re
import tempfile

import treq
from twisted.internet import reactor
from twisted.trial.unittest import TestCase
from twisted.web.server import Site

from mmoshard.gate import parseBuild
from mmoshard.testing import checkoutRoot
from mmoshard.version.releases import loadReleaseDir
from mmoshard.web.site import SiteRoot
from mmoshard.web.static import CONTENT_SECURITY_POLICY, STATIC_ROOT, mountPublicFiles

PLAY = os.path.join(STATIC_ROOT, "play")
CONSOLE = os.path.join(STATIC_ROOT, "console")


class StaticFolderTests(TestCase):
    """A public site with /play/ and /lib/ over a folder of the test's own, on a real port."""

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="mmoshard-static-")
        self.addCleanup(self.removeTree, self.root)
        os.makedirs(os.path.join(self.root, "play", "sub"))
        os.makedirs(os.path.join(self.root, "lib"))
        self.write("play/index.html", b"<!doctype html><title>play</title>")
        self.write("play/main.js", b"export const x = 1;")
        self.write("play/sub/deep.css", b"body {}")
        self.write("play/.secret.js", b"hidden")
        self.write("play/notes.bak", b"backup")
        self.write("lib/mmoshard-client.js", b"export function login() {}")
        self.write("outside.js", b"outside")
        site = SiteRoot()
        mountPublicFiles(site, self.root)
        self.port = reactor.listenTCP(0, Site(site.root), interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.base = f"http://127.0.0.1:{self.port.getHost().port}"

    def removeTree(self, path):
        for folder, dirs, files in os.walk(path, topdown=False):
            for name in files:
                os.remove(os.path.join(folder, name))
            for name in dirs:
                os.rmdir(os.path.join(folder, name))
        os.rmdir(path)

    def write(self, relative, data):
        with open(os.path.join(self.root, relative), "wb") as f:
            f.write(data)

    async def fetch(self, path, method="GET", headers=None):
        response = await treq.request(method, self.base + path, headers=headers,
                                      allow_redirects=False, persistent=False, timeout=5)
        return response, await response.content()

    async def test_indexAndModules(self):
        """/play/ is the page, its modules are JavaScript (browsers refuse modules of another type), /lib/ serves the library."""
        response, body = await self.fetch("/play/")
        self.assertEqual((response.code, body), (200, b"<!doctype html><title>play</title>"))
        self.assertEqual(response.headers.getRawHeaders("content-type"), ["text/html; charset=utf-8"])
        response, body = await self.fetch("/play/main.js")
        self.assertEqual(response.headers.getRawHeaders("content-type"), ["text/javascript; charset=utf-8"])
        response, body = await self.fetch("/play/sub/deep.css")
        self.assertEqual((response.code, response.headers.getRawHeaders("content-type")),
                         (200, ["text/css; charset=utf-8"]))
        response, body = await self.fetch("/lib/mmoshard-client.js")
        self.assertEqual((response.code, body), (200, b"export function login() {}"))

    async def test_securityAndCacheHeaders(self):
        """Every file says no-cache (revalidate), nosniff and the content security policy forbidding other origins' scripts."""
        response, _ = await self.fetch("/play/main.js")
        headers = response.headers
        self.assertEqual(headers.getRawHeaders("cache-control"), ["no-cache"])
        self.assertEqual(headers.getRawHeaders("x-content-type-options"), ["nosniff"])
        self.assertEqual(headers.getRawHeaders("content-security-policy"), [CONTENT_SECURITY_POLICY.decode()])
        self.assertIn("script-src 'self'", CONTENT_SECURITY_POLICY.decode())

    async def test_etagRevalidation(self):
        """An unchanged file answers 304 to its ETag; a changed one is sent again."""
        response, _ = await self.fetch("/play/main.js")
        [etag] = response.headers.getRawHeaders("etag")
        response, body = await self.fetch("/play/main.js", headers={"If-None-Match": etag})
        self.assertEqual((response.code, body), (304, b""))
        self.write("play/main.js", b"export const x = 2;")
        response, body = await self.fetch("/play/main.js", headers={"If-None-Match": etag})
        self.assertEqual((response.code, body), (200, b"export const x = 2;"))

    async def test_folderWithoutSlashRedirects(self):
        """/play redirects to /play/, so that the page's relative imports resolve."""
        response, _ = await self.fetch("/play")
        self.assertEqual((response.code, response.headers.getRawHeaders("location")), (301, ["/play/"]))

    async def test_nothingOutsideTheFolder(self):
        """Dot files, parent folders, encoded or not, folders, unknown types and absent files are a typed 404."""
        for path in ("/play/.secret.js", "/play/../outside.js", "/play/%2e%2e/outside.js",
                     "/play/sub/..%2f..%2foutside.js", "/play/sub", "/play/sub/", "/play/notes.bak",
                     "/play/absent.js", "/play/%ff.js", "/lib/"):
            response, body = await self.fetch(path)
            self.assertEqual(response.code, 404, path)
            self.assertEqual(json.loads(body)["error"]["code"], "request.not_found", path)

    async def test_headAndOtherMethods(self):
        """HEAD gives the headers without the body; other methods get a typed 405 naming GET and HEAD."""
        response, body = await self.fetch("/play/main.js", "HEAD")
        self.assertEqual((response.code, body), (200, b""))
        self.assertEqual(response.headers.getRawHeaders("content-length"), ["19"])
        response, body = await self.fetch("/play/main.js", "POST")
        self.assertEqual(response.code, 405)
        self.assertEqual(json.loads(body)["error"]["code"], "request.method_not_allowed")
        self.assertEqual(response.headers.getRawHeaders("allow"), ["GET, HEAD"])


class ShippedPlayClientTests(TestCase):
    """The play client and the operator console as shipped in the package."""

    def files(self):
        found = []
        for page in (PLAY, CONSOLE):
            for folder, _, names in os.walk(page):
                found.extend(os.path.join(folder, n) for n in names)
        return found

    def test_everyImportIsShipped(self):
        """Every module the pages (the play client's, the console's) and their modules import is a file of the package (or the client library's bundle)."""
        scripts = [f for f in self.files() if f.endswith(".js")]
        self.assertIn(os.path.join(PLAY, "main.js"), scripts)
        self.assertIn(os.path.join(CONSOLE, "console.js"), scripts)
        importPattern = re.compile(r"""(?:^|\n)\s*import\s[^;]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']""")
        for script in scripts:
            with open(script) as f:
                text = f.read()
            for match in importPattern.finditer(text):
                target = match.group(1) or match.group(2)
                if target.startswith("/lib/"):
                    path = os.path.join(STATIC_ROOT, "lib", target[len("/lib/"):])
                else:
                    self.assertTrue(target.startswith("./"), f"{script}: import {target!r}")
                    path = os.path.join(os.path.dirname(script), target)
                self.assertTrue(os.path.isfile(path), f"{script} imports {target!r}: not shipped")

    def test_loadsNothingFromElsewhere(self):
        """No file of the play client or the console names another origin (no CDN): they work offline."""
        for path in self.files():
            with open(path, encoding="utf-8") as f:
                text = f.read()
            self.assertIsNone(re.search(r"""["'(]\s*(?:https?:)?//""", text), path)

    def test_filesAreSmall(self):
        """Each file of the play client and the console stays under 600 lines (split into modules)."""
        for path in self.files():
            with open(path, encoding="utf-8") as f:
                self.assertLess(len(f.read().splitlines()), 600, path)

    def test_buildIsLetIn(self):
        """The play client's build is one the shipped release data lets in on the web platform's live channel (not version.update_required)."""
        with open(os.path.join(PLAY, "connection.js")) as f:
            build = re.search(r'export const CLIENT_VERSION = "([^"]+)";', f.read()).group(1)
        release = loadReleaseDir(os.path.join(checkoutRoot(), "etc", "releases")).release
        live = release.platforms["web"].channels["live"]
        self.assertGreaterEqual(parseBuild(build), live.minimum)
