"""What combat does to combatants: damage, heals, auras, threat, death, revival and reset (the base of L{Combat})."""

import math

from twisted.logger import Logger

from mmoshard.world.combat import records as R
from mmoshard.world.combat.state import Aura

PLAYERS = "p"
NPCS = "n"

CRIT_FACTOR = 1.5
# In combat until this long after the last damage or heal involving it
# (and while on or holding a threat table): health regeneration waits.
COMBAT_WINDOW = 5.0
# Out of combat, health comes back at this fraction of the maximum per second.
HEALTH_REGEN = 0.02
# Regeneration is applied in pulses this many seconds apart (as WoW's ticks).
REGEN_PERIOD = 1.0
# Float slack for ranges and aura times ("exactly at range" passes).
EPS = 1e-6

_record = R.record
_MAX = 2 ** 31 - 1  # records carry int32 values


def points(amount):
    """@return: C{amount} as whole points in [0, 2**31 - 1] (NaN: 0)."""
    if amount > 0:
        return int(round(amount)) if amount < _MAX else _MAX
    return 0


class Effects:
    """
    The effects half of L{mmoshard.world.combat.system.Combat}: everything
    here changes combatants and emits the records observers see.  Needs
    C{zone}, C{rng}, C{pvp}, C{sides}, C{deathListeners}, C{engageListeners},
    C{active}, C{pending} and C{members} from the subclass.
    """

    log = Logger()

    # --- records ------------------------------------------------------------

    def emit(self, e, kind, a, b, value=0, ability=0, flags=0):
        """Emit one combat record on C{e} (nothing when it has left the zone's space)."""
        if self.zone.entities.get(e.id) is e:
            self.zone.space.event(e, _record(kind, a, b, value, ability, flags))

    def _health(self, e, c):
        self.emit(e, R.HEALTH, e.id, c.hpMax, c.hp)

    def _resource(self, e, c):
        if c.team == PLAYERS:
            self.emit(e, R.RESOURCE, e.id, c.resMax, int(c.res))

    # --- relations ------------------------------------------------------------

    def isEnemy(self, a, b):
        """True when entity C{a} may attack entity C{b}."""
        ac = a.combat
        bc = b.combat
        if ac is None or bc is None or a is b:
            return False
        if ac.team != bc.team:
            return True
        if ac.team != PLAYERS or not self.pvp:
            return False
        sides = self.sides
        if sides is None:
            return True
        # An arena: players of different sides only (one with no side: nobody's).
        sa = sides.get(a.id)
        sb = sides.get(b.id)
        return sa is not None and sb is not None and sa != sb

    def isAlly(self, a, b):
        """True when C{a} may heal or buff C{b}: the same team (in a pvp zone players are both; in an arena, the same side)."""
        ac = a.combat
        bc = b.combat
        if ac is None or bc is None or ac.team != bc.team:
            return False
        sides = self.sides
        if sides is None or ac.team != PLAYERS or a is b:
            return True
        sa = sides.get(a.id)
        return sa is not None and sa == sides.get(b.id)

    def inCombat(self, e, now=None):
        """True while C{e} fights: on or holding a threat table, or within L{COMBAT_WINDOW} of a hit."""
        c = e.combat
        if c is None:
            return False
        if now is None:
            now = self.zone.clock.seconds()
        return bool(c.engaged) or bool(c.threat) or c.combatUntil > now

    def engage(self, npc, entity, threat=0.0):
        """
        Put C{entity} on C{npc}'s threat table (aggro) with C{threat} more:
        both are in combat.  Nothing when either is dead, the NPC evades, or
        they are not enemies.  When the table was empty the engage listeners
        are told C{(npc, entity)}.
        """
        nc = npc.combat
        ec = entity.combat
        if (nc is None or ec is None or nc.threat is None or nc.dead or ec.dead or nc.immune
                or not self.isEnemy(npc, entity)):
            return
        first = not nc.threat.table
        nc.threat.add(entity, threat)
        ec.engaged.add(npc)
        until = self.zone.clock.seconds() + COMBAT_WINDOW
        nc.combatUntil = ec.combatUntil = until
        if first:
            # The NPC was out of the fight: its AI enters combat and calls for help.
            for listener in list(self.engageListeners):
                try:
                    listener(npc, entity)
                except Exception:
                    self.log.failure("zone {zone}: an engage listener failed on NPC {npc_id}",
                                     zone=self.zone.id, npc_id=npc.id)

    def _hostile(self, source, target):
        """C{source} did something hostile to C{target}: both are in combat, an NPC target aggroes."""
        until = self.zone.clock.seconds() + COMBAT_WINDOW
        target.combat.combatUntil = until
        sc = source.combat if source is not None else None
        if sc is None:
            return
        sc.combatUntil = until
        if target.combat.threat is not None:
            if source not in target.combat.threat:
                self.engage(target, source, 0.0)
        elif sc.threat is not None and target not in sc.threat:
            self.engage(source, target, 0.0)

    # --- damage and healing -------------------------------------------------------

    def damage(self, source, target, amount, ability=None, crit=False):
        """Deal damage (mods, absorbs, immunity, threat, death applied). @return: the amount dealt."""
        tc = target.combat
        if tc is None or tc.dead:
            return 0
        sc = source.combat if source is not None else None
        if sc is None:
            source = None
        sid = source.id if source is not None else 0
        num = ability.num if ability is not None else 0
        if tc.immune:
            self.emit(target, R.DAMAGE, sid, target.id, 0, num, R.IMMUNE)
            return 0
        if sc is not None and sc.mods:
            amount *= 1.0 + sc.mods.get("damage_done", 0.0)
        if tc.mods:
            amount *= 1.0 + tc.mods.get("damage_taken", 0.0)
        amount = points(amount)
        flags = R.CRIT if crit else 0
        if amount and tc.absorb > 0:
            absorbed = self._absorb(target, tc, amount)
            if absorbed:
                flags |= R.ABSORBED
                amount -= absorbed
        dealt = amount if amount < tc.hp else tc.hp
        self.emit(target, R.DAMAGE, sid, target.id, dealt, num, flags)
        if dealt:
            tc.hp -= dealt
            self.stats.damage += dealt
            self._health(target, tc)
            self.active.add(target)
        self._hostile(source, target)
        if source is not None and tc.threat is not None:
            self.engage(target, source, dealt * (ability.threat if ability is not None else 1.0))
        if tc.hp == 0:
            self._die(target, source)
        return dealt

    def _absorb(self, target, tc, amount):
        """Shields take C{amount}, oldest first; a spent shield goes. @return: what they absorbed."""
        absorbed = 0
        for key, a in list(tc.auras.items()):
            if a.ability.kind != "shield":
                continue
            take = min(a.amount, amount - absorbed)
            a.amount -= take
            absorbed += take
            if a.amount <= 0:
                self._removeAura(target, key)
            if absorbed >= amount:
                break
        self._recompute(tc)
        return absorbed

    def heal(self, source, target, amount, ability=None, crit=False):
        """Heal (mods, overheal dropped, threat split among the NPCs fighting the target). @return: healed."""
        tc = target.combat
        if tc is None or tc.dead:
            return 0
        sc = source.combat if source is not None else None
        if sc is None:
            source = None
        if tc.mods:
            amount *= 1.0 + tc.mods.get("healing_taken", 0.0)
        amount = points(amount)
        room = tc.hpMax - tc.hp
        healed = amount if amount < room else room
        num = ability.num if ability is not None else 0
        self.emit(target, R.HEAL, source.id if source is not None else 0, target.id, healed, num,
                  R.CRIT if crit else 0)
        if healed:
            tc.hp += healed
            self.stats.healing += healed
            self._health(target, tc)
        if sc is not None and tc.combatUntil > sc.combatUntil:
            # Healing someone in combat puts the healer in combat too.
            sc.combatUntil = tc.combatUntil
        if source is not None and tc.engaged:
            # A heal angers every NPC fighting the one healed, equally.
            npcs = [n for n in tc.engaged if not n.combat.dead]
            if npcs:
                share = healed * (ability.threat if ability is not None else 1.0) / len(npcs)
                for n in npcs:
                    self.engage(n, source, share)
        return healed

    def swing(self, npc, target):
        """An NPC's melee swing at C{target}: its type's damage range. @return: the amount dealt."""
        nc = npc.combat
        tc = target.combat
        if (nc is None or tc is None or nc.team != NPCS or nc.dead or tc.dead or nc.cast is not None
                or not self.isEnemy(npc, target)):
            return 0
        reach = nc.kit.attack_range
        dx = target.x - npc.x
        dz = target.z - npc.z
        if dx * dx + dz * dz > (reach + EPS) * (reach + EPS):
            return 0
        lo, hi = nc.kit.damage
        return self.damage(npc, target, lo + (hi - lo) * self.rng.random())

    # --- auras ----------------------------------------------------------------------

    def addAura(self, bearer, ability, source, amount, crit=False):
        """
        Put C{ability}'s aura from C{source} (an entity or None) on
        C{bearer}: the same ability from the same source refreshes it.
        """
        c = bearer.combat
        now = self.zone.clock.seconds()
        key = (ability.id, source.id if source is not None else 0)
        old = c.auras.pop(key, None)
        expires = now + ability.duration if ability.duration > 0 else math.inf
        nextTick = now + ability.period if ability.period > 0 else None
        c.auras[key] = Aura(ability, key[1], amount, expires, nextTick, crit)
        if old is not None or ability.kind in ("shield", "buff", "debuff"):
            self._recompute(c)
        ms = int(round(ability.duration * 1000)) if ability.duration > 0 else 0
        self.emit(bearer, R.AURA_ON, key[1], bearer.id, ms, ability.num)
        self.active.add(bearer)

    def _removeAura(self, bearer, key):
        c = bearer.combat
        a = c.auras.pop(key, None)
        if a is None:
            return
        self.emit(bearer, R.AURA_OFF, a.source, bearer.id, 0, a.ability.num)
        if a.ability.kind in ("shield", "buff", "debuff"):
            self._recompute(c)

    def _clearAuras(self, e):
        c = e.combat
        for key in list(c.auras):
            self._removeAura(e, key)
        c.mods = {}
        c.absorb = 0.0

    @staticmethod
    def _recompute(c):
        """C{absorb} and C{mods} from the auras borne."""
        absorb = 0.0
        mods = {}
        for a in c.auras.values():
            kind = a.ability.kind
            if kind == "shield":
                absorb += a.amount
            elif kind in ("buff", "debuff") and a.ability.mod:
                mods[a.ability.mod] = mods.get(a.ability.mod, 0.0) + a.ability.magnitude
        c.absorb = absorb
        c.mods = mods

    def _tickAuras(self, e, c, now):
        """Periodic ticks due by C{now} (up to the expiry, inclusive), then expiries."""
        entities = self.zone.entities
        for key, a in list(c.auras.items()):
            if c.auras.get(key) is not a:
                continue
            ab = a.ability
            if a.nextTick is not None:
                while a.nextTick <= now + EPS and a.nextTick <= a.expires + EPS:
                    a.nextTick += ab.period
                    src = entities.get(a.source)
                    if ab.kind == "heal":
                        self.heal(src, e, a.amount, ab, a.crit)
                    else:
                        self.damage(src, e, a.amount, ab, a.crit)
                    if c.dead or c.auras.get(key) is not a:
                        break
                if c.dead:
                    return
            if a.expires <= now + EPS and c.auras.get(key) is a:
                self._removeAura(e, key)

    # --- death, revival, reset ---------------------------------------------------------

    def _die(self, victim, killer):
        """
        C{victim}'s health reached 0: it stops everything, the death
        listeners run (the NPC's threat table still full), then it leaves
        every threat table.
        """
        c = victim.combat
        c.hp = 0
        c.dead = True
        if c.cast is not None:
            self._interrupt(victim, 0)
        self.pending.pop(victim, None)
        self._clearAuras(victim)
        self.emit(victim, R.DEATH, killer.id if killer is not None else 0, victim.id)
        c.deaths += 1
        self.stats.deaths[c.team] = self.stats.deaths.get(c.team, 0) + 1
        if c.team == PLAYERS:
            # A corpse does not walk (nor through a portal) until released or revived.
            self.zone.freeze(victim, "dead")
            # Players' deaths are rare enough to log; NPCs' are the NPC AI's to tell.
            self.log.info("character {character_id} died in zone {zone} (killer {killer_id}, "
                          "death {n})", character_id=victim.id, zone=self.zone.id,
                          killer_id=killer.id if killer is not None else 0, n=c.deaths)
        for listener in list(self.deathListeners):
            try:
                listener(victim, killer)
            except Exception:
                self.log.failure("zone {zone}: a death listener failed on entity {entity_id}",
                                 zone=self.zone.id, entity_id=victim.id)
        self._disengage(victim)
        self.active.discard(victim)

    def _disengage(self, e):
        """C{e} leaves every threat table and forgets its own."""
        c = e.combat
        if c.threat is not None:
            for p in list(c.threat):
                if p.combat is not None:
                    p.combat.engaged.discard(e)
            c.threat.clear()
        for n in list(c.engaged):
            if n.combat is not None and n.combat.threat is not None:
                n.combat.threat.remove(e)
        c.engaged.clear()

    def revive(self, entity, fraction, reviver=None):
        """A dead entity lives again with C{fraction} of its maximum health, where it lies. @return: True when it was dead."""
        c = entity.combat
        if c is None or not c.dead:
            return False
        c.dead = False
        self.zone.unfreeze(entity)
        c.hp = min(c.hpMax, max(1, int(round(c.hpMax * fraction))))
        c.combatUntil = 0.0
        if c.team == PLAYERS:
            c.res = min(c.resMax, c.kit.resource_start)
            self._resource(entity, c)
        self.emit(entity, R.REVIVE, reviver.id if reviver is not None else 0, entity.id, c.hp)
        self._health(entity, c)
        self.active.add(entity)
        return True

    def reset(self, entity):
        """
        Full health and resource; cast, auras, cooldowns and threat cleared,
        and its auras on those on its table taken off (an evading or
        respawning NPC).
        """
        c = entity.combat
        if c is None:
            return
        wasDead = c.dead
        if c.cast is not None:
            self._interrupt(entity, 0)
        self.pending.pop(entity, None)
        self._clearAuras(entity)
        if c.threat:
            # Its auras on those it fought go too: a bleed ticking after it
            # got home would put them back on its table (and it in the fight).
            eid = entity.id
            for p in list(c.threat):
                pc = p.combat
                if pc is not None and pc.auras:
                    for key in [k for k in pc.auras if k[1] == eid]:
                        self._removeAura(p, key)
        self._disengage(entity)
        c.dead = False
        c.hp = c.hpMax
        c.res = c.resMax
        c.cooldowns.clear()
        c.gcdUntil = 0.0
        c.combatUntil = 0.0
        if wasDead:
            self.emit(entity, R.REVIVE, 0, entity.id, c.hp)
        self._health(entity, c)
        self._resource(entity, c)

    def evade(self, npc, on):
        """An NPC starts (C{on}) or ends evading: immune while it walks home (an EVADE record)."""
        c = npc.combat
        if c is None or c.immune == bool(on):
            return
        c.immune = bool(on)
        self.emit(npc, R.EVADE, npc.id, 0, int(c.immune))

    def _interrupt(self, e, by):
        """Stop C{e}'s cast (C{by}: the interrupter's id, 0 when moved or stopped)."""
        cast = e.combat.cast
        e.combat.cast = None
        self.emit(e, R.CAST_INTERRUPT, e.id, by, 0, cast.ability.num)
