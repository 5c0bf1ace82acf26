"""The version role's REST: GET /v1/version (the check) and GET /v1/manifests/{platform}/{build}."""

import json

from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from mmoshard.gate import MalformedBuild, isOperator, parseBuild
from mmoshard.store.errors import VolatileUnavailable
from mmoshard.tokens import InvalidToken
from mmoshard.version.plan import MAINTENANCE
from mmoshard.version.releases import CHANNELS, PLATFORMS
from mmoshard.web.json import HTTPError, JSONNotFound, JSONResource, JSONRoot, writeJSON

# The error codes of this role's endpoints (docs/version.md lists them).
ERRORS = {
    "request.invalid": 400,
    "auth.invalid_token": 401,
    "version.no_release": 404,
    "service.unavailable": 503,
}
_PLATFORMS = {p.encode(): p for p in PLATFORMS}
_CHANNELS = {c.encode(): c for c in CHANNELS}


def error(code, message, fields=None, headers=None):
    return HTTPError(ERRORS[code], code, message, fields=fields, headers=headers)


def _arg(request, name):
    values = request.args.get(name)
    return values[0] if values else None


class CheckResource(JSONResource):
    """
    C{GET /v1/version?platform=&channel=&build=} with a Bearer access token:
    may this build play, and what should it download.
    """

    handlers = {b"GET": "get"}
    log = Logger()

    def __init__(self, role):
        super().__init__()
        self.role = role

    def _answer(self, request, result):
        status, body, *rest = result
        if not isinstance(body, bytes):
            return super()._answer(request, result)
        if getattr(request, "_disconnected", False) or request.finished:
            return
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"private, no-store")
        for name, value in (rest[0] if rest else {}).items():
            request.setHeader(name.encode(), str(value).encode())
        request.setHeader(b"content-length", b"%d" % len(body))
        if request.method != b"HEAD":
            request.write(body)
        request.finish()

    def _parse(self, request):
        fields = {}
        raw = _arg(request, b"platform")
        platform = _PLATFORMS.get(raw)
        if platform is None:
            fields["platform"] = "one of " + ", ".join(PLATFORMS)
        raw = _arg(request, b"channel")
        channel = _CHANNELS.get(raw or b"live")
        if channel is None:
            fields["channel"] = "one of " + ", ".join(CHANNELS)
        raw = _arg(request, b"build")
        build = None
        try:
            build = parseBuild(raw.decode("ascii") if raw is not None else None)
        except (MalformedBuild, UnicodeDecodeError):
            fields["build"] = "a version such as 1.10.0"
        if fields:
            raise error("request.invalid", "bad query parameters", fields)
        return platform, channel, build

    async def _claims(self, request):
        header = (request.getHeader(b"authorization") or b"").decode("latin-1")
        scheme, _, token = header.partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer realm="mmoshard"'}
        if scheme.lower() != "bearer" or not token.strip():
            raise error("auth.invalid_token", "a Bearer access token is required", headers=challenge)
        try:
            return await self.role.verifier.verify(token.strip())
        except InvalidToken as e:
            raise error("auth.invalid_token", f"access token {e.reason}", headers=challenge)
        except VolatileUnavailable:
            raise error(
                "service.unavailable", "cannot check the token now", headers={"Retry-After": 5}
            )

    async def get(self, request):
        role = self.role
        try:
            platform, channel, build = self._parse(request)
            claims = await self._claims(request)
        except HTTPError as e:
            role.metrics.check(e.code, "unknown")
            raise
        catalog = role.catalog
        if catalog is None or channel not in getattr(
            catalog.platform(platform), "channels", ()
        ):
            role.metrics.check("no_release", platform)
            raise error(
                "version.no_release", f"nothing is published for {platform}/{channel}"
            )
        now = role.clock.seconds()
        active, upcoming = catalog.maintenance(now)
        if active is not None and not isOperator(claims):
            role.metrics.check(MAINTENANCE, platform)
            retry = active.retryAfter(now)
            return (
                503,
                {
                    "status": MAINTENANCE,
                    "message": active.message,
                    "maintenance": active.toJSON(),
                    "retry_after": retry,
                    "revision": catalog.revision,
                },
                {"Retry-After": retry},
            )
        requested = request.getHeader(role.regionHeader)
        if requested is not None:
            requested = requested.decode("latin-1").strip().lower()
        else:
            requested = getattr(claims, "region", None)
        region = catalog.region(requested)
        status, body = catalog.answer(
            platform, channel, build, claims.account_id, region, upcoming
        )
        role.metrics.check(status, platform)
        role.metrics.seen(platform, channel, build.text if catalog.knownBuild(platform, build) else "other")
        return 200, body


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
        request.setHeader(b"vary", b"accept-encoding")
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
        if getattr(request, "_disconnected", False) or request.finished:
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


def mount(site, role):
    """
    Mount the check and the manifests under C{/v1} of the public C{site},
    sharing a C{/v1} another role mounted first.
    """
    root = site.root
    v1 = root.children.get(b"v1")
    if v1 is None:
        v1 = JSONRoot()
        root.putChild(b"v1", v1)
    v1.putChild(b"version", CheckResource(role))
    v1.putChild(b"manifests", ManifestResource(role))
    return v1


__all__ = ["CheckResource", "ManifestResource", "mount", "JSONNotFound"]
