"""The admin routes of the whole shard the operator console reads and acts through: overview, spaces, the audit trail, maintenance windows, and the operator's login."""

import attrs
from twisted.logger import Logger

from mmoshard.audit import actorOf, recentEvents, recordEvent
from mmoshard.gate import Maintenance, closeOperatorWindow, openOperatorWindow
from mmoshard.interfaces import IOperatorLogin
from mmoshard.tokens import InvalidToken
from mmoshard.web.errors import ErrorCodes
from mmoshard.web.operators import COOKIE, OPERATOR_FLAG, operatorOf, tokenOf
from mmoshard.web.schema import Prop
from mmoshard.web.routes import route
from mmoshard.wire.broadcast import Broadcast, broadcast
from mmoshard.wire.messages import MAINTENANCE_NOTICE

SHARD_ERRORS = ErrorCodes({
    "request.bad_parameter": (400, "a query parameter is out of range"),
    "operator.login_unavailable": (404, "no auth role on this node to check passwords: log "
                                        "in on an auth node's public site and send the token"),
    "auth.invalid_credentials": (401, "wrong username or password"),
    "auth.operator_required": (403, "the account is not an operator"),
    "account.banned": (403, "the account is banned"),
    "auth.locked": (429, "too many failed logins for this username; see Retry-After"),
    "auth.rate_limited": (429, "too many requests from this address; see Retry-After"),
    "auth.busy": (503, "password hashing is saturated; retry after Retry-After"),
})
# The longest maintenance window an operator opens by hand: a week.
MAX_WINDOW_MINUTES = 7 * 24 * 60
_LOGIN_ERRORS = ("operator.login_unavailable", "auth.invalid_credentials",
                 "auth.operator_required", "account.banned", "auth.locked", "auth.rate_limited",
                 "auth.busy")


def _intArg(call, name, default, low, high):
    raw = call.arg(name.encode())
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise SHARD_ERRORS.error("request.bad_parameter", f"{name} must be in [{low}, {high}]")
    return int(raw)


def _window(m):
    return None if m is None else m.toJSON()


class ShardAdminAPI:
    """
    The console's view of the shard from this node: the directory, every
    world node's spaces (through the volatile store), the audit trail, and
    the actions no role owns (maintenance windows); with the operator's
    login to an admin site off loopback.
    """

    log = Logger()

    def __init__(self, node, sql, volatile, directory, gate, verifier, spaces, loginRequired):
        """
        @param node: the L{mmoshard.node.Node} (its id, roles, clock, registry).
        @param gate: the node's L{mmoshard.gate.StoreGate}.
        @param spaces: the L{mmoshard.web.spaces.SpaceViews}.
        @param loginRequired: whether the admin site listens off loopback.
        """
        self.node = node
        self.sql = sql
        self.volatile = volatile
        self.directory = directory
        self.gate = gate
        self.verifier = verifier
        self.spaces = spaces
        self.loginRequired = loginRequired
        self.clock = node.reactor

    # --- views ------------------------------------------------------------------

    @route("GET", "/shard/overview", "The shard at a glance: every node (roles, load, "
           "uptime, sessions), the CCU, the maintenance window open now", auth=False)
    async def overview(self, call):
        entries = await self.directory.list()
        now = self.clock.seconds()
        processes, players, sessions = [], 0, 0
        for e in entries:
            processes.append(dict(e.toJSON(), uptime_s=round(now - e.started_at, 1),
                                  age_s=round(now - e.updated_at, 1)))
            if "world" in e.roles:
                players += int(e.load.get("players", 0))
            counts = e.info.get("sessions")
            if isinstance(counts, dict):
                sessions += int(counts.get("live", 0))
        return 200, {
            "node_id": self.node.nodeId, "now": now, "ccu": players, "sessions": sessions,
            "processes": processes, "maintenance": _window(self.gate.maintenance()),
        }

    @route("GET", "/shard/spaces", "Every world node's spaces (players, NPCs, tick times); "
           "with zone, that space's map and entities", auth=False,
           query={"zone": Prop("string", required=False, description="a zone or instance id")})
    async def spacesView(self, call):
        raw = call.arg(b"zone")
        answers, silent = await self.spaces.ask(raw.decode() if raw else None)
        return 200, {"nodes": [a.toJSON() for a in answers], "silent": silent,
                     "now": self.clock.seconds()}

    @route("GET", "/shard/events", "The latest rows of the account audit trail, newest first",
           auth=False, errors=("request.bad_parameter",),
           query={"limit": Prop("integer", required=False, default=50),
                  "account": Prop("integer", required=False, description="one account's only")})
    async def events(self, call):
        limit = _intArg(call, "limit", 50, 1, 500)
        account = _intArg(call, "account", None, 0, 10 ** 18)
        rows = await recentEvents(self.sql, limit, account)
        return 200, {"events": [r.toJSON() for r in rows]}

    # --- maintenance --------------------------------------------------------------

    @route("GET", "/shard/maintenance", "The maintenance window open now, the operator's, and "
           "the release's windows", auth=False)
    async def maintenance(self, call):
        await self.gate.refresh()
        rules = self.gate.rules
        return 200, {"active": _window(self.gate.maintenance()),
                     "operator_window": _window(self.gate.operatorWindow),
                     "windows": [m.toJSON() for m in rules.maintenance],
                     "now": self.clock.seconds()}

    @route("POST", "/shard/maintenance/open", "Open a maintenance window now: new logins and "
           "session handshakes of non-operators are refused, every session is told",
           auth=False, body={
               "message": Prop("string", minLength=1, maxLength=200,
                               description="what players are told"),
               "minutes": Prop("number", minimum=1, maximum=MAX_WINDOW_MINUTES,
                               description="how long it lasts")})
    async def openMaintenance(self, call):
        now = self.clock.seconds()
        body = call.body
        window = Maintenance(now, now + body["minutes"] * 60.0, body["message"])
        actor = actorOf(operatorOf(call.request))
        await openOperatorWindow(self.volatile, window, now)
        await recordEvent(self.sql, None, "maintenance_open", call.ip, now,
                          f"until {window.end:.0f} by {actor}: {window.message}")
        await broadcast(self.volatile, Broadcast(MAINTENANCE_NOTICE, {
            "state": "open", "message": window.message, "start": window.start,
            "end": window.end, "retry_after": window.retryAfter(now)}))
        await self.gate.refresh()
        self.log.warn("maintenance window opened until {until:.0f} by {actor} from {ip}: "
                      "{message}", until=window.end, actor=actor, ip=call.ip,
                      message=window.message)
        return 200, {"window": window.toJSON()}

    @route("POST", "/shard/maintenance/close", "End the operator's maintenance window now "
           "(a release's windows stay); every session is told", auth=False, body={})
    async def closeMaintenance(self, call):
        now = self.clock.seconds()
        actor = actorOf(operatorOf(call.request))
        closed = await closeOperatorWindow(self.volatile)
        if closed:
            await recordEvent(self.sql, None, "maintenance_close", call.ip, now, f"by {actor}")
            await broadcast(self.volatile, Broadcast(MAINTENANCE_NOTICE, {
                "state": "closed", "message": "the maintenance is over", "start": now,
                "end": now}))
            self.log.warn("maintenance window closed by {actor} from {ip}", actor=actor,
                          ip=call.ip)
        await self.gate.refresh()
        return 200, {"closed": closed, "active": _window(self.gate.maintenance())}

    # --- the operator's login -------------------------------------------------------

    async def _claims(self, request):
        """@return: the operator claims of C{request}'s token, or None."""
        token = tokenOf(request)
        if token is None:
            return None
        try:
            claims = await self.verifier.verify(token)
        except InvalidToken:
            return None
        return claims if claims.has(OPERATOR_FLAG) else None

    @route("GET", "/operator/session", "Whether this admin site needs a login, and who is "
           "logged in", auth=False)
    async def whoami(self, call):
        claims = await self._claims(call.request)
        return 200, {
            "login_required": self.loginRequired,
            "login_available": self.node.query(IOperatorLogin) is not None,
            "node_id": self.node.nodeId,
            "operator": None if claims is None else {
                "account_id": claims.account_id, "username": claims.username,
                "expires_at": claims.exp},
        }

    @route("POST", "/operator/session", "Log in as an operator: a token, also set as an "
           "HttpOnly cookie for the console", auth=False, errors=_LOGIN_ERRORS,
           body={"username": Prop("string", minLength=1, maxLength=64),
                 "password": Prop("string", minLength=1, maxLength=256)})
    async def login(self, call):
        logins = self.node.query(IOperatorLogin)
        if logins is None:
            raise SHARD_ERRORS.error("operator.login_unavailable")
        userAgent = (call.request.getHeader("user-agent") or "")[:255]
        token = await logins.login(call.body["username"], call.body["password"], call.ip,
                                   userAgent)
        return 200, attrs.asdict(token), {"Set-Cookie": self._cookie(
            call.request, token.access_token, int(token.expires_in))}

    @route("DELETE", "/operator/session", "Log out: end the operator's login, drop the cookie",
           auth=False)
    async def logout(self, call):
        claims = await self._claims(call.request)
        logins = self.node.query(IOperatorLogin)
        if claims is not None and logins is not None:
            await logins.logout(claims, call.ip)
        return 200, {"ended": claims is not None and logins is not None}, {
            "Set-Cookie": self._cookie(call.request, "", 0)}

    def _cookie(self, request, value, maxAge):
        cookie = (f"{COOKIE.decode()}={value}; Path=/; HttpOnly; SameSite=Strict; "
                  f"Max-Age={maxAge}")
        return cookie + "; Secure" if request.isSecure() else cookie


__all__ = ["ShardAdminAPI", "SHARD_ERRORS", "MAX_WINDOW_MINUTES"]
