"""Operator actions on accounts — ban, unban, restore a character — for the admin site and the CLI."""

from twisted.logger import Logger

from mmoshard.auth.errors import error
from mmoshard.auth.logins import endLoginRecords
from mmoshard.auth.revocation import endAccount
from mmoshard.web.routes import route
from mmoshard.web.schema import Prop

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
    The admin site's account routes (loopback only, no token), sharing the
    auth service's stores.  The admin site's guard keeps web pages off them
    (a JSON body from no other origin, Host the admin address:
    mmoshard/web/guard.py).
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
                                  ip=call.ip, actor="admin-site")
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
                                       ip=call.ip, actor="admin-site")
        if accountId is None:
            raise error("account.not_found")
        return 200, {"account_id": accountId}

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
