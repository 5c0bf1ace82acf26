"""Exp and item grants written together: many kills' rewards in one transaction of a few statements, each still exactly once under its own key."""

import json

import attrs
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from mmoshard.store.sql import placeholders
from mmoshard.world.progression import checkAmount, checkCount, checkKey, levelUp, planAdd

log = Logger()


@attrs.frozen
class ExpGrant:
    """C{amount} exp to C{characterId} under idempotency key C{key} (L{Progression.grantExp})."""

    characterId: int
    amount: int
    key: str


@attrs.frozen
class ItemGrant:
    """C{count} of C{itemId} to C{characterId}, in stacks of C{stack}, under C{key} (L{Progression.addItem})."""

    characterId: int
    itemId: str
    count: int
    key: str
    stack: int | None = None


# What a grant is refused for before anything is written for it (no room,
# a bad argument): it fails alone and the batch goes on.
REFUSALS = (KeyError, ValueError)


def checkGrant(g):
    """@raise ValueError: C{g} is not a grant, or has a bad key, amount, count or stack."""
    if type(g) is ExpGrant:
        checkAmount(g.amount)
    elif type(g) is ItemGrant:
        checkCount(g.count)
        if g.stack is not None:
            checkCount(g.stack)
    else:
        raise ValueError(f"not a grant: {g!r}")
    checkKey(g.key)


def _txn_grantMany(cursor, grants, now):
    """
    Every grant of C{grants} in this transaction, as L{Progression.grantExp}
    and L{Progression.addItem} would write them one by one, in a few
    statements whatever their number: the characters' rows locked at once
    (in id order: two batches never wait on each other in a cycle), their
    ledger rows, levels and inventories read at once, the grants applied in
    order in memory (a key found in the ledger, or seen earlier in the
    batch, changes nothing and answers its first result), then the changed
    levels, slots and the new ledger rows written at once.

    @return: per grant, in C{grants}' order, C{(True, result)} or
        C{(False, exception)}: C{KeyError} for a character that is gone,
        C{InventoryFull} (or another L{REFUSALS}) for items that do not fit;
        nothing is written for those.
    """
    mysql = cursor.dialect == "mysql"
    cids = sorted({g.characterId for g in grants})
    cursor.execute(f"SELECT id, level, exp FROM characters WHERE id IN ({placeholders(len(cids))}) "
                   "AND deleted_at IS NULL ORDER BY id" + (" FOR UPDATE" if mysql else ""), cids)
    chars = {int(c): (int(level), int(exp)) for c, level, exp in cursor.fetchall()}
    pairs = sorted({(g.characterId, g.key) for g in grants if g.characterId in chars})
    done = {}
    if pairs:
        # One indexed lookup per key, in one statement.
        cursor.execute(" UNION ALL ".join(
            ["SELECT character_id, idem_key, result FROM progression_ledger "
             "WHERE character_id = ? AND idem_key = ?"] * len(pairs)),
            [v for pair in pairs for v in pair])
        done = {(int(c), k): json.loads(r) for c, k, r in cursor.fetchall()}
    holders = sorted({g.characterId for g in grants if type(g) is ItemGrant and g.characterId in chars})
    inventories = {c: {} for c in holders}
    if holders:
        cursor.execute("SELECT character_id, slot, item_id, count FROM inventory "
                       f"WHERE character_id IN ({placeholders(len(holders))})", holders)
        for c, slot, item, count in cursor.fetchall():
            inventories[int(c)][int(slot)] = (item, int(count))
    before = {c: dict(slots) for c, slots in inventories.items()}
    out, ledger, leveled = [], [], set()
    for g in grants:
        cid = g.characterId
        if cid not in chars:
            out.append((False, KeyError(f"no character {cid}")))
            continue
        if (cid, g.key) in done:
            first = done[(cid, g.key)]
            out.append((True, tuple(first) if type(g) is ExpGrant else first))
            continue
        if type(g) is ExpGrant:
            chars[cid] = level, exp = levelUp(*chars[cid], g.amount)
            leveled.add(cid)
            result, recorded, kind = (level, exp), [level, exp], "exp"
        else:
            slots = inventories[cid]
            try:
                plan = planAdd(slots, g.itemId, g.count, None, g.stack)
            except REFUSALS as e:
                out.append((False, e))
                continue
            for slot, have, put in plan:
                slots[slot] = (g.itemId, have + put)
            result = recorded = plan[0][0]
            kind = "add"
        done[(cid, g.key)] = recorded
        ledger.append((cid, g.key, kind, json.dumps(recorded), now))
        out.append((True, result))
    _writeLevels(cursor, mysql, [(chars[c][0], chars[c][1], c) for c in sorted(leveled)])
    changed = [(c, slot, item, n) for c in holders for slot, (item, n) in sorted(inventories[c].items())
               if before[c].get(slot) != (item, n)]
    _writeSlots(cursor, mysql, [r for r in changed if r[1] in before[r[0]]],
                [r for r in changed if r[1] not in before[r[0]]])
    cursor.executemany("INSERT INTO progression_ledger (character_id, idem_key, kind, result, "
                       "created_at) VALUES (?, ?, ?, ?, ?)", ledger)
    return out


def _writeLevels(cursor, mysql, rows):
    """C{rows}: (level, exp, character id)."""
    if not rows:
        return
    if not mysql:
        cursor.executemany("UPDATE characters SET level = ?, exp = ? WHERE id = ?", rows)
        return
    # pymysql's executemany would send one UPDATE per row: one joined UPDATE instead.
    values = " UNION ALL ".join(["SELECT ? AS id, ? AS level, ? AS exp"]
                                + ["SELECT ?, ?, ?"] * (len(rows) - 1))
    cursor.execute(f"UPDATE characters c JOIN ({values}) v ON c.id = v.id "
                   "SET c.level = v.level, c.exp = v.exp",
                   [v for level, exp, cid in rows for v in (cid, level, exp)])


def _writeSlots(cursor, mysql, updates, inserts):
    """C{updates}, C{inserts}: (character id, slot, item id, count) of slots topped up and filled."""
    if updates:
        if mysql:
            values = " UNION ALL ".join(["SELECT ? AS character_id, ? AS slot, ? AS count"]
                                        + ["SELECT ?, ?, ?"] * (len(updates) - 1))
            cursor.execute(f"UPDATE inventory i JOIN ({values}) v ON i.character_id = v.character_id "
                           "AND i.slot = v.slot SET i.count = v.count",
                           [v for c, slot, _, n in updates for v in (c, slot, n)])
        else:
            cursor.executemany("UPDATE inventory SET count = ? WHERE character_id = ? AND slot = ?",
                               [(n, c, slot) for c, slot, _, n in updates])
    # pymysql sends an INSERT ... VALUES's rows in one statement.
    cursor.executemany("INSERT INTO inventory (character_id, slot, item_id, count) "
                       "VALUES (?, ?, ?, ?)", inserts)


def grantMany(progression, grants):
    """
    Write C{grants} (L{ExpGrant}s, L{ItemGrant}s) with C{progression} (a
    L{Progression}): several in one transaction (L{_txn_grantMany}), one
    with its own call.  A grant refused (no room, no character, a bad
    argument) fails alone; when the transaction itself fails (an outage, a
    deadlock), each grant is written again on its own, one after the other,
    so one grant never loses the others.  The progression's C{onChange} and
    C{onLevel} hear of each grant as they do of its own calls.

    @return: a list of Deferreds, one per grant, each firing with what
        L{Progression.grantExp} or L{Progression.addItem} answers.
    """
    outs = [Deferred() for _ in grants]
    batch = []
    for g, d in zip(grants, outs):
        try:
            checkGrant(g)
        except ValueError:
            d.errback()
        else:
            batch.append((g, d))
    if len(batch) == 1:
        _one(progression, batch[0][0]).chainDeferred(batch[0][1])
    elif batch:
        Deferred.fromCoroutine(_many(progression, batch))
    return outs


def _one(progression, g):
    if type(g) is ExpGrant:
        return progression.grantExp(g.characterId, g.amount, g.key)
    return progression.addItem(g.characterId, g.itemId, g.count, g.key, stack=g.stack)


async def _many(progression, batch):
    try:
        results = await progression.sql.runInteraction(
            _txn_grantMany, [g for g, _ in batch], progression.clock.seconds())
    except Exception as e:
        log.warn("{count} grants in one transaction failed, each on its own now: {why}",
                 count=len(batch), why=e)
        for g, d in batch:
            try:
                result = await _one(progression, g)
            except Exception:
                d.errback()
            else:
                d.callback(result)
        return
    for (g, d), (ok, result) in zip(batch, results):
        if not ok:
            d.errback(result)
            continue
        try:  # as the one-grant calls' callbacks do
            if progression.onChange is not None:
                progression.onChange(g.characterId, result)
            if type(g) is ExpGrant and progression.onLevel is not None:
                progression.onLevel(g.characterId, result[0])
        except Exception:
            d.errback()
        else:
            d.callback(result)
