"""The version role's REST: GET /v1/version (the check) and GET /v1/manifests/{platform}/{build}."""

import json

from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from mmoshard.gate import MalformedBuild, isOperator, parseBuild
from mmoshard.store.errors import VolatileUnavailable
from mmoshard.tokens import InvalidToken
from mmoshard.twistedcompat import requestDisconnected
from mmoshard.version.plan import MAINTENANCE
from mmoshard.version.releases import CHANNELS, PLATFORMS
from mmoshard.web.json import HTTPError, writeJSON

# The error codes of this role's endpoints (docs/version.md lists them).
ERRORS = {
    "request.invalid": 400,
    "auth.invalid_token": 401,
    "version.no_release": 404,
    "service.unavailable": 503,
}
_PLATFORMS = {p.encode(): p for p in PLATFORMS}
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="mmoshard"'}
_JSON = [b"application/json"]
_NO_STORE = [b"private, no-store"]
_NONE = (None, None)
_CHANNELS = {c.encode(): c for c in CHANNELS}
_INTERNAL = json.dumps(
    HTTPError(500, "internal", "internal server error").body(), separators=(",", ":")
).encode()
MAX_PARSED_BUILDS = 1024


def error(code, message, fields=None, headers=None):
    return HTTPError(ERRORS[code], code, message, fields=fields, headers=headers)


def _encode(body):
    return json.dumps(body, separators=(",", ":")).encode()


class CheckResource(Resource):
    """
    C{GET /v1/version?platform=&channel=&build=} with a Bearer access token:
    may this build play, and what should it download.

    The hot path of the role.  The verifier answers from memory almost
    always (its Deferred has fired by the time C{verify} returns), and then
    the answer is rendered synchronously and returned as bytes, with bodies
    encoded once per release (see L{mmoshard.version.catalog.Catalog}); only
    a verifier that must ask the store (never started, as in tools and some
    tests) takes the asynchronous path.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, role):
        super().__init__()
        self.role = role
        # Raw build query values already parsed, bounded: clients send the
        # same few builds over and over.
        self._builds = {}

    def render_HEAD(self, request):
        return self.render_GET(request)

    def render_GET(self, request):
        role = self.role
        try:
            platform, channel, build = self._parse(request)
            token = self._token(request)
        except HTTPError as e:
            role.metrics.check(e.code, "unknown")
            return self._respond(request, e.status, _encode(e.body()), e.headers)
        outcome = []
        d = role.verifier.verify(token)
        d.addBoth(outcome.append)
        if outcome:
            try:
                answer = self._answer(outcome[0], request, platform, channel, build)
            except Exception:
                answer = self._crash(Failure())
            return self._respond(request, *answer)
        d.addCallback(self._later, outcome, request, platform, channel, build)
        d.addErrback(lambda failure: self._finish(request, *self._crash(failure)))
        return NOT_DONE_YET

    def _later(self, _, outcome, request, platform, channel, build):
        self._finish(request, *self._answer(outcome[0], request, platform, channel, build))

    def _parse(self, request):
        args = request.args
        values = args.get(b"platform")
        platform = _PLATFORMS.get(values[0]) if values else None
        values = args.get(b"channel")
        channel = _CHANNELS.get(values[0]) if values else "live"
        values = args.get(b"build")
        build = None
        if values:
            raw = values[0]
            build = self._builds.get(raw)
            if build is None:
                try:
                    build = parseBuild(raw.decode("ascii"))
                except (MalformedBuild, UnicodeDecodeError):
                    pass
                else:
                    if len(self._builds) >= MAX_PARSED_BUILDS:
                        self._builds.clear()
                    self._builds[raw] = build
        if platform is None or channel is None or build is None:
            fields = {}
            if platform is None:
                fields["platform"] = "one of " + ", ".join(PLATFORMS)
            if channel is None:
                fields["channel"] = "one of " + ", ".join(CHANNELS)
            if build is None:
                fields["build"] = "a version such as 1.10.0"
            raise error("request.invalid", "bad query parameters", fields)
        return platform, channel, build

    def _token(self, request):
        header = request.getHeader(b"authorization")
        if header is not None and header[:7].lower() == b"bearer ":
            token = header[7:].strip()
            if token:
                return token.decode("latin-1")
        raise error("auth.invalid_token", "a Bearer access token is required", headers=_CHALLENGE)

    def _answer(self, result, request, platform, channel, build):
        """
        @param result: what the verifier gave: L{Claims} or a L{Failure}.
        @return: (HTTP status, encoded body, extra headers or None).
        """
        role = self.role
        if isinstance(result, Failure):
            if result.check(InvalidToken):
                e = error(
                    "auth.invalid_token", f"access token {result.value.reason}", headers=_CHALLENGE
                )
            elif result.check(VolatileUnavailable):
                e = error(
                    "service.unavailable", "cannot check the token now", headers={"Retry-After": 5}
                )
            else:
                return self._crash(result)
            role.metrics.check(e.code, "unknown")
            return e.status, _encode(e.body()), e.headers
        claims = result
        catalog = role.catalog
        if catalog is None or channel not in getattr(catalog.platform(platform), "channels", ()):
            role.metrics.check("no_release", platform)
            e = error("version.no_release", f"nothing is published for {platform}/{channel}")
            return e.status, _encode(e.body()), None
        now = role.clock.seconds()
        active, upcoming = catalog.maintenance(now) if catalog.hasMaintenance else _NONE
        if active is not None and not isOperator(claims):
            role.metrics.check(MAINTENANCE, platform)
            retry = active.retryAfter(now)
            body = {
                "status": MAINTENANCE,
                "message": active.message,
                "maintenance": active.toJSON(),
                "retry_after": retry,
                "revision": catalog.revision,
            }
            return 503, _encode(body), {"Retry-After": retry}
        requested = request.getHeader(role.regionHeader)
        if requested is not None:
            requested = requested.decode("latin-1").strip().lower()
        else:
            requested = getattr(claims, "region", None)
        region = catalog.region(requested)
        status, body, seen = catalog.answer(
            platform, channel, build, claims.account_id, region, upcoming
        )
        role.metrics.check(status, platform)
        role.metrics.seen(platform, channel, seen)
        return 200, body, None

    def _crash(self, failure):
        self.log.failure("version check failed", failure=failure)
        return 500, _INTERNAL, None

    def _headers(self, request, status, headers):
        if status != 200:  # the default: skip the call on the hot path
            request.setResponseCode(status)
        setHeader = request.responseHeaders.setRawHeaders
        setHeader(b"content-type", _JSON)
        setHeader(b"cache-control", _NO_STORE)
        if headers:
            for name, value in headers.items():
                setHeader(name.encode(), [str(value).encode()])

    def _respond(self, request, status, body, headers):
        """Answer from C{render}: Twisted writes the body and its length."""
        self._headers(request, status, headers)
        if request.method == b"HEAD":
            # Returning a body for HEAD makes Twisted log a warning.
            request.responseHeaders.setRawHeaders(b"content-length", [b"%d" % len(body)])
            return b""
        return body

    def _finish(self, request, status, body, headers):
        """Answer later, unless the client has gone."""
        if requestDisconnected(request) or request.finished:
            return
        self._headers(request, status, headers)
        request.responseHeaders.setRawHeaders(b"content-length", [b"%d" % len(body)])
        if request.method != b"HEAD":
            request.write(body)
        request.finish()


class ManifestResource(Resource):
    """
    C{GET /v1/manifests/{platform}/{build}}: the signed manifest envelope,
    no token needed, with a strong ETag and Cache-Control for CDNs.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, role):
        super().__init__()
        self.role = role

    def render_HEAD(self, request):
        return self.render_GET(request)

    def render_GET(self, request):
        role = self.role
        catalog = role.catalog
        if len(request.postpath) != 2 or catalog is None:
            return self._notFound(request)
        platform = request.postpath[0].decode("ascii", "replace")
        try:
            build = parseBuild(request.postpath[1].decode("ascii"))
        except (MalformedBuild, UnicodeDecodeError):
            return self._notFound(request)
        etag = catalog.etagFor(platform, build)
        if etag is None:
            return self._notFound(request)
        request.setHeader(b"etag", etag.encode())
        request.setHeader(b"cache-control", role.manifestCacheControl)
        match = request.getHeader(b"if-none-match")
        if match and _matches(match.decode("latin-1"), etag):
            role.metrics.manifest("not_modified")
            request.setResponseCode(304)
            return b""
        envelope = role.manifests.get(etag)
        if envelope is not None:
            return self._send(request, envelope)
        d = role.fetchManifest(etag)
        d.addCallback(lambda envelope: self._send(request, envelope, later=True))
        d.addErrback(self._failed, request)
        return NOT_DONE_YET

    def _send(self, request, envelope, later=False):
        if envelope is None:
            if later:
                request.responseHeaders.removeHeader(b"etag")
                writeJSON(request, 404, error("version.no_release", "no such manifest").body())
                return None
            return self._notFound(request)
        self.role.metrics.manifest("ok")
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"content-length", b"%d" % len(envelope))
        if not later:
            return envelope if request.method != b"HEAD" else b""
        if requestDisconnected(request) or request.finished:
            return None
        if request.method != b"HEAD":
            request.write(envelope)
        request.finish()
        return None

    def _failed(self, failure, request):
        self.log.failure("cannot read a manifest", failure=failure)
        request.responseHeaders.removeHeader(b"etag")
        writeJSON(
            request,
            503,
            error("service.unavailable", "cannot read the manifest now").body(),
            {"Retry-After": 5},
        )

    def _notFound(self, request):
        self.role.metrics.manifest("not_found")
        body = json.dumps(error("version.no_release", "no such manifest").body()).encode()
        request.setResponseCode(404)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"public, max-age=30")
        request.setHeader(b"content-length", b"%d" % len(body))
        return body


def _matches(header, etag):
    """@return: True when an If-None-Match C{header} names C{etag} (weakly)."""
    header = header.strip()
    if header == "*":
        return True
    return any(m.strip().removeprefix("W/") == etag for m in header.split(","))


def openapi():
    """@return: the OpenAPI document of this role's endpoints."""
    from mmoshard import __version__

    def errorResponse(description):
        return {"description": description, "content": {"application/json": {}}}

    query = [
        {"name": "platform", "in": "query", "required": True,
         "schema": {"type": "string", "enum": list(PLATFORMS)}},
        {"name": "channel", "in": "query", "schema": {"type": "string", "enum": list(CHANNELS), "default": "live"}},
        {"name": "build", "in": "query", "required": True, "schema": {"type": "string"},
         "example": "1.10.0"},
    ]
    return {
        "openapi": "3.0.3",
        "info": {"title": "mmoshard version", "version": __version__},
        "paths": {
            "/v1/version": {"get": {
                "summary": "May this build play, and the patch plan to the build to run (docs/version.md)",
                "security": [{"bearer": []}],
                "parameters": query,
                "responses": {
                    "200": errorResponse("ok, update_available or update_required"),
                    "400": errorResponse("request.invalid"),
                    "401": errorResponse("auth.invalid_token"),
                    "404": errorResponse("version.no_release"),
                    "503": errorResponse("maintenance (with Retry-After) or service.unavailable"),
                },
            }},
            "/v1/manifests/{platform}/{build}": {"get": {
                "summary": "A build's Ed25519-signed manifest; ETag, Cache-Control, 304",
                "parameters": [
                    {"name": "platform", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "build", "in": "path", "required": True, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": errorResponse("the signed envelope {alg, key_id, payload, signature}"),
                    "304": {"description": "not modified (If-None-Match)"},
                    "404": errorResponse("version.no_release"),
                },
            }},
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


def mount(site, role):
    """
    Mount the check and the manifests under C{/v1} of the public C{site},
    sharing a C{/v1} another role mounted first, and add this role's
    OpenAPI document to C{/openapi.json}.
    """
    site.mount((b"v1", b"version"), CheckResource(role))
    site.mount((b"v1", b"manifests"), ManifestResource(role))
    site.addOpenAPI(openapi)


__all__ = ["CheckResource", "ManifestResource", "mount", "openapi"]
