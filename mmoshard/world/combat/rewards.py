"""Open-world rewards: a dead NPC's exp, split within parties, and personal loot for the players on its threat table, granted exactly once."""

import hashlib
import math
import secrets
from collections import OrderedDict

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.logger import Logger

from mmoshard.store.errors import StoreError
from mmoshard.world.grants import ExpGrant, ItemGrant, grantMany
from mmoshard.world.sim import NPC, PLAYER

# Party members within this many metres of the corpse (same zone) share its exp.
PARTY_RANGE = 100.0
# A grant the database refused for an outage is tried this many times in
# all, waiting GRANT_BACKOFF seconds, then twice as long each time.
GRANT_TRIES = 4
GRANT_BACKOFF = 1.0
# The ledger's idem_key column holds 128 characters.
MAX_KEY = 128
# Deaths remembered, so a death reported twice is rewarded (and told) once.
SEEN_DEATHS = 10_000
# Grants written in one transaction at most (GrantQueue).
BATCH = 200


def baseExp(npc):
    """The exp an NPC type gives: its C{exp}, else C{45 + 5 * level} (a same-level kill)."""
    return npc.exp or 45 + 5 * npc.level


def greyGap(level):
    """How many levels above an NPC a player of C{level} may be before it is grey (gives nothing)."""
    return 5 + level // 10


def levelFactor(playerLevel, npcLevel):
    """
    What a player of C{playerLevel} gets of an NPC of C{npcLevel}'s exp:
    5 % more per level the NPC is above (at most 20 %), less in proportion
    to the levels the player is above, nothing from a grey NPC
    (C{playerLevel - npcLevel >= greyGap(playerLevel)}).
    """
    gap = playerLevel - npcLevel
    grey = greyGap(playerLevel)
    if gap >= grey:
        return 0.0
    if gap > 0:
        return 1.0 - gap / grey
    return 1.0 + 0.05 * min(-gap, 4)


def rollLoot(table, rng):
    """
    Roll loot table C{table} (L{LootEntry}s) once with C{rng}: each line
    drops with its chance, C{min}..C{max} of it.

    @return: {item id: count}, in the table's order (lines of one item summed).
    """
    dropped = {}
    for entry in table:
        if rng.random() < entry.chance:
            dropped[entry.item] = dropped.get(entry.item, 0) + rng.randint(entry.min, entry.max)
    return dropped


def fitKey(key):
    """C{key} itself when the ledger holds it, else a prefix and its digest (the same key each time)."""
    if len(key) <= MAX_KEY:
        return key
    return key[:MAX_KEY - 41] + "#" + hashlib.sha256(key.encode()).hexdigest()[:40]


class Death:
    """One NPC's death, as the listener saw it: what its rewards need once the parties are known."""

    __slots__ = ("zone", "npcId", "npc", "spawnId", "deathNo", "x", "z", "levels")

    def __init__(self, zone, npcId, npc, spawnId, deathNo, x, z, levels):
        self.zone = zone
        self.npcId = npcId  # the entity id (world.loot's "from")
        self.npc = npc  # its NpcType
        self.spawnId = spawnId
        self.deathNo = deathNo
        self.x = x
        self.z = z
        self.levels = levels  # character id -> level, of the players on its threat table


class GrantQueue:
    """
    Group commit of the rewards' grants: a grant is written at once when no
    write is in flight; the grants asked for meanwhile (the rest of a
    tick's deaths, or of a busy second) wait and go together in the next
    write, one transaction of up to L{BATCH} (L{grantMany}: each exactly
    once under its key, a refused one failing alone).

    @ivar writes: the writes started (one transaction each, unless one
        failed and its grants were tried one by one).
    """

    def __init__(self, progression):
        self.progression = progression
        self.pending = []
        self.writing = False
        self.writes = 0

    def submit(self, grant):
        """@return: a Deferred firing with C{grant}'s result (as grantExp or addItem answer)."""
        d = Deferred()
        self.pending.append((grant, d))
        if not self.writing:
            self._write()
        return d

    def _write(self):
        batch, self.pending = self.pending[:BATCH], self.pending[BATCH:]
        if not batch:
            self.writing = False
            return
        self.writing = True
        self.writes += 1
        outs = grantMany(self.progression, [g for g, _ in batch])
        left = [len(batch)]

        def done(result):
            left[0] -= 1
            if not left[0]:
                self._write()
            return result

        for (_, d), out in zip(batch, outs):
            out.addBoth(done).chainDeferred(d)


class Rewards:
    """
    The death listener of every zone's combat: when an NPC dies, the players
    on its threat table get its exp (each party's share split equally among
    its members in the zone within L{PARTY_RANGE} of the corpse; a player
    without a party gets it whole) and each rolls its loot table once
    (personal loot, with the zone's rng).  Every grant goes through
    L{IProgression} with an idempotency key made of the NPC's spawn id, this
    process's C{bootId} and the NPC's death number, so a retry never doubles
    and a restart never collides; a grant the database refused is retried a
    few times (same key), and the service's L{Tasks} keep it until it ends.
    Grants are written through a L{GrantQueue}: those of deaths close in
    time share a transaction.

    @ivar parties: the L{IParties}, or None (everyone is solo).
    @ivar roster: the L{Roster}: who is live where, to tell and to split with.
    @ivar bootId: this process's id in the keys (random when not given).
    """

    log = Logger()

    def __init__(self, progression, parties, roster, tasks, clock, bootId=None):
        self.progression = progression
        self.parties = parties
        self.roster = roster
        self.tasks = tasks
        self.clock = clock
        # Random per process (no I/O): a restart's death numbers never meet an older run's.
        self.bootId = bootId or secrets.token_hex(6)
        self.seen = OrderedDict()
        self.queue = GrantQueue(progression)
        # Grants (an exp share or a loot item) done and given up, for /metrics.
        self.granted = 0
        self.failed = 0

    def attach(self, zone):
        """Reward the deaths of C{zone}'s combat (C{zone.combat}; none: nothing to reward)."""
        if zone.combat is None:
            return
        zone.combat.deathListeners.append(lambda victim, killer: self.onDeath(zone, victim, killer))

    # --- the listener (synchronous, in the combat tick) -----------------------------

    def onDeath(self, zone, victim, killer):
        """An entity died in C{zone}: when it was an NPC, roll its loot and start its grants."""
        c = victim.combat
        if victim.kind != NPC or c is None or c.threat is None:
            return
        ai = victim.ai
        if ai is not None and ai.encounter is not None:
            return  # a boss (or its add): its encounter rewards the kill, in one transaction
        players = [e for e, _ in c.threat.entries() if e.kind == PLAYER]
        if killer is not None and killer.kind == PLAYER and killer not in players:
            players.append(killer)
        if not players:
            return
        spawnId = ai.spawnId if ai is not None else f"{zone.id}:{victim.id}"
        deathNo = c.deaths
        seen = self.seen
        if (spawnId, deathNo) in seen:
            return
        seen[(spawnId, deathNo)] = None
        if len(seen) > SEEN_DEATHS:
            seen.popitem(last=False)
        players.sort(key=lambda e: e.id)  # the rng's draws in a stable order
        rng = zone.combat.rng
        npc = c.kit
        loot = {e.id: rollLoot(npc.loot, rng) for e in players}
        death = Death(zone, victim.id, npc, spawnId, deathNo, victim.x, victim.z,
                      {e.id: e.level for e in players})
        self.tasks.track(Deferred.fromCoroutine(self.reward(death, loot)))

    # --- the grants ---------------------------------------------------------------

    async def reward(self, death, loot):
        """Grant C{death}'s exp (after the party lookups) and C{loot} ({character id: {item: count}})."""
        tasks = self.tasks
        for cid, items in loot.items():
            if items:
                tasks.track(Deferred.fromCoroutine(self.grantLoot(death, cid, items)))
        for cid, amount in (await self.shares(death)).items():
            if amount > 0:
                key = fitKey(f"kill:{death.spawnId}:{self.bootId}:{death.deathNo}")
                tasks.track(Deferred.fromCoroutine(self.grant(death, ExpGrant(cid, amount, key))))

    async def shares(self, death):
        """
        @return: {character id: exp}: each party with members on the threat
            table (or player without one) shares the NPC's exp equally among
            its members on the table and those live in the zone within
            L{PARTY_RANGE} of the corpse, each share scaled by
            L{levelFactor} of that member's level.
        """
        base = baseExp(death.npc)
        levels = dict(death.levels)
        groups = []
        grouped = set()
        for cid in sorted(death.levels):
            if cid in grouped:
                continue
            members = [cid]
            party = await self._partyMembers(cid)
            if party:
                members = [m for m in party if m not in grouped
                           and (m in death.levels or self._present(m, death, levels))]
                if cid not in members:
                    members.append(cid)
            grouped.update(members)
            groups.append(members)
        shares = {}
        for members in groups:
            each = base / len(members)
            for m in members:
                shares[m] = int(each * levelFactor(levels[m], death.npc.level))
        return shares

    async def _partyMembers(self, cid):
        """@return: the members of C{cid}'s party, or None (no party, no IParties, or it failed)."""
        parties = self.parties
        if parties is None:
            return None
        try:
            party = await parties.partyOf(cid)
            return None if party is None else await parties.members(party)
        except Exception as e:
            # Chat being down costs a party its split, never the kill's exp.
            self.log.warn("party of character {character_id} unknown, rewarded solo: {why}",
                          character_id=cid, why=e)
            return None

    def _present(self, cid, death, levels):
        """True when C{cid} is live in the death's zone within range of the corpse (its level noted)."""
        player = self.roster.byCharacter.get(cid)
        if player is None or player.state != "live" or player.zone is not death.zone:
            return False
        e = player.entity
        if math.hypot(e.x - death.x, e.z - death.z) > PARTY_RANGE:
            return False
        levels[cid] = e.level
        return True

    async def grantLoot(self, death, cid, items):
        """Add C{items} to C{cid}'s inventory, one grant per item (asked for together), then tell it with world.loot."""
        got = []
        stacks = death.zone.combat.data.items
        grants = []
        for item, count in items.items():
            key = fitKey(f"loot:{death.spawnId}:{self.bootId}:{death.deathNo}:{item}")
            spec = stacks.get(item)
            stack = spec.stack if spec is not None and spec.stack > 0 else None
            g = ItemGrant(cid, item, count, key, stack)
            grants.append((g, Deferred.fromCoroutine(self.grant(death, g))))
        for g, d in grants:
            item, count, key = g.itemId, g.count, g.key
            slot = await d
            if slot is not None:
                # What an operator greps for when a player says the loot never came.
                self.log.info("character {character_id} looted {count} {item} into slot {slot} "
                              "from spawn {spawn_id} ({key})", character_id=cid, count=count,
                              item=item, slot=slot, spawn_id=death.spawnId, key=key)
                got.append({"item": item, "count": count, "slot": slot})
        player = self.roster.byCharacter.get(cid)
        if got and player is not None:
            player.session.send("world.loot", {"from": death.npcId, "items": got})

    async def grant(self, death, grant):
        """
        Write C{grant} (an L{ExpGrant} or L{ItemGrant}) through the queue,
        again after a store outage, up to L{GRANT_TRIES} times.
        @return: its result, or None when it failed (logged with the ids to grep).
        """
        cid, key = grant.characterId, grant.key
        delay = GRANT_BACKOFF
        for attempt in range(1, GRANT_TRIES + 1):
            try:
                result = await self.queue.submit(grant)
            except StoreError as e:
                if attempt == GRANT_TRIES:
                    why = e
                    break
                self.log.info("reward {key} for character {character_id} (spawn {spawn_id}): "
                              "try {attempt} failed, again in {delay}s: {why}", key=key,
                              character_id=cid, spawn_id=death.spawnId, attempt=attempt,
                              delay=delay, why=e)
                await deferLater(self.clock, delay, lambda: None)
                delay *= 2
            except Exception as e:  # a full inventory, a deleted character: not transient
                why = e
                break
            else:
                self.granted += 1
                return result
        self.failed += 1
        self.log.error("reward {key} for character {character_id} (spawn {spawn_id}) "
                       "failed: {why}", key=key, character_id=cid, spawn_id=death.spawnId,
                       why=why)
        return None
