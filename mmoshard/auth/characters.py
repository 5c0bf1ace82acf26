"""The auth role's SQL for characters: L{CharacterStore}, each method one transaction."""

from mmoshard.store.errors import IntegrityError

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
    @return: ("ok", character dict), ("exists", character dict) when this
        account's live character already has this name and class (a retry
        of a creation that was applied: its answer again), ("limit", None)
        or ("taken", None).
    @raise mmoshard.store.errors.IntegrityError: a concurrent create took
        the name first.
    """
    lock = " FOR UPDATE" if cursor.dialect == "mysql" else ""
    # Serialises creations per account so two at once cannot pass the limit.
    cursor.execute(f"SELECT id FROM accounts WHERE id = ?{lock}", (accountId,))
    lower = name.lower()
    # The name first: a retried creation finds its character before the
    # limit it may have reached.
    held = cursor.execute(
        "SELECT id, deleted_at, account_id, class FROM characters WHERE name_lower = ?",
        (lower,),
    ).fetchone()
    if held is not None:
        heldId, deletedAt, heldAccount, heldClass = held
        if deletedAt is None and heldAccount == accountId and heldClass == cls:
            row = cursor.execute(
                f"SELECT {_CHARACTER_COLUMNS} FROM characters WHERE id = ?", (heldId,)
            ).fetchone()
            return "exists", characterJSON(row)
        if deletedAt is None or deletedAt > releaseBefore:
            return "taken", None
    count = cursor.execute(
        "SELECT COUNT(*) FROM characters WHERE account_id = ? AND deleted_at IS NULL",
        (accountId,),
    ).fetchone()[0]
    if count >= limit:
        return "limit", None
    if held is not None:
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


def _txn_owner(cursor, characterId):
    row = cursor.execute("SELECT account_id, name FROM characters WHERE id = ?",
                         (characterId,)).fetchone()
    return None if row is None else (int(row[0]), row[1])


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



class CharacterStore:
    """An account's characters in SQL; each method runs one transaction on C{sql}."""

    def __init__(self, sql):
        self.sql = sql

    async def ofAccount(self, accountId):
        """@return: the live characters of C{accountId} as JSON objects, oldest first."""
        return await self.sql.runInteraction(_txn_characters, accountId)

    async def create(self, accountId, name, cls, zone, spawn, now, limit, releaseBefore):
        """
        Create a character at C{spawn} in C{zone}, unless the account has
        C{limit} already or the name (ignoring case) is held by a character
        that is live or was deleted after C{releaseBefore}.

        @return: ("ok", character JSON), ("exists", character JSON) for a
            retry (this account's live character of that name and class),
            ("limit", None) or ("taken", None).
        """
        try:
            return await self.sql.runInteraction(_txn_createCharacter, accountId, name, cls,
                                                 zone, spawn, now, limit, releaseBefore)
        except IntegrityError:
            # A concurrent create took the name first.
            return "taken", None

    async def delete(self, accountId, characterId, now):
        """Soft-delete; @return: True when the account had that live character."""
        return await self.sql.runInteraction(_txn_deleteCharacter, accountId, characterId,
                                             now)

    async def owner(self, characterId):
        """@return: (account id, name) of character C{characterId} (deleted or not), or None."""
        return await self.sql.runInteraction(_txn_owner, characterId)

    async def restore(self, characterId):
        """
        Undo a soft delete (operators).

        @return: "ok", "missing" (no such deleted character) or "taken" (its
            name was freed and someone took it: rename first).
        """
        return await self.sql.runInteraction(_txn_restoreCharacter, characterId)
