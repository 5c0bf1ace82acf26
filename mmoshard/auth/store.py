"""The auth role's SQL for accounts, bans and logins: L{AccountStore} and L{LoginStore}, each method one transaction."""

import attrs

from mmoshard.audit import txnEvent
from mmoshard.store.errors import IntegrityError
from mmoshard.store.sql import placeholders


@attrs.frozen
class AccountRow:
    id: int
    username: str
    email: str | None
    password_hash: str
    created_at: float
    banned_until: float | None
    ban_reason: str | None
    is_operator: bool

    def bannedAt(self, now):
        """@return: True when the account is banned at C{now}."""
        return self.banned_until is not None and self.banned_until > now


_ACCOUNT_COLUMNS = (
    "id, username, email, password_hash, created_at, banned_until, ban_reason, "
    "is_operator"
)


def _account(row):
    return None if row is None else AccountRow(*row[:-1], bool(row[-1]))


def _txn_event(cursor, accountId, kind, ip, now, detail=None):
    """Append one row to the audit trail (L{mmoshard.audit.txnEvent})."""
    txnEvent(cursor, accountId, kind, ip, now, detail)


def _txn_accountByName(cursor, usernameLower):
    return _account(
        cursor.execute(
            f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE username_lower = ?",
            (usernameLower,),
        ).fetchone()
    )


def _txn_accountById(cursor, accountId):
    return _account(
        cursor.execute(
            f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE id = ?", (accountId,)
        ).fetchone()
    )


def _txn_register(cursor, username, email, passwordHash, now, ip):
    """
    @return: the new account id.
    @raise IntegrityError: the username is taken.
    """
    cursor.execute(
        "INSERT INTO accounts (username, username_lower, email, password_hash, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (username, username.lower(), email, passwordHash, now),
    )
    accountId = cursor.lastrowid
    _txn_event(cursor, accountId, "register", ip, now)
    return accountId


def _txn_loginOk(cursor, accountId, sid, now, expiresAt, ip, userAgent, newHash=None):
    """
    Record a successful login and its event, unless a ban committed since
    the account was read.

    The account row is read again under a lock (MySQL; SQLite runs one
    writer at a time): a ban serialises with the login, so either this sees
    the ban, or the ban's revocation sees this login.

    @return: None when recorded, else (banned_until, ban_reason).
    """
    lock = " FOR UPDATE" if cursor.dialect == "mysql" else ""
    bannedUntil, banReason = cursor.execute(
        f"SELECT banned_until, ban_reason FROM accounts WHERE id = ?{lock}", (accountId,)
    ).fetchone()
    if bannedUntil is not None and bannedUntil > now:
        _txn_event(cursor, accountId, "login_banned", ip, now)
        return bannedUntil, banReason
    cursor.execute(
        "INSERT INTO auth_logins (id, account_id, created_at, last_used_at, "
        "expires_at, ip, user_agent, refresh_gen) VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
        (sid, accountId, now, now, expiresAt, ip, (userAgent or "")[:255] or None),
    )
    if newHash is not None:
        cursor.execute(
            "UPDATE accounts SET password_hash = ? WHERE id = ?", (newHash, accountId)
        )
    _txn_event(cursor, accountId, "login_ok", ip, now,
               "password rehashed" if newHash is not None else None)
    return None


# Not frozen: one is made per refresh, and a frozen class's __init__ sets
# each field through object.__setattr__, several times the cost (measured).
# Nothing changes one once made.
@attrs.define
class RefreshResult:
    """
    What a refresh came to: C{outcome} is ok, invalid, reused or banned,
    and, from the volatile store only, missing (no record: ask SQL); from
    SQL, live (the login may be refreshed; C{gen} is its generation there).
    """

    outcome: str
    loginId: str | None = None
    accountId: int | None = None
    username: str | None = None
    isOperator: bool = False
    bannedUntil: float | None = None
    banReason: str | None = None
    gen: int | None = None
    # When the volatile store rotated the token (the role's clock): what the
    # new tokens say they were issued at.
    at: float | None = None


def _revokeLogins(cursor, where, params, now, reason):
    """Revoke the live logins matching C{where}; @return: their ids."""
    # A locking read on MySQL sees logins committed since this transaction's
    # first read, e.g. one that raced a ban.
    lock = " FOR UPDATE" if cursor.dialect == "mysql" else ""
    ids = [
        row[0]
        for row in cursor.execute(
            f"SELECT id FROM auth_logins WHERE revoked_at IS NULL AND {where}{lock}", params
        ).fetchall()
    ]
    if ids:
        marks = placeholders(len(ids))
        cursor.execute(
            f"UPDATE auth_logins SET revoked_at = ?, revoke_reason = ? WHERE id IN ({marks})",
            (now, reason, *ids),
        )
    return ids


def _txn_loginForRefresh(cursor, sid, now):
    """
    Login C{sid} as SQL knows it, for a refresh whose volatile record is
    missing.

    @return: a L{RefreshResult}: invalid (unknown, revoked or expired),
        banned, or live with the account and SQL's generation.
    """
    row = cursor.execute(
        "SELECT l.account_id, l.expires_at, l.revoked_at, l.refresh_gen, a.username, "
        "a.banned_until, a.ban_reason, a.is_operator "
        "FROM auth_logins l JOIN accounts a ON a.id = l.account_id WHERE l.id = ?",
        (sid,),
    ).fetchone()
    if row is None:
        return RefreshResult("invalid", sid)
    (accountId, expiresAt, revokedAt, gen, username, bannedUntil, banReason,
     isOperator) = row
    if revokedAt is not None or expiresAt <= now:
        return RefreshResult("invalid", sid, accountId)
    if bannedUntil is not None and bannedUntil > now:
        return RefreshResult("banned", sid, accountId, username, bool(isOperator),
                             bannedUntil, banReason)
    return RefreshResult("live", sid, accountId, username, bool(isOperator), gen=gen)


def _txn_refreshReuse(cursor, sid, accountId, now, ip):
    """A used refresh token of login C{sid} came back: revoke the login, record it."""
    _revokeLogins(cursor, "id = ?", (sid,), now, "refresh_reuse")
    _txn_event(cursor, accountId, "refresh_reuse", ip, now, f"login {sid}")


def _txn_flushRefreshes(cursor, rows, revokedSince):
    """
    Write refreshes made in the volatile store: C{rows} of (last used,
    expires, generation, sid).  A row never moves a login back to an older
    generation, nor touches a revoked one.

    @return: (sid, reason, revoked at) of the logins revoked at or after
        C{revokedSince}, for the volatile store to learn of revocations
        made in SQL alone.
    """
    if rows:
        cursor.executemany(
            "UPDATE auth_logins SET last_used_at = ?, expires_at = ?, refresh_gen = ? "
            "WHERE id = ? AND revoked_at IS NULL AND refresh_gen < ?",
            [(at, expires, gen, sid, gen) for at, expires, gen, sid in rows],
        )
    return cursor.execute(
        "SELECT id, revoke_reason, revoked_at FROM auth_logins WHERE revoked_at >= ?",
        (revokedSince,),
    ).fetchall()


def _txn_logout(cursor, accountId, sid, now, ip):
    """Revoke login C{sid}; @return: True when it was live."""
    revoked = _revokeLogins(cursor, "id = ? AND account_id = ?", (sid, accountId),
                            now, "logout")
    _txn_event(cursor, accountId, "logout", ip, now)
    return bool(revoked)


def _txn_changePassword(cursor, accountId, newHash, keepSid, now, ip):
    """Set a new password hash; revoke every other login; @return: their ids."""
    cursor.execute(
        "UPDATE accounts SET password_hash = ? WHERE id = ?", (newHash, accountId)
    )
    revoked = _revokeLogins(cursor, "account_id = ? AND id <> ?", (accountId, keepSid),
                            now, "password_change")
    _txn_event(cursor, accountId, "password_change", ip, now,
               f"{len(revoked)} other login(s) ended")
    return revoked


def _txn_findAccount(cursor, account):
    """C{account}: an int id or a username (str); @return: the id or None."""
    if isinstance(account, int):
        row = cursor.execute("SELECT id FROM accounts WHERE id = ?", (account,)).fetchone()
    else:
        row = cursor.execute(
            "SELECT id FROM accounts WHERE username_lower = ?", (account.lower(),)
        ).fetchone()
    return None if row is None else row[0]


def _txn_ban(cursor, account, until, reason, now, ip, actor):
    """
    Ban C{account} until C{until}; revoke its logins.

    @return: (account id, revoked login ids), or None when there is no such
        account.
    """
    accountId = _txn_findAccount(cursor, account)
    if accountId is None:
        return None
    cursor.execute(
        "UPDATE accounts SET banned_until = ?, ban_reason = ? WHERE id = ?",
        (until, reason, accountId),
    )
    revoked = _revokeLogins(cursor, "account_id = ?", (accountId,), now, "ban")
    _txn_event(cursor, accountId, "ban", ip, now,
               f"until {until:.0f} by {actor}: {reason}")
    return accountId, revoked


def _txn_unban(cursor, account, now, ip, actor):
    """@return: the account id, or None when there is no such account."""
    accountId = _txn_findAccount(cursor, account)
    if accountId is None:
        return None
    cursor.execute(
        "UPDATE accounts SET banned_until = NULL, ban_reason = NULL WHERE id = ?",
        (accountId,),
    )
    _txn_event(cursor, accountId, "unban", ip, now, f"by {actor}")
    return accountId


def _txn_setOperator(cursor, account, operator, now, actor):
    """
    Grant or take back the operator flag; taking it back revokes the
    account's logins (their tokens carry the flag until they end).

    @return: (account id, revoked login ids), or None for no such account.
    """
    accountId = _txn_findAccount(cursor, account)
    if accountId is None:
        return None
    cursor.execute("UPDATE accounts SET is_operator = ? WHERE id = ?",
                   (1 if operator else 0, accountId))
    revoked = [] if operator else _revokeLogins(cursor, "account_id = ?", (accountId,), now,
                                                "operator_revoke")
    _txn_event(cursor, accountId, "operator_grant" if operator else "operator_revoke", None,
               now, f"by {actor}")
    return accountId, revoked


def _txn_events(cursor, accountId, limit=100):
    """@return: the latest audit rows of C{accountId}, newest first."""
    return cursor.execute(
        "SELECT at, kind, ip, detail FROM account_events WHERE account_id = ? "
        "ORDER BY id DESC LIMIT ?",
        (accountId, limit),
    ).fetchall()


def _txn_activeLogins(cursor, now):
    return cursor.execute(
        "SELECT COUNT(*) FROM auth_logins WHERE revoked_at IS NULL AND expires_at > ?",
        (now,),
    ).fetchone()[0]


def _txn_purgeLogins(cursor, before):
    """Forget logins expired or revoked before C{before}; @return: how many."""
    cursor.execute(
        "DELETE FROM auth_logins WHERE expires_at < ? OR revoked_at < ?",
        (before, before),
    )
    return cursor.rowcount


class AccountStore:
    """
    Accounts, their bans and audit trail in SQL: each method runs one
    transaction on the L{ISQLStore} C{sql} (a thread of its pool) and
    fires on the reactor thread.  C{now} is the caller's clock, so a
    request's rows and answers agree on the time.
    """

    def __init__(self, sql):
        self.sql = sql

    async def byName(self, username):
        """@return: the L{AccountRow} of C{username} (any case), or None."""
        return await self.sql.runInteraction(_txn_accountByName, username.lower())

    async def byId(self, accountId):
        """@return: the L{AccountRow} of C{accountId}, or None."""
        return await self.sql.runInteraction(_txn_accountById, accountId)

    async def find(self, account):
        """@return: the id of C{account} (an int id or a username), or None."""
        return await self.sql.runInteraction(_txn_findAccount, account)

    async def register(self, username, email, passwordHash, now, ip):
        """
        Create an account and its C{register} event.

        @return: the new account id, or None when the username is taken
            (ignoring case).
        """
        try:
            return await self.sql.runInteraction(_txn_register, username, email,
                                                 passwordHash, now, ip)
        except IntegrityError:
            return None

    async def event(self, accountId, kind, ip, now, detail=None):
        """Append C{kind} (login_failed, password_locked, ...) to the audit trail."""
        await self.sql.runInteraction(_txn_event, accountId, kind, ip, now, detail)

    async def events(self, accountId, limit=100):
        """@return: the latest (at, kind, ip, detail) rows of C{accountId}, newest first."""
        return await self.sql.runInteraction(_txn_events, accountId, limit)

    async def changePassword(self, accountId, newHash, keepSid, now, ip):
        """Set a new password hash and revoke every login but C{keepSid}; @return: their ids."""
        return await self.sql.runInteraction(_txn_changePassword, accountId, newHash,
                                             keepSid, now, ip)

    async def ban(self, account, until, reason, now, ip, actor):
        """
        Ban C{account} (id or username) until C{until}; revoke its logins.

        @return: (account id, revoked login ids), or None for no such account.
        """
        return await self.sql.runInteraction(_txn_ban, account, until, reason, now, ip,
                                             actor)

    async def setOperator(self, account, operator, now, actor):
        """
        Grant (C{operator} True) or take back the operator flag of C{account}.

        @return: (account id, revoked login ids), or None for no such account.
        """
        return await self.sql.runInteraction(_txn_setOperator, account, operator, now, actor)

    async def unban(self, account, now, ip, actor):
        """Lift C{account}'s ban; @return: the account id, or None for no such account."""
        return await self.sql.runInteraction(_txn_unban, account, now, ip, actor)


class LoginStore:
    """
    The logins (C{auth_logins}) in SQL, the record a refresh falls back to
    when the volatile store lost its own (L{mmoshard.auth.logins}); each
    method is one transaction on C{sql}.
    """

    def __init__(self, sql):
        self.sql = sql

    async def loginOk(self, accountId, sid, now, expiresAt, ip, userAgent, newHash=None):
        """
        Record login C{sid} and its event (and C{newHash}, a rehashed
        password), unless a ban committed since the account was read.

        @return: None when recorded, else the ban's (banned_until, ban_reason).
        """
        return await self.sql.runInteraction(_txn_loginOk, accountId, sid, now, expiresAt,
                                             ip, userAgent, newHash)

    async def forRefresh(self, sid, now):
        """@return: a L{RefreshResult} for login C{sid}: invalid, banned or live."""
        return await self.sql.runInteraction(_txn_loginForRefresh, sid, now)

    async def refreshReuse(self, sid, accountId, now, ip):
        """A used refresh token of login C{sid} came back: revoke the login, record it."""
        await self.sql.runInteraction(_txn_refreshReuse, sid, accountId, now, ip)

    async def flushRefreshes(self, rows, revokedSince):
        """
        Write refreshes made in the volatile store: C{rows} of (last used,
        expires, generation, sid), never moving a login back to an older
        generation nor touching a revoked one.

        @return: (sid, reason, revoked at) of the logins revoked at or after
            C{revokedSince}.
        """
        return await self.sql.runInteraction(_txn_flushRefreshes, rows, revokedSince)

    async def logout(self, accountId, sid, now, ip):
        """Revoke login C{sid} of C{accountId}; @return: True when it was live."""
        return await self.sql.runInteraction(_txn_logout, accountId, sid, now, ip)

    async def active(self, now):
        """@return: how many logins are live (unexpired, unrevoked) at C{now}."""
        return await self.sql.runInteraction(_txn_activeLogins, now)

    async def purge(self, before):
        """Forget logins expired or revoked before C{before}; @return: how many."""
        return await self.sql.runInteraction(_txn_purgeLogins, before)
