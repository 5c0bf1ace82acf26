"""The auth REST API under /v1: accounts, sessions (logins), characters, each route declared on its handler."""

import json

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from mmoshard import __version__
from mmoshard.auth.errors import AUTH_ERRORS, error, retryAfter
from mmoshard.auth.logins import endLoginRecords
from mmoshard.auth.passwords import HasherBusy
from mmoshard.auth.store import RefreshResult
from mmoshard.web.json import HTTPError
from mmoshard.web.routes import openapiDocument, route, routesOf
from mmoshard.web.schema import Prop
from mmoshard.auth.revocation import endLogins
from mmoshard.tokens import InvalidToken, jsonNumber, jsonString, newLoginId

# Refused whatever the length policy: the top of every breached-password list.
COMMON_PASSWORDS = frozenset("""
password password1 password12 password123 passw0rd 1234567890 123456789 12345678
qwertyuiop qwerty123 1q2w3e4r5t iloveyou123 letmein123 welcome123 admin12345
abc1234567 football123 monkey1234 dragon1234 sunshine12 princess12 trustno1234
""".split())

# The fewest different characters a new password holds.
MIN_DISTINCT = 4

# The roles a game client talks to, listed in a login's directory (docs/auth.md).
DIRECTORY_ROLES = ("chat", "world", "matchmaking", "version")
# How many refresh tokens issued by refreshes here are remembered until they
# come back (L{AuthAPI.refresh}); some 4 MB.
ISSUED_REMEMBERED = 16384
# Seconds after an account's creation during which registering it again with
# the same username, email and password answers it (a retry), not 409.
REGISTER_RETRY_WINDOW = 600.0
# The largest generation a refresh token's form admits (15 digits).
_MAX_GEN = 10 ** 15 - 1


def _out(**types):
    """A documented success body: name -> OpenAPI type (\"?\" suffix: nullable)."""
    return {name: Prop(t.rstrip("?"), nullable=t.endswith("?")) for name, t in types.items()}


# The answer of a login (with "directory" added) and of a refresh, in the
# order and spelling of TOKENS below.
_TOKENS_JSON = ('{"account_id":%d,"username":%s,"session_id":%s,"access_token":"%s",'
                '"token_type":"Bearer","expires_in":%s,"refresh_token":"%s",'
                '"refresh_expires_in":%s,"server_time":%s}')
TOKENS = dict(account_id="integer", username="string", session_id="string",
              access_token="string", token_type="string", expires_in="number",
              refresh_token="string", refresh_expires_in="number", server_time="number")
CHARACTER = dict(id="integer", name="string", **{"class": "string"}, level="integer",
                 exp="integer", zone="string", position="object", created_at="number")


def _username(api):
    cfg = api.cfg
    return Prop("string", minLength=cfg.username_min, maxLength=cfg.username_max,
                pattern=r"[A-Za-z0-9_]+", description="letters, digits and _; unique ignoring case")


def _password(api):
    cfg = api.cfg
    return Prop("string", minLength=cfg.password_min, maxLength=cfg.password_max,
                description=f"{cfg.password_min} to {cfg.password_max} characters, at least "
                f"{MIN_DISTINCT} different ones; not containing the username (ignoring case); "
                f"not one of the {len(COMMON_PASSWORDS)} most common passwords "
                "(request.invalid names the rule broken)")


def _anyPassword(api):
    return Prop("string", minLength=1, maxLength=api.cfg.password_max)


def _registerBody(api):
    return {"username": _username(api), "password": _password(api),
            "email": Prop("string", required=False, nullable=True, maxLength=254,
                          pattern=r"[^@\s]+@[^@\s]+\.[^@\s]+")}


def _passwordBody(api):
    return {"current_password": _anyPassword(api), "new_password": _password(api)}


def _loginBody(api):
    return {"username": Prop("string", minLength=1, maxLength=64), "password": _anyPassword(api)}


def _characterBody(api):
    cfg = api.cfg
    return {"name": Prop("string", minLength=cfg.character_name_min,
                         maxLength=cfg.character_name_max, pattern=r"[A-Za-z]+",
                         description="letters only; unique ignoring case"),
            "class": Prop("string", enum=tuple(api.service.gameData.classes),
                          description="a class id from GET /v1/classes")}


def passwordProblem(password, username):
    """@return: why C{password} is refused (beyond its length), or None."""
    lowered = password.lower()
    if username and username.lower() in lowered:
        return "must not contain the username"
    if lowered in COMMON_PASSWORDS:
        return "is too common"
    if len(set(password)) < MIN_DISTINCT:
        return f"needs at least {MIN_DISTINCT} different characters"
    return None


class AuthAPI:
    """
    The public routes of the auth role and their handlers; C{service} is
    the L{AuthService} holding the stores, hasher, limits, clock and metrics.
    """

    log = Logger()

    def __init__(self, service):
        self.service = service
        self.cfg = service.config
        self.routes = routesOf(self)
        # The lifetimes as token answers spell them.
        self._accessTTL = jsonNumber(self.cfg.access_ttl)
        self._refreshTTL = jsonNumber(self.cfg.refresh_ttl)
        # Refresh tokens a refresh here issued and nobody has presented yet
        # -> (sid, gen).  A login's next refresh presents the token its last
        # one made, mostly to this process; finding it spares checking its
        # MAC, which is the one our key makes for (sid, gen) as it was made
        # here.  The store still decides whether it is current.  Cleared
        # when full: a token not found is checked as any other.
        self._issued = {}

    def forgetIssued(self):
        """Forget the refresh tokens issued here (the key may have changed)."""
        self._issued = {}

    def openapi(self):
        """@return: the OpenAPI document of these routes."""
        return openapiDocument(self.routes, "mmoshard auth", __version__, AUTH_ERRORS)

    def now(self):
        return self.service.clock.seconds()

    async def authenticate(self, request):
        header = request.getHeader("authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise error("auth.invalid_token", "an Authorization: Bearer token is required",
                        headers={"WWW-Authenticate": "Bearer"})
        try:
            return await self.service.verifier.verify(token.strip())
        except InvalidToken as e:
            raise error("auth.invalid_token", f"access token {e.reason}",
                        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})

    # --- accounts -------------------------------------------------------------

    @route("POST", "/v1/accounts", "Create an account", auth=False, body=_registerBody,
           status=201, errors=("account.username_taken", "auth.rate_limited"),
           response=_out(account_id="integer", username="string"))
    async def register(self, call):
        svc, body = self.service, call.body
        username = body["username"]
        problem = passwordProblem(body["password"], username)
        if problem:
            raise error("request.invalid", "the password is refused",
                        fields={"password": problem})
        await svc.limits.hit("register", call.ip)
        # Checked before hashing so a taken name costs no hash; the insert
        # still catches a concurrent registration.
        existing = await svc.accounts.byName(username)
        if existing:
            if await self._registeredBefore(existing, body, call.ip):
                return 201, {"account_id": existing.id, "username": existing.username}
            raise error("account.username_taken")
        encoded = await self._hash(body["password"])
        accountId = await svc.accounts.register(username, body["email"], encoded,
                                                self.now(), call.ip)
        if accountId is None:
            raise error("account.username_taken")
        self.log.info("account {account_id} ({username}) registered from {ip}",
                      account_id=accountId, username=username, ip=call.ip)
        return 201, {"account_id": accountId, "username": username}

    async def _registeredBefore(self, account, body, ip):
        """
        @return: True when C{account} is what this registration made before:
            a retry (its answer lost, or a 503 past the deadline) within
            L{REGISTER_RETRY_WINDOW} of the creation, with the same email and
            password.  Anything else is a taken username.
        """
        if (self.now() - account.created_at > REGISTER_RETRY_WINDOW
                or account.email != body["email"]):
            return False
        ok, _ = await self._verify(account.password_hash, body["password"])
        if ok:
            self.log.info("account {account_id} ({username}) registered again from {ip}: "
                          "answered the existing one", account_id=account.id,
                          username=account.username, ip=ip)
        return ok

    @route("GET", "/v1/accounts/me", "The logged-in account", errors=("account.not_found",),
           response=_out(account_id="integer", username="string", email="string?",
                         created_at="number", session_id="string", token_expires_at="number"))
    async def me(self, call):
        account = await self.service.accounts.byId(call.claims.account_id)
        if account is None:
            raise error("account.not_found")
        return 200, {
            "account_id": account.id, "username": account.username,
            "email": account.email, "created_at": account.created_at,
            "session_id": call.claims.sid, "token_expires_at": call.claims.exp,
        }

    @route("POST", "/v1/accounts/me/password", "Change the password; ends every other login",
           body=_passwordBody, errors=("auth.wrong_password", "auth.locked", "auth.busy",
                                       "account.not_found"),
           response=_out(ended_sessions="integer"))
    async def changePassword(self, call):
        svc, claims, body = self.service, call.claims, call.body
        account = await svc.accounts.byId(claims.account_id)
        if account is None:
            raise error("account.not_found")
        userKey = account.username.lower()
        await self._checkLock(userKey, account.id, call.ip, login=False)
        ok, _ = await self._verify(account.password_hash, body["current_password"])
        if not ok:
            await svc.limits.failed(userKey)
            await svc.accounts.event(account.id, "password_failed", call.ip, self.now())
            raise error("auth.wrong_password")
        problem = passwordProblem(body["new_password"], account.username)
        if problem:
            raise error("request.invalid", "the new password is refused",
                        fields={"new_password": problem})
        encoded = await self._hash(body["new_password"])
        revoked = await svc.accounts.changePassword(account.id, encoded, claims.sid,
                                                    self.now(), call.ip)
        await endLoginRecords(svc.volatile, revoked, "password_change")
        await endLogins(svc.volatile, account.id, revoked, self.cfg.access_ttl,
                        "password_change", self.now())
        self.log.info("account {account_id} changed its password from {ip}; "
                      "{count} other login(s) ended",
                      account_id=account.id, ip=call.ip, count=len(revoked))
        return 200, {"ended_sessions": len(revoked)}

    # --- sessions -------------------------------------------------------------

    async def _hash(self, password):
        try:
            return await self.service.hasher.hash(password)
        except HasherBusy:
            raise error("auth.busy", headers=retryAfter(1))

    async def _verify(self, encoded, password):
        try:
            return await self.service.hasher.verify(encoded, password)
        except HasherBusy:
            raise error("auth.busy", headers=retryAfter(1))

    async def _checkLock(self, userKey, accountId, ip, login=True):
        locked = await self.service.limits.lockedFor(userKey)
        if locked > 0:
            if login:
                self.service.loginOutcome("locked")
            await self.service.accounts.event(
                accountId, "login_locked" if login else "password_locked", ip, self.now()
            )
            raise error("auth.locked", headers=retryAfter(locked))

    @route("POST", "/v1/sessions", "Log in: access and refresh tokens and the directory",
           auth=False, body=_loginBody,
           errors=("auth.invalid_credentials", "account.banned", "auth.locked",
                   "auth.rate_limited", "auth.busy", "server.maintenance"),
           response=_out(**TOKENS, directory="object"))
    async def login(self, call):
        svc, body = self.service, call.body
        account, newHash = await self.checkCredentials(body["username"], body["password"],
                                                       call.ip)
        now = self.now()
        if not account.is_operator:
            self.refuseInMaintenance(now)
        userAgent = (call.request.getHeader("user-agent") or "")[:255]
        sid = await self.startLogin(account, call.ip, userAgent, now, newHash)
        flags = ("operator",) if account.is_operator else ()
        tokens = self._tokens(account.id, account.username, sid, 0, now, flags)
        directory = json.dumps(await svc.directoryForClients(), separators=(",", ":"))
        return 200, tokens[:-1] + b',"directory":' + directory.encode() + b"}"

    def refuseInMaintenance(self, now):
        """
        @raise HTTPError: 503 C{server.maintenance} while a maintenance
            window is open (docs/version.md): only operators log in then.
        """
        gate = self.service.gate
        window = gate.maintenance() if gate is not None else None
        if window is not None:
            self.service.loginOutcome("maintenance")
            raise error("server.maintenance", window.message,
                        headers=retryAfter(window.retryAfter(now)))

    async def checkCredentials(self, username, password, ip):
        """
        Check a login's username and password (rate limit, lockout, one
        hash whether or not the account exists, the ban), writing the audit
        rows and counting the outcomes.

        @return: (the L{AccountRow}, None or its password hashed anew with
            today's parameters, for L{startLogin} to store).
        @raise HTTPError: C{auth.rate_limited}, C{auth.locked},
            C{auth.invalid_credentials}, C{account.banned}, C{auth.busy}.
        """
        svc = self.service
        try:
            await svc.limits.hit("login", ip)
        except HTTPError:
            svc.loginOutcome("rate_limited")
            raise
        userKey = username.lower()
        account = await svc.accounts.byName(userKey)
        accountId = account.id if account else None
        await self._checkLock(userKey, accountId, ip)
        # Exactly one verification whether or not the account exists, so
        # unknown usernames take as long as wrong passwords.
        encoded = account.password_hash if account else svc.hasher.dummyHash
        ok, stale = await self._verify(encoded, password)
        now = self.now()
        if not ok or account is None:
            lockout = await svc.limits.failed(userKey)
            svc.loginOutcome("failed")
            await svc.accounts.event(
                accountId, "login_failed", ip, now,
                None if account else f"unknown username {username!r}",
            )
            self.log.info("failed login for {username} (account {account_id}) from {ip}",
                          username=username, account_id=accountId, ip=ip)
            if lockout:
                self.log.warn("username {username} locked out for {seconds}s after "
                              "failed logins from {ip}", username=username,
                              seconds=lockout, ip=ip, account_id=accountId)
            raise error("auth.invalid_credentials")
        await svc.limits.succeeded(userKey)
        if account.bannedAt(now):
            svc.loginOutcome("banned")
            await svc.accounts.event(account.id, "login_banned", ip, now)
            raise self._banned(account.ban_reason, account.banned_until)
        return account, (await self._hash(password) if stale else None)

    async def startLogin(self, account, ip, userAgent, now, newHash=None):
        """
        Open a login (its SQL row, its volatile record) for C{account},
        whose credentials passed L{checkCredentials} (C{newHash}: the
        rehashed password it gave).

        @return: the login id.
        @raise HTTPError: C{account.banned}, banned meanwhile.
        """
        svc = self.service
        sid = newLoginId()
        banned = await svc.sqlLogins.loginOk(
            account.id, sid, now, now + self.cfg.refresh_ttl, ip, userAgent, newHash
        )
        if banned is not None:
            # Banned between the account read and the login's transaction.
            svc.loginOutcome("banned")
            raise self._banned(banned[1], banned[0])
        if not await svc.loginRecords.create(sid, account.id, account.username,
                                             account.is_operator):
            # Only a revocation racing this login marks the key first.
            self.log.warn("login {sid} of account {account_id} was ended while it was "
                          "being made: its tokens are dead", sid=sid, account_id=account.id)
        svc.loginOutcome("ok")
        self.log.info("account {account_id} logged in from {ip} (login {sid}{rehashed})",
                      account_id=account.id, ip=ip, sid=sid,
                      rehashed=", password rehashed" if newHash else "")
        return sid

    def issueAccess(self, account, sid, now):
        """@return: (an access token of login C{sid}, its lifetime in seconds)."""
        flags = ("operator",) if account.is_operator else ()
        iat, exp = self.service.issuer.times(now, self.cfg.access_ttl)
        token = self.service.issuer.issueAt(account.id, jsonString(sid), iat, exp, flags,
                                            jsonString(account.username))
        return token, self.cfg.access_ttl

    def _banned(self, reason, until):
        return error("account.banned", f"the account is banned: {reason}",
                     fields={"reason": reason or "", "until": f"{until:.0f}"})

    def _tokens(self, accountId, username, sid, gen, now, flags=(), refreshToken=None):
        """
        @param refreshToken: generation C{gen}'s refresh token, if made already.
        @return: the L{TOKENS} answer of a login or refresh, encoded (JSON
            bytes): written out here, as refreshes are hot, rather than
            escaping the tokens (base64url and dots) again.
        """
        svc = self.service
        issuer = svc.issuer
        iat, exp = issuer.times(now, self.cfg.access_ttl)
        usernameJSON, sidJSON = jsonString(username), jsonString(sid)
        access = issuer.issueAt(accountId, sidJSON, iat, exp, flags, usernameJSON)
        if refreshToken is None:
            refreshToken = svc.refreshTokens.issue(sid, gen)
        return (_TOKENS_JSON % (
            int(accountId), usernameJSON, sidJSON, access,
            self._accessTTL, refreshToken, self._refreshTTL, iat,
        )).encode()

    @route("POST", "/v1/sessions/refresh", "Trade a refresh token for new tokens (it rotates)",
           auth=False, body={"refresh_token": Prop("string", minLength=1, maxLength=128)},
           errors=("auth.invalid_refresh_token", "auth.refresh_token_reused", "account.banned"),
           response=_out(**TOKENS))
    def refresh(self, call):
        # Not a coroutine: a refresh is this role's hot request, and the
        # coroutine hops cost more than its JSON (measured under callgrind).
        # The rotation's Deferred answers a good token itself; everything
        # else goes on in _refreshed.
        svc = self.service
        token = call.body["refresh_token"]
        parsed = self._issued.pop(token, None)
        if parsed is None:
            parsed = svc.refreshTokens.parse(token)
            if parsed is None:
                # Not made with our key: says nothing about any login.
                svc.refreshOutcome("invalid")
                raise error("auth.invalid_refresh_token")
        sid, gen = parsed
        return svc.loginRecords.rotate(sid, gen).addCallback(self._rotated, sid, gen, call)

    def _rotated(self, result, sid, gen, call):
        if result.outcome != "ok":
            return Deferred.fromCoroutine(self._refreshed(result, sid, gen, call))
        svc = self.service
        svc.refreshOutcome("ok")
        gen += 1
        refreshToken = svc.refreshTokens.issue(sid, gen)
        # sid came from a token that passed, so this one's form passes too
        # while gen has its at most 15 digits.
        if gen <= _MAX_GEN:
            issued = self._issued
            if len(issued) >= ISSUED_REMEMBERED:
                issued.clear()
            issued[refreshToken] = (sid, gen)
        return 200, self._tokens(result.accountId, result.username, sid, gen, result.at,
                                 ("operator",) if result.isOperator else (), refreshToken)

    async def _refreshed(self, result, sid, gen, call):
        """The end of a refresh whose rotation was not plainly C{ok}."""
        svc = self.service
        if result.outcome == "missing":
            result = await self._recover(sid, gen, call.ip)
            if result.outcome == "ok":
                # Rebuilt from SQL and rotated: answered as any good rotation.
                return self._rotated(result, sid, gen, call)
        outcome = result.outcome
        svc.refreshOutcome(outcome)
        if outcome == "reused":
            now = self.now()
            await svc.sqlLogins.refreshReuse(sid, result.accountId, now, call.ip)
            await endLogins(svc.volatile, result.accountId, [sid], self.cfg.access_ttl,
                            "refresh_reuse", now)
            self.log.warn("refresh token {gen} of login {sid} (account {account_id}) "
                          "reused from {ip}: login revoked", gen=gen, sid=sid,
                          account_id=result.accountId, ip=call.ip)
            raise error("auth.refresh_token_reused")
        if outcome == "banned":
            raise self._banned(result.banReason, result.bannedUntil)
        raise error("auth.invalid_refresh_token")

    async def _recover(self, sid, gen, ip):
        """
        The login's volatile record is missing (never written, expired, or
        the volatile store lost it): rebuild it from SQL when SQL says the
        login is live, and rotate again once.

        SQL's generation may lag (refreshes are flushed every few seconds),
        so a presented generation above it is taken as current; one below
        it, or below one refreshed here and not yet flushed, is a reuse.
        """
        svc = self.service
        found = await svc.sqlLogins.forRefresh(sid, self.now())
        if found.outcome != "live":
            return found
        known = max(found.gen, svc.loginRecords.pendingGeneration(sid) or 0)
        if gen < known:
            await endLoginRecords(svc.volatile, [sid], "refresh_reuse")
            return RefreshResult("reused", sid, found.accountId)
        await svc.loginRecords.create(sid, found.accountId, found.username, found.isOperator, gen)
        result = await svc.loginRecords.rotate(sid, gen)
        if result.outcome == "missing":
            # Written and gone at once: the store is not keeping data.
            self.log.warn("login {sid} (account {account_id}): its volatile record "
                          "vanished as it was rebuilt", sid=sid, account_id=found.accountId)
            return RefreshResult("invalid", sid, found.accountId)
        self.log.info("login {sid} (account {account_id}) rebuilt in the volatile store "
                      "from SQL at generation {gen}", sid=sid, account_id=found.accountId,
                      gen=gen)
        return result

    @route("DELETE", "/v1/sessions", "Log out: revoke this login", response=_out(ended="string"))
    async def logout(self, call):
        svc, claims = self.service, call.claims
        await svc.sqlLogins.logout(claims.account_id, claims.sid, self.now(), call.ip)
        await endLoginRecords(svc.volatile, [claims.sid], "logout")
        await endLogins(svc.volatile, claims.account_id, [claims.sid],
                        self.cfg.access_ttl, "logout", self.now())
        self.log.info("account {account_id} logged out login {sid} from {ip}",
                      account_id=claims.account_id, sid=claims.sid, ip=call.ip)
        return 200, {"ended": claims.sid}

    # --- characters -----------------------------------------------------------

    @route("GET", "/v1/classes", "Character classes and the start zone", auth=False,
           response=_out(classes="array", start_zone="string"))
    async def classes(self, call):
        data = self.service.gameData
        return 200, {
            "classes": [c.toJSON() for c in data.classes.values()],
            "start_zone": data.startZone,
        }

    @route("GET", "/v1/characters", "This account's characters",
           response=_out(characters="array", limit="integer"))
    async def characters(self, call):
        rows = await self.service.characters.ofAccount(call.claims.account_id)
        return 200, {"characters": rows, "limit": self.cfg.max_characters}

    @route("POST", "/v1/characters", "Create a character", body=_characterBody, status=201,
           errors=("character.name_taken", "character.limit_reached"), response=_out(**CHARACTER))
    async def createCharacter(self, call):
        svc, body = self.service, call.body
        data = svc.gameData
        cls = body["class"]
        if cls not in data.classes:
            raise error("request.invalid", "no such class",
                        fields={"class": "must be one of " + ", ".join(data.classes)})
        now = self.now()
        outcome, character = await svc.characters.create(
            call.claims.account_id, body["name"], cls, data.startZone, data.spawn, now,
            self.cfg.max_characters, now - self.cfg.name_release_after,
        )
        if outcome == "limit":
            raise error("character.limit_reached",
                        f"at most {self.cfg.max_characters} characters per account")
        if outcome == "taken":
            raise error("character.name_taken", fields={"name": "is taken"})
        if outcome == "exists":
            # A retry of a creation that was applied (its answer lost, or a
            # 503 past the deadline): the same answer, no second character.
            self.log.info("account {account_id} created character {character_id} again "
                          "from {ip}: answered the existing one",
                          account_id=call.claims.account_id, character_id=character["id"],
                          ip=call.ip)
            return 201, character
        self.log.info("account {account_id} created character {character_id} "
                      "({name}, {cls}) from {ip}", account_id=call.claims.account_id,
                      character_id=character["id"], name=character["name"], cls=cls,
                      ip=call.ip)
        return 201, character

    @route("DELETE", "/v1/characters/{id}", "Delete a character (soft: an operator can restore it)",
           errors=("character.not_found",), response=_out(deleted="integer", name_free_at="number"))
    async def deleteCharacter(self, call):
        characterId, now = call.params["id"], self.now()
        if not await self.service.characters.delete(call.claims.account_id, characterId, now):
            raise error("character.not_found")
        self.log.info("account {account_id} deleted character {character_id} from {ip}",
                      account_id=call.claims.account_id, character_id=characterId,
                      ip=call.ip)
        return 200, {"deleted": characterId,
                     "name_free_at": now + self.cfg.name_release_after}
