"""The admin site's guard: every request must name the admin address in Host (DNS rebinding); every state-changing one must come from no other origin and carry JSON (cross-site requests)."""

from time import monotonic

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from mmoshard.logthrottle import LogThrottle
from mmoshard.web.errors import ADMIN_SITE_ERRORS
from mmoshard.web.json import JSONRoot, writeJSON
from mmoshard.web.operators import Verifying, isOpen
from mmoshard.web.routes import Router

# The names the admin address goes by: [listen] admin must be one of these
# interfaces (config.py refuses any other), reached at its bound port.
LOOPBACK_NAMES = frozenset({b"127.0.0.1", b"localhost", b"[::1]"})
SAFE_METHODS = frozenset({b"GET", b"HEAD", b"OPTIONS"})
# The methods a route may change state with (@route takes no others): the
# origin and JSON checks are for these.  Any other method (TRACE, PROPFIND)
# reaches no handler: the router answers it 405 or 404, as on every site.
CHANGING_METHODS = frozenset({b"POST", b"PUT", b"PATCH", b"DELETE"})
# Sec-Fetch-Site values of a request the admin site's own pages (or the
# user, typing the address) made; "same-site" is another port of
# localhost, "cross-site" any other page.
_OWN_FETCH = frozenset({b"same-origin", b"none"})
_JSON = b"application/json"


class AdminGuard:
    """
    Decides, before any route runs, whether a request may reach the admin
    site.  A web page in a browser on the operator's machine can reach
    127.0.0.1: it can send simple requests cross-site (a form's text/plain
    POST, whose answer it cannot read), and, once it has rebound its own
    name to 127.0.0.1, any request as same-origin, reading the answers.
    So every request's Host must name the admin address (a rebound page
    sends its own name), and every request other than GET, HEAD and
    OPTIONS must carry no foreign Origin or Sec-Fetch-Site and a JSON body
    (which a browser sends cross-site only after asking, and the admin site
    never allows).  Clients that are not browsers (curl, the mmoshard
    commands) send no Origin and pass.
    """

    def __init__(self, names=LOOPBACK_NAMES, errors=ADMIN_SITE_ERRORS):
        """
        @param names: the names the admin address goes by (C{Host}), or
            None for an admin site off loopback, which needs an operator
            login instead (L{mmoshard.web.operators}): a page rebinding its
            own name gets no operator's token.
        """
        self.names = names
        self.errors = errors
        # Off loopback a TLS proxy may front the site: its pages' origin
        # is https://.
        self.schemes = (b"http://",) if names is not None else (b"http://", b"https://")

    def refusal(self, request):
        """@return: the L{HTTPError} to answer C{request} with, or None to serve it."""
        headers = request.requestHeaders
        hosts = headers.getRawHeaders(b"host")
        local = request.getHost()
        # A UNIX socket's clients are local processes, never a browser.
        if self.names is not None and isinstance(local, (IPv4Address, IPv6Address)):
            if hosts is None or len(hosts) != 1 or not self.namesAdmin(hosts[0], local.port):
                return self.errors.error("request.bad_host")
        if request.method not in CHANGING_METHODS:
            return None
        origins = headers.getRawHeaders(b"origin")
        if origins is not None and not (
            len(origins) == 1 and hosts
            and origins[0].strip().lower() in
            [scheme + hosts[-1].strip().lower() for scheme in self.schemes]
        ):
            return self.errors.error("request.forbidden_origin")
        fetch = headers.getRawHeaders(b"sec-fetch-site")
        if fetch is not None and not all(v.strip().lower() in _OWN_FETCH for v in fetch):
            return self.errors.error("request.forbidden_origin")
        kind = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
        if kind != _JSON:
            return self.errors.error("request.unsupported_media_type", "send application/json")
        return None

    def namesAdmin(self, host, port):
        """@return: whether Host header C{host} names one of the admin names at C{port}."""
        host = host.strip().lower()
        if host.startswith(b"["):
            name, bracket, rest = host.partition(b"]")
            name += bracket
            if rest and not rest.startswith(b":"):
                return False
            given = rest[1:]
        else:
            name, colon, given = host.partition(b":")
            if colon and not given:
                return False
        if name not in self.names:
            return False
        if not given:
            return port == 80
        return given.isdigit() and len(given) <= 5 and int(given) == port

    def codesFor(self, method):
        """@return: the codes the guard may answer a request of C{method} (a str) with."""
        host = ["request.bad_host"] if self.names is not None else []
        if method.encode("ascii") not in CHANGING_METHODS:
            return host
        return host + ["request.forbidden_origin", "request.unsupported_media_type"]


def _text(value):
    """@return: a header's value for a log line (cut short; "-" when absent)."""
    return "-" if value is None else value[:200].decode("latin-1")


class _Refused(Resource):
    """The answer to a request the guard refused."""

    isLeaf = True

    def __init__(self, error):
        super().__init__()
        self.error = error

    def render(self, request):
        e = self.error
        writeJSON(request, e.status, e.body(), e.headers)
        return NOT_DONE_YET


class GuardedRoot(JSONRoot):
    """
    The admin site's root: every request passes its L{AdminGuard} before
    any resource below is looked up, whichever role mounted it.
    """

    log = Logger()

    def __init__(self, guard, logThrottle=None, operators=None):
        """
        @param logThrottle: the L{LogThrottle} of refusals (one line per
            client and code a minute, then a count: a page cannot fill the
            log); by default one of its own on the monotonic clock.
        @param operators: None (loopback: no login), or the
            L{OperatorAuth} every request but the open ones passes after
            the guard.
        """
        super().__init__()
        self.guard = guard
        self.logThrottle = logThrottle or LogThrottle(monotonic)
        self.operators = operators

    def childFor(self, path, request):
        """@return: the child C{path} of the root, past every check (L{Verifying})."""
        return super().getChildWithDefault(path, request)

    def _routed(self, request):
        """@return: whether a router mounted here takes the request's method at its path."""
        path = request.prepath + request.postpath
        node = self
        for segment in path:
            node = getattr(node, "children", {}).get(segment)
            if node is None:
                return False
            if isinstance(node, Router):
                return node.takes(request.method, path)
        return False

    def _refused(self, request):
        e = self.guard.refusal(request)
        if e is None:
            return None
        if e.code != "request.bad_host" and not self._routed(request):
            # No route takes it, so it changes nothing: the router answers
            # 405 (or the site 404), as on every site.
            return None
        # One event per refusal, the first per client and code a minute
        # (then a count): an operator sees which page tried, and a page
        # repeating it cannot fill the log.
        ip = getattr(request.getClientAddress(), "host", "unix")
        if self.logThrottle.allow(e.code, ip):
            self.log.warn(
                "admin site refused {method} {path} from {ip}: {code} "
                "(Host {host}, Origin {origin}, Sec-Fetch-Site {fetch})",
                method=request.method.decode("ascii", "replace"),
                path=request.uri.decode("ascii", "replace")[:200],
                ip=ip, code=e.code, host=_text(request.getHeader(b"host")),
                origin=_text(request.getHeader(b"origin")),
                fetch=_text(request.getHeader(b"sec-fetch-site")),
            )
        return _Refused(e)

    def getChildWithDefault(self, path, request):
        refused = self._refused(request)
        if refused is not None:
            return refused
        if self.operators is not None and not isOpen(request):
            return Verifying(self.operators, self, path)
        return super().getChildWithDefault(path, request)

    def render(self, request):
        refused = self._refused(request)
        if refused is not None:
            return refused.render(request)
        return super().render(request)


__all__ = ["AdminGuard", "GuardedRoot", "LOOPBACK_NAMES", "SAFE_METHODS", "CHANGING_METHODS"]
