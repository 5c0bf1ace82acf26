"""The SQL rows of instances (table `instances`): created with a deployment-unique auto-increment id, moved to an adopting node, closed, re-opened for its lockouts."""

import attrs


@attrs.frozen
class InstanceRow:
    """One row of C{instances}: C{closed_at} is None while the instance is open."""

    id: int
    template: str
    node_id: str
    party_id: str | None
    created_at: float
    closed_at: float | None


_COLUMNS = "id, template, node_id, party_id, created_at, closed_at"


def _row(r):
    return InstanceRow(int(r[0]), r[1], r[2], r[3], float(r[4]),
                       None if r[5] is None else float(r[5]))


def _txn_create(cursor, template, nodeId, partyId, now):
    cursor.execute(
        "INSERT INTO instances (template, node_id, party_id, created_at) VALUES (?, ?, ?, ?)",
        (template, nodeId, partyId, now),
    )
    return int(cursor.lastrowid)


def createInstance(sql, template, nodeId, partyId, now):
    """Insert an open instance hosted by C{nodeId}. @return: a Deferred firing with its new id."""
    return sql.runInteraction(_txn_create, template, nodeId, partyId, now)


def _txn_load(cursor, instanceId):
    r = cursor.execute(f"SELECT {_COLUMNS} FROM instances WHERE id = ?", (instanceId,)).fetchone()
    return None if r is None else _row(r)


def loadInstance(sql, instanceId):
    """@return: a Deferred firing with the L{InstanceRow} of C{instanceId}, or None."""
    return sql.runInteraction(_txn_load, instanceId)


def _txn_moveOpen(cursor, instanceId, nodeId):
    cursor.execute("UPDATE instances SET node_id = ? WHERE id = ? AND closed_at IS NULL",
                   (nodeId, instanceId))
    return _txn_load(cursor, instanceId)


def adoptInstance(sql, instanceId, nodeId):
    """
    Record that C{nodeId} hosts open instance C{instanceId} now (a
    closed one is left as it is).

    @return: a Deferred firing with the row after it, or None.
    """
    return sql.runInteraction(_txn_moveOpen, instanceId, nodeId)


def _txn_reopen(cursor, instanceId, nodeId, now):
    cursor.execute(
        "UPDATE instances SET node_id = ?, created_at = ?, closed_at = NULL "
        "WHERE id = ? AND closed_at IS NOT NULL AND EXISTS ("
        "SELECT 1 FROM instance_lockouts WHERE instance_id = ? AND reset_at > ?)",
        (nodeId, now, instanceId, instanceId, now),
    )
    if cursor.rowcount > 0:
        return _txn_load(cursor, instanceId), True
    # Open already (its host is gone: an adoption), or closed for good.
    return _txn_moveOpen(cursor, instanceId, nodeId), False


def reopenInstance(sql, instanceId, nodeId, now):
    """
    Record that C{nodeId} hosts instance C{instanceId} now, re-opening it
    (C{closed_at} back to NULL, C{created_at} set to C{now}: its
    C{max_duration} counts from the re-opening) when it is closed and a
    lockout on it runs at C{now}; an open one is moved as by
    L{adoptInstance}; a closed one without a running lockout is left as it is.

    @return: a Deferred firing with C{(row after it or None, re-opened?)}.
    """
    return sql.runInteraction(_txn_reopen, instanceId, nodeId, now)


def _txn_close(cursor, instanceId, now):
    cursor.execute("UPDATE instances SET closed_at = ? WHERE id = ? AND closed_at IS NULL",
                   (now, instanceId))
    return cursor.rowcount > 0


def closeInstance(sql, instanceId, now):
    """Mark C{instanceId} closed at C{now}. @return: a Deferred firing with True if it was open."""
    return sql.runInteraction(_txn_close, instanceId, now)


def _txn_open(cursor):
    rows = cursor.execute(
        f"SELECT {_COLUMNS} FROM instances WHERE closed_at IS NULL ORDER BY id").fetchall()
    return [_row(r) for r in rows]


def openInstances(sql):
    """@return: a Deferred firing with the L{InstanceRow}s of every open instance, by id."""
    return sql.runInteraction(_txn_open)
