"""NPC AI of one zone at ORDER_NPC: spawning packs from data, aggro and social aggro, chase and attack, leash and evade, death and respawn, patrols."""

import math

from twisted.logger import Logger

from mmoshard.world.combat.brain import (
    COMBAT, DEAD, EVADE, IDLE, PATROL, WALK_SPEED, AggroGrid, Brain, readyAbilities, stop,
    topTarget, walk,
)
from mmoshard.world.combat.data import PackSpec
from mmoshard.world.combat.errors import CombatError
from mmoshard.world.combat.spawns import Respawns, nextNpcId, place, spawnId
from mmoshard.world.sim import NPC, ORDER_NPC, PLAYER, Entity

# A patroller looks for players standing near it every this many ticks
# (moving players find it themselves), staggered by id.
PATROL_SCAN_TICKS = 3
# The grid of players that NPCs look themselves up in (patrollers, NPCs
# just home) is rebuilt from the zone's observers at most this often: a
# player that moved since is found by its own move, one that stands still
# is where the grid says.
PLAYER_GRID_TICKS = 10
# A chase that makes no progress (terrain in the way) for this long evades.
STUCK_SECONDS = 5.0
# Chases stop this fraction of the attack range short of the target, so a
# target stepping back a little stays in range.
CHASE_FRACTION = 0.8
# Ticks between two thoughts of one busy NPC (see Npcs.tick).
THINK_EVERY = 2

class Npcs:
    """
    The NPCs of one zone and their AI, a system at C{ORDER_NPC}.

    Idle NPCs cost nothing per tick: they sit in an L{AggroGrid} that the
    players moved this tick look themselves up in.  Only the NPCs in
    C{active} (fighting, evading, patrolling, or just home and looking
    around) are visited each tick, and dead ones wait in a heap ordered by
    their respawn time.

    @ivar brains: entity id -> L{Brain} of every NPC spawned here.
    @ivar bySpawn: spawn id -> L{Brain}.
    @ivar active: the brains visited each tick (an insertion-ordered dict
        used as a set: the order, and so the tests, are deterministic).
    @ivar respawns: the dead NPCs by respawn time (L{Respawns}).
    """

    log = Logger()

    def __init__(self, zone, combat, data, clock, rng, thinkEvery=THINK_EVERY, respawn=True):
        """
        @param thinkEvery: ticks between two thoughts of a fighting,
            evading or patrolling NPC (1: every tick).
        @param respawn: False: the dead stay corpses (L{respawn}).
        """
        self.thinkEvery = thinkEvery
        self.zone = zone
        self.combat = combat
        self.data = data
        self.clock = clock
        self.rng = rng
        # False: the dead stay corpses (an instance's NPCs never come back).
        self.respawn = respawn
        self.brains = {}
        self.bySpawn = {}
        self.packs = {}  # pack index -> [Brain]
        self.nextPack = 0  # the pack index the next spawned pack (or lone NPC) gets
        self.active = {}
        self.respawns = Respawns()
        self.ticks = 0
        radius = max([data.npcs[m].aggro_radius for p in zone.spec.packs for m in p.members
                      if m in data.npcs] + [1.0])
        self.grid = AggroGrid(zone.spec.width, zone.spec.depth, radius)
        # Idle NPCs just home look around for this many ticks: the player
        # grid has been rebuilt at least once by then.
        self.scanTicks = PLAYER_GRID_TICKS + 1
        self._players = None  # cell -> [player entities], from _playerGrid
        self._playersAt = 0
        combat.deathListeners.append(self.died)
        combat.engageListeners.append(self.engaged)
        zone.addSystem(ORDER_NPC, "npcs", self.tick)

    # --- spawning -------------------------------------------------------------

    def states(self):
        """@return: {AI state: how many NPCs are in it} (for /metrics: a scan, never in the tick)."""
        counts = {}
        for brain in self.brains.values():
            counts[brain.state] = counts.get(brain.state, 0) + 1
        return counts

    def spawn(self, packs=None):
        """
        Spawn every member of C{packs} (PackSpecs; by default the zone
        spec's), numbered after the packs spawned before. @return: the new
        brains.
        """
        zone = self.zone
        packs = zone.spec.packs if packs is None else tuple(packs)
        self._fit(max([self.data.npcs[m].aggro_radius for p in packs for m in p.members] + [1.0]))
        base = self.nextPack
        self.nextPack = base + len(packs)
        spawned = []
        for i, pack in enumerate(packs):
            pi = base + i
            members = self.packs.setdefault(pi, [])
            for mi, typeId in enumerate(pack.members):
                npcType = self.data.npcs[typeId]
                x, z = place(zone, pack, self.rng)
                brain = self._spawnOne(npcType, npcType, pack, pi, spawnId(zone.id, pi, mi), x, z)
                members.append(brain)
                spawned.append(brain)
        self.log.info("zone {zone}: spawned {count} NPCs in {packs} packs",
                      zone=zone.id, count=len(spawned), packs=len(packs))
        return spawned

    def spawnNpc(self, npcType, x, z, sid, kit=None, abilities=None, encounter=None):
        """
        Spawn one NPC of C{npcType} at (x, z), a pack of its own, idle at
        home there (a boss, an add).

        @param sid: its spawn id (unique in the zone).
        @param kit: what its Combatant is made from (default C{npcType}; a
            boss's kit also holds its script's abilities).
        @param abilities: the L{AbilitySpec}s its AI uses on their cooldowns
            (default its type's).
        @param encounter: the boss encounter it belongs to (L{Brain.encounter}).
        @return: its L{Brain}.
        """
        if sid in self.bySpawn:
            raise ValueError(f"spawn id {sid!r} is taken in zone {self.zone.id}")
        self._fit(npcType.aggro_radius)
        pi = self.nextPack
        self.nextPack += 1
        pack = PackSpec(members=(npcType.id,), at=(x, z), spread=0.0)
        brain = self._spawnOne(npcType, kit or npcType, pack, pi, sid, x, z, abilities)
        brain.encounter = encounter
        self.packs[pi] = [brain]
        return brain

    def _spawnOne(self, npcType, kit, pack, pi, sid, x, z, abilities=None):
        zone = self.zone
        e = Entity(nextNpcId(), NPC, x, 0.0, z, name=npcType.name, cls=npcType.id,
                   level=npcType.level)
        zone.spawn(e)
        self.combat.addNpc(e, kit)
        if abilities is None:
            abilities = tuple(self.data.abilities[a] for a in npcType.abilities)
        brain = Brain(e, npcType, pack, pi, sid, x, z, x - pack.at[0], z - pack.at[1], abilities)
        e.ai = brain
        self.brains[e.id] = brain
        self.bySpawn[sid] = brain
        self._rest(brain)
        return brain

    def _fit(self, radius):
        """
        The aggro grid's cells must hold the largest aggro radius: NPCs
        spawned after the start (an instance's) may need a coarser grid,
        and the idle NPCs move into it.
        """
        if radius <= self.grid.size:
            return
        old = self.grid
        spec = self.zone.spec
        self.grid = AggroGrid(spec.width, spec.depth, radius)
        self._players = None  # its cells were the old grid's
        for brain in self.brains.values():
            if brain.cells:
                old.discard(brain)
                self.grid.place(brain, brain.entity.x, brain.entity.z)

    def remove(self, brain):
        """Take one NPC out of the zone for good (an add after its fight). @return: True when it was here."""
        if self.brains.get(brain.entity.id) is not brain:
            return False
        del self.brains[brain.entity.id]
        self.bySpawn.pop(brain.spawnId, None)
        members = self.packs.get(brain.packIndex)
        if members is not None:
            if brain in members:
                members.remove(brain)
            if not members:
                del self.packs[brain.packIndex]
        self.grid.discard(brain)
        self.active.pop(brain, None)
        self.combat.remove(brain.entity)
        self.zone.despawn(brain.entity)
        # A queued respawn of it finds it no longer dead for that death.
        brain.state = DEAD
        brain.deaths += 1
        return True

    def despawn(self):
        """Take every NPC out of the zone (the zone stops hosting NPCs)."""
        for brain in list(self.brains.values()):
            self.grid.discard(brain)
            self.combat.remove(brain.entity)
            self.zone.despawn(brain.entity)
        self.brains.clear()
        self.bySpawn.clear()
        self.packs.clear()
        self.nextPack = 0
        self.active.clear()
        self.respawns.clear()

    # --- the tick ----------------------------------------------------------------

    def tick(self, now, dt):
        self.ticks += 1
        if self.grid.cells:
            self._aggroFromMoves()
        if self.respawns:
            for brain in self.respawns.due(now, DEAD):
                try:
                    self._respawn(brain)
                except Exception:
                    self._failed(brain, "respawn")
        if not self.active:
            return
        # A fighting, evading or patrolling NPC thinks (and walks) every
        # THINK_EVERY ticks, staggered by id, covering the ticks between:
        # its moves carry its velocity, so observers extrapolate meanwhile.
        every = self.thinkEvery
        phase = self.ticks % every
        span = dt * every
        for brain in list(self.active):
            state = brain.state
            try:
                if brain.entity.combat.dead:
                    if state is not DEAD:
                        self._dead(brain, now)  # a death we were not told of: never act
                    continue
                if brain.entity.id % every != phase and state is not IDLE:
                    continue
                if state is COMBAT:
                    self._fight(brain, now, span)
                elif state is EVADE:
                    self._evade(brain, span)
                elif state is PATROL:
                    self._patrol(brain, span)
                elif state is IDLE:
                    if self.ticks >= brain.scanUntil:
                        del self.active[brain]
                    self._scan(brain)
                else:
                    del self.active[brain]
            except Exception:
                self._failed(brain, state)

    def _failed(self, brain, what):
        """
        C{brain}'s AI raised (a bug or bad data): logged, and it leaves the
        tick and the aggro grid, so the other NPCs of the zone go on.  It
        stands where it is, doing nothing, until it is killed (its respawn
        starts it afresh).
        """
        n = brain.entity
        self.log.failure("zone {zone}: NPC {npc_id} ({spawn_id}) failed in {what}; it stands "
                         "until killed", zone=self.zone.id, npc_id=n.id, spawn_id=brain.spawnId,
                         what=what)
        self.active.pop(brain, None)
        self.grid.discard(brain)
        if self.zone.entities.get(n.id) is n:
            stop(self.zone, n)

    # --- aggro ---------------------------------------------------------------------

    def _aggroFromMoves(self):
        """The players moved this tick against the idle NPCs whose aggro disk covers their cell."""
        grid = self.grid
        cells = grid.cells
        size = grid.size
        cols = grid.cols
        hits = None
        for e in self.zone.space.moved():
            if e.kind != PLAYER:
                continue
            near = cells.get(int(e.z // size) * cols + int(e.x // size))
            if near is None:
                continue
            c = e.combat
            if c is None or c.dead:
                continue
            x = e.x
            z = e.z
            for b in near:
                n = b.entity
                dx = n.x - x
                dz = n.z - z
                if dx * dx + dz * dz <= b.aggro2:
                    if hits is None:
                        hits = []
                    hits.append((b, e))
        if hits:
            # After the loop: a pull changes the grid.
            for b, e in hits:
                self._pullBy(b, e)

    def _playerGrid(self):
        """@return: cell -> [player entities] on the aggro grid, at most L{PLAYER_GRID_TICKS} old."""
        if self._players is None or self.ticks - self._playersAt >= PLAYER_GRID_TICKS:
            self._players = self.grid.players(self.zone.observers.values())
            self._playersAt = self.ticks
        return self._players

    def _scan(self, brain):
        """An NPC looks for players within its aggro radius itself (players standing still do not move)."""
        n = brain.entity
        x = n.x
        z = n.z
        r2 = brain.aggro2
        players = self._playerGrid()
        entities = self.zone.entities
        for cell in self.grid.disk(x, z, brain.type.aggro_radius):
            for p in players.get(cell, ()):
                c = p.combat
                if c is None or c.dead or entities.get(p.id) is not p:
                    continue
                dx = p.x - x
                dz = p.z - z
                if dx * dx + dz * dz <= r2 and self._pullBy(brain, p):
                    return

    def _pullBy(self, brain, player):
        """C{player} walked into C{brain}'s aggro radius. @return: True when it pulled."""
        n = brain.entity
        if brain.state is not IDLE and brain.state is not PATROL:
            return False
        if n.combat.dead or not self.combat.isEnemy(n, player):
            return False
        if not self._join(brain, player):
            return False
        self._callHelp(brain, player)
        return True

    def engaged(self, npc, entity):
        """
        Combat put C{entity} on the empty threat table of C{npc} (damage,
        heal threat, taunt, or our own pull): an idle or patrolling NPC
        enters the fight and calls for help.
        """
        brain = self.brains.get(npc.id)
        if brain is None or brain.entity is not npc:
            return
        if brain.state is not IDLE and brain.state is not PATROL:
            return
        if npc.combat.dead:
            return
        self._enterCombat(brain)
        self._callHelp(brain, entity)

    def _callHelp(self, brain, entity):
        """
        Social aggro: the idle or patrolling members of C{brain}'s pack (a
        pack is linked), and other idle NPCs within its type's social
        radius, engage C{entity} too.  Helpers do not call further.
        """
        n = brain.entity
        r = brain.type.social_radius
        r2 = r * r
        helpers = [b for b in self.packs.get(brain.packIndex, ()) if b is not brain]
        for b in self.grid.around(n.x, n.z, r):
            if b.packIndex != brain.packIndex:
                o = b.entity
                if (o.x - n.x) ** 2 + (o.z - n.z) ** 2 <= r2:
                    helpers.append(b)
        combat = self.combat
        for b in helpers:
            o = b.entity
            if b.state is not IDLE and b.state is not PATROL:
                continue
            if o.combat.dead or not combat.isEnemy(o, entity):
                continue
            self._join(b, entity)

    def pull(self, brain, entity):
        """
        C{brain}'s NPC, idle or patrolling, engages C{entity} as if it had
        walked into its aggro radius (its pack joins in): an add a boss
        brings. @return: True when it did.
        """
        return self._pullBy(brain, entity)

    def _join(self, brain, entity):
        """C{brain}'s NPC engages C{entity}. @return: False when combat refused it (it stays as it was)."""
        # In combat first: the engage listener then sees it busy and does
        # not call for help again.
        self._enterCombat(brain)
        n = brain.entity
        self.combat.engage(n, entity)
        if entity in n.combat.threat:
            return True
        self._rest(brain)
        return False

    def _enterCombat(self, brain):
        n = brain.entity
        self.grid.discard(brain)
        brain.state = COMBAT
        brain.anchorX = n.x
        brain.anchorZ = n.z
        brain.nextSwing = 0.0
        brain.stuckSince = None
        self.active[brain] = None

    # --- combat ----------------------------------------------------------------------

    def _fight(self, brain, now, dt):
        n = brain.entity
        c = n.combat
        target = topTarget(self.zone, n)
        if target is None:
            self._startEvade(brain, "no target")
            return
        t = brain.type
        dx = n.x - brain.anchorX
        dz = n.z - brain.anchorZ
        if dx * dx + dz * dz > t.leash * t.leash:
            self._startEvade(brain, "leash")
            return
        zone = self.zone
        if c.cast is not None:
            stop(zone, n)  # moving would interrupt it
            return
        reach = t.attack_range
        dist = math.hypot(target.x - n.x, target.z - n.z)
        cast = self._useAbility(brain, target, dist, now)
        if c.cast is not None:
            stop(zone, n)  # it started a cast: it stands still while casting
            return
        if dist > reach:
            speed = t.speed * (1.0 + c.mods.get("speed", 0.0))
            dist, stuck = walk(zone, n, target.x, target.z, max(speed, 0.0), dt,
                               reach * CHASE_FRACTION)
            if stuck:
                if brain.stuckSince is None:
                    brain.stuckSince = now
                elif now - brain.stuckSince >= STUCK_SECONDS:
                    self._startEvade(brain, "unreachable")
                    return
            else:
                brain.stuckSince = None
        else:
            stop(zone, n)
            brain.stuckSince = None
        if cast or dist > reach or now < brain.nextSwing:
            return
        brain.nextSwing = now + t.attack_speed
        try:
            self.combat.swing(n, target)
        except CombatError as e:
            self.log.debug("NPC {npc_id} swing at {entity_id} refused: {code}",
                           npc_id=n.id, entity_id=target.id, code=e.code)

    def _useAbility(self, brain, target, dist, now):
        """Cast the first of its abilities that is ready and fits. @return: True when it cast."""
        if not brain.abilities:
            return False
        n = brain.entity
        for spec, at in readyAbilities(brain, target, dist, now):
            try:
                self.combat.cast(n, spec.id, at)
            except CombatError as e:
                self.log.debug("NPC {npc_id} cast of {ability} refused: {code}",
                               npc_id=n.id, ability=spec.id, code=e.code)
                continue
            return True
        return False

    # --- leash and evade -----------------------------------------------------------------

    def _startEvade(self, brain, why):
        n = brain.entity
        brain.state = EVADE
        brain.stuckSince = None
        self.combat.reset(n)  # threat cleared, full health
        self.combat.evade(n, True)  # immune on the way, an EVADE record
        self.log.debug("NPC {npc_id} ({spawn_id}) evades ({why})",
                       npc_id=n.id, spawn_id=brain.spawnId, why=why)

    def _evade(self, brain, dt):
        n = brain.entity
        left, stuck = walk(self.zone, n, brain.anchorX, brain.anchorZ, brain.type.speed, dt)
        if stuck:
            # Our straight-line walking found no way back: go home at once.
            self.zone.teleport(n, brain.anchorX, brain.anchorZ)
            left = 0.0
        if left <= 0.05:
            stop(self.zone, n)
            c = n.combat
            if c.hp != c.hpMax or len(c.threat):
                self.combat.reset(n)
            self.combat.evade(n, False)
            self._rest(brain)

    def _rest(self, brain):
        """Idle at its place (or back on its patrol), in the aggro grid, looking around for a few ticks."""
        n = brain.entity
        self.grid.place(brain, n.x, n.z)
        if brain.pack.patrol:
            brain.state = PATROL
        else:
            brain.state = IDLE
            brain.scanUntil = self.ticks + self.scanTicks
        self.active[brain] = None

    # --- patrols --------------------------------------------------------------------------

    def _patrol(self, brain, dt):
        n = brain.entity
        points = brain.pack.patrol
        px, pz = points[brain.waypoint]
        tx = px + brain.offX
        tz = pz + brain.offZ
        zone = self.zone
        if not zone.spec.inBounds(tx, tz) or zone.terrain.isBlocked(tx, tz):
            tx, tz = px, pz
        speed = min(WALK_SPEED, brain.type.speed)
        left, stuck = walk(zone, n, tx, tz, speed, dt)
        if left <= 0.05 or stuck:
            brain.waypoint = (brain.waypoint + 1) % len(points)
        self.grid.place(brain, n.x, n.z)
        if (self.ticks + n.id) % PATROL_SCAN_TICKS == 0:
            self._scan(brain)

    # --- death and respawn --------------------------------------------------------------------

    def died(self, victim, killer):
        """A death listener of the zone's combat: a dead NPC lies as a corpse until its respawn."""
        brain = self.brains.get(victim.id)
        if brain is None or brain.entity is not victim or brain.state is DEAD:
            return
        self._dead(brain, self.clock.seconds())

    def _dead(self, brain, now):
        n = brain.entity
        brain.state = DEAD
        brain.deaths += 1
        self.grid.discard(brain)
        self.active.pop(brain, None)
        stop(self.zone, n)
        self.combat.evade(n, False)
        if self.respawn:
            self.respawns.push(brain, now + brain.pack.respawn)

    def respawnNow(self, brain):
        """A dead NPC respawns now, whatever its pack's time (a boss whose kill did not count). @return: True when it was dead."""
        if brain.state is not DEAD or self.brains.get(brain.entity.id) is not brain:
            return False
        self._respawn(brain)
        return True

    def _respawn(self, brain):
        """Back at its home point, alive at full health, idle (or patrolling from its first point)."""
        n = brain.entity
        zone = self.zone
        zone.teleport(n, brain.homeX, brain.homeZ)
        stop(zone, n)
        combat = self.combat
        combat.revive(n, 1.0)
        c = n.combat
        if c.hp != c.hpMax or c.cooldowns or len(c.threat):
            combat.reset(n)
        brain.anchorX = brain.homeX
        brain.anchorZ = brain.homeZ
        brain.waypoint = 0
        self._rest(brain)
