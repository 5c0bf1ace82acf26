"""`mmoshard account ban|unban|show|operator|restore-character`: the operator's handle on accounts."""

import json
import re
import sys
from datetime import datetime, timezone

from mmoshard.auth.admin import FOREVER, banAccount, unbanAccount
from mmoshard.auth.characters import CharacterStore
from mmoshard.auth.store import AccountStore
from mmoshard.command import CommandError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def arguments(parser):
    """Add the `account` actions to C{parser}."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def common(p, what="ACCOUNT", help="account id or username"):
        p.add_argument("--config", metavar="PATH", help="node config file (TOML)")
        p.add_argument(what.lower(), metavar=what, help=help)
        return p

    p = common(sub.add_parser("ban", help="ban an account and end its sessions"))
    p.add_argument("--reason", required=True, help="shown to the player at login")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--for", dest="duration", metavar="DURATION",
                      help="how long: 3600, 90m, 12h, 7d, 2w (default: for ever)")
    when.add_argument("--until", metavar="WHEN",
                      help="end of the ban: ISO 8601 (UTC unless it says) or epoch seconds")
    common(sub.add_parser("unban", help="lift an account's ban"))
    common(sub.add_parser("show", help="an account's ban state and audit trail"))
    p = common(sub.add_parser("operator", help="make an account an operator (the console's "
                              "login, chat moderation, entry during maintenance)"))
    p.add_argument("--revoke", action="store_true",
                   help="take the flag back (its logins end)")
    common(sub.add_parser("restore-character", help="undo a character's deletion"),
           "CHARACTER", "character id")


def parseDuration(text):
    """@return: seconds in C{text} (C{3600}, C{90m}, C{12h}, C{7d}, C{2w})."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"bad duration {text!r}: use e.g. 3600, 90m, 12h, 7d")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def parseWhen(text):
    """@return: epoch seconds for an ISO 8601 time (UTC by default) or a number."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"bad time {text!r}: use ISO 8601 (2027-01-31T12:00) or epoch seconds")
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def _account(text):
    return int(text) if text.isdigit() else text


def _when(seconds):
    if seconds is None:
        return "-"
    if seconds >= FOREVER:
        return "for ever"
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


async def _viaAdmin(config, path, body):
    """
    With a memory:// volatile store only the server holds the revocations:
    ask its admin site.  @return: the JSON answer, or None when no server
    answers.
    """
    import treq
    from mmoshard.config import endpointPort

    endpoint = config.listen.admin
    port = endpointPort(endpoint) if endpoint else None
    if not port:
        return None
    try:
        response = await treq.post(f"http://127.0.0.1:{port}{path}",
                                   json.dumps(body).encode(),
                                   headers={"Content-Type": "application/json"},
                                   timeout=30, persistent=False)
        return response.code, json.loads(await response.content())
    except Exception:
        return None


async def run(reactor, args, out=None, clock=None):
    """
    Carry out one `account` action; @return: the exit status.

    @param clock: the time source (default C{reactor}; a Clock in tests).
    """
    from mmoshard.config import ConfigError, loadConfig
    from mmoshard.store.sql import SQLStore
    from mmoshard.store.volatile import makeVolatileStore

    out = out or sys.stdout
    try:
        config = loadConfig(args.config, roles=["auth"])
    except ConfigError as e:
        raise CommandError(str(e)) from None
    cfg = config.roleConfig("auth")
    sql = SQLStore(reactor, config.sql.url, 1, 1)
    sql.open()
    accounts = AccountStore(sql)
    v = config.volatile
    volatile = makeVolatileStore(v.url, reactor, v.prefix, v.timeout) if v.shared else None
    if volatile is not None:
        volatile.open()
    now = (clock or reactor).seconds()
    try:
        if args.action == "restore-character":
            outcome = await CharacterStore(sql).restore(int(args.character))
            if outcome != "ok":
                raise CommandError({"missing": "no such deleted character",
                                    "taken": "its name was freed and taken since; "
                                             "rename it first"}[outcome])
            print(f"character {args.character} restored", file=out)
            return 0
        account = await accounts.find(_account(args.account))
        if account is None:
            raise CommandError(f"no account {args.account!r}")
        if args.action == "show":
            return await _show(accounts, account, out)
        if args.action == "operator":
            return await _operator(accounts, volatile, cfg, account, not args.revoke, now, out)
        if args.action == "unban":
            await unbanAccount(accounts, now, account, actor="cli")
            print(f"account {account} unbanned", file=out)
            return 0
        try:
            until = (now + parseDuration(args.duration) if args.duration
                     else parseWhen(args.until) if args.until else None)
        except ValueError as e:
            raise CommandError(str(e)) from None
        if volatile is None:
            body = {"reason": args.reason, "until": until}
            answer = await _viaAdmin(config, f"/accounts/{account}/ban", body)
            if answer is not None and answer[0] == 200:
                print(f"account {account} banned until {_when(until or FOREVER)} by the "
                      f"running server; {answer[1]['ended_sessions']} login(s) ended",
                      file=out)
                return 0
            print("warning: no server answers on the admin site; the ban is stored but "
                  f"tokens already issued stay valid for up to {cfg.access_ttl:g}s, and a "
                  f"running server stops the account's refreshes within "
                  f"{cfg.refresh_flush:g}s", file=sys.stderr)
            volatile = makeVolatileStore("memory://", reactor, v.prefix)
            volatile.open()
        _, ended = await banAccount(accounts, volatile, now, account, args.reason, until,
                                    cfg.access_ttl, actor="cli")
        print(f"account {account} banned until {_when(until or FOREVER)}; "
              f"{ended} login(s) ended", file=out)
        return 0
    finally:
        if volatile is not None:
            await volatile.close()
        await sql.close()


async def _show(accounts, accountId, out):
    account = await accounts.byId(accountId)
    print(f"account {account.id} {account.username!r} created {_when(account.created_at)}",
          file=out)
    if account.banned_until is not None:
        print(f"banned until {_when(account.banned_until)}: {account.ban_reason}", file=out)
    for at, kind, ip, detail in await accounts.events(accountId, 30):
        print(f"  {_when(at)}  {kind:<16} {ip or '-':<15} {detail or ''}", file=out)
    return 0


async def _operator(accounts, volatile, cfg, account, grant, now, out):
    """Grant or take back the operator flag; taking it back ends the account's logins."""
    from mmoshard.auth.logins import endLoginRecords
    from mmoshard.auth.revocation import endAccount

    accountId, revoked = await accounts.setOperator(account, grant, now, "cli")
    if grant:
        print(f"account {accountId} is an operator from its next login", file=out)
        return 0
    if volatile is not None:
        await endLoginRecords(volatile, revoked, "operator_revoke")
        await endAccount(volatile, accountId, cfg.access_ttl, "operator_revoke", now)
        print(f"account {accountId} is no longer an operator; {len(revoked)} login(s) ended",
              file=out)
    else:
        print(f"account {accountId} is no longer an operator; its {len(revoked)} login(s) "
              f"cannot refresh, and tokens already issued stay valid for up to "
              f"{cfg.access_ttl:g}s (restart an embedded server to end them now)", file=out)
    return 0
