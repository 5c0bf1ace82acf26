"""JSON REST routes declared on their handlers (@route), one router that serves them, and the OpenAPI they imply."""

from inspect import iscoroutine
from time import monotonic

import attrs
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from mmoshard.logthrottle import LogThrottle
from mmoshard.store.errors import SQLUnavailable, VolatileUnavailable
from mmoshard.web.errors import ErrorCodes
from mmoshard.web.json import HTTPError, encodeJSON, readJSON, writeJSON
from mmoshard.web.schema import objectSchema, validate

# The attribute @route leaves on a handler: the declarations it carries.
_DECLARED = "__mmoshard_routes__"
_NO_STORE = b"no-store"
_NO_STORE_HEADER = [_NO_STORE]
_JSON = [b"application/json"]
_DEFAULT_ERRORS = ErrorCodes({})
# The methods a route may take.
METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})
# An integer path segment: up to 18 digits, within every id column.
_INT_DIGITS = 18
_INT_PARAM = {"type": "integer", "minimum": 0, "maximum": 10 ** _INT_DIGITS - 1}
_STR_PARAM = {"type": "string", "minLength": 1}


@attrs.frozen
class Declaration:
    """What C{@route} says about one endpoint, before it is bound to an object."""

    method: str
    path: str
    summary: str
    auth: bool = True
    body: object = None  # name -> Prop, or a callable (the API object) -> that
    query: dict | None = None  # name -> Prop (documented; the handler reads them)
    status: int = 200
    errors: tuple = ()  # codes this endpoint answers besides the common ones
    response: dict | None = None  # name -> Prop of the success body (documentation)
    responses: dict | None = None  # other status -> description (documentation)
    cache: bytes = _NO_STORE  # Cache-Control of its answers
    documented: bool = True  # False: a catch-all kept out of the OpenAPI document
    # Refuse a body not sent as application/json (415): a browser asks
    # before a cross-site POST of that type, so a web page cannot drive the
    # endpoint through a local browser.
    jsonOnly: bool = False


def route(method, path, summary, **options):
    """
    Declare the decorated method the handler of C{method} C{path}: it takes
    a L{Call} and returns C{(status, body)} or C{(status, body, headers)}
    (C{body} a JSON-able value or C{bytes} already encoded), as an C{async
    def}, or, where a coroutine's cost shows (a hot route), as a plain
    method returning that tuple or a Deferred firing with it.  It raises
    L{HTTPError} (from the role's L{ErrorCodes}) for a typed error.

    In C{path}, C{{name}} is an integer segment (an id), C{{name:str}} any
    one segment and C{{name:path}} the rest of the path.  C{options} are
    L{Declaration}'s: C{auth} (the router calls the object's
    C{authenticate(request)} first and puts its claims on the call),
    C{body} (a JSON object checked against its schema), C{status},
    C{errors}, C{response}, C{query}, C{responses}, C{cache}, C{documented},
    C{jsonOnly}.
    """
    if method not in METHODS:
        # The admin site's guard checks the origin of exactly the methods
        # that may change state (web/guard.py): no route may take another.
        raise ValueError(f"@route {method} {path}: the method is not one of {sorted(METHODS)}")
    declared = Declaration(method, path, summary, **options)

    def decorate(handler):
        setattr(handler, _DECLARED, getattr(handler, _DECLARED, ()) + (declared,))
        return handler

    return decorate


def _parameter(segment):
    """@return: (name, kind) of a C{{name}} path segment, or None for a plain one."""
    if not segment.startswith("{"):
        return None
    name, _, kind = segment[1:-1].partition(":")
    return name, kind or "int"


@attrs.frozen
class Route:
    """One endpoint: a L{Declaration} bound to its handler on one object."""

    declaration: Declaration
    handler: object  # the bound method
    body: dict | None  # the schema, resolved for this object

    segments: tuple = attrs.field(init=False, eq=False, repr=False)
    params: tuple = attrs.field(init=False, eq=False, repr=False)
    # What every request reads, at hand (not through the declaration).
    auth: bool = attrs.field(init=False, eq=False, repr=False)
    cacheHeader: list = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self):
        # Split once: routes are matched on every request.
        segments = tuple(self.declaration.path.strip("/").split("/"))
        object.__setattr__(self, "segments", segments)
        object.__setattr__(self, "params", tuple(_parameter(s) for s in segments))
        object.__setattr__(self, "auth", self.declaration.auth)
        object.__setattr__(self, "cacheHeader", [self.declaration.cache])

    method = property(lambda self: self.declaration.method)
    path = property(lambda self: self.declaration.path)
    name = property(lambda self: self.handler.__name__)

    @property
    def static(self):
        """True when the path has no parameter."""
        return not any(self.params)

    @property
    def catchAll(self):
        """True when the path ends in a C{{name:path}} parameter."""
        last = self.params[-1]
        return last is not None and last[1] == "path"

    def match(self, segments):
        """@return: the path parameters when C{segments} match, else None."""
        mine = self.params
        if self.catchAll:
            if len(segments) < len(mine):
                return None
            segments = segments[:len(mine) - 1] + ["/".join(segments[len(mine) - 1:])]
        elif len(mine) != len(segments):
            return None
        params = {}
        for want, param, got in zip(self.segments, mine, segments):
            if param is None:
                if want != got:
                    return None
                continue
            name, kind = param
            if kind == "int":
                if not got.isdigit() or len(got) > _INT_DIGITS:
                    return None
                params[name] = int(got)
            elif not got or (kind == "str" and "/" in got):
                return None
            else:
                params[name] = got
        return params

    def commonErrors(self):
        """@return: the codes every endpoint like this one may answer."""
        codes = []
        if self.body is not None:
            if self.declaration.jsonOnly:
                codes.append("request.unsupported_media_type")
            codes += ["request.malformed_json", "request.too_large", "request.invalid"]
        codes.append("request.invalid_text")
        if self.auth:
            codes.append("auth.invalid_token")
        return codes + ["service.unavailable", "internal"]


def routesOf(api):
    """
    @return: the L{Route}s declared with C{@route} on C{api}'s class (and
        its bases), bound to C{api}, in the order they are defined.
    """
    found, seen = [], set()
    for klass in type(api).__mro__:
        for name, value in vars(klass).items():
            if name in seen:
                continue
            seen.add(name)
            for declared in getattr(value, _DECLARED, ()):
                body = declared.body
                if callable(body):
                    body = body(api)
                found.append(Route(declared, value.__get__(api, type(api)), body))
    return tuple(found)


class Call:
    """One request as a handler sees it."""

    __slots__ = ("request", "params", "body", "claims", "_trustForwarded", "_ip")

    def __init__(self, request, params, trustForwarded=False):
        self.request = request
        self.params = params
        self.body = None
        self.claims = None  # what the object's authenticate gave, when the route needs it
        self._trustForwarded = trustForwarded
        self._ip = None

    @property
    def ip(self):
        """The client's address (L{clientIP}), found when first asked for."""
        if self._ip is None:
            self._ip = clientIP(self.request, self._trustForwarded)
        return self._ip

    def arg(self, name):
        """@return: the first value of query parameter C{name} (bytes), or None."""
        values = self.request.args.get(name)
        return values[0] if values else None


def _notText(value):
    """@return: whether C{value} (bytes) is not UTF-8 text."""
    if value.isascii():
        return False
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def textProblem(request):
    """
    @return: what of C{request} is not UTF-8 text (a header, the path, a
        query parameter), or None.  Checked once, before any handler reads
        them: a handler may then decode any of them without a care.
    """
    for name, values in request.requestHeaders.getAllRawHeaders():
        if _notText(name) or any(_notText(v) for v in values):
            return "header " + name.decode("latin-1")[:64]
    uri = request.uri
    if uri.isascii() and b"%" not in uri:
        return None
    if any(_notText(s) for s in request.prepath + request.postpath):
        return "the path"
    for name, values in request.args.items():
        if _notText(name) or any(_notText(v) for v in values):
            return "query parameter " + name.decode("latin-1")[:64]
    return None


def clientIP(request, trustForwarded):
    """The client's address; the last X-Forwarded-For hop when behind our proxy."""
    if trustForwarded:
        forwarded = request.getHeader("x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[-1].strip()[:45]
    return getattr(request.getClientAddress(), "host", "unknown")


class Router(Resource):
    """
    Serves the C{@route} handlers of C{api} below wherever it is mounted (it
    matches the request's whole path).  Paths without parameters are found
    by one dict lookup.  An answer ready when the handler returns (and, on
    an authenticated route, when C{authenticate} returns) is returned from
    C{render}; a later one is written when it comes.  L{HTTPError} becomes
    its typed body, a store that does not answer a 503
    C{service.unavailable}, anything else a logged 500 C{internal}.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, api, errors=_DEFAULT_ERRORS, maxBody=64 * 1024, trustForwarded=False,
                 logThrottle=None):
        """
        @param logThrottle: the L{LogThrottle} of what requests make fail
            (one line per client a minute, then a count); by default one of
            this router's own on the monotonic clock.
        """
        super().__init__()
        self.api = api
        self.logThrottle = logThrottle or LogThrottle(monotonic)
        self.errors = errors
        self.routes = routesOf(api)
        for r in self.routes:
            for code in r.commonErrors() + list(r.declaration.errors):
                if code not in errors:
                    raise ValueError(f"{r.method} {r.path} may answer {code}, not in its codes")
        self.maxBody = maxBody
        self.trustForwarded = trustForwarded
        # (method, path segments) exactly as they arrive -> route; then the
        # decoded segments -> routes, and the few with parameters one by one
        # (catch-alls last).
        self._exact = {}
        self._static = {}
        for r in self.routes:
            if r.static:
                self._static.setdefault(r.segments, []).append(r)
                key = (r.method.encode("ascii"), tuple(s.encode() for s in r.segments))
                self._exact.setdefault(key, r)
        dynamic = [r for r in self.routes if not r.static]
        self._dynamic = tuple(sorted(dynamic, key=lambda r: r.catchAll))

    def prefixes(self, depth):
        """@return: the distinct first C{depth} segments (bytes) of the routes."""
        found = []
        for r in self.routes:
            if any(r.params[:depth]) or len(r.segments) < depth:
                raise ValueError(f"{r.path}: no static prefix of {depth} segments")
            prefix = tuple(s.encode() for s in r.segments[:depth])
            if prefix not in found:
                found.append(prefix)
        return found

    def render(self, request):
        problem = textProblem(request)
        if problem is not None:
            e = self.errors.error("request.invalid_text", f"{problem} is not UTF-8 text")
            return self._now(request, _NO_STORE_HEADER, e.status, e.body(), e.headers)
        route = self._exact.get((request.method, tuple(request.prepath + request.postpath)))
        if route is not None:
            return self._start(request, route, {})
        matched, chosen = self._matching(request.method, request.prepath + request.postpath)
        if not chosen:
            if matched:
                request.setHeader(b"allow", ", ".join(sorted({r.method for r, _ in matched})))
                e = self.errors.error("request.method_not_allowed")
            else:
                e = self.errors.error("request.not_found")
            return self._now(request, _NO_STORE_HEADER, e.status, e.body(), e.headers)
        route, params = chosen[0]
        return self._start(request, route, params)

    def _matching(self, method, path):
        """
        @param path: the request's path segments (bytes).
        @return: ([(route, params)] of the routes of this path, [those of
            them taking C{method} (bytes; HEAD: GET's)]).
        """
        segments = [s.decode("utf-8", "replace") for s in path]
        while len(segments) > 1 and segments[-1] == "":
            segments.pop()
        matched = [(r, {}) for r in self._static.get(tuple(segments), ())]
        if self._dynamic:
            matched += [(r, p) for r in self._dynamic if (p := r.match(segments)) is not None]
        method = method.decode("ascii", "replace")
        chosen = [(r, p) for r, p in matched if r.method == method]
        if not chosen and method == "HEAD":
            chosen = [(r, p) for r, p in matched if r.method == "GET"]
        return matched, chosen

    def takes(self, method, path):
        """@return: whether a route here takes C{method} (bytes) at C{path} (segments, bytes)."""
        return bool(self._matching(method, path)[1])

    def _start(self, request, route, params):
        """Run C{route}'s handler for C{request}.  @return: what C{render} returns."""
        call = Call(request, params, self.trustForwarded)
        try:
            if route.auth:
                d = self.api.authenticate(request)
                if iscoroutine(d):
                    d = Deferred.fromCoroutine(d)
                if isinstance(d, Deferred):
                    # Mostly fired already (a verifier answering from memory):
                    # then carry on here, with no Deferred of our own.
                    box = []
                    d.addBoth(box.append)
                    if not box:
                        d.addCallback(self._authenticated, box, call, route)
                        d.addErrback(self._failed, request, route, call)
                        return NOT_DONE_YET
                    d = box[0]
                    if isinstance(d, Failure):
                        d.raiseException()
                call.claims = d
            if route.body is not None:
                call.body = self._body(request, route)
            result = route.handler(call)
        except Exception:
            return self._failedNow(Failure(), request, route, call)
        if type(result) is tuple:
            return self._now(request, route.cacheHeader, *result)
        if iscoroutine(result):
            result = Deferred.fromCoroutine(result)
        result.addCallbacks(self._answer, self._failed, callbackArgs=(request, route),
                            errbackArgs=(request, route, call))
        return NOT_DONE_YET

    def _authenticated(self, _, box, call, route):
        """The rest of L{_start} once C{authenticate}'s Deferred fired."""
        claims = box[0]
        if isinstance(claims, Failure):
            return claims
        call.claims = claims
        if route.body is not None:
            call.body = self._body(call.request, route)
        result = route.handler(call)
        if iscoroutine(result):
            result = Deferred.fromCoroutine(result)
        if isinstance(result, Deferred):
            return result.addCallback(self._answer, call.request, route)
        self._answer(result, call.request, route)

    def _body(self, request, route):
        """@return: the request's body, read and checked against C{route}'s schema."""
        if route.declaration.jsonOnly:
            kind = (request.getHeader(b"content-type") or b"").split(b";")[0].strip()
            if kind != b"application/json":
                raise self.errors.error("request.unsupported_media_type", "send application/json")
        try:
            data = readJSON(request, self.maxBody)
        except HTTPError as e:
            raise self.errors.error(e.code, e.message)
        return validate(data, route.body)

    def _answer(self, result, request, route):
        status, body, *headers = result
        headers = headers[0] if headers else None
        cache = route.declaration.cache
        if cache is not _NO_STORE:
            # writeJSON's no-store replaced; the handler's own headers last.
            headers = {"Cache-Control": cache.decode(), **(headers or {})}
        writeJSON(request, status, body, headers)

    def _now(self, request, cache, status, body, headers=None):
        """
        Answer from C{render}: Twisted writes the body and its length.
        @param cache: the Cache-Control value, in a list.
        """
        if status != 200:  # the default: skip the call on the hot path
            request.setResponseCode(status)
        setHeader = request.responseHeaders.setRawHeaders
        if type(body) is not bytes:
            body = encodeJSON(body)
        if status != 304:
            setHeader(b"content-type", _JSON)
        setHeader(b"cache-control", cache)
        if headers:
            for name, value in headers.items():
                setHeader(name.encode(), [value if type(value) is bytes else str(value).encode()])
        if request.method == b"HEAD" or status == 304:
            # Returning a body for HEAD makes Twisted log a warning.
            if status != 304:
                setHeader(b"content-length", [b"%d" % len(body)])
            return b""
        return body

    def _error(self, failure, route, call):
        """@return: the L{HTTPError} to answer for C{failure}, logging what is not one."""
        if failure.check(HTTPError):
            return failure.value
        # One line per client and kind a minute, then a count: a client
        # repeating a request that fails must not fill the log.
        if failure.check(SQLUnavailable, VolatileUnavailable):
            if self.logThrottle.allow("store unavailable", call.ip):
                self.log.warn(
                    "{method} {path} from {ip}: store unavailable: {why}",
                    method=route.method, path=route.path, ip=call.ip, why=failure.value,
                )
            return self.errors.unavailable()
        # Each bug (route and exception type) apart: one does not hide another.
        kind = f"{failure.type.__name__} in {route.method} {route.path}"
        if self.logThrottle.allow(kind, call.ip):
            self.log.failure("unhandled error in {method} {path} from {ip}", failure=failure,
                             method=route.method, path=route.path, ip=call.ip)
        return self.errors.error("internal", "internal server error")

    def _failedNow(self, failure, request, route, call):
        e = self._error(failure, route, call)
        return self._now(request, route.cacheHeader, e.status, e.body(), e.headers)

    def _failed(self, failure, request, route, call):
        e = self._error(failure, route, call)
        self._answer((e.status, e.body(), e.headers), request, route)


def mountRouter(site, router, depth=1):
    """
    Mount C{router} on C{site} (an L{mmoshard.interfaces.ISite}) at each
    distinct first C{depth} segments of its routes (C{/v1/accounts},
    C{/v1/characters}, ... at depth 2), sharing folders with other roles.
    """
    for prefix in router.prefixes(depth):
        site.mount(prefix, router)


def openapiDocument(routes, title, version, errors, siteErrors=None):
    """
    @return: the OpenAPI 3 document describing C{routes} (L{Route}s), with
        every error code each endpoint may answer, from C{errors}
        (L{ErrorCodes}), grouped by status.
    @param siteErrors: None, or a callable (the method, the path) -> the
        codes the site answers with before the route runs (the admin
        site's guard and operator login).
    """
    paths = {}
    for r in routes:
        declared = r.declaration
        if not declared.documented:
            continue
        path = "/" + "/".join(s if p is None else "{" + p[0] + "}"
                              for s, p in zip(r.segments, r.params))
        op = {"operationId": r.name, "summary": declared.summary, "responses": {}}
        parameters = [
            {"name": name, "in": "path", "required": True,
             "schema": dict(_INT_PARAM if kind == "int" else _STR_PARAM)}
            for name, kind in filter(None, r.params)
        ]
        for name, prop in (declared.query or {}).items():
            parameters.append({"name": name, "in": "query", "required": prop.required,
                               "schema": prop.openapi()})
        if parameters:
            op["parameters"] = parameters
        if r.auth:
            op["security"] = [{"bearer": []}]
        if r.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": objectSchema(r.body)}},
            }
        success = {"description": "success"}
        if declared.response is not None:
            success["content"] = {"application/json": {
                "schema": objectSchema(declared.response, closed=False)}}
        op["responses"][str(declared.status)] = success
        byStatus = {}
        codes = r.commonErrors() + list(declared.errors)
        if siteErrors is not None:
            codes = [c for c in siteErrors(r.method, r.path) if c not in codes] + codes
        for code in codes:
            byStatus.setdefault(errors.status(code), []).append(code)
        notes = declared.responses or {}
        for status in sorted(set(byStatus) | set(notes)):
            described = [f"`{c}`: {errors.meaning(c)}" for c in byStatus.get(status, ())]
            if status in notes:
                described.append(notes[status])
            response = {"description": "; ".join(described)}
            if status in byStatus:
                response["content"] = {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Error"}}}
            op["responses"][str(status)] = response
        paths.setdefault(path, {})[r.method.lower()] = op
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "bearerFormat": "JWT"}},
            "schemas": {"Error": errorSchema(errors.codes)},
        },
    }


def errorSchema(codes):
    """@return: the OpenAPI schema of the error body, its code one of C{codes}."""
    return {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "enum": sorted(codes)},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                "retry_after": {"type": "integer",
                                "description": "seconds to wait, as the Retry-After header"},
            },
        }},
    }


__all__ = ["route", "Route", "Declaration", "routesOf", "Call", "clientIP", "textProblem", "Router",
           "mountRouter", "openapiDocument", "errorSchema"]
