"""CORS on the public site: the configured origins ([web] cors_origins) may call the REST API from their pages; same-origin only by default."""

from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from mmoshard.web.json import HTTPError, JSONRoot, writeJSON

# What a page may send and read: the methods routes take (web/routes.py),
# the request headers the API reads, the answer headers a client needs.
ALLOWED_METHODS = b"GET, HEAD, POST, PUT, PATCH, DELETE"
ALLOWED_HEADERS = frozenset({b"authorization", b"content-type", b"if-none-match",
                             b"if-match", b"x-request-id"})
EXPOSED_HEADERS = b"Retry-After, ETag, WWW-Authenticate, Location"
ANY = "*"


class CORSPolicy:
    """
    Which origins' pages may read the public site's answers (C{origins}:
    exact C{scheme://host[:port]} strings, or C{"*"} for any) and how long
    a browser may keep a preflight's answer.  The API authenticates with
    bearer tokens, never cookies, so credentials are never allowed: a page
    can only use a token it holds itself.
    """

    def __init__(self, origins, maxAge=600):
        self.any = ANY in origins
        self.origins = frozenset(o.lower().encode("ascii") for o in origins if o != ANY)
        self.maxAge = b"%d" % maxAge

    def allowed(self, origin):
        """@return: the C{Access-Control-Allow-Origin} value for C{origin} (bytes), or None."""
        if self.any:
            return b"*"
        if origin is not None and origin.strip().lower() in self.origins:
            return origin.strip()
        return None

    def decorate(self, request):
        """Add the CORS headers an answer to C{request} carries (before it is written)."""
        headers = request.responseHeaders
        # The answer depends on Origin: caches keep one per origin.
        headers.addRawHeader(b"vary", b"Origin")
        allow = self.allowed(request.getHeader(b"origin"))
        if allow is not None:
            headers.setRawHeaders(b"access-control-allow-origin", [allow])
            headers.setRawHeaders(b"access-control-expose-headers", [EXPOSED_HEADERS])
        return allow

    def preflightProblem(self, request):
        """@return: why C{request} (a preflight) is refused, or None to allow it."""
        if self.allowed(request.getHeader(b"origin")) is None:
            return "this origin may not call the API (the server's [web] cors_origins)"
        wanted = request.getHeader(b"access-control-request-method") or b""
        if wanted.strip().upper() not in ALLOWED_METHODS.split(b", "):
            return f"method {wanted.decode('latin-1')[:16]!r} is not allowed"
        asked = request.getHeader(b"access-control-request-headers") or b""
        names = {h.strip().lower() for h in asked.split(b",") if h.strip()}
        extra = sorted(names - ALLOWED_HEADERS)
        if extra:
            return "header(s) " + ", ".join(h.decode("latin-1")[:40] for h in extra) + \
                " are not allowed"
        return None


def isPreflight(request):
    """@return: whether C{request} is a browser's CORS preflight."""
    return (request.method == b"OPTIONS" and request.getHeader(b"origin") is not None
            and request.getHeader(b"access-control-request-method") is not None)


class _Preflight(Resource):
    """The answer to a preflight: 204 with what is allowed, or a typed 403."""

    isLeaf = True
    log = Logger()

    def __init__(self, policy):
        super().__init__()
        self.policy = policy

    def render(self, request):
        policy = self.policy
        policy.decorate(request)
        problem = policy.preflightProblem(request)
        if problem is not None:
            self.log.info("CORS preflight refused for origin {origin}: {why}",
                          origin=(request.getHeader(b"origin") or b"")[:200].decode("latin-1"),
                          why=problem)
            error = HTTPError(403, "request.forbidden_origin", problem)
            writeJSON(request, 403, error.body())
            return NOT_DONE_YET
        request.setResponseCode(204)
        request.setHeader(b"access-control-allow-methods", ALLOWED_METHODS)
        request.setHeader(b"access-control-allow-headers",
                          b", ".join(sorted(ALLOWED_HEADERS)))
        request.setHeader(b"access-control-max-age", policy.maxAge)
        request.setHeader(b"content-length", b"0")
        return b""


class CORSRoot(JSONRoot):
    """
    The public site's root when CORS origins are configured: every answer
    says which origin may read it, and preflights are answered here, before
    any route (a route never sees an OPTIONS a browser sends for CORS).
    """

    def __init__(self, policy):
        super().__init__()
        self.policy = policy

    def getChildWithDefault(self, path, request):
        if isPreflight(request):
            return _Preflight(self.policy)
        self.policy.decorate(request)
        return super().getChildWithDefault(path, request)

    def render(self, request):
        if isPreflight(request):
            return _Preflight(self.policy).render(request)
        self.policy.decorate(request)
        return super().render(request)


def makePublicRoot(webConfig):
    """@return: the root resource of the public site for the C{[web]} section."""
    if not webConfig.cors_origins:
        return JSONRoot()
    return CORSRoot(CORSPolicy(webConfig.cors_origins, webConfig.cors_max_age))


__all__ = ["CORSPolicy", "CORSRoot", "makePublicRoot", "isPreflight", "ALLOWED_METHODS",
           "ALLOWED_HEADERS", "EXPOSED_HEADERS"]
