"""A raid bot party's decisions, free of sockets: who pulls and taunts, whom the others attack and heal, wipes, kills, when to leave."""

import math

import attrs

from mmoshard.bots.combat import HEAL_BELOW, NPC_BASE, REPLY_TIMEOUT, Fighter, reachOf
from mmoshard.world.combat.records import CAST_START, DAMAGE, DEATH, EVADE, RECORD, REVIVE

TANK, HEALER, DAMAGE_ROLE = "tank", "healer", "damage"
PARTY_ROLES = (TANK, HEALER, DAMAGE_ROLE, DAMAGE_ROLE, DAMAGE_ROLE)
# Metres from the tank an idle member stands: melee and casters close behind,
# the healer back, inside every heal's range of everyone.
FOLLOW = {HEALER: 15.0, DAMAGE_ROLE: 5.0}
# The healer's thresholds (share of health): a heal over time below
# HEAL_BELOW (0.9, as W2's healers), a direct heal below DIRECT_BELOW, or
# below DIRECT_ANYWAY when no heal over time is ready.
DIRECT_BELOW = 0.6
DIRECT_ANYWAY = 0.75
GATHER = 30.0  # metres: the tank pulls only with every member alive and this close
ARRIVED = 4.0  # metres from a waypoint at which the tank counts it visited
HOLD = 30.0  # metres short of the next waypoint the tank waits for a party not gathered
LOOT_WAIT = 8.0  # seconds after the last kill before leaving without everyone's world.loot
# world.encounter events (docs/instances.md, "Encounters").
PULL, KILL, RESET = "pull", "kill", "reset"


class RaidFighter(Fighter):
    """
    One party member's mind: a L{Fighter} whose target comes from its role.

      - The tank (the party's leader) takes an NPC hitting another member
        first, taunting it off them; then what it already fights; then,
        when the party is gathered (L{PartyMind.readyToPull}), the nearest
        living NPC (the pull). With nothing in view it walks the route.
      - Damage dealers attack the party's focus (L{PartyMind.focus}).
      - The healer heals the most hurt member, sparing its mana (heals over
        time first, direct heals when it is badly hurt: L{heal}), and never
        attacks: its mana is for heals.

    A member without a target follows the tank (L{PartyMind.idle}).
    """

    def __init__(self, cid, kit, role, party):
        taunts = tuple(a for a in kit.attacks if a.kind == "taunt")
        if role == TANK:
            # The taunt is cast on purpose (an NPC hitting someone else), not in the rotation.
            kit = attrs.evolve(kit, attacks=tuple(a for a in kit.attacks if a.kind != "taunt"))
        elif role == HEALER:
            kit = attrs.evolve(kit, attacks=())
        Fighter.__init__(self, cid, kit, healer=role == HEALER)
        self.role = role
        self.party = party
        self.taunt = taunts[0] if taunts and role == TANK else None
        self.aggro = {}  # NPC id -> the member it last hit or cast at (tracked by the tank)
        self.hit = set()  # NPCs the tank has damaged since they last reset

    def combat(self, blob, now):
        Fighter.combat(self, blob, now)
        if self.role != TANK:
            return
        members = self.party.cids
        aggro = self.aggro
        for kind, _, _, a, b, value in RECORD.iter_unpack(blob):
            if a >= NPC_BASE:
                if (kind == DAMAGE or kind == CAST_START) and b in members:
                    aggro[a] = b
                elif kind == EVADE and value == 1:
                    aggro.pop(a, None)
                    self.hit.discard(a)
            elif kind == DAMAGE and a == self.cid:
                self.hit.add(b)
            if (kind == DEATH or kind == REVIVE) and b >= NPC_BASE:
                aggro.pop(b, None)
                self.hit.discard(b)

    def live(self, eid):
        """@return: the L{Seen} NPC C{eid} when alive and not evading, else None."""
        seen = self.npcs.get(eid)
        if seen is None or seen.dead or seen.evading:
            return None
        return seen

    def loose(self, x, z):
        """@return: the nearest live NPC whose last blow went to a member other than the tank, or None."""
        best, bestD = None, math.inf
        for eid, victim in self.aggro.items():
            if victim == self.cid:
                continue
            seen = self.live(eid)
            if seen is not None:
                d = (seen.x - x) ** 2 + (seen.z - z) ** 2
                if d < bestD:
                    best, bestD = eid, d
        return best

    def engaged(self, x, z):
        """@return: the nearest live NPC fighting the party (its last blow at a member), or None."""
        best, bestD = None, math.inf
        for eid in self.aggro:
            seen = self.live(eid)
            if seen is not None:
                d = (seen.x - x) ** 2 + (seen.z - z) ** 2
                if d < bestD:
                    best, bestD = eid, d
        return best

    def choose(self, x, z):
        if self.role == TANK:
            eid = self.loose(x, z) or self.engaged(x, z)
            if eid is None and self.party.readyToPull():
                eid = Fighter.choose(self, x, z)
            return eid
        if self.role == HEALER:
            return None
        return self.inView(self.party.focus())

    def inView(self, eid):
        """C{eid} when that NPC is alive and in this member's own view (the tank sees farther ahead), else None."""
        return eid if eid is not None and self.live(eid) is not None else None

    def decide(self, x, z, moving, now):
        """L{Fighter.decide} with the role's target; C{("idle",)}: see L{PartyMind.idle}."""
        if self.dead:
            return ("stand",)
        role = self.role
        if role == TANK:
            loose = self.loose(x, z)
            if loose is not None and (self.target is None or self.aggro.get(self.target)
                                      in (None, self.cid)):
                self.target = loose
                self.reach = self.kit.reach
            act = self.tauntNow(x, z, moving, now)
            if act is not None:
                return act
        elif role == HEALER:
            return self.heal(x, z, moving, now)
        else:
            focus = self.inView(self.party.focus())
            if focus != self.target:
                self.target = focus
                self.reach = self.kit.reach
        return Fighter.decide(self, x, z, moving, now)

    def heal(self, x, z, moving, now):
        """
        The healer's turn, sparing its mana: the most hurt member in range
        below L{HEAL_BELOW} gets a heal over time (not one already on a
        cooldown or running), and a direct heal only below L{DIRECT_BELOW}
        (or below L{DIRECT_ANYWAY} with no heal over time ready); it never
        attacks. @return: an act, C{("idle",)} when it has nothing to do.
        """
        if self.waiting is not None and now - self.waiting[2] > REPLY_TIMEOUT:
            self.waiting = None
        self.expire(now)
        if now < self.busyUntil or self.waiting is not None:
            return ("stand",)  # moving would interrupt the cast it asked for
        if now < self.nextCast:
            return ("idle",)
        heals = self.kit.heals
        reach = max((h.range for h in heals), default=0.0)
        ally, share = self.hurt(x, z, reach)
        if ally is None:
            return ("idle",)
        hots = [h for h in heals if h.duration > 0]
        direct = [h for h in heals if h.duration <= 0]
        if share < DIRECT_BELOW:
            order = direct + hots
        else:
            order = hots + (direct if share < DIRECT_ANYWAY else [])
        d = self.distanceTo(ally, x, z)
        for h in order:
            if self.usable(h, now) and (h.target == "self" and ally == self.cid or d <= h.range):
                return ("stand",) if moving else ("cast", h, ally, None, None)
        return ("idle",)

    def hurt(self, x, z, reach):
        """@return: (id, share of health) of the member in C{reach} most hurt below L{HEAL_BELOW}, itself included; (None, 1.0)."""
        best, share = None, HEAL_BELOW
        if self.hp is not None and self.hpMax and self.hp / self.hpMax < share:
            best, share = self.cid, self.hp / self.hpMax
        r2 = reach * reach
        for eid, seen in self.players.items():
            s = seen.hurt()
            if s < share and not seen.dead and (seen.x - x) ** 2 + (seen.z - z) ** 2 <= r2:
                best, share = eid, s
        return (best, share) if best is not None else (None, 1.0)

    def distanceTo(self, eid, x, z):
        if eid == self.cid:
            return 0.0
        seen = self.players.get(eid)
        return math.hypot(seen.x - x, seen.z - z) if seen is not None else math.inf

    def tauntNow(self, x, z, moving, now):
        """The tank's taunt at its target when that hits someone else and the taunt is ready. @return: an act or None."""
        taunt = self.taunt
        target = self.target
        if taunt is None or target is None or self.aggro.get(target) in (None, self.cid):
            return None
        seen = self.live(target)
        if seen is None or not self.usable(taunt, now):
            return None
        if math.hypot(seen.x - x, seen.z - z) > reachOf(taunt) - 0.5:
            return None
        if now < self.busyUntil or self.waiting is not None or now < self.nextCast:
            return None
        if moving:
            return ("stand",)
        return ("cast", taunt, target, None, None)

    def forget(self):
        """A new zone: nothing it saw is there any more."""
        self.npcs.clear()
        self.players.clear()
        self.aggro.clear()
        self.hit.clear()
        self.target = None
        self.pending.clear()
        self.waiting = None
        self.busyUntil = 0.0


@attrs.define
class Member:
    """What the party knows of one member: its slot, role, character, where it is, its mind."""

    slot: int
    role: str
    cid: int = 0
    x: float = 0.0
    z: float = 0.0
    inside: bool = False
    fighter: RaidFighter | None = None

    @property
    def dead(self):
        return self.fighter is not None and self.fighter.dead


class PartyMind:
    """
    A party of five inside one instance: its members (L{Member}, the tank
    first), the bosses it still has to kill, its encounters as the
    C{world.encounter} events tell them, wipes (every member dead at once),
    and the route the tank walks when it sees nothing to fight.

    @ivar bosses: encounter ids of the template's bosses (empty: unknown,
        the party leaves when it has killed one and sees no living NPC).
    @ivar killed: encounter ids killed in this instance.
    """

    def __init__(self, bosses=(), route=()):
        self.members = []
        self.cids = frozenset()
        self.bosses = tuple(bosses)
        self.route = tuple(route)
        self.reset()

    def reset(self):
        """A fresh instance: nothing killed, the route not walked, nobody inside."""
        self.killed = set()
        self.encounters = {}  # boss -> (phase, health) from the last world.encounter
        self.pulledAt = {}  # boss -> when its fight started
        self.visited = set()
        self.wiped = False
        self.lastKill = None
        self.looted = set()  # members told their world.loot since the last kill
        self.newKills = []  # (boss, fight seconds or None) for the bot to count
        self.wipes = 0
        self.resets = 0

    def setMembers(self, members):
        self.members = list(members)
        self.cids = frozenset(m.cid for m in self.members if m.cid)

    @property
    def tank(self):
        """The tank's L{RaidFighter}, or None."""
        for m in self.members:
            if m.role == TANK:
                return m.fighter
        return None

    def tankMember(self):
        for m in self.members:
            if m.role == TANK:
                return m
        return None

    # --- fighting --------------------------------------------------------------------

    def readyToPull(self):
        """True when every member is inside, alive and within L{GATHER} metres of the tank."""
        tank = self.tankMember()
        if tank is None:
            return False
        for m in self.members:
            if not m.inside or m.fighter is None or m.dead:
                return False
            if math.hypot(m.x - tank.x, m.z - tank.z) > GATHER:
                return False
        return True

    def focus(self):
        """
        What the damage dealers attack: the live NPC fighting the party with
        the least health (adds before the boss); else the tank's target
        once the tank has hit it (a pull in progress). @return: an id or None.
        """
        tank = self.tank
        if tank is None:
            return None
        best, bestHp = None, math.inf
        for eid in tank.aggro:
            seen = tank.live(eid)
            if seen is not None:
                hp = seen.hp if seen.hp is not None else math.inf
                if hp < bestHp or best is None:
                    best, bestHp = eid, hp
        if best is not None:
            return best
        target = tank.target
        if target is not None and target in tank.hit and tank.live(target) is not None:
            return target
        return None

    def idle(self, member, now):
        """
        Where C{member}, with no target, goes: C{("walk", x, z)} or
        C{("stand",)}. Others follow the tank; the tank walks to the next
        waypoint of the route: a pack's place until it has been there, a
        boss's until the boss is dead (after a wipe it goes back to it);
        with the party not gathered it stops L{HOLD} metres short of it
        (out of the NPCs' reach) and waits there for the others, who follow
        it from wherever they are (the graveyard, after a release).
        """
        if member.role != TANK:
            tank = self.tankMember()
            if tank is None or not tank.inside:
                return ("stand",)
            keep = FOLLOW.get(member.role, 5.0)
            d = math.hypot(tank.x - member.x, tank.z - member.z)
            if d > keep + 2.0:
                # Stop short of the tank, on the line from here.
                f = (d - keep) / d
                return ("walk", member.x + (tank.x - member.x) * f, member.z + (tank.z - member.z) * f)
            return ("stand",)
        ready = self.readyToPull()
        for i, (wx, wz, boss) in enumerate(self.route):
            d = math.hypot(wx - member.x, wz - member.z)
            if boss is not None:
                # A boss's place is done when the boss is dead; until then
                # the tank goes there and waits (it may be walking home).
                if boss in self.killed:
                    continue
                if d <= ARRIVED:
                    return ("stand",)
            elif i in self.visited:
                continue
            elif d <= ARRIVED:
                self.visited.add(i)
                continue
            if ready:
                return ("walk", wx, wz)
            # Not gathered (someone dead, or far behind): go on, but wait out
            # of the next pack's or boss's reach for the others.
            if d > HOLD + 1.0:
                f = (d - HOLD) / d
                return ("walk", member.x + (wx - member.x) * f, member.z + (wz - member.z) * f)
            return ("stand",)
        return ("stand",)

    # --- what the server tells ---------------------------------------------------------

    def encounter(self, m, now):
        """
        A C{world.encounter {boss, event, phase, health, ...}} event (every
        member gets a copy). A kill is recorded once per boss and instance;
        a fight starts at its C{pull} (or the first event seen of an
        engaged boss) and ends at its C{kill} or C{reset}.
        @return: "pull", "kill", "reset" or None.
        """
        boss = m.get("boss")
        event = m.get("event")
        self.encounters[boss] = (m.get("phase"), m.get("health"))
        if boss in self.killed:
            return None
        if event == KILL:
            self.killed.add(boss)
            start = self.pulledAt.pop(boss, None)
            self.lastKill = now
            self.looted = set()
            self.newKills.append((boss, now - start if start is not None else None))
            return "kill"
        if event == RESET:
            if self.pulledAt.pop(boss, None) is None:
                return None
            self.resets += 1
            return "reset"
        if boss not in self.pulledAt:
            self.pulledAt[boss] = now
            return "pull" if event == PULL else None
        return None

    def deaths(self):
        """After a member's death or revival: a wipe is every member dead at once. @return: True on a new wipe."""
        if not self.members:
            return False
        if all(m.dead for m in self.members):
            if not self.wiped:
                self.wiped = True
                self.wipes += 1
                return True
            return False
        self.wiped = False
        return False

    def lootFor(self, cid):
        """Member C{cid} got its world.loot for the last kill."""
        self.looted.add(cid)

    def cleared(self):
        """True when every boss of the template is dead (or, bosses unknown, one is and no living NPC is in view)."""
        if self.bosses:
            return set(self.bosses) <= self.killed
        tank = self.tank
        return bool(self.killed) and tank is not None and not any(
            not s.dead for s in tank.npcs.values())

    def shouldLeave(self, now):
        """True once cleared and every member inside got its loot, or L{LOOT_WAIT} passed since the last kill."""
        if not self.cleared():
            return False
        inside = {m.cid for m in self.members if m.inside}
        if inside <= self.looted:
            return True
        return self.lastKill is None or now - self.lastKill >= LOOT_WAIT


def route(spec):
    """
    The waypoints of template C{spec} (an InstanceSpec) in the order the
    tank walks them: from the entrance, the nearest pack or boss left next.
    @return: a tuple of (x, z, boss id or None for a pack).
    """
    points = [(p.at[0], p.at[1], None) for p in getattr(spec, "packs", ())]
    points += [(b.at[0], b.at[1], b.id) for b in spec.bosses]
    spawns = getattr(spec.layout, "spawns", None) or ()
    here = (spawns[0][0], spawns[0][2]) if spawns else (0.0, 0.0)
    out = []
    while points:
        nxt = min(points, key=lambda p: (p[0] - here[0]) ** 2 + (p[1] - here[1]) ** 2)
        points.remove(nxt)
        out.append(nxt)
        here = nxt[:2]
    return tuple(out)


def roleKit(kit, role):
    """A kit fit for C{role}; None when a damage dealer or tank has no attack, or a healer no heal."""
    if kit is None:
        return None
    if role == HEALER:
        return kit if kit.heals else None
    return kit if any(a.kind != "taunt" for a in kit.attacks) else None

