"""Boss kills written exactly once: the kill record, every present character's lockout, exp and loot in one SQL transaction."""

import json
import random
import time

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.logger import Logger

from mmoshard.store.errors import StoreError
from mmoshard.store.sql import placeholders
from mmoshard.world.combat.rewards import fitKey, rollLoot
from mmoshard.world.progression import InventoryFull, addItemIn, grantExpIn, ledgerResult

# A kill the database refused (an outage, a lost answer) is written again
# with the same seed this many times in all, waiting KILL_BACKOFF seconds,
# then twice as long each time up to KILL_BACKOFF_MAX.
KILL_TRIES = 8
KILL_BACKOFF = 1.0
KILL_BACKOFF_MAX = 30.0

@attrs.frozen
class Kill:
    """
    One boss kill to write: boss C{encounter} of instance C{instance_id}
    (of C{template}) died at C{killed_at} with the characters C{roster}
    (ids, sorted) present; each gets C{exp} and rolls C{loot} (LootEntry)
    with C{random.Random(f"{seed}:{character id}")}, and is bound to the
    instance until C{reset_at}.  C{boss} is the boss's entity id (what
    world.loot's C{from} says).
    """

    instance_id: int
    template: str
    encounter: str
    killed_at: float
    roster: tuple
    seed: str
    exp: int = 0
    loot: tuple = ()
    reset_at: float = 0.0
    boss: int = 0


@attrs.frozen
class Reward:
    """
    What character C{character_id} got of a kill: C{exp} the C{(level,
    exp)} it had after the grant (None: the boss gives none), C{items}
    C{(item, count, slot)} granted, C{lost} C{(item, count)} that did not
    fit in its inventory.
    """

    character_id: int
    exp: tuple | None
    items: tuple
    lost: tuple = ()


@attrs.frozen
class KillResult:
    """
    A written kill, as the database holds it: C{first} is True when this
    write made it (False: it was written before, and this is that first
    result: its seed, time, roster and rewards).  C{bound}: the
    C{(character id, instance id)} of the characters present whom this
    write left out of the roster, bound to another copy of the template.
    """

    first: bool
    seed: str
    killed_at: float
    roster: tuple
    rewards: tuple  # Reward, by character id
    bound: tuple = ()


def expKey(kill, characterId):
    """The ledger key of a kill's exp for one character: C{boss:<instance>:<encounter>:<character>}."""
    return fitKey(f"boss:{kill.instance_id}:{kill.encounter}:{characterId}")


def lootKey(kill, characterId, item):
    """The ledger key of one item of a kill's loot: the exp key and C{:<item>}."""
    return fitKey(f"boss:{kill.instance_id}:{kill.encounter}:{characterId}:{item}")


def rollKill(loot, seed, characterId):
    """@return: {item: count} character C{characterId} rolls of C{loot} with the kill's C{seed} (the same each time)."""
    return rollLoot(loot, random.Random(f"{seed}:{characterId}"))


def _txn_killed(cursor, instanceId):
    cursor.execute("SELECT encounter FROM instance_kills WHERE instance_id = ?", (instanceId,))
    return {row[0] for row in cursor.fetchall()}


def killedEncounters(sql, instanceId):
    """@return: a Deferred firing with the set of encounter ids killed in instance C{instanceId}."""
    return sql.runInteraction(_txn_killed, int(instanceId))


def _living(cursor, roster):
    """
    @return: the characters of C{roster} that exist (not deleted), in its
        order; on MySQL their rows locked, in id order, until the commit:
        two kills with characters in common (two bosses, two copies)
        serialise on them instead of deadlocking on their lockout rows,
        and each reads the lockouts the other wrote (L{_boundElsewhere}).
    """
    if not roster:
        return ()
    marks = placeholders(len(roster))
    lock = " ORDER BY id FOR UPDATE" if cursor.dialect == "mysql" else ""
    cursor.execute(
        f"SELECT id FROM characters WHERE deleted_at IS NULL AND id IN ({marks})" + lock,
        tuple(roster))
    alive = {int(row[0]) for row in cursor.fetchall()}
    return tuple(cid for cid in roster if cid in alive)


def _boundElsewhere(cursor, kill, characterId):
    """
    @return: the id of the other copy of the kill's template the character
        is bound to at the time of the kill, or None.  The entry lets no
        such character in, but one can get in while a kill binding it is
        still being written: it must not be rewarded twice in one lockout.
    """
    # A locking read on MySQL: the last committed lockout, not the snapshot.
    lock = " FOR UPDATE" if cursor.dialect == "mysql" else ""
    cursor.execute(
        "SELECT instance_id, reset_at FROM instance_lockouts WHERE character_id = ? AND template = ?"
        + lock, (characterId, kill.template))
    row = cursor.fetchone()
    if row is None or int(row[0]) == kill.instance_id or float(row[1]) <= kill.killed_at:
        return None
    return int(row[0])


def _txn_writeKill(cursor, kill, stacks, pause, sleep):
    """
    The kill in one transaction: its row first (the primary key: a kill
    written before is answered from the database, nothing written), then
    for each character present its lockout, exp and loot; C{pause} seconds
    slept before the commit (crash tests).

    On MySQL it runs at READ COMMITTED: each read sees what is committed
    (after L{_living} locked the characters: their inventories, ledgers and
    lockouts as the last grant left them, not as a snapshot taken before
    the lock), and no gap locks are taken, so kills of other copies writing
    other characters' lockout, ledger and inventory rows at the same time
    do not deadlock with it.
    """
    if cursor.dialect == "mysql":
        # Before the transaction's first statement: it applies to this one only.
        cursor.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
    cursor.execute(
        "SELECT seed, killed_at, roster FROM instance_kills WHERE instance_id = ? AND encounter = ?",
        (kill.instance_id, kill.encounter),
    )
    row = cursor.fetchone()
    if row is not None:
        return _recorded(cursor, kill, row[0], float(row[1]), tuple(json.loads(row[2])))
    roster = []
    bound = []
    for cid in _living(cursor, kill.roster):
        other = _boundElsewhere(cursor, kill, cid)
        if other is None:
            roster.append(cid)
        else:
            bound.append((cid, other))
    roster = tuple(roster)
    cursor.execute(
        "INSERT INTO instance_kills (instance_id, encounter, killed_at, roster, seed) "
        "VALUES (?, ?, ?, ?, ?)",
        (kill.instance_id, kill.encounter, kill.killed_at, json.dumps(list(roster)), kill.seed),
    )
    now = kill.killed_at
    rewards = []
    # One upsert, not DELETE + INSERT: on MariaDB the DELETE of an absent
    # row takes a gap lock, and two kills committing at once deadlocked.
    if cursor.dialect == "mysql":
        upsert = "ON DUPLICATE KEY UPDATE instance_id = VALUES(instance_id), reset_at = VALUES(reset_at)"
    else:
        upsert = ("ON CONFLICT (character_id, template) DO UPDATE SET "
                  "instance_id = excluded.instance_id, reset_at = excluded.reset_at")
    for cid in roster:
        cursor.execute(
            "INSERT INTO instance_lockouts (character_id, template, instance_id, reset_at) "
            "VALUES (?, ?, ?, ?) " + upsert,
            (cid, kill.template, kill.instance_id, kill.reset_at),
        )
        exp = None
        if kill.exp > 0:
            exp = tuple(grantExpIn(cursor, cid, kill.exp, expKey(kill, cid), now))
        items = []
        lost = []
        for item, count in rollKill(kill.loot, kill.seed, cid).items():
            spec = stacks.get(item)
            stack = spec.stack if spec is not None and spec.stack > 0 else None
            try:
                slot = addItemIn(cursor, cid, item, count, lootKey(kill, cid, item), now,
                                 stack=stack)
            except InventoryFull:
                lost.append((item, count))  # nothing written for it
                continue
            items.append((item, count, slot))
        rewards.append(Reward(cid, exp, tuple(items), tuple(lost)))
    if pause > 0:
        sleep(pause)
    return KillResult(True, kill.seed, kill.killed_at, roster, tuple(rewards), tuple(bound))


def _recorded(cursor, kill, seed, killedAt, roster):
    """The first result of a kill written before, read back (its loot rolled again from its seed): nothing written."""
    rewards = []
    for cid in roster:
        exp = None
        if kill.exp > 0:
            got = ledgerResult(cursor, cid, expKey(kill, cid))
            exp = tuple(got) if got is not None else None
        items = []
        lost = []
        for item, count in rollKill(kill.loot, seed, cid).items():
            slot = ledgerResult(cursor, cid, lootKey(kill, cid, item))
            if slot is None:
                lost.append((item, count))
            else:
                items.append((item, count, slot))
        rewards.append(Reward(cid, exp, tuple(items), tuple(lost)))
    return KillResult(False, seed, killedAt, roster, tuple(rewards))


class Kills:
    """
    Writes the boss kills of this process's instances, each in one SQL
    transaction (L{_txn_writeKill}), again with the same seed after an
    outage, and tells the players what they got only after the commit.

    @ivar items: item id -> L{ItemSpec} (stack sizes).
    @ivar roster: the L{Roster} (who is live here, to tell), or None.
    @ivar tasks: the service's L{Tasks} (a stopping world waits for writes), or None.
    @ivar pause: seconds each kill transaction sleeps before its commit
        (C{[world] test_pause_kill}: crash tests only; 0 = off).
    """

    log = Logger()

    def __init__(self, sql, clock, items, roster=None, tasks=None, pause=0.0, sleep=time.sleep):
        self.sql = sql
        self.clock = clock
        self.items = items
        self.roster = roster
        self.tasks = tasks
        self.pause = pause
        self.sleep = sleep
        # Kills written and given up, for /metrics.
        self.written = 0
        self.failed = 0

    def write(self, kill):
        """Write C{kill} in the background. @return: a Deferred firing with its L{KillResult}, or None when it was given up."""
        d = Deferred.fromCoroutine(self.record(kill))
        if self.tasks is not None:
            self.tasks.track(d)
        return d

    async def record(self, kill):
        """
        Write C{kill}, up to L{KILL_TRIES} times while the database is
        unavailable (the same seed each time: a rerun rolls the same; a
        write whose answer was lost is answered its first result), then tell
        the players. @return: the L{KillResult}, or None when given up.
        """
        delay = KILL_BACKOFF
        for attempt in range(1, KILL_TRIES + 1):
            try:
                result = await self.sql.runInteraction(
                    _txn_writeKill, kill, self.items, self.pause, self.sleep)
            except StoreError as e:
                # An outage, or a duplicate key: a concurrent write of the
                # same kill committed first (the next try reads it).
                why = e
                if attempt == KILL_TRIES:
                    break
                self.log.info("boss {encounter} of instance {instance_id}: kill write try "
                              "{attempt} failed, again in {delay}s: {why}",
                              encounter=kill.encounter, instance_id=kill.instance_id,
                              attempt=attempt, delay=delay, why=e)
                await deferLater(self.clock, delay, lambda: None)
                delay = min(delay * 2, KILL_BACKOFF_MAX)
            except Exception:
                self.failed += 1
                self.log.failure("boss {encounter} of instance {instance_id}: kill write failed",
                                 encounter=kill.encounter, instance_id=kill.instance_id)
                return None
            else:
                self.written += 1
                self.log.info(
                    "boss {encounter} of instance {instance_id} killed: {count} characters "
                    "rewarded and bound until {reset_at} (seed {seed}, {how})",
                    encounter=kill.encounter, instance_id=kill.instance_id,
                    count=len(result.roster), reset_at=kill.reset_at, seed=result.seed,
                    how="written" if result.first else "written before")
                self.tell(kill, result)
                return result
        self.failed += 1
        self.log.error("boss {encounter} of instance {instance_id}: kill not written after "
                       "{tries} tries: {why}", encounter=kill.encounter,
                       instance_id=kill.instance_id, tries=KILL_TRIES, why=why)
        return None

    def tell(self, kill, result):
        """After the commit: each live player gets world.progress per grant and world.loot with its items."""
        roster = self.roster
        for cid, other in result.bound:
            self.log.warn("character {character_id} not rewarded for boss {encounter} of instance "
                          "{instance_id}: bound to instance {bound_id} until its reset",
                          character_id=cid, encounter=kill.encounter,
                          instance_id=kill.instance_id, bound_id=other)
        for r in result.rewards:
            for item, count, slot in r.items:
                # What an operator greps for when a player says the loot never came.
                self.log.info("character {character_id} looted {count} {item} into slot {slot} "
                              "from boss {encounter} of instance {instance_id} ({key})",
                              character_id=r.character_id, count=count, item=item, slot=slot,
                              encounter=kill.encounter, instance_id=kill.instance_id,
                              key=lootKey(kill, r.character_id, item))
            for item, count in r.lost:
                self.log.warn("character {character_id} lost {count} {item} from boss "
                              "{encounter} of instance {instance_id}: no room",
                              character_id=r.character_id, count=count, item=item,
                              encounter=kill.encounter, instance_id=kill.instance_id)
            if roster is None:
                continue
            cid = r.character_id
            if r.exp is not None:
                roster.progressed(cid, list(r.exp))
                roster.leveled(cid, r.exp[0])
            for _, _, slot in r.items:
                roster.progressed(cid, slot)
            player = roster.byCharacter.get(cid)
            if r.items and player is not None:
                player.session.send("world.loot", {
                    "from": kill.boss,
                    "items": [{"item": i, "count": n, "slot": s} for i, n, s in r.items],
                })
