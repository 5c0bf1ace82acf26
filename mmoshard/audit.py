"""The account audit trail (account_events) every role writes operator actions to, and its latest rows for the operator console."""

import attrs

# The longest detail the column holds (VARCHAR(255)); longer ones are cut.
DETAIL_MAX = 255
# The most rows one read of the trail returns.
RECENT_MAX = 500


@attrs.frozen
class AuditEvent:
    """One row of the trail, as the operator console shows it."""

    id: int
    at: float
    account_id: int | None
    kind: str
    ip: str | None
    detail: str | None

    def toJSON(self):
        return attrs.asdict(self)


def txnEvent(cursor, accountId, kind, ip, now, detail=None):
    """
    Append one row to the trail inside the caller's transaction.

    @param accountId: the account it concerns, or None (an action on the
        whole shard: a maintenance window, an announcement).
    """
    if detail is not None:
        detail = detail[:DETAIL_MAX]
    cursor.execute(
        "INSERT INTO account_events (at, account_id, kind, ip, detail) "
        "VALUES (?, ?, ?, ?, ?)",
        (now, accountId, kind, ip, detail),
    )


def _txnRecent(cursor, limit, account):
    if account is None:
        rows = cursor.execute(
            "SELECT id, at, account_id, kind, ip, detail FROM account_events "
            "ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    else:
        rows = cursor.execute(
            "SELECT id, at, account_id, kind, ip, detail FROM account_events "
            "WHERE account_id = ? ORDER BY id DESC LIMIT ?", (account, limit)).fetchall()
    return [AuditEvent(int(r[0]), float(r[1]), None if r[2] is None else int(r[2]), r[3],
                       r[4], r[5]) for r in rows]


async def recordEvent(sql, accountId, kind, ip, now, detail=None):
    """Append one row to the trail in a transaction of its own on C{sql} (an L{ISQLStore})."""
    await sql.runInteraction(txnEvent, accountId, kind, ip, now, detail)


async def recentEvents(sql, limit=50, account=None):
    """
    @return: the latest L{AuditEvent}s, newest first, at most C{limit}
        (capped at L{RECENT_MAX}); only C{account}'s when given.
    """
    return await sql.runInteraction(_txnRecent, max(1, min(int(limit), RECENT_MAX)), account)


def actorOf(claims):
    """
    @return: who an operator action is by, as the trail's detail and the
        logs spell it: C{"operator NAME (account ID)"} for an operator
        logged in to the admin site, C{"admin-site"} on a loopback admin site
        (whoever can reach it is trusted: docs/operations.md).
    """
    if claims is None:
        return "admin-site"
    return f"operator {claims.username or '?'} (account {claims.account_id})"


__all__ = ["AuditEvent", "txnEvent", "recordEvent", "recentEvents", "actorOf", "DETAIL_MAX",
           "RECENT_MAX"]
