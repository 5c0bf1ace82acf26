"""A route table for JSON REST: path templates, auth, body schemas, and the OpenAPI it implies."""

from inspect import iscoroutine

import attrs
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web.server import NOT_DONE_YET

from mmoshard.auth.errors import ERRORS, error, retryAfter
from mmoshard.auth.schema import objectSchema, validate
from mmoshard.store.errors import SQLUnavailable, VolatileUnavailable
from mmoshard.web.json import HTTPError, JSONResource, readJSON, writeJSON


@attrs.frozen
class Route:
    """
    One endpoint: C{handler} names a method of the API object taking a
    L{Call} and returning C{(status, body)} or C{(status, body, headers)}:
    an C{async def} method, or, where a coroutine's cost shows (a hot
    route), a plain one returning that tuple or a Deferred firing with it.
    """

    method: str
    path: str  # "/v1/characters/{id}": {name} segments are integer ids
    handler: str
    summary: str
    auth: bool = True
    body: dict | None = None  # name -> mmoshard.auth.schema.Prop
    status: int = 200
    errors: tuple = ()  # codes this endpoint answers besides the common ones
    response: dict | None = None  # name -> Prop of the success body (documentation)

    # Split once: routes are matched on every request.
    segments: tuple = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self):
        object.__setattr__(self, "segments", tuple(self.path.strip("/").split("/")))

    @property
    def static(self):
        """True when the path has no C{{name}} parameter."""
        return not any(s.startswith("{") for s in self.segments)

    def match(self, segments):
        """@return: the path parameters when C{segments} match, else None."""
        mine = self.segments
        if len(mine) != len(segments):
            return None
        params = {}
        for want, got in zip(mine, segments):
            if want.startswith("{"):
                if not got.isdigit() or len(got) > 18:
                    return None
                params[want[1:-1]] = int(got)
            elif want != got:
                return None
        return params

    def commonErrors(self):
        codes = []
        if self.body is not None:
            codes += ["request.malformed_json", "request.too_large", "request.invalid"]
        if self.auth:
            codes.append("auth.invalid_token")
        return codes + ["service.unavailable", "internal"]


class Call:
    """One request as a handler sees it."""

    __slots__ = ("request", "params", "body", "claims", "_trustForwarded", "_ip")

    def __init__(self, request, params, trustForwarded=False):
        self.request = request
        self.params = params
        self.body = None
        self.claims = None  # mmoshard.tokens.Claims when the route needs auth
        self._trustForwarded = trustForwarded
        self._ip = None

    @property
    def ip(self):
        """The client's address (L{clientIP}), found when first asked for."""
        if self._ip is None:
            self._ip = clientIP(self.request, self._trustForwarded)
        return self._ip


def clientIP(request, trustForwarded):
    """The client's address; the last X-Forwarded-For hop when behind our proxy."""
    if trustForwarded:
        forwarded = request.getHeader("x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[-1].strip()[:45]
    return getattr(request.getClientAddress(), "host", "unknown")


class Router(JSONResource):
    """
    Serves every route of C{routes} below wherever it is mounted (it
    matches the request's whole path), dispatching to C{api}'s handlers.
    """

    def __init__(self, api, routes, maxBody, trustForwarded=False):
        super().__init__()
        self.api = api
        self.routes = tuple(routes)
        self.maxBody = maxBody
        self.trustForwarded = trustForwarded
        # Paths without parameters are found by a dict lookup (the exact
        # method and path as they arrive, then decoded); the few with
        # parameters are matched one by one.
        self._exact = {}
        self._static = {}
        for r in self.routes:
            if r.static:
                self._static.setdefault(r.segments, []).append(r)
                key = (r.method.encode("ascii"), tuple(s.encode() for s in r.segments))
                self._exact.setdefault(key, r)
        self._dynamic = tuple(r for r in self.routes if not r.static)

    def render(self, request):
        route = self._exact.get((request.method, tuple(request.prepath + request.postpath)))
        if route is not None:
            return self._start(request, route, {})
        segments = [s.decode("utf-8", "replace") for s in request.prepath + request.postpath]
        while len(segments) > 1 and segments[-1] == "":
            segments.pop()
        matched = [(r, {}) for r in self._static.get(tuple(segments), ())]
        if self._dynamic:
            matched += [(r, p) for r in self._dynamic if (p := r.match(segments)) is not None]
        method = request.method.decode("ascii", "replace")
        chosen = [(r, p) for r, p in matched if r.method == method]
        if not chosen and method == "HEAD":
            chosen = [(r, p) for r, p in matched if r.method == "GET"]
        if not chosen:
            if matched:
                request.setHeader(b"allow", ", ".join(sorted({r.method for r, _ in matched})))
                e = error("request.method_not_allowed")
            else:
                e = error("request.not_found")
            writeJSON(request, e.status, e.body())
            return NOT_DONE_YET
        route, params = chosen[0]
        return self._start(request, route, params)

    def _start(self, request, route, params):
        """
        Run C{route}'s handler for C{request} and answer with what it
        returns or raises.  @return: C{NOT_DONE_YET}, for C{render}.
        """
        call = Call(request, params, self.trustForwarded)
        if route.auth:
            # The token check is a coroutine (the verifier may ask the store).
            d = Deferred.fromCoroutine(self._authenticated(call, route))
        else:
            # Without it everything up to the handler's answer runs here, with
            # no coroutine or Deferred of our own: on a refresh those hops
            # cost more than the schema check (measured under callgrind).
            try:
                if route.body is not None:
                    call.body = self._body(request, route)
                d = getattr(self.api, route.handler)(call)
            except Exception:
                self._failed(Failure(), request, route, call)
                return NOT_DONE_YET
            if iscoroutine(d):
                d = Deferred.fromCoroutine(d)
            elif not isinstance(d, Deferred):
                self._answer(d, request)
                return NOT_DONE_YET
        d.addCallbacks(self._answer, self._failed, callbackArgs=(request,),
                       errbackArgs=(request, route, call))
        return NOT_DONE_YET

    async def _authenticated(self, call, route):
        call.claims = await self.api.authenticate(call.request)
        if route.body is not None:
            call.body = self._body(call.request, route)
        result = getattr(self.api, route.handler)(call)
        if iscoroutine(result) or isinstance(result, Deferred):
            # A plain handler (the Route docstring allows one) returns its answer.
            result = await result
        return result

    def _body(self, request, route):
        """@return: the request's body, read and checked against C{route}'s schema."""
        try:
            data = readJSON(request, self.maxBody)
        except HTTPError as e:
            if e.code == "request.too_large":
                raise error("request.too_large", e.message)
            raise
        return validate(data, route.body)

    def _failed(self, failure, request, route, call):
        if failure.check(SQLUnavailable, VolatileUnavailable):
            self.log.warn(
                "{method} {path} from {ip}: store unavailable: {why}",
                method=route.method, path=route.path, ip=call.ip, why=failure.value,
            )
            failure = Failure(error("service.unavailable", headers=retryAfter(1)))
        self._fail(failure, request)


def _errorResponse(codes):
    return {
        "description": "; ".join(f"`{c}`: {ERRORS[c][1]}" for c in codes),
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def openapiDocument(routes, title, version, extra=()):
    """
    @return: the OpenAPI 3 document describing C{routes}, with every error
        code each endpoint may answer, grouped by status.
    @param extra: (method, path, summary) of plain endpoints to list too.
    """
    paths = {}
    for r in routes:
        op = {"operationId": r.handler, "summary": r.summary, "responses": {}}
        names = [s[1:-1] for s in r.segments if s.startswith("{")]
        if names:
            op["parameters"] = [
                {"name": n, "in": "path", "required": True, "schema": {"type": "integer"}}
                for n in names
            ]
        if r.auth:
            op["security"] = [{"bearer": []}]
        if r.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": objectSchema(r.body)}},
            }
        success = {"description": "success"}
        if r.response is not None:
            success["content"] = {"application/json": {
                "schema": objectSchema(r.response, closed=False)}}
        op["responses"][str(r.status)] = success
        byStatus = {}
        for code in r.commonErrors() + list(r.errors):
            byStatus.setdefault(ERRORS[code][0], []).append(code)
        for status, codes in sorted(byStatus.items()):
            op["responses"][str(status)] = _errorResponse(codes)
        paths.setdefault(r.path, {})[r.method.lower()] = op
    for method, path, summary in extra:
        paths.setdefault(path, {})[method.lower()] = {
            "summary": summary, "responses": {"200": {"description": "success (JSON)"}},
        }
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "bearerFormat": "JWT"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": {"type": "string", "enum": sorted(ERRORS)},
                            "message": {"type": "string"},
                            "fields": {"type": "object",
                                       "additionalProperties": {"type": "string"}},
                        },
                    }},
                }
            },
        },
    }
