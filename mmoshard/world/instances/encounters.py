"""The encounters of one instance: its trash and living bosses spawned at its start, boss scripts (phases, timed abilities, adds, enrage), resets, world.encounter, and the kill handed to kills.py."""

import attrs
from twisted.logger import Logger

from mmoshard.wire.codec import encode
from mmoshard.world.combat.brain import COMBAT, DEAD, topTarget
from mmoshard.world.combat.data import AbilitySpec, PackSpec
from mmoshard.world.combat.errors import BUSY, ON_COOLDOWN, OUT_OF_RANGE, CombatError
from mmoshard.world.combat.spawns import place
from mmoshard.world.instances.kills import Kill
from mmoshard.world.instances.resets import nextReset
from mmoshard.world.sim import ORDER_NPC, PLAYER

# After the NPC AI: a boss it made evade this tick resets in the same tick.
ORDER_ENCOUNTERS = ORDER_NPC + 50
# world.encounter health updates while a boss is engaged, seconds apart.
REPORT_EVERY = 1.0
# Adds without a point appear within this many metres of the boss.
ADD_SPREAD = 5.0
# A timed ability the boss cannot cast yet (casting, on cooldown, target out
# of range) is tried again each tick, for at most its period.
_RETRY = frozenset((BUSY, ON_COOLDOWN, OUT_OF_RANGE))
# The enrage timer's aura: its own id (a script's "enrage" buff, a timed
# aura, must not replace it), the wire number of the data's "enrage" ability
# when there is one.
ENRAGE_AURA = "encounter_enrage"
ENRAGE = "enrage"

# world.encounter events.
PULL = "pull"
PHASE = "phase"
HEALTH = "health"
ENRAGED = "enrage"
RESET = "reset"
KILLED = "kill"


class Timer:
    """A timed ability of the current phase, due at C{due}."""

    __slots__ = ("spec", "due")

    def __init__(self, spec, due):
        self.spec = spec
        self.due = due


class Fight:
    """
    One boss and its script's state: C{phase} the index of its phase (-1
    before its pull), C{timers} its phase's L{Timer}s, C{adds} the brains
    its phases brought, since when it fights (C{started}), whether it is
    C{enraged}, the next health report (C{nextReport}).
    """

    __slots__ = ("spec", "brain", "enrage", "phase", "timers", "adds", "started", "enraged",
                 "nextReport", "addNo", "killed")

    def __init__(self, spec, brain, enrage):
        self.spec = spec
        self.brain = brain
        self.enrage = enrage  # the AbilitySpec of its enrage aura
        self.phase = -1
        self.timers = []
        self.adds = []
        self.started = 0.0
        self.enraged = False
        self.nextReport = 0.0
        self.addNo = 0
        self.killed = False


class Encounters:
    """
    The encounters of one instance (C{instance.encounter}): at L{start} its
    trash packs and the bosses not in C{instance.killed} spawn, none ever
    respawning.  A boss is an NPC of the zone's L{Npcs} (it chases, swings,
    leashes and evades as any); its script runs here, at
    L{ORDER_ENCOUNTERS}, only while it fights: phases at health thresholds,
    timed abilities, adds, enrage.  A boss that evades (a wipe: no one left
    on its table; the leash) resets: full health, first phase, adds gone.
    A kill is handed to L{Kills} (one SQL transaction).

    @ivar instance: the runtime instance (C{id}, C{spec}, C{zone}, C{killed}).
    @ivar kills: the process's L{mmoshard.world.instances.kills.Kills}.
    @ivar rng: the seeded C{random.Random} of adds' places, random targets, loot seeds.
    @ivar fights: encounter id -> L{Fight} of every boss spawned here.
    @ivar fighting: the fights the tick visits (engaged bosses), in pull order.
    """

    log = Logger()

    def __init__(self, instance, kills, rng):
        self.instance = instance
        self.zone = instance.zone
        self.spec = instance.spec
        self.kills = kills
        self.rng = rng
        self.fights = {}
        self.byEntity = {}  # boss entity id -> Fight
        self.fighting = {}
        self.trash = []

    # --- start -------------------------------------------------------------

    def start(self):
        """Spawn the trash and the living bosses, and run the scripts from now on."""
        zone = self.zone
        npcs = zone.npcs
        npcs.respawn = False
        self.trash = npcs.spawn(self.spec.packs)
        for boss in self.spec.bosses:
            if boss.id not in self.instance.killed:
                self._spawnBoss(boss)
        zone.combat.engageListeners.append(self._engaged)
        zone.combat.deathListeners.append(self._died)
        zone.addSystem(ORDER_ENCOUNTERS, "encounters", self.tick)
        self.instance.encounter = self
        self.log.info("instance {instance_id} ({template}): {trash} trash NPCs, bosses {bosses} "
                      "spawned, {killed} killed before", instance_id=self.instance.id,
                      template=self.spec.id, trash=len(self.trash),
                      bosses=",".join(self.fights) or "none",
                      killed=",".join(sorted(self.instance.killed)) or "none")

    def _spawnBoss(self, spec):
        data = self.zone.combat.data
        npcType = data.npcs[spec.npc]
        scripted = []
        for phase in spec.phases:
            for t in phase.abilities:
                if t.ability not in scripted:
                    scripted.append(t.ability)
        # A boss fights with its melee swing and its script: Combat casts
        # only what the kit holds (the script's abilities), and the AI
        # uses none of its own (docs/instances.md, "Encounters").
        kit = attrs.evolve(npcType, abilities=tuple(scripted))
        x, z = spec.at
        brain = self.zone.npcs.spawnNpc(npcType, float(x), float(z), f"{self.zone.id}:boss:{spec.id}",
                                        kit=kit, abilities=(), encounter=spec.id)
        fight = Fight(spec, brain, self._enrageAbility(spec))
        self.fights[spec.id] = fight
        self.byEntity[brain.entity.id] = fight
        return fight

    def _enrageAbility(self, spec):
        """The aura an enraged boss bears: its damage done times C{enrage_damage}."""
        known = self.zone.combat.data.abilities.get(ENRAGE)
        return AbilitySpec(id=ENRAGE_AURA, num=known.num if known is not None else 0, name="Enrage",
                           cls="npc", kind="buff", target="self", gcd=0.0, crit=0.0,
                           mod="damage_done", magnitude=spec.enrage_damage - 1.0)

    # --- listeners (in the combat and NPC ticks) --------------------------------

    def _engaged(self, npc, entity):
        """A boss's threat table was empty and is not: the pull (the script starts at the next tick of ours)."""
        fight = self.byEntity.get(npc.id)
        if fight is None or fight in self.fighting or fight.killed or npc.combat.dead:
            return
        now = self.zone.clock.seconds()
        fight.started = now
        fight.phase = -1
        fight.enraged = False
        fight.nextReport = now + REPORT_EVERY
        self.fighting[fight] = None
        self.log.info("instance {instance_id}: boss {encounter} pulled by {entity_id}",
                      instance_id=self.instance.id, encounter=fight.spec.id, entity_id=entity.id)
        self._enterPhases(fight, 0, now)
        self._tell(fight, PULL)

    def _died(self, victim, killer):
        fight = self.byEntity.get(victim.id)
        if fight is None or fight.brain.entity is not victim or fight.killed:
            return
        self._kill(fight, killer)

    # --- the tick ------------------------------------------------------------------

    def tick(self, now, dt):
        if not self.fighting:
            return
        for fight in list(self.fighting):
            try:
                self._fight(fight, now)
            except Exception:
                self.log.failure("instance {instance_id}: script of boss {encounter} failed; "
                                 "it resets", instance_id=self.instance.id,
                                 encounter=fight.spec.id)
                self.fighting.pop(fight, None)
                self._reset(fight, "script failed")

    def _fight(self, fight, now):
        brain = fight.brain
        c = brain.entity.combat
        if c.dead:
            return  # the death listener ends it
        if brain.state is not COMBAT:
            # It evades: everyone on its table died or left (a wipe), or the leash.
            del self.fighting[fight]
            self._reset(fight, brain.state)
            return
        phases = fight.spec.phases
        target = fight.phase
        fraction = c.hp / c.hpMax if c.hpMax else 0.0
        while target + 1 < len(phases) and fraction <= phases[target + 1].below:
            target += 1
        if target > fight.phase:
            self._enterPhases(fight, target, now)
            self._tell(fight, PHASE)
        spec = fight.spec
        if spec.enrage > 0 and not fight.enraged and now - fight.started >= spec.enrage:
            fight.enraged = True
            self.zone.combat.addAura(brain.entity, fight.enrage, brain.entity, 0)
            self.log.info("instance {instance_id}: boss {encounter} enrages",
                          instance_id=self.instance.id, encounter=spec.id)
            self._tell(fight, ENRAGED)
        for timer in fight.timers:
            if now >= timer.due and not c.dead:
                self._cast(fight, timer, now)
        if now >= fight.nextReport and fight in self.fighting:
            fight.nextReport = now + REPORT_EVERY
            self._tell(fight, HEALTH)

    def _enterPhases(self, fight, index, now):
        """Enter each phase after the current one up to C{index}, in order: each brings its adds; the last one's abilities run."""
        for i in range(fight.phase + 1, index + 1):
            fight.phase = i
            phase = fight.spec.phases[i]
            fight.timers = [Timer(t, now + t.first) for t in phase.abilities]
            for add in phase.adds:
                for _ in range(add.count):
                    self._spawnAdd(fight, add)
            if i:
                self.log.info("instance {instance_id}: boss {encounter} enters phase {phase}",
                              instance_id=self.instance.id, encounter=fight.spec.id, phase=i + 1)

    # --- what the script does ---------------------------------------------------------

    def _cast(self, fight, timer, now):
        """Cast a timed ability that is due; one that cannot be cast yet waits, at most its period."""
        spec = timer.spec
        boss = fight.brain.entity
        combat = self.zone.combat
        ability = combat.data.abilities[spec.ability]
        target = self._target(fight, spec.target)
        try:
            if target is None:
                raise CombatError(OUT_OF_RANGE, "no target")
            if ability.target == "area":
                if target is boss or ability.range <= 0:
                    combat.cast(boss, ability.id)
                else:
                    combat.cast(boss, ability.id, None, target.x, target.z)
            elif ability.target == "enemy":
                combat.cast(boss, ability.id, target)
            else:
                combat.cast(boss, ability.id, boss)
        except CombatError as e:
            if e.code in _RETRY and now - timer.due < spec.every:
                return
            self.log.debug("instance {instance_id}: boss {encounter} skips {ability}: {code}",
                           instance_id=self.instance.id, encounter=fight.spec.id,
                           ability=ability.id, code=e.code)
        timer.due += spec.every
        if timer.due <= now:
            timer.due = now + spec.every

    def _target(self, fight, how):
        """@return: the boss itself, the top of its table, or a random living player on its table (None: none)."""
        boss = fight.brain.entity
        if how == "self":
            return boss
        if how == "top":
            return topTarget(self.zone, boss)
        players = self._onTable(boss)
        return self.rng.choice(players) if players else None

    def _onTable(self, npc):
        """@return: the living players on C{npc}'s threat table that are in the zone, in its order."""
        entities = self.zone.entities
        return [e for e in npc.combat.threat if e.kind == PLAYER and e.combat is not None
                and not e.combat.dead and entities.get(e.id) is e]

    def _spawnAdd(self, fight, add):
        """An add appears (at its point, else near the boss) and engages the players fighting the boss."""
        zone = self.zone
        boss = fight.brain.entity
        npcType = zone.combat.data.npcs[add.npc]
        if add.at is not None:
            x, z = float(add.at[0]), float(add.at[1])
        else:
            x, z = place(zone, PackSpec(members=(), at=(boss.x, boss.z), spread=ADD_SPREAD),
                         self.rng)
        fight.addNo += 1
        brain = zone.npcs.spawnNpc(npcType, x, z, f"{zone.id}:add:{fight.spec.id}:{fight.addNo}",
                                   encounter=fight.spec.id)
        fight.adds.append(brain)
        players = self._onTable(boss)
        if not players:
            return
        first = self.rng.choice(players)
        zone.npcs.pull(brain, first)
        for p in players:
            if p is not first:
                zone.combat.engage(brain.entity, p, 0.0)

    def _despawnAdds(self, fight):
        npcs = self.zone.npcs
        for brain in fight.adds:
            npcs.remove(brain)
        fight.adds = []

    # --- the end of a fight --------------------------------------------------------------

    def _reset(self, fight, why):
        """The boss evaded (or its script failed): first phase, not enraged, its adds gone; the AI brings it home at full health."""
        self._despawnAdds(fight)
        fight.phase = -1
        fight.timers = []
        if fight.enraged:
            fight.enraged = False
            c = fight.brain.entity.combat
            if (ENRAGE_AURA, fight.brain.entity.id) in c.auras:
                self.zone.combat.reset(fight.brain.entity)
        self.log.info("instance {instance_id}: boss {encounter} resets ({why})",
                      instance_id=self.instance.id, encounter=fight.spec.id, why=why)
        self._tell(fight, RESET)

    def _kill(self, fight, killer):
        """The boss died: its adds go, it stays dead here, and its kill is written (the players told after the commit)."""
        now = self.zone.clock.seconds()
        self.fighting.pop(fight, None)
        self._despawnAdds(fight)
        fight.killed = True
        fight.timers = []
        spec = fight.spec
        self.instance.killed.add(spec.id)
        roster = tuple(sorted(e.id for e in self.zone.observers.values() if e.kind == PLAYER))
        kill = Kill(instance_id=self.instance.id, template=self.spec.id, encounter=spec.id,
                    killed_at=now, roster=roster, seed=f"{self.rng.getrandbits(64):016x}",
                    exp=spec.exp, loot=spec.loot, reset_at=nextReset(self.spec, now),
                    boss=fight.brain.entity.id)
        self.log.info("instance {instance_id}: boss {encounter} killed by {killer_id} with "
                      "characters {roster} present", instance_id=self.instance.id,
                      encounter=spec.id, killer_id=killer.id if killer is not None else 0,
                      roster=",".join(map(str, roster)))
        self._tell(fight, KILLED)
        self.kills.write(kill).addCallback(self._written, fight)

    def _written(self, result, fight):
        """
        The kill was not written (the database stayed away): it did not
        happen, so the boss is back at home, alive, for another try (a
        write that did commit answers that first result to the next kill).
        """
        if result is not None:
            return result
        self.instance.killed.discard(fight.spec.id)
        fight.killed = False
        brain = fight.brain
        if brain.state is DEAD and self.zone.entities.get(brain.entity.id) is brain.entity:
            self.zone.npcs.respawnNow(brain)
        self.log.warn("instance {instance_id}: boss {encounter} is back: its kill was not "
                      "written", instance_id=self.instance.id, encounter=fight.spec.id)
        self._tell(fight, RESET)
        return None

    # --- telling the players ---------------------------------------------------------------

    def _tell(self, fight, event):
        """
        world.encounter to every player in the instance; a health update
        (each second of a fight) is encoded once and not replayed on resume.
        """
        boss = fight.brain.entity
        c = boss.combat
        body = {"boss": fight.spec.id, "entity": boss.id, "event": event,
                "phase": max(fight.phase, 0) + 1, "health": c.hp, "health_max": c.hpMax,
                "enraged": fight.enraged}
        players = [e.session for e in self.zone.observers.values()
                   if e.kind == PLAYER and e.session is not None]
        if event == HEALTH:
            body["t"] = "world.encounter"
            payload = encode(body)
            for session in players:
                session.sendEncoded(payload, "world.encounter")
            return
        for session in players:
            session.send("world.encounter", body)
