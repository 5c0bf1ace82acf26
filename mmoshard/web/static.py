"""Static files shipped in the package (mmoshard/web/static/): the play client at /play/ and the client library at /lib/."""

import hashlib
import os
import re

from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from mmoshard.web.json import HTTPError, writeJSON

# The package's folder of static files: lib/ (the client library's bundle),
# play/ (the browser play client), console/ (the operator console).
STATIC_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")

# What is served, by file extension; anything else is not found.  ES modules
# need a JavaScript type: browsers refuse a module script served otherwise.
CONTENT_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".mjs": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".json": b"application/json",
    ".png": b"image/png",
    ".svg": b"image/svg+xml",
    ".ico": b"image/x-icon",
    ".txt": b"text/plain; charset=utf-8",
}

# The pages load nothing from elsewhere (no CDN, no inline script); they talk
# to the REST API (same origin, or another one CORS allows) and to the
# session protocol's WebSocket listener, on another port.
CONTENT_SECURITY_POLICY = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self' ws: wss: http: https:; object-src 'none'; base-uri 'none'; "
    b"frame-ancestors 'none'; form-action 'self'"
)

# One path segment of a file or folder name: no dot files, no "..".
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


class StaticFolder(Resource):
    """
    The files under one folder of L{STATIC_ROOT}, read when asked (they are
    small; an edited file shows at the next reload): C{GET} and C{HEAD}
    only, C{index.html} for the folder itself, no listing, no dot files, no
    way out of the folder.  The folder without its slash (C{/play})
    redirects to it (C{/play/}) so that the page's relative imports resolve.
    Answers carry an C{ETag} (C{If-None-Match} gets C{304}), C{Cache-Control:
    no-cache} (revalidated, so a new release shows at once) and the content
    security policy above.  Not found, a bad name or another method are the
    typed JSON errors of the REST API.
    """

    isLeaf = True

    def __init__(self, directory, index="index.html"):
        super().__init__()
        self.directory = directory
        self.index = index

    def render(self, request):
        method = request.method
        if method not in (b"GET", b"HEAD"):
            error = HTTPError(405, "request.method_not_allowed", "static files take GET and HEAD",
                              headers={"Allow": "GET, HEAD"})
            writeJSON(request, 405, error.body(), error.headers)
            return NOT_DONE_YET
        segments = list(request.postpath)
        if not segments:
            # /play: redirect to /play/ so that ./main.js means /play/main.js.
            location = b"/".join(request.prepath) + b"/"
            request.setResponseCode(301)
            request.setHeader(b"Location", b"/" + location.lstrip(b"/"))
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            return b"moved to " + location
        if segments[-1] == b"":
            segments[-1] = self.index.encode()
        path = self.resolve(segments)
        if path is None:
            return self.notFound(request)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return self.notFound(request)
        etag = b'"' + hashlib.sha256(data).hexdigest()[:32].encode() + b'"'
        request.setHeader(b"Content-Type", CONTENT_TYPES[os.path.splitext(path)[1]])
        request.setHeader(b"ETag", etag)
        request.setHeader(b"Cache-Control", b"no-cache")
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        request.setHeader(b"Content-Security-Policy", CONTENT_SECURITY_POLICY)
        if etag in _matches(request.getHeader(b"If-None-Match")):
            request.setResponseCode(304)
            return b""
        request.setHeader(b"Content-Length", str(len(data)).encode())
        return b"" if method == b"HEAD" else data

    def resolve(self, segments):
        """@return: the file C{segments} (bytes) name under the folder, or None when there is none to serve."""
        names = []
        for raw in segments:
            try:
                name = raw.decode("utf-8")
            except UnicodeDecodeError:
                return None
            if not _SEGMENT.fullmatch(name):
                return None
            names.append(name)
        if os.path.splitext(names[-1])[1] not in CONTENT_TYPES:
            return None
        path = os.path.join(self.directory, *names)
        return path if os.path.isfile(path) else None

    def notFound(self, request):
        writeJSON(request, 404, HTTPError(404, "request.not_found", "no such file").body())
        return NOT_DONE_YET


def _matches(header):
    """@return: the entity tags of an C{If-None-Match} header (bytes)."""
    if not header:
        return ()
    return [t.strip().removeprefix(b"W/") for t in header.split(b",")]


def mountPublicFiles(site, root=STATIC_ROOT):
    """Serve the play client at C{/play/} and the client library at C{/lib/} on the public C{site} (an L{IWebSite})."""
    site.putChild(b"play", StaticFolder(os.path.join(root, "play")))
    site.putChild(b"lib", StaticFolder(os.path.join(root, "lib")))
