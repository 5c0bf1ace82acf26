"""Where characters go back to out of an instance (SQL instance_returns), and the lockouts that decide which copy they may enter."""

import attrs


@attrs.frozen
class ReturnPoint:
    """Where a character entered instance C{instance_id} from: C{zone} at (x, y, z)."""

    instance_id: int
    zone: str
    x: float
    y: float
    z: float

    @property
    def arrive(self):
        return (self.x, self.y, self.z)


@attrs.frozen
class Lockout:
    """Character bound to copy C{instance_id} of C{template} until C{reset_at} (epoch seconds)."""

    template: str
    instance_id: int
    reset_at: float


def _txn_saveReturn(cursor, characterId, instanceId, point):
    if point is None:
        # Coming from another instance: the way back stays the open world's.
        cursor.execute("SELECT 1 FROM instance_returns WHERE character_id = ?", (characterId,))
        if cursor.fetchone() is None:
            return False
        cursor.execute("UPDATE instance_returns SET instance_id = ? WHERE character_id = ?",
                       (instanceId, characterId))
        return True
    zone, (x, y, z) = point
    # One upsert, not DELETE + INSERT: on MariaDB the DELETE of an absent
    # row takes a gap lock, and parties entering at once deadlocked (1213).
    if cursor.dialect == "mysql":
        upsert = ("ON DUPLICATE KEY UPDATE instance_id = VALUES(instance_id), zone = VALUES(zone), "
                  "x = VALUES(x), y = VALUES(y), z = VALUES(z)")
    else:
        upsert = ("ON CONFLICT (character_id) DO UPDATE SET instance_id = excluded.instance_id, "
                  "zone = excluded.zone, x = excluded.x, y = excluded.y, z = excluded.z")
    cursor.execute(
        "INSERT INTO instance_returns (character_id, instance_id, zone, x, y, z) "
        "VALUES (?, ?, ?, ?, ?, ?) " + upsert,
        (characterId, instanceId, zone, float(x), float(y), float(z)),
    )
    return True


def saveReturn(sql, characterId, instanceId, point):
    """
    Remember where C{characterId} enters instance C{instanceId} from:
    C{point} is C{(zone, (x, y, z))}; None keeps the point it has (it comes
    from another instance) and only records the new instance.

    @return: a Deferred firing with True when the character has a return point now.
    """
    return sql.runInteraction(_txn_saveReturn, characterId, instanceId, point)


def _txn_loadReturn(cursor, characterId):
    cursor.execute("SELECT instance_id, zone, x, y, z FROM instance_returns WHERE character_id = ?",
                   (characterId,))
    row = cursor.fetchone()
    if row is None:
        return None
    return ReturnPoint(int(row[0]), row[1], float(row[2]), float(row[3]), float(row[4]))


def loadReturn(sql, characterId):
    """@return: a Deferred firing with the character's L{ReturnPoint}, or None."""
    return sql.runInteraction(_txn_loadReturn, characterId)


def _txn_dropReturn(cursor, characterId, instanceId):
    cursor.execute("DELETE FROM instance_returns WHERE character_id = ? AND instance_id = ?",
                   (characterId, instanceId))
    return cursor.rowcount


def dropReturn(sql, characterId, instanceId):
    """
    Forget the return point of C{characterId} out of C{instanceId} (it is
    out): one recorded for a later instance stays.
    """
    return sql.runInteraction(_txn_dropReturn, characterId, instanceId)


def _txn_landAt(cursor, characterId, instanceId, zone, x, y, z):
    cursor.execute("UPDATE characters SET zone = ?, x = ?, y = ?, z = ? WHERE id = ?",
                   (zone, x, y, z, characterId))
    _txn_dropReturn(cursor, characterId, instanceId)


def landAt(sql, characterId, instanceId, zone, arrive):
    """
    Put a character that is not live (its instance C{instanceId} closed)
    at C{zone}, C{arrive} and forget its return point, in one transaction.
    """
    x, y, z = arrive
    return sql.runInteraction(_txn_landAt, characterId, instanceId, zone,
                              float(x), float(y), float(z))


def _txn_lockouts(cursor, characterId, now):
    cursor.execute(
        "SELECT template, instance_id, reset_at FROM instance_lockouts "
        "WHERE character_id = ? AND reset_at > ? ORDER BY template",
        (characterId, now),
    )
    return [Lockout(r[0], int(r[1]), float(r[2])) for r in cursor.fetchall()]


def lockoutsOf(sql, characterId, now):
    """@return: a Deferred firing with the character's L{Lockout}s running at C{now}, by template."""
    return sql.runInteraction(_txn_lockouts, characterId, now)


def _txn_lockout(cursor, characterId, template, now):
    cursor.execute(
        "SELECT instance_id, reset_at FROM instance_lockouts "
        "WHERE character_id = ? AND template = ? AND reset_at > ?",
        (characterId, template, now),
    )
    row = cursor.fetchone()
    return None if row is None else Lockout(template, int(row[0]), float(row[1]))


def lockoutOf(sql, characterId, template, now):
    """@return: a Deferred firing with the L{Lockout} binding the character to a copy of C{template} at C{now}, or None."""
    return sql.runInteraction(_txn_lockout, characterId, template, now)
