"""The version role's REST: GET /v1/version (the check) and GET /v1/manifests/{platform}/{build}."""

from twisted.logger import Logger
from twisted.python.failure import Failure

from mmoshard import __version__
from mmoshard.gate import (
    BUILD_PATTERN, MAX_BUILD_LENGTH, MalformedBuild, isOperator, parseBuild,
)
from mmoshard.store.errors import VolatileUnavailable
from mmoshard.tokens import InvalidToken
from mmoshard.version.plan import MAINTENANCE
from mmoshard.version.releases import CHANNELS, PLATFORMS
from mmoshard.web.errors import ErrorCodes
from mmoshard.web.json import encodeJSON
from mmoshard.web.routes import Router, mountRouter, openapiDocument, route
from mmoshard.web.schema import Prop

# The error codes of this role's endpoints (docs/version.md lists them).
VERSION_ERRORS = ErrorCodes({
    "version.no_release": (404, "nothing is published for that platform, channel or build"),
    "version.invalid_release": (400, "the release data or signing key is refused"),
    "version.no_earlier_revision": (409, "there is no kept revision to roll back to"),
})
_PLATFORMS = {p.encode(): p for p in PLATFORMS}
_CHANNELS = {c.encode(): c for c in CHANNELS}
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="mmoshard"'}
_NONE = (None, None)
_NOT_FOUND_CACHE = {"Cache-Control": b"public, max-age=30"}
MAX_PARSED_BUILDS = 1024


class VersionAPI:
    """
    The version role's public routes.  The check is the hot path of the
    role: the verifier answers from memory almost always (its Deferred has
    fired by the time C{verify} returns), and then the router renders the
    answer synchronously, with bodies encoded once per release (see
    L{mmoshard.version.catalog.Catalog}).
    """

    log = Logger()

    def __init__(self, role):
        self.role = role
        # Raw build query values already parsed, bounded: clients send the
        # same few builds over and over.
        self._builds = {}

    def authenticate(self, request):
        """
        @return: the Bearer token's claims, or a Deferred of them when the
            verifier must ask the store (when it answered at once, as it
            almost always does, the router need not wait on a Deferred).
        """
        header = request.getHeader(b"authorization")
        if header is not None and header[:7].lower() == b"bearer ":
            token = header[7:].strip()
            if token:
                box = []
                d = self.role.verifier.verify(token.decode("latin-1"))
                d.addBoth(box.append)
                if not box:
                    return d.addCallback(lambda _: self._claims(box[0]))
                return self._claims(box[0])
        self.role.metrics.check("auth.invalid_token", "unknown")
        raise VERSION_ERRORS.error("auth.invalid_token", "a Bearer access token is required",
                                   headers=_CHALLENGE)

    def _claims(self, result):
        """@return: the verifier's C{result}, its failure raised as the typed error."""
        if isinstance(result, Failure):
            self._refused(result).raiseException()
        return result

    def _refused(self, failure):
        """@return: C{failure} when not a refusal; raise the typed error of one."""
        if failure.check(InvalidToken):
            e = VERSION_ERRORS.error("auth.invalid_token", f"access token {failure.value.reason}",
                                     headers=_CHALLENGE)
        elif failure.check(VolatileUnavailable):
            e = VERSION_ERRORS.unavailable("cannot check the token now")
        else:
            return failure
        self.role.metrics.check(e.code, "unknown")
        raise e

    @route("GET", "/v1/version",
           "May this build play, and the patch plan to the build to run (docs/version.md)",
           query={"platform": Prop("string", enum=PLATFORMS),
                  "channel": Prop("string", required=False, enum=CHANNELS, default="live"),
                  "build": Prop("string", minLength=1, maxLength=MAX_BUILD_LENGTH,
                                pattern=BUILD_PATTERN,
                                description="such as 1.10.0 or 2.0.0-rc.1")},
           errors=("request.invalid", "version.no_release"),
           response=dict(
               status=Prop("string", enum=("ok", "update_available", "update_required")),
               platform=Prop("string"), channel=Prop("string"), build=Prop("string"),
               latest=Prop("string"), minimum=Prop("string"), target=Prop("string"),
               notes_url=Prop("string", nullable=True), manifest_url=Prop("string"),
               plan=Prop("object", nullable=True, description="null when ok"),
               region=Prop("string"), cdn=Prop("array"),
               maintenance=Prop("object", nullable=True, description="the next window"),
               revision=Prop("integer")),
           responses={503: "maintenance, with Retry-After and the window"},
           cache=b"private, no-store")
    def check(self, call):
        platform, channel, build = self._parse(call.request)
        role, claims = self.role, call.claims
        catalog = role.catalog
        if catalog is None or channel not in getattr(catalog.platform(platform), "channels", ()):
            role.metrics.check("no_release", platform)
            raise VERSION_ERRORS.error("version.no_release",
                                       f"nothing is published for {platform}/{channel}")
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
            return 503, encodeJSON(body), {"Retry-After": retry}
        requested = call.request.getHeader(role.regionHeader)
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
        return 200, body

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
            self.role.metrics.check("request.invalid", "unknown")
            raise VERSION_ERRORS.error("request.invalid", "bad query parameters", fields)
        return platform, channel, build

    @route("GET", "/v1/manifests/{platform:str}/{build:str}",
           "A build's Ed25519-signed manifest; ETag, Cache-Control, 304", auth=False,
           errors=("version.no_release",),
           response={"alg": Prop("string"), "key_id": Prop("string"),
                     "payload": Prop("string"), "signature": Prop("string")},
           responses={304: "not modified (If-None-Match)"})
    def manifest(self, call):
        role = self.role
        catalog = role.catalog
        if catalog is None:
            return self.notFound(call)
        try:
            build = parseBuild(call.params["build"])
        except MalformedBuild:
            return self.notFound(call)
        etag = catalog.etagFor(call.params["platform"], build)
        if etag is None:
            return self.notFound(call)
        headers = {"ETag": etag, "Cache-Control": role.manifestCacheControl}
        match = call.request.getHeader(b"if-none-match")
        if match and _matches(match.decode("latin-1"), etag):
            role.metrics.manifest("not_modified")
            return 304, b"", headers
        envelope = role.manifests.get(etag)
        if envelope is not None:
            role.metrics.manifest("ok")
            return 200, envelope, headers
        return role.fetchManifest(etag).addCallbacks(self._fetched, self._unreadable,
                                                     callbackArgs=(call, headers))

    def _fetched(self, envelope, call, headers):
        if envelope is None:
            return self.notFound(call)
        self.role.metrics.manifest("ok")
        return 200, envelope, headers

    def _unreadable(self, failure):
        self.log.failure("cannot read a manifest", failure=failure)
        raise VERSION_ERRORS.unavailable("cannot read the manifest now")

    @route("GET", "/v1/manifests/{rest:path}", "Anything else under /v1/manifests",
           auth=False, documented=False)
    def notFound(self, call):
        self.role.metrics.manifest("not_found")
        raise VERSION_ERRORS.error("version.no_release", "no such manifest",
                                   headers=_NOT_FOUND_CACHE)


def _matches(header, etag):
    """@return: True when an If-None-Match C{header} names C{etag} (weakly)."""
    header = header.strip()
    if header == "*":
        return True
    return any(m.strip().removeprefix("W/") == etag for m in header.split(","))


def mount(site, role):
    """
    Mount the check and the manifests under C{/v1} of the public C{site},
    sharing a C{/v1} another role mounted first, and add this role's
    OpenAPI document to C{/openapi.json}.
    """
    router = Router(VersionAPI(role), VERSION_ERRORS)
    mountRouter(site, router, depth=2)
    site.addOpenAPI(
        lambda: openapiDocument(router.routes, "mmoshard version", __version__, VERSION_ERRORS)
    )


__all__ = ["VERSION_ERRORS", "VersionAPI", "mount"]
