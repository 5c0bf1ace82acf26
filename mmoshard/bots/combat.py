"""A W2 bot's combat decisions, free of sockets: what it sees, which NPC it fights, where it walks, what it casts."""

import math
import struct

import attrs

from mmoshard.world.combat import errors
from mmoshard.world.combat.records import (
    AURA_ON, CAST_FINISH, CAST_START, DAMAGE, DEATH, EVADE, HEAL, HEALTH, RECORD, RECORD_SIZE,
    RESOURCE, REVIVE)

NPC_BASE = 2 ** 31  # NPC entity ids start here (docs/combat.md)
MOVE_RECORD = struct.Struct("<IffhhI")
# What a bot casts in its rotation; interrupts (need a caster to stop) and
# resurrections (need a corpse) are left out.
ATTACK_KINDS = ("damage", "debuff", "taunt")
SELF_KINDS = ("buff", "shield")
CAST_EVERY = 1.5  # seconds between two casts of one bot (W2: "about every 1.5 s")
HEAL_BELOW = 0.9  # a healer heals the most hurt ally below this share of its health
# Metres a bot stays inside an ability's range: its view of positions is a
# tick old, the server's of its own position too, and the target moves.
MARGIN = 2.5
COOLDOWN_SLACK = 0.25  # seconds: a tick and a round trip, so a cooldown is not retried too soon
REPLY_TIMEOUT = 5.0  # seconds: a cast unanswered (or without effect) that long is given up
# The records that show a cast's effect, all with the caster in field a: a
# cast time starts (CAST_START), an instant lands (DAMAGE, HEAL, AURA_ON,
# or at least its CAST_FINISH).
EFFECT_KINDS = frozenset((CAST_START, CAST_FINISH, DAMAGE, HEAL, AURA_ON))


@attrs.frozen
class Ability:
    """What a bot needs to know of one ability of its kit."""

    id: str
    num: int
    kind: str
    target: str
    range: float = 0.0
    radius: float = 0.0
    cast: float = 0.0
    cooldown: float = 0.0
    gcd: float = 1.5
    cost: int = 0
    duration: float = 0.0

    @classmethod
    def fromSpec(cls, spec):
        """From an L{mmoshard.world.combat.data.AbilitySpec}."""
        return cls(spec.id, spec.num, spec.kind, spec.target, spec.range, spec.radius, spec.cast,
                   spec.cooldown, spec.gcd, spec.cost, spec.duration)

    @classmethod
    def fromReply(cls, d, spec=None):
        """
        From one entry of the world.enter reply's C{combat.abilities}: what
        it names wins, the rest comes from C{spec} (the game data) when given.
        """
        base = cls.fromSpec(spec) if spec is not None else cls(d["id"], 0, "damage", "enemy")
        fields = {}
        for name in ("num", "kind", "target", "range", "radius", "cast", "cooldown", "gcd",
                     "cost", "duration"):
            if name in d:
                fields[name] = d[name]
        for name in ("cast", "cooldown", "gcd", "duration"):
            if f"{name}_ms" in d:
                fields[name] = d[f"{name}_ms"] / 1000.0
        return attrs.evolve(base, **fields)

    @property
    def lock(self):
        """Seconds before a bot casts it again: its cooldown, or while its effect lasts."""
        return max(self.cooldown, self.duration)


@attrs.frozen
class Kit:
    """A class's rotation as a bot plays it: heals, self buffs, attacks, each in bar order."""

    cls: str
    heals: tuple
    buffs: tuple
    attacks: tuple

    @classmethod
    def build(cls, clsName, abilities):
        """From the class's L{Ability}s in bar order."""
        return cls(
            clsName,
            tuple(a for a in abilities if a.kind == "heal" and a.target in ("ally", "self")),
            tuple(a for a in abilities if a.kind in SELF_KINDS and a.target == "self"),
            tuple(a for a in abilities if a.kind in ATTACK_KINDS and a.target in ("enemy", "area")))

    @property
    def reach(self):
        """Metres from the target a fighter walks to: every attack reaches from there."""
        ranges = [reachOf(a) for a in self.attacks]
        return max(1.0, min(ranges) - MARGIN) if ranges else 1.0


def reachOf(a):
    """How far from its target C{a} lands: its range, or its radius when centred on the caster."""
    return a.range if a.range > 0 or a.target != "area" else a.radius


class Seen:
    """An entity in view: where it was last seen and its health."""

    __slots__ = ("x", "z", "hp", "hpMax", "dead", "evading")

    def __init__(self, x, z, hp=None, hpMax=None, dead=False):
        self.x = x
        self.z = z
        self.hp = hp
        self.hpMax = hpMax
        self.dead = dead
        self.evading = False

    def hurt(self):
        """Share of its health it has (1.0 when unknown)."""
        if self.hp is None or not self.hpMax:
            return 1.0
        return self.hp / self.hpMax


@attrs.frozen
class Effect:
    """A cast of this bot whose effect arrived: the ability's number, the record kind, seconds it took."""

    num: int
    kind: int
    latency: float


class Fighter:
    """
    One fighting bot's mind.  It reads every world.u (L{update}) to know the
    NPCs and players in view with their health; L{decide} says, for its
    position now, whether it wanders (no NPC in view), walks to its target,
    stands, or casts what; the bot reports what the server answered
    (L{accepted}, L{refused}) and the effects of its casts come back from
    the combat records (L{effects}, with their latency from the request).

    @ivar healer: heals the most hurt ally in range before anything else.
    @ivar readyAt: ability id -> when its cooldown (or effect) ends, as far
        as this bot knows.
    """

    def __init__(self, cid, kit, healer=False):
        self.cid = cid
        self.kit = kit
        self.healer = healer and bool(kit.heals)
        self.npcs = {}
        self.players = {}
        self.target = None
        self.reach = kit.reach
        self.readyAt = {}
        self.nextCast = 0.0
        self.busyUntil = 0.0  # a cast with a cast time is running: stand still
        self.waiting = None  # (request id, ability, sent at, target) awaiting its reply
        self.pending = {}  # ability number -> when its request went out, until its effect shows
        self.effects = []
        self.expired = 0  # casts accepted whose effect never showed
        self.kills = 0  # NPC deaths it saw itself deal
        self.hp = None
        self.hpMax = None
        self.res = None  # unknown until a RESOURCE record: costs are not checked
        self.dead = False
        self.events = 0

    # --- what it sees --------------------------------------------------------------

    def update(self, m, now):
        """Take in one decoded world.u: enters, leaves, moves, combat records."""
        for rec in m.get("e", ()):
            self.enter(rec)
        for eid in m.get("l", ()):
            self.npcs.pop(eid, None)
            self.players.pop(eid, None)
            if eid == self.target:
                self.target = None
        blob = m.get("m")
        if blob:
            self.moves(blob)
        c = m.get("c")
        if c:
            self.combat(c, now)

    def enter(self, rec):
        """One enter record [id, kind, name, cls, level, x, y, z, vx, vz, hp?, hp_max?, dead?, evading?]."""
        eid = rec[0]
        if eid == self.cid:
            return
        hp = hpMax = None
        dead = False
        if len(rec) >= 13:
            hp, hpMax, dead = rec[10], rec[11], bool(rec[12])
        seen = Seen(rec[5], rec[7], hp, hpMax, dead)
        if len(rec) >= 14:
            seen.evading = bool(rec[13])
        (self.npcs if rec[1] == "n" else self.players)[eid] = seen

    def moves(self, blob):
        """Positions of NPCs (and of players, for a healer) from the packed move records."""
        if self.healer:
            npcs, players = self.npcs, self.players
            for eid, x, z, _, _, _ in MOVE_RECORD.iter_unpack(blob):
                seen = npcs.get(eid) if eid >= NPC_BASE else players.get(eid)
                if seen is not None:
                    seen.x = x
                    seen.z = z
            return
        # The top byte of each little-endian id: NPC ids have its high bit.
        high = blob[3::20]
        if not high or max(high) < 0x80:
            return
        npcs = self.npcs
        unpack = MOVE_RECORD.unpack_from
        for i, b in enumerate(high):
            if b & 0x80:
                eid, x, z, _, _, _ = unpack(blob, i * 20)
                seen = npcs.get(eid)
                if seen is not None:
                    seen.x = x
                    seen.z = z

    def combat(self, blob, now):
        """Health, deaths, revivals, evades, own resource; the effects of its own casts."""
        cid = self.cid
        pending = self.pending
        self.events += len(blob) // RECORD_SIZE
        for kind, _, ability, a, b, value in RECORD.iter_unpack(blob):
            if a == cid and pending and kind in EFFECT_KINDS:
                sent = pending.pop(ability, None)
                if sent is not None:
                    self.effects.append(Effect(ability, kind, now - sent))
            if kind == HEALTH:
                seen = self.lookup(a)
                if seen is not None:
                    seen.hp, seen.hpMax = value, b
                elif a == cid:
                    self.hp, self.hpMax = value, b
            elif kind == DEATH or kind == REVIVE:
                alive = kind == REVIVE
                if not alive and a == cid and b >= NPC_BASE:
                    self.kills += 1
                hp = value if alive else 0
                seen = self.lookup(b)
                if seen is not None:
                    seen.dead, seen.hp = not alive, hp
                    if alive:
                        seen.evading = False
                    if not alive and b == self.target:
                        self.target = None
                elif b == cid:
                    self.dead, self.hp = not alive, hp
                    if not alive:
                        self.target = None
                        self.pending.clear()
            elif kind == EVADE:
                seen = self.npcs.get(a)
                if seen is not None:
                    seen.evading = value == 1
                    if seen.evading and a == self.target:
                        self.target = None
            elif kind == RESOURCE and a == cid:
                self.res = value

    def lookup(self, eid):
        return self.npcs.get(eid) if eid >= NPC_BASE else self.players.get(eid)

    # --- what it does ------------------------------------------------------------------

    def choose(self, x, z):
        """@return: the id of the nearest living NPC not walking home (the lowest id of equals), or None."""
        best = None
        bestD = math.inf
        for eid, seen in self.npcs.items():
            if seen.dead or seen.evading:
                continue
            d = (seen.x - x) ** 2 + (seen.z - z) ** 2
            if d < bestD or (d == bestD and eid < best):
                best, bestD = eid, d
        return best

    def mostHurt(self, x, z, heal):
        """
        @return: the id of the ally (itself included) most hurt under
            L{HEAL_BELOW} in C{heal}'s range (the lowest id of equals), or None.
        """
        best = None
        share = HEAL_BELOW
        if not self.dead and self.hp is not None and self.hpMax and self.hp / self.hpMax < share:
            best, share = self.cid, self.hp / self.hpMax
        if heal.target == "self":
            return best
        r2 = heal.range * heal.range
        for eid, seen in self.players.items():
            s = seen.hurt()
            if ((s < share or (s == share and best is not None and eid < best)) and not seen.dead
                    and (seen.x - x) ** 2 + (seen.z - z) ** 2 <= r2):
                best, share = eid, s
        return best

    def usable(self, a, now):
        return self.readyAt.get(a.id, 0.0) <= now and (self.res is None or a.cost <= self.res)

    def decide(self, x, z, moving, now):
        """
        What to do at (x, z) now: C{("idle",)} nothing to fight (wander),
        C{("walk", tx, tz)} towards the target, C{("stand",)} stop or stay,
        C{("cast", ability, targetId or None, x or None, z or None)}.
        A cast is only decided standing, off its cooldown and this bot's
        cast interval, and with no earlier request unanswered.
        """
        if self.dead:
            return ("stand",)
        if self.waiting is not None and now - self.waiting[2] > REPLY_TIMEOUT:
            self.waiting = None
        self.expire(now)
        free = now >= self.nextCast and now >= self.busyUntil and self.waiting is None
        if self.healer and free:
            for heal in self.kit.heals:
                if self.usable(heal, now):
                    ally = self.mostHurt(x, z, heal)
                    if ally is not None:
                        return ("stand",) if moving else ("cast", heal, ally, None, None)
        target = self.target
        seen = self.npcs.get(target) if target is not None else None
        if seen is None or seen.dead or seen.evading:
            self.target = target = self.choose(x, z)
            self.reach = self.kit.reach
            if target is None:
                return ("stand",) if now < self.busyUntil else ("idle",)
            seen = self.npcs[target]
        d = math.hypot(seen.x - x, seen.z - z)
        if now < self.busyUntil:
            return ("stand",)
        if d > self.reach:
            return ("walk", seen.x, seen.z)
        if moving:
            return ("stand",)
        if not free:
            return ("stand",)
        for a in self.kit.buffs:
            if self.usable(a, now):
                return ("cast", a, None, None, None)
        for a in self.kit.attacks:
            if self.usable(a, now) and d <= reachOf(a) - 0.5:
                if a.target == "area":
                    if a.range > 0:
                        return ("cast", a, None, seen.x, seen.z)
                    return ("cast", a, None, None, None)
                return ("cast", a, target, None, None)
        return ("stand",)

    def expire(self, now):
        """Give up on effects that never showed (the target left the view, the cast was interrupted)."""
        if self.pending:
            for num, sent in list(self.pending.items()):
                if now - sent > REPLY_TIMEOUT:
                    del self.pending[num]
                    self.expired += 1

    # --- what the server said ---------------------------------------------------------

    def sent(self, requestId, ability, now, target=None):
        """A world.cast for C{ability} (at entity C{target}) went out now."""
        self.waiting = (requestId, ability, now, target)
        self.nextCast = now + max(CAST_EVERY, ability.gcd)
        lock = ability.lock
        # The server starts a cooldown when the cast finishes: after its cast
        # time, and an instant at the next combat tick.
        self.readyAt[ability.id] = now + ability.cast + lock + COOLDOWN_SLACK if lock else now
        self.pending[ability.num] = now

    def accepted(self, requestId, castMs, now):
        """The server started the cast (C{castMs} of cast time). @return: the ability, or None."""
        if self.waiting is None or self.waiting[0] != requestId:
            return None
        ability = self.waiting[1]
        self.waiting = None
        if castMs:
            self.busyUntil = now + castMs / 1000.0 + 0.1
            self.nextCast = max(self.nextCast, self.busyUntil)
        return ability

    def refused(self, requestId, code, retryAfter, now):
        """The server refused the cast with C{code}. @return: the ability, or None."""
        if self.waiting is None or self.waiting[0] != requestId:
            return None
        _, ability, _, target = self.waiting
        self.waiting = None
        self.pending.pop(ability.num, None)
        if code == errors.ON_COOLDOWN:
            wait = retryAfter if retryAfter is not None else 1.0
            self.readyAt[ability.id] = now + wait
            self.nextCast = now  # it did not happen: the next ability of the bar may go
        elif code == errors.OUT_OF_RANGE:
            # Its view of the positions is off: go closer to this target.
            self.reach = max(1.0, self.reach - 1.5)
            self.nextCast = now
        elif code == errors.INVALID_TARGET:
            # Dead (its DEATH record is on its way) or immune: an NPC walking
            # home since before it came into view (its enter record does not
            # say so).  It counts as evading until an EVADE or REVIVE record.
            seen = self.npcs.get(target) if target is not None else None
            if seen is not None:
                seen.evading = True
            if target == self.target:
                self.target = None
            self.nextCast = now
        elif code == errors.NO_RESOURCE:
            self.readyAt[ability.id] = now + 3.0
            self.nextCast = now
        elif code == errors.BUSY:
            self.nextCast = now + 0.5
        elif code == errors.DEAD:
            self.dead = True
        return ability

    def revived(self):
        """It lives again (released at the graveyard)."""
        self.dead = False
        self.target = None
