"""Character persistence: loading, batched position saves, and IProgression written through with idempotency keys."""

import json

import attrs
from zope.interface import implementer

from mmoshard.interfaces import IProgression

INVENTORY_SLOTS = 64
MAX_LEVEL = 60


class NoSuchItem(ValueError):
    """The slot does not hold the item (or not as many as asked)."""


class InventoryFull(ValueError):
    """No room for the items added (nothing was added)."""


class BadSlot(ValueError):
    """A slot number outside 0..INVENTORY_SLOTS - 1."""


def expForLevel(level):
    """Exp needed to go from C{level} to C{level + 1}."""
    return 100 * level * level


@attrs.frozen
class CharacterRow:
    """What the world needs of a character row."""

    id: int
    account_id: int
    name: str
    cls: str
    level: int
    exp: int
    zone: str
    x: float
    y: float
    z: float


def _txn_loadCharacter(cursor, characterId):
    cursor.execute(
        "SELECT id, account_id, name, class, level, exp, zone, x, y, z FROM characters "
        "WHERE id = ? AND deleted_at IS NULL",
        (characterId,),
    )
    row = cursor.fetchone()
    if row is None:
        return None
    return CharacterRow(int(row[0]), int(row[1]), row[2], row[3], int(row[4]), int(row[5]),
                        row[6], float(row[7]), float(row[8]), float(row[9]))


# Rows per statement when saving positions on MySQL.
_SAVE_CHUNK = 500


def _txn_savePositions(cursor, rows):
    """C{rows}: (zone, x, y, z, character id) tuples, all in this one transaction."""
    if cursor.dialect != "mysql":
        # sqlite3's executemany runs in C without round trips.
        cursor.executemany("UPDATE characters SET zone = ?, x = ?, y = ?, z = ? WHERE id = ?",
                           rows)
        return len(rows)
    # pymysql's executemany would send one UPDATE (one round trip, and pure
    # Python work holding the GIL) per row; one joined UPDATE per chunk
    # does the same in a statement.
    for i in range(0, len(rows), _SAVE_CHUNK):
        chunk = rows[i:i + _SAVE_CHUNK]
        values = " UNION ALL ".join(
            ["SELECT ? AS id, ? AS zone, ? AS x, ? AS y, ? AS z"]
            + ["SELECT ?, ?, ?, ?, ?"] * (len(chunk) - 1)
        )
        params = []
        for zone, x, y, z, cid in chunk:
            params += (cid, zone, x, y, z)
        cursor.execute(
            f"UPDATE characters c JOIN ({values}) v ON c.id = v.id "
            "SET c.zone = v.zone, c.x = v.x, c.y = v.y, c.z = v.z",
            params,
        )
    return len(rows)


def loadCharacter(sql, characterId):
    """@return: a Deferred firing with a L{CharacterRow} or None."""
    return sql.runInteraction(_txn_loadCharacter, characterId)


def savePositions(sql, rows):
    """Save many positions in one transaction. @return: a Deferred firing with the count."""
    return sql.runInteraction(_txn_savePositions, list(rows))


# --- progression -------------------------------------------------------------


_MISSING = object()


def _ledgerResult(cursor, characterId, key):
    cursor.execute(
        "SELECT result FROM progression_ledger WHERE character_id = ? AND idem_key = ?",
        (characterId, key),
    )
    row = cursor.fetchone()
    return _MISSING if row is None else json.loads(row[0])


def ledgerResult(cursor, characterId, key, default=None):
    """
    @return: the result recorded under C{key} for C{characterId} by an
        earlier change (as the change answered it, JSON-decoded: a list for
        a tuple), or C{default} when no change was recorded under it.
    """
    done = _ledgerResult(cursor, characterId, key)
    return default if done is _MISSING else done


def _record(cursor, characterId, key, kind, result, now):
    cursor.execute(
        "INSERT INTO progression_ledger (character_id, idem_key, kind, result, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (characterId, key, kind, json.dumps(result), now),
    )


def _lockCharacter(cursor, characterId, dialect):
    # Row lock on MySQL so concurrent grants serialise; SQLite has one writer.
    lock = " FOR UPDATE" if dialect == "mysql" else ""
    cursor.execute(
        "SELECT level, exp FROM characters WHERE id = ? AND deleted_at IS NULL" + lock,
        (characterId,),
    )
    row = cursor.fetchone()
    if row is None:
        raise KeyError(f"no character {characterId}")
    return int(row[0]), int(row[1])


def grantExpIn(cursor, characterId, amount, key, now):
    """
    L{Progression.grantExp} inside the caller's transaction (C{cursor}):
    the exp and its ledger row commit or roll back with the rest of it.
    @return: C{(level, exp)} after the grant (the first result when C{key}
        was recorded already: nothing changes).
    @raise KeyError: no such character (or deleted): nothing was written for
        it, the transaction may go on.
    @raise ValueError: a bad key or amount (nothing written).
    """
    checkKey(key)
    checkAmount(amount)
    return _txn_grantExp(cursor, cursor.dialect, characterId, amount, key, now)


def addItemIn(cursor, characterId, itemId, count, key, now, slot=None, stack=None):
    """
    L{Progression.addItem} inside the caller's transaction (C{cursor}).
    @return: the first slot the items went to (the first result when C{key}
        was recorded already: nothing changes).
    @raise InventoryFull: no room (nothing was written for it: the
        transaction may go on).
    @raise KeyError: no such character (or deleted).
    """
    checkKey(key)
    checkCount(count)
    if stack is not None:
        checkCount(stack)
    return _txn_addItem(cursor, cursor.dialect, characterId, itemId, count, key, slot, stack, now)


def levelUp(level, exp, amount):
    """@return: C{(level, exp)} of a character at C{level} with C{exp} given C{amount} more exp."""
    exp += amount
    while level < MAX_LEVEL and exp >= expForLevel(level):
        exp -= expForLevel(level)
        level += 1
    if level >= MAX_LEVEL:
        exp = min(exp, expForLevel(MAX_LEVEL) - 1)
    return level, exp


def _txn_grantExp(cursor, dialect, characterId, amount, key, now):
    level, exp = _lockCharacter(cursor, characterId, dialect)
    done = _ledgerResult(cursor, characterId, key)
    if done is not _MISSING:
        return tuple(done)
    level, exp = levelUp(level, exp, amount)
    cursor.execute("UPDATE characters SET level = ?, exp = ? WHERE id = ?", (level, exp, characterId))
    _record(cursor, characterId, key, "exp", [level, exp], now)
    return level, exp


def _slots(cursor, characterId):
    cursor.execute(
        "SELECT slot, item_id, count FROM inventory WHERE character_id = ?", (characterId,)
    )
    return {int(s): (item, int(n)) for s, item, n in cursor.fetchall()}


def planAdd(slots, itemId, count, slot=None, stack=None):
    """
    Where C{count} of C{itemId} go in an inventory holding C{slots} ({slot:
    (item id, count)}): into C{slot} when given, else onto the item's stacks
    (lowest slot first, each up to C{stack}) and then the first empty slots.

    @return: [(slot, count there before, count put)], the first slot first.
    @raise BadSlot: C{slot} out of range.
    @raise ValueError: C{slot} holds another item.
    @raise InventoryFull: no room for them all.
    """
    if slot is not None:
        if not 0 <= slot < INVENTORY_SLOTS:
            raise BadSlot(f"no slot {slot}")
        item, have = slots.get(slot, (itemId, 0))
        if item != itemId:
            raise ValueError(f"slot {slot} holds {item}")
        if stack is not None and have + count > stack:
            raise InventoryFull(f"slot {slot} holds {have} of {itemId}, at most {stack}")
        return [(slot, have, count)]
    limit = stack or count
    plan = []
    need = count
    for s, (item, have) in sorted(slots.items()):
        if need and item == itemId and (stack is None or have < stack):
            put = need if stack is None else min(need, stack - have)
            plan.append((s, have, put))
            need -= put
    for s in range(INVENTORY_SLOTS):
        if not need:
            break
        if s not in slots:
            put = min(need, limit)
            plan.append((s, 0, put))
            need -= put
    if need:
        raise InventoryFull(f"no room for {count} of {itemId}")
    return plan


def _txn_addItem(cursor, dialect, characterId, itemId, count, key, slot, stack, now):
    _lockCharacter(cursor, characterId, dialect)
    done = _ledgerResult(cursor, characterId, key)
    if done is not _MISSING:
        return done
    plan = planAdd(_slots(cursor, characterId), itemId, count, slot, stack)
    for s, have, put in plan:
        if have:
            cursor.execute(
                "UPDATE inventory SET count = ? WHERE character_id = ? AND slot = ?",
                (have + put, characterId, s),
            )
        else:
            cursor.execute(
                "INSERT INTO inventory (character_id, slot, item_id, count) VALUES (?, ?, ?, ?)",
                (characterId, s, itemId, put),
            )
    slot = plan[0][0]
    _record(cursor, characterId, key, "add", slot, now)
    return slot


def _take(cursor, characterId, slot, have, count):
    """Take C{count} of the C{have} items in C{slot} (the row goes with the last). @return: what is left."""
    if count == have:
        cursor.execute("DELETE FROM inventory WHERE character_id = ? AND slot = ?",
                       (characterId, slot))
    else:
        cursor.execute("UPDATE inventory SET count = ? WHERE character_id = ? AND slot = ?",
                       (have - count, characterId, slot))
    return have - count


def _txn_removeItem(cursor, dialect, characterId, itemId, count, key, now):
    _lockCharacter(cursor, characterId, dialect)
    done = _ledgerResult(cursor, characterId, key)
    if done is not _MISSING:
        return done
    stacks = sorted((s, n) for s, (item, n) in _slots(cursor, characterId).items() if item == itemId)
    total = sum(n for _, n in stacks)
    if total < count:
        raise ValueError(f"character has {total} of {itemId}, not {count}")
    need = count
    for slot, n in reversed(stacks):
        if need == 0:
            break
        take = min(n, need)
        need -= take
        _take(cursor, characterId, slot, n, take)
    _record(cursor, characterId, key, "remove", total - count, now)
    return total - count


def _txn_moveItem(cursor, dialect, characterId, fromSlot, toSlot, key, now):
    _lockCharacter(cursor, characterId, dialect)
    done = _ledgerResult(cursor, characterId, key)
    if done is not _MISSING:
        return None
    for s in (fromSlot, toSlot):
        if type(s) is not int or not 0 <= s < INVENTORY_SLOTS:
            raise BadSlot(f"no slot {s!r}")
    slots = _slots(cursor, characterId)
    a = slots.get(fromSlot)
    b = slots.get(toSlot)
    # Through a slot no one uses, so the primary key holds at every step.
    cursor.execute("UPDATE inventory SET slot = -1 WHERE character_id = ? AND slot = ?",
                   (characterId, fromSlot))
    if b is not None:
        cursor.execute("UPDATE inventory SET slot = ? WHERE character_id = ? AND slot = ?",
                       (fromSlot, characterId, toSlot))
    if a is not None:
        cursor.execute("UPDATE inventory SET slot = ? WHERE character_id = ? AND slot = -1",
                       (toSlot, characterId))
    _record(cursor, characterId, key, "move", None, now)
    return None


def _stack(cursor, characterId, slot):
    if type(slot) is not int or not 0 <= slot < INVENTORY_SLOTS:
        raise BadSlot(f"no slot {slot!r}")
    cursor.execute(
        "SELECT item_id, count FROM inventory WHERE character_id = ? AND slot = ?",
        (characterId, slot),
    )
    row = cursor.fetchone()
    return (None, 0) if row is None else (row[0], int(row[1]))


def _txn_useItem(cursor, dialect, characterId, slot, itemId, key, now):
    _lockCharacter(cursor, characterId, dialect)
    done = _ledgerResult(cursor, characterId, key)
    if done is not _MISSING:
        # Applied by an earlier call: the caller must not apply the effect again.
        return False, done
    item, have = _stack(cursor, characterId, slot)
    if item != itemId or have < 1:
        raise NoSuchItem(f"slot {slot} holds no {itemId}")
    left = _take(cursor, characterId, slot, have, 1)
    _record(cursor, characterId, key, "use", left, now)
    return True, left


def _txn_destroyItem(cursor, dialect, characterId, slot, count, key, now):
    _lockCharacter(cursor, characterId, dialect)
    done = _ledgerResult(cursor, characterId, key)
    if done is not _MISSING:
        return tuple(done)
    item, have = _stack(cursor, characterId, slot)
    if item is None:
        raise NoSuchItem(f"slot {slot} is empty")
    count = have if count is None else count
    if have < count:
        raise NoSuchItem(f"slot {slot} holds {have} of {item}, not {count}")
    left = _take(cursor, characterId, slot, have, count)
    _record(cursor, characterId, key, "destroy", [item, left], now)
    return item, left


def _txn_inventory(cursor, characterId):
    return {s: v for s, v in sorted(_slots(cursor, characterId).items())}


def checkKey(key):
    """@raise ValueError: C{key} is not an idempotency key (a str of 1..128 characters)."""
    if not isinstance(key, str) or not 0 < len(key) <= 128:
        raise ValueError("the idempotency key must be a str of 1..128 characters")


def checkCount(count):
    """@raise ValueError: C{count} is not a positive int."""
    if type(count) is not int or count <= 0:
        raise ValueError("count must be a positive int")


def checkAmount(amount):
    """@raise ValueError: C{amount} is not an int >= 0."""
    if type(amount) is not int or amount < 0:
        raise ValueError("amount must be an int >= 0")


@implementer(IProgression)
class Progression:
    """
    IProgression over the SQL store: each call is one transaction holding
    the change and its ledger row, so a retried key changes nothing.
    C{onChange(characterId, what)} lets the world tell a live player;
    C{onLevel(characterId, level)} follows each exp grant (level-ups).
    """

    def __init__(self, sql, clock, onChange=None, onLevel=None):
        self.sql = sql
        self.clock = clock
        self.onChange = onChange
        self.onLevel = onLevel

    def _run(self, func, characterId, *args):
        d = self.sql.runInteraction(func, self.sql.dialect, characterId, *args, self.clock.seconds())
        if self.onChange is not None:
            d.addCallback(self._changed, characterId)
        return d

    def _changed(self, result, characterId):
        self.onChange(characterId, result)
        return result

    def grantExp(self, characterId, amount, idempotencyKey):
        checkKey(idempotencyKey)
        checkAmount(amount)
        d = self._run(_txn_grantExp, characterId, amount, idempotencyKey)
        if self.onLevel is not None:
            d.addCallback(self._leveled, characterId)
        return d

    def _leveled(self, result, characterId):
        self.onLevel(characterId, result[0])
        return result

    def addItem(self, characterId, itemId, count, idempotencyKey, slot=None, stack=None):
        checkKey(idempotencyKey)
        checkCount(count)
        if stack is not None:
            checkCount(stack)
        return self._run(_txn_addItem, characterId, itemId, count, idempotencyKey, slot, stack)

    def removeItem(self, characterId, itemId, count, idempotencyKey):
        checkKey(idempotencyKey)
        checkCount(count)
        return self._run(_txn_removeItem, characterId, itemId, count, idempotencyKey)

    def moveItem(self, characterId, fromSlot, toSlot, idempotencyKey):
        checkKey(idempotencyKey)
        return self._run(_txn_moveItem, characterId, fromSlot, toSlot, idempotencyKey)

    def useItem(self, characterId, slot, itemId, idempotencyKey):
        checkKey(idempotencyKey)
        return self._run(_txn_useItem, characterId, slot, itemId, idempotencyKey)

    def destroyItem(self, characterId, slot, count, idempotencyKey):
        checkKey(idempotencyKey)
        if count is not None:
            checkCount(count)
        return self._run(_txn_destroyItem, characterId, slot, count, idempotencyKey)

    def inventory(self, characterId):
        """@return: a Deferred firing with {slot: (item id, count)}."""
        return self.sql.runInteraction(_txn_inventory, characterId)

