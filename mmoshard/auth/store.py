"""The auth role's SQL: thread-side C{_txn_*} functions, each one transaction via runInteraction."""

import attrs


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
    """Append one row to the audit trail."""
    if detail is not None:
        detail = detail[:255]
    cursor.execute(
        "INSERT INTO account_events (at, account_id, kind, ip, detail) "
        "VALUES (?, ?, ?, ?, ?)",
        (now, accountId, kind, ip, detail),
    )


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
        marks = ", ".join("?" for _ in ids)
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


# --- characters ---------------------------------------------------------------

_CHARACTER_COLUMNS = "id, name, class, level, exp, zone, x, y, z, created_at"


def characterJSON(row):
    cid, name, cls, level, exp, zone, x, y, z, createdAt = row
    return {
        "id": cid, "name": name, "class": cls, "level": level, "exp": exp,
        "zone": zone, "position": {"x": x, "y": y, "z": z}, "created_at": createdAt,
    }


def _txn_characters(cursor, accountId):
    rows = cursor.execute(
        f"SELECT {_CHARACTER_COLUMNS} FROM characters "
        "WHERE account_id = ? AND deleted_at IS NULL ORDER BY id",
        (accountId,),
    ).fetchall()
    return [characterJSON(r) for r in rows]


def releasedName(characterId):
    """The C{name_lower} of a deleted character whose name is free again."""
    return f"~{characterId}"


def _txn_createCharacter(cursor, accountId, name, cls, zone, spawn, now, limit,
                         releaseBefore):
    """
    @return: ("ok", character dict), ("limit", None) or ("taken", None).
    @raise mmoshard.store.errors.IntegrityError: a concurrent create took
        the name first.
    """
    lock = " FOR UPDATE" if cursor.dialect == "mysql" else ""
    # Serialises creations per account so two at once cannot pass the limit.
    cursor.execute(f"SELECT id FROM accounts WHERE id = ?{lock}", (accountId,))
    count = cursor.execute(
        "SELECT COUNT(*) FROM characters WHERE account_id = ? AND deleted_at IS NULL",
        (accountId,),
    ).fetchone()[0]
    if count >= limit:
        return "limit", None
    lower = name.lower()
    held = cursor.execute(
        "SELECT id, deleted_at FROM characters WHERE name_lower = ?", (lower,)
    ).fetchone()
    if held is not None:
        heldId, deletedAt = held
        if deletedAt is None or deletedAt > releaseBefore:
            return "taken", None
        # Deleted long enough ago: the name is free; the old row keeps its
        # display name for an operator, under a placeholder key.
        cursor.execute(
            "UPDATE characters SET name_lower = ? WHERE id = ?",
            (releasedName(heldId), heldId),
        )
    x, y, z = spawn
    cursor.execute(
        "INSERT INTO characters (account_id, name, name_lower, class, level, exp, "
        "zone, x, y, z, created_at) VALUES (?, ?, ?, ?, 1, 0, ?, ?, ?, ?, ?)",
        (accountId, name, lower, cls, zone, x, y, z, now),
    )
    row = cursor.execute(
        f"SELECT {_CHARACTER_COLUMNS} FROM characters WHERE id = ?", (cursor.lastrowid,)
    ).fetchone()
    return "ok", characterJSON(row)


def _txn_deleteCharacter(cursor, accountId, characterId, now):
    """Soft-delete; @return: True when the account had that live character."""
    cursor.execute(
        "UPDATE characters SET deleted_at = ? "
        "WHERE id = ? AND account_id = ? AND deleted_at IS NULL",
        (now, characterId, accountId),
    )
    return cursor.rowcount == 1


def _txn_restoreCharacter(cursor, characterId):
    """
    Undo a soft delete (operators).

    @return: "ok", "missing" (no such deleted character) or "taken" (its
        name was freed and someone took it: rename first).
    """
    row = cursor.execute(
        "SELECT name, name_lower FROM characters WHERE id = ? AND deleted_at IS NOT NULL",
        (characterId,),
    ).fetchone()
    if row is None:
        return "missing"
    name, lower = row
    if cursor.execute(
        "SELECT 1 FROM characters WHERE name_lower = ? AND id <> ?",
        (name.lower(), characterId),
    ).fetchone():
        return "taken"
    cursor.execute(
        "UPDATE characters SET deleted_at = NULL, name_lower = ? WHERE id = ?",
        (name.lower(), characterId),
    )
    return "ok"


__all__ = ["AccountRow", "RefreshResult", "characterJSON"]
