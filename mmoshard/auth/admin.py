"""Operator actions on accounts — ban, unban, kick, restore a character — for the admin site and the CLI, and the operators' login to the admin site."""

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from mmoshard.audit import actorOf
from mmoshard.auth.errors import error
from mmoshard.auth.logins import endLoginRecords
from mmoshard.auth.revocation import endAccount, endLogins
from mmoshard.interfaces import IOperatorLogin
from mmoshard.web.operators import OperatorToken, operatorOf
from mmoshard.web.routes import route
from mmoshard.web.schema import Prop

_REASON = Prop("string", minLength=1, maxLength=200)

# A ban without an end: 9999-12-31T23:59:59Z.
FOREVER = 253402300799.0


async def banAccount(accounts, volatile, now, account, reason, until, accessTtl,
                     ip=None, actor="operator"):
    """
    Ban C{account} (id or username) until C{until} (None: for ever) in the
    L{AccountStore} C{accounts} and end its live sessions everywhere: its logins are revoked in SQL and marked
    revoked in the volatile store, and every access token issued so far is
    revoked there.

    @return: (account id, number of logins ended), or None for no such account.
    """
    until = FOREVER if until is None else float(until)
    result = await accounts.ban(account, until, reason, now, ip, actor)
    if result is None:
        return None
    accountId, sids = result
    # The logins SQL just revoked lose their refresh tokens, and every
    # access token issued so far dies with the account mark.
    await endLoginRecords(volatile, sids, "ban")
    await endAccount(volatile, accountId, accessTtl, "ban", now)
    Logger(namespace=__name__).warn(
        "account {account_id} banned until {until:.0f} by {actor} from {ip}: {reason}; "
        "{count} login(s) ended", account_id=accountId, until=until, actor=actor, ip=ip,
        reason=reason, count=len(sids))
    return accountId, len(sids)


async def kickAccount(accounts, volatile, now, accountId, reason, accessTtl, ip=None,
                      actor="operator"):
    """
    End every live session of C{accountId} now, on every node (its access
    tokens issued so far are revoked, reason C{kick}: the sessions end with
    C{auth.revoked}), and audit it.  The account stays usable: the player
    may log in again at once (a ban keeps them out).
    """
    await endAccount(volatile, accountId, accessTtl, "kick", now)
    await accounts.event(accountId, "kick", ip, now, f"by {actor}: {reason}")
    Logger(namespace=__name__).warn(
        "account {account_id} kicked by {actor} from {ip}: {reason}", account_id=accountId,
        actor=actor, ip=ip, reason=reason)


async def unbanAccount(accounts, now, account, ip=None, actor="operator"):
    """Lift C{account}'s ban; @return: the account id, or None for no such account."""
    accountId = await accounts.unban(account, now, ip, actor)
    if accountId is not None:
        Logger(namespace=__name__).info(
            "account {account_id} unbanned by {actor} from {ip}",
            account_id=accountId, actor=actor, ip=ip)
    return accountId


class AdminAPI:
    """
    The admin site's account routes, sharing the auth service's stores.
    The admin site's guard keeps web pages off them (a JSON body from no
    other origin, Host the admin address: mmoshard/web/guard.py); off
    loopback, only operators logged in reach them (web/operators.py), and
    the audit trail names who acted.
    """

    def __init__(self, service):
        self.service = service

    @route("POST", "/accounts/{id}/ban", "Ban an account; end its sessions", auth=False,
           body={"reason": Prop("string", minLength=1, maxLength=200),
                 "until": Prop("number", required=False, nullable=True, minimum=0,
                               description="epoch seconds; absent: for ever"),
                 "duration": Prop("number", required=False, nullable=True, minimum=1,
                                  description="seconds from now")},
           errors=("account.not_found",))
    async def ban(self, call):
        svc, body = self.service, call.body
        now = svc.clock.seconds()
        if body["until"] is not None and body["duration"] is not None:
            raise error("request.invalid", "give until or duration, not both",
                        fields={"until": "conflicts with duration"})
        until = body["until"]
        if body["duration"] is not None:
            until = now + body["duration"]
        result = await banAccount(svc.accounts, svc.volatile, now, call.params["id"],
                                  body["reason"], until, svc.config.access_ttl,
                                  ip=call.ip, actor=actorOf(operatorOf(call.request)))
        if result is None:
            raise error("account.not_found")
        accountId, ended = result
        return 200, {"account_id": accountId, "banned_until": until or FOREVER,
                     "ended_sessions": ended}

    @route("POST", "/accounts/{id}/unban", "Lift a ban", auth=False, body={},
           errors=("account.not_found",))
    async def unban(self, call):
        svc = self.service
        accountId = await unbanAccount(svc.accounts, svc.clock.seconds(), call.params["id"],
                                       ip=call.ip, actor=actorOf(operatorOf(call.request)))
        if accountId is None:
            raise error("account.not_found")
        return 200, {"account_id": accountId}

    @route("POST", "/accounts/{id}/kick", "End the account's sessions on every node now "
           "(it may log in again)", auth=False, body={"reason": _REASON},
           errors=("account.not_found",))
    async def kick(self, call):
        account = await self.service.accounts.byId(call.params["id"])
        if account is None:
            raise error("account.not_found")
        await self._kick(call, account.id, call.body["reason"])
        return 200, {"account_id": account.id, "username": account.username}

    @route("POST", "/characters/{id}/kick", "End the sessions of the character's account on "
           "every node now", auth=False, body={"reason": _REASON},
           errors=("character.not_found",))
    async def kickCharacter(self, call):
        owner = await self.service.characters.owner(call.params["id"])
        if owner is None:
            raise error("character.not_found", "no such character")
        accountId, name = owner
        await self._kick(call, accountId, f"character {name}: {call.body['reason']}")
        return 200, {"account_id": accountId, "character_id": call.params["id"], "name": name}

    async def _kick(self, call, accountId, reason):
        svc = self.service
        await kickAccount(svc.accounts, svc.volatile, svc.clock.seconds(), accountId, reason,
                          svc.config.access_ttl, ip=call.ip,
                          actor=actorOf(operatorOf(call.request)))

    @route("GET", "/accounts/{id}/events", "An account's audit trail", auth=False,
           errors=("account.not_found",))
    async def events(self, call):
        svc = self.service
        account = await svc.accounts.byId(call.params["id"])
        if account is None:
            raise error("account.not_found")
        rows = await svc.accounts.events(account.id)
        return 200, {
            "account_id": account.id, "username": account.username,
            "banned_until": account.banned_until, "ban_reason": account.ban_reason,
            "events": [{"at": at, "kind": kind, "ip": ip, "detail": detail}
                       for at, kind, ip, detail in rows],
        }

    @route("POST", "/characters/{id}/restore", "Undo a character's deletion", auth=False,
           body={}, errors=("character.not_found", "character.name_taken"))
    async def restoreCharacter(self, call):
        outcome = await self.service.characters.restore(call.params["id"])
        if outcome == "missing":
            raise error("character.not_found", "no such deleted character")
        if outcome == "taken":
            raise error("character.name_taken",
                        "its name was freed and taken since; rename it first")
        return 200, {"restored": call.params["id"]}


@implementer(IOperatorLogin)
class OperatorLogins:
    """
    The admin site's operator login (C{/operator/session}), with the
    checks of a player's login (rate limit, lockout, ban) and the
    C{operator} flag required; each is a login of its own, audited.
    """

    log = Logger()

    def __init__(self, service):
        self.service = service

    def login(self, username, password, ip, userAgent):
        return Deferred.fromCoroutine(self._login(username, password, ip, userAgent))

    async def _login(self, username, password, ip, userAgent):
        svc = self.service
        api = svc.api
        account, newHash = await api.checkCredentials(username, password, ip)
        now = svc.clock.seconds()
        if not account.is_operator:
            await svc.accounts.event(account.id, "admin_login_refused", ip, now,
                                     "not an operator")
            self.log.warn("account {account_id} ({username}) tried the admin site's login "
                          "from {ip}: not an operator", account_id=account.id,
                          username=account.username, ip=ip)
            raise error("auth.operator_required")
        sid = await api.startLogin(account, ip, userAgent, now, newHash)
        await svc.accounts.event(account.id, "admin_login", ip, now, f"login {sid}")
        token, ttl = api.issueAccess(account, sid, now)
        return OperatorToken(account.id, account.username, token, ttl)

    def logout(self, claims, ip):
        return Deferred.fromCoroutine(self._logout(claims, ip))

    async def _logout(self, claims, ip):
        svc = self.service
        now = svc.clock.seconds()
        await svc.sqlLogins.logout(claims.account_id, claims.sid, now, ip)
        await endLoginRecords(svc.volatile, [claims.sid], "logout")
        await endLogins(svc.volatile, claims.account_id, [claims.sid], svc.config.access_ttl,
                        "logout", now)
        self.log.info("operator account {account_id} logged out of the admin site (login "
                      "{sid}) from {ip}", account_id=claims.account_id, sid=claims.sid, ip=ip)
