"""Operator login on an admin site listening off loopback: every request but the probes, the console's static files and the login itself carries an operator's access token (bearer or cookie)."""

import attrs
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.resource import Resource, getChildForRequest
from twisted.web.server import NOT_DONE_YET

from mmoshard.store.errors import StoreError
from mmoshard.tokens import InvalidToken
from mmoshard.web.errors import ADMIN_SITE_ERRORS
from mmoshard.web.json import HTTPError, writeJSON

# The cookie the admin site's login sets (HttpOnly, SameSite=Strict): the
# operator console's pages send it with every request they make.
COOKIE = b"mmoshard_operator"
# Paths served without a token whatever the method: the probes an
# orchestrator and Prometheus call, the login, and the static files of the
# console (which shows its login form when the API answers 401).
OPEN_PATHS = frozenset({(b"healthz",), (b"readyz",), (b"metrics",), (b"operator", b"session")})
OPEN_FOLDERS = frozenset({b"console", b"lib"})
# Where a request's operator claims are kept for the routes (L{operatorOf}).
_CLAIMS = "mmoshard_operator_claims"
OPERATOR_FLAG = "operator"


@attrs.frozen(repr=False)
class OperatorToken:
    """An operator's login to the admin site: what L{mmoshard.interfaces.IOperatorLogin} gives."""

    account_id: int
    username: str
    access_token: str
    expires_in: float

    def __repr__(self):
        # Tokens never reach a log line through a repr.
        return f"OperatorToken({self.account_id}, {self.username!r}, <token>)"


def operatorOf(request):
    """
    @return: the L{mmoshard.tokens.Claims} of the operator who sent
        C{request} to an admin site that requires a login, or None (an
        admin site on loopback: whoever reaches it is trusted).
    """
    return getattr(request, _CLAIMS, None)


def tokenOf(request):
    """@return: the access token C{request} carries (Authorization: Bearer, else the cookie), or None."""
    header = request.getHeader(b"authorization") or b""
    scheme, _, token = header.partition(b" ")
    if scheme.lower() == b"bearer" and token.strip():
        return token.strip().decode("ascii", "replace")
    cookie = request.getCookie(COOKIE)
    if cookie:
        return cookie.decode("ascii", "replace")
    return None


def isOpen(request):
    """@return: whether C{request}'s path is served without a token."""
    path = tuple(s for s in request.prepath + request.postpath)
    while len(path) > 1 and path[-1] == b"":
        path = path[:-1]
    return path in OPEN_PATHS or (bool(path) and path[0] in OPEN_FOLDERS)


class OperatorAuth:
    """
    Checks that a request to the admin site comes from an operator: an
    access token (from any auth node of the shard) carrying the
    C{operator} flag, unexpired and unrevoked, checked by the node's
    L{mmoshard.interfaces.ITokenVerifier}.
    """

    log = Logger()

    def __init__(self, verifier, errors=ADMIN_SITE_ERRORS):
        self.verifier = verifier
        self.errors = errors

    async def check(self, request):
        """
        @return: the operator's claims.
        @raise HTTPError: 401 C{auth.invalid_token} (no token, or a bad,
            expired or revoked one), 403 C{auth.operator_required} (a
            player's token), 503 C{service.unavailable} (revocations cannot
            be known now: it fails closed).
        """
        token = tokenOf(request)
        if token is None:
            raise self.errors.error(
                "auth.invalid_token", "this admin site needs an operator login "
                "(POST /operator/session, or Authorization: Bearer)",
                headers={"WWW-Authenticate": "Bearer"})
        try:
            claims = await self.verifier.verify(token)
        except InvalidToken as e:
            raise self.errors.error("auth.invalid_token", f"access token {e.reason}",
                                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        except StoreError:
            raise self.errors.unavailable("token revocations cannot be checked now")
        if not claims.has(OPERATOR_FLAG):
            raise self.errors.error("auth.operator_required")
        return claims


def openPath(path):
    """@return: whether the route path C{path} ("/healthz", "/accounts/{id}") is served without a token."""
    segments = tuple(s.encode() for s in path.strip("/").split("/"))
    return segments in OPEN_PATHS or segments[0] in OPEN_FOLDERS


def renderInto(resource, request):
    """
    Render C{resource} for C{request} and finish it, as twisted.web's
    C{Request.render} does, for a request whose rendering was put off.
    """
    body = resource.render(request)
    if body is NOT_DONE_YET:
        return
    if request.method == b"HEAD":
        if body:
            request.setHeader(b"content-length", b"%d" % len(body))
        request.write(b"")
    else:
        request.setHeader(b"content-length", b"%d" % len(body))
        request.write(body)
    request.finish()


class Verifying(Resource):
    """
    What an admin site requiring a login serves first: it checks the
    request's operator token, then goes on down the site's tree from
    C{parent} (the child C{path}) as the request was going, with the
    claims on the request; or answers the typed error.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, auth, parent, path):
        super().__init__()
        self.auth = auth
        self.parent = parent
        self.path = path

    def render(self, request):
        d = Deferred.fromCoroutine(self.auth.check(request))
        d.addCallbacks(self._passed, self._refused, callbackArgs=(request,),
                       errbackArgs=(request,))
        d.addErrback(self._broken, request)
        return NOT_DONE_YET

    def _passed(self, claims, request):
        setattr(request, _CLAIMS, claims)
        child = self.parent.childFor(self.path, request)
        renderInto(getChildForRequest(child, request), request)

    def _refused(self, failure, request):
        failure.trap(HTTPError)
        e = failure.value
        writeJSON(request, e.status, e.body(), e.headers)

    def _broken(self, failure, request):
        self.log.failure("admin site: serving {path} after the operator check",
                         failure=failure, path=request.uri[:200].decode("ascii", "replace"))
        if not request.finished and not request.startedWriting:
            e = self.auth.errors.error("internal", "internal server error")
            writeJSON(request, e.status, e.body())


__all__ = ["OperatorToken", "OperatorAuth", "Verifying", "operatorOf", "tokenOf", "isOpen", "openPath", "renderInto",
           "COOKIE", "OPEN_PATHS", "OPEN_FOLDERS", "OPERATOR_FLAG"]
